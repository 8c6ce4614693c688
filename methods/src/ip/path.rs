//! The basis path: interspace pruning's second way to compute a layer, for sparse inference.
//!
//! By linearity, `conv(x, Σ_n λ_n g⁽ⁿ⁾) = Σ_n λ_n conv(x, g⁽ⁿ⁾)`: [`BasisConv2d`] convolves
//! every input channel with the `K²` basis filters (carrying the layer's stride, padding and
//! dilation: with one basis per layer, one convolution of the `N·C` channels taken as
//! single-channel images with `K²` outputs; with one per input channel, a grouped convolution
//! with `C` groups of `K²` outputs) and mixes the
//! `C·K²` maps with a sparse 1x1 convolution whose weight is the masked coefficients
//! (`[O, (C/groups)·K², 1, 1]`, channel `i·K² + n`, the layer's groups) on the engine's sparse
//! kernel. Its cost is `C·K⁴·HW` for the basis convolution plus `nnz(Λ)·HW`, against
//! `O·(C/groups)·K²·HW` for the reconstructed dense filters: it pays at high sparsity, where
//! the reconstructed filters are spatially dense although `Λ` is sparse. The inference form
//! ([`crate::sparse::exec`]) times both per layer and keeps the faster.

use autograd::{Conv2dParams, Error, Result, Tensor};
use layers::{Buffer, Conv2d, Mode, Module, Param};

use super::basis::{FilterBasis, Granularity};
use crate::sparse::exec::SparseConv2d;
use crate::sparse::masked::Host;
use crate::sparse::MaskedLayer;

/// A KxK convolution run as a basis convolution followed by a sparse 1x1 convolution (see the
/// [module docs](self)).
pub struct BasisConv2d {
    basis_conv: Conv2d,
    /// One basis for every channel: the basis convolution runs on the channels as images
    /// (`[N·C, 1, H, W]`, one GEMM with `K²` outputs) instead of `C` groups.
    shared: bool,
    mix: SparseConv2d,
}

/// The grouped basis-convolution weight `[C·K², 1, kh, kw]`: input channel `c` (index `c mod
/// I` within its group) gets the basis rows `n = 0..K²` as filters.
pub fn basis_filters(
    basis: &Tensor,
    granularity: Granularity,
    channels: usize,
    per_group: usize,
    kh: usize,
    kw: usize,
) -> Result<Tensor> {
    let k2 = kh * kw;
    let b = basis.to_f64_vec()?;
    let mut out = Vec::with_capacity(channels * k2 * k2);
    for c in 0..channels {
        let off = match granularity {
            Granularity::Layer => 0,
            Granularity::InputChannel => (c % per_group) * k2 * k2,
        };
        out.extend_from_slice(&b[off..off + k2 * k2]);
    }
    Tensor::from_vec(out, &[channels * k2, 1, kh, kw])?.to_dtype(basis.dtype())?.to_device(basis.device())
}

impl BasisConv2d {
    /// The basis path of a masked convolution whose parametrization is `basis`.
    pub fn from_layer(layer: &MaskedLayer, basis: &FilterBasis) -> Result<BasisConv2d> {
        let Host::Conv(conv) = layer.host() else {
            return Err(Error::invalid("ip", "the basis path is for convolutions"));
        };
        let coeffs = layer.masked_values()?.detach();
        let b = layer.bias().map(|b| b.leaf().detach());
        BasisConv2d::new(&coeffs, &basis.basis().detach(), basis.granularity(), b.as_ref(), conv.params)
    }

    /// The basis path of coefficients `coeffs` (`[O, I, kh, kw]`, zeros where pruned) in basis
    /// `basis` (`[K², K²]`, or `[I, K², K²]` per input channel), with `bias` and the layer's
    /// geometry `params`.
    pub fn new(
        coeffs: &Tensor,
        basis: &Tensor,
        granularity: Granularity,
        bias: Option<&Tensor>,
        params: Conv2dParams,
    ) -> Result<BasisConv2d> {
        let s = coeffs.shape();
        let [o, i, kh, kw] = s[..] else {
            return Err(Error::invalid("ip", format!("coefficients of shape {s:?}")));
        };
        let g = params.groups.max(1);
        let shared = granularity == Granularity::Layer;
        let (filters, geometry) = if shared {
            (basis_filters(basis, granularity, 1, i, kh, kw)?, Conv2dParams { groups: 1, ..params })
        } else {
            (basis_filters(basis, granularity, i * g, i, kh, kw)?, Conv2dParams { groups: i * g, ..params })
        };
        let mix_weight = coeffs.contiguous()?.reshape_to(&[o, i * kh * kw, 1, 1])?;
        let mix_params = Conv2dParams { groups: g, ..Conv2dParams::default() };
        let basis_conv = Conv2d::from_tensors(filters, None, geometry);
        basis_conv.weight.set_trainable(false);
        Ok(BasisConv2d { basis_conv, shared, mix: SparseConv2d::new(&mix_weight, bias, mix_params)? })
    }

    /// Stored non-zero coefficients.
    pub fn nnz(&self) -> usize {
        self.mix.nnz()
    }
}

impl Module for BasisConv2d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let z = if self.shared {
            let [n, c, h, w] = x.shape()[..] else {
                return Err(Error::invalid("BasisConv2d", format!("an input of shape {:?}", x.shape())));
            };
            let z = self.basis_conv.forward(&x.contiguous()?.reshape_to(&[n * c, 1, h, w])?, mode)?;
            let s = z.shape().to_vec();
            z.reshape_to(&[n, c * s[1], s[2], s[3]])?
        } else {
            self.basis_conv.forward(x, mode)?
        };
        self.mix.forward(&z, mode)
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v: Vec<(String, Param)> =
            self.basis_conv.params().into_iter().map(|(n, p)| (format!("basis_conv.{n}"), p)).collect();
        v.extend(self.mix.params().into_iter().map(|(n, p)| (format!("mix.{n}"), p)));
        v
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        self.mix.buffers().into_iter().map(|(n, b)| (format!("mix.{n}"), b)).collect()
    }

    fn type_name(&self) -> &'static str {
        "BasisConv2d"
    }
}
