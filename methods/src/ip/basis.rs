//! The adaptive filter basis of interspace pruning: every `kh x kw` filter of a layer is
//! `h = Σ_n λ_n g⁽ⁿ⁾`, coefficients `λ` (the masked trainable tensor) times a basis `B`
//! (`[kh·kw, kh·kw]`, row `n` the basis filter `g⁽ⁿ⁾` flattened row-major), trained jointly.
//!
//! [`FilterBasis`] is the [`Parametrization`] of the sparse engine that does it: the trainable
//! tensor keeps the weight's shape `[O, I, kh, kw]`, its last two axes read as the coefficient
//! index `n = p·kw + q`, and the layer's weight is
//!
//! - per layer (default): `W[o, i] = Λ[o, i] · B` (one `[O·I, K²] x [K², K²]` product);
//! - per input channel: `W[o, i] = Λ[o, i] · B_i` (a batched product over `i`, `B` of shape
//!   `[I, K², K²]`).
//!
//! Initial bases ([`BasisInit`]): the orthonormal 2-D DCT-II (default), a random orthogonal
//! matrix (seeded), or the standard basis (the identity: interspace pruning then *is* standard
//! pruning, the spec's equivalence check). Every start is orthonormal, so the coefficients start
//! as the projection `Λ = W₀ · Bᵀ` of the usual initialization and the network is the standard
//! one at step 0.

use autograd::{no_grad, DType, Device, Error, Result, Tensor};
use layers::surgery::unwrapped;
use layers::{Buffer, Conv2d, Module, Param};

use crate::sparse::{Fixed, MaskedLayer, Parametrization};

/// The basis a layer starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BasisInit {
    /// The orthonormal 2-D DCT-II basis (the spec's recommendation).
    Dct,
    /// A random orthogonal matrix (Gram-Schmidt of a seeded Gaussian matrix).
    RandomOrthogonal,
    /// The standard basis (the identity): interspace pruning reduces to standard pruning.
    Standard,
}

impl BasisInit {
    /// Parses `dct`, `random` or `standard`.
    pub fn parse(s: &str) -> Result<BasisInit> {
        match s.trim() {
            "dct" => Ok(BasisInit::Dct),
            "random" => Ok(BasisInit::RandomOrthogonal),
            "standard" => Ok(BasisInit::Standard),
            other => Err(Error::invalid("--set", format!("basis = {other:?}; expected dct, random or standard"))),
        }
    }

    /// The name [`BasisInit::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            BasisInit::Dct => "dct",
            BasisInit::RandomOrthogonal => "random",
            BasisInit::Standard => "standard",
        }
    }
}

/// How many bases a layer has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// One basis shared by all the layer's filters (`K⁴` parameters: 81 for 3x3).
    Layer,
    /// One basis per input channel of the filters (`I·K⁴` parameters).
    InputChannel,
}

impl Granularity {
    /// Parses `layer` or `channel`.
    pub fn parse(s: &str) -> Result<Granularity> {
        match s.trim() {
            "layer" => Ok(Granularity::Layer),
            "channel" => Ok(Granularity::InputChannel),
            other => Err(Error::invalid("--set", format!("granularity = {other:?}; expected layer or channel"))),
        }
    }

    /// The name [`Granularity::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Layer => "layer",
            Granularity::InputChannel => "channel",
        }
    }
}

/// The 1-D orthonormal DCT-II matrix of size `n` (row `p`, column `k`):
/// `α_p cos(π(2k+1)p / 2n)`, `α_0 = √(1/n)`, `α_{p>0} = √(2/n)`.
pub fn dct_1d(n: usize) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    for p in 0..n {
        let alpha = if p == 0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
        for k in 0..n {
            m[p * n + k] = alpha * (std::f64::consts::PI * (2 * k + 1) as f64 * p as f64 / (2 * n) as f64).cos();
        }
    }
    m
}

/// The orthonormal 2-D DCT-II basis of `kh x kw` filters, `[kh·kw, kh·kw]` row-major: row
/// `n = p·kw + q` is the filter `b(k, l) = c_p(k)·c_q(l)` at column `k·kw + l` (the product of
/// the 1-D bases, [`dct_1d`]).
pub fn dct_2d(kh: usize, kw: usize) -> Vec<f64> {
    let (ch, cw) = (dct_1d(kh), dct_1d(kw));
    let k2 = kh * kw;
    let mut b = vec![0.0; k2 * k2];
    for p in 0..kh {
        for q in 0..kw {
            for k in 0..kh {
                for l in 0..kw {
                    b[(p * kw + q) * k2 + k * kw + l] = ch[p * kh + k] * cw[q * kw + l];
                }
            }
        }
    }
    b
}

/// A random `n x n` orthogonal matrix (rows orthonormal): modified Gram-Schmidt on the rows of
/// a standard Gaussian matrix drawn from `seed` (a singular draw, probability 0, is redrawn).
pub fn random_orthogonal(n: usize, seed: u64) -> Result<Vec<f64>> {
    for attempt in 0..8u64 {
        let g = Tensor::randn(&[n, n], seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9)))?.to_f64_vec()?;
        let mut rows: Vec<Vec<f64>> = g.chunks(n).map(<[f64]>::to_vec).collect();
        let mut ok = true;
        for i in 0..n {
            for j in 0..i {
                let d: f64 = (0..n).map(|k| rows[i][k] * rows[j][k]).sum();
                for k in 0..n {
                    rows[i][k] -= d * rows[j][k];
                }
            }
            let norm = rows[i].iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm < 1e-6 {
                ok = false;
                break;
            }
            rows[i].iter_mut().for_each(|v| *v /= norm);
        }
        if ok {
            return Ok(rows.concat());
        }
    }
    Err(Error::invalid("ip", format!("no orthogonal {n}x{n} matrix from seed {seed}")))
}

/// The identity `[n, n]`.
pub fn standard_basis(n: usize) -> Vec<f64> {
    (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect()
}

/// The basis tensor: trained jointly with the coefficients, or fixed.
#[derive(Clone)]
enum Store {
    Trained(Param),
    Fixed(Buffer),
}

/// The filter-basis parametrization of one KxK convolution (see the [module docs](self)).
pub struct FilterBasis {
    store: Store,
    granularity: Granularity,
    kh: usize,
    kw: usize,
}

impl FilterBasis {
    /// The basis of a layer with weight shape `[O, I, kh, kw]` started from `init` (seeded by
    /// `seed` when random; per input channel, channel `i` uses `seed + i`), in `dtype` on
    /// `device`; `trained` makes it a parameter (named `weight_basis` in the layer), else a
    /// buffer of the same name.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weight_shape: &[usize],
        init: BasisInit,
        granularity: Granularity,
        trained: bool,
        seed: u64,
        dtype: DType,
        device: Device,
    ) -> Result<FilterBasis> {
        let [_, i, kh, kw] = weight_shape else {
            return Err(Error::invalid("ip", format!("a filter basis for a weight of shape {weight_shape:?}")));
        };
        let (i, kh, kw) = (*i, *kh, *kw);
        let k2 = kh * kw;
        let one = |s: u64| -> Result<Vec<f64>> {
            Ok(match init {
                BasisInit::Dct => dct_2d(kh, kw),
                BasisInit::RandomOrthogonal => random_orthogonal(k2, s)?,
                BasisInit::Standard => standard_basis(k2),
            })
        };
        let (data, shape) = match granularity {
            Granularity::Layer => (one(seed)?, vec![k2, k2]),
            Granularity::InputChannel => {
                let mut all = Vec::with_capacity(i * k2 * k2);
                for c in 0..i {
                    all.extend(one(seed.wrapping_add(c as u64))?);
                }
                (all, vec![i, k2, k2])
            }
        };
        let t = Tensor::from_vec(data, &shape)?.to_dtype(dtype)?.to_device(device)?;
        let store = if trained { Store::Trained(Param::new(t)) } else { Store::Fixed(Buffer::new(t)) };
        Ok(FilterBasis { store, granularity, kh, kw })
    }

    /// The basis tensor (`[K², K²]` or `[I, K², K²]`), tracked when trained.
    pub fn basis(&self) -> Tensor {
        match &self.store {
            Store::Trained(p) => p.tensor(),
            Store::Fixed(b) => b.get(),
        }
    }

    /// Whether the basis is trained.
    pub fn trained(&self) -> bool {
        matches!(self.store, Store::Trained(_))
    }

    /// The granularity.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// `kh·kw`, the number of basis filters.
    pub fn size(&self) -> usize {
        self.kh * self.kw
    }

    /// `coeffs · B` (or `coeffs · Bᵀ` with `transposed`) by [`filters`].
    fn apply(&self, coeffs: &Tensor, transposed: bool) -> Result<Tensor> {
        let s = coeffs.shape();
        if s.len() != 4 || s[2] != self.kh || s[3] != self.kw {
            return Err(Error::shape("ip filter basis", &[0, 0, self.kh, self.kw], s));
        }
        let b = self.basis();
        let b = if transposed { b.transpose(b.ndim() - 2, b.ndim() - 1)? } else { b };
        filters(coeffs, &b, self.granularity)
    }
}

/// The filters `W[o, i] = Λ[o, i] · B` (per layer, `basis` `[K², K²]`) or `Λ[o, i] · B_i` (per
/// input channel, `basis` `[I, K², K²]`) of coefficients `coeffs` (`[O, I, kh, kw]`, the last
/// two axes the coefficient index), shaped like `coeffs`. Differentiable in both.
pub fn filters(coeffs: &Tensor, basis: &Tensor, granularity: Granularity) -> Result<Tensor> {
    let s = coeffs.shape().to_vec();
    let [o, i, kh, kw] = s[..] else {
        return Err(Error::invalid("ip", format!("coefficients of shape {s:?}")));
    };
    let k2 = kh * kw;
    let want: Vec<usize> = match granularity {
        Granularity::Layer => vec![k2, k2],
        Granularity::InputChannel => vec![i, k2, k2],
    };
    if basis.shape() != want.as_slice() {
        return Err(Error::shape("ip filter basis", &want, basis.shape()));
    }
    let coeffs = coeffs.contiguous()?;
    let w = match granularity {
        Granularity::Layer => coeffs.reshape_to(&[o * i, k2])?.matmul(basis)?,
        Granularity::InputChannel => {
            coeffs.reshape_to(&[o, i, k2])?.transpose(0, 1)?.matmul(basis)?.transpose(0, 1)?.contiguous()?
        }
    };
    w.reshape_to(&s)
}

impl Parametrization for FilterBasis {
    fn weight(&self, masked: &Tensor) -> Result<Tensor> {
        self.apply(masked, false)
    }

    fn trainable_shape(&self, weight_shape: &[usize]) -> Vec<usize> {
        weight_shape.to_vec()
    }

    /// `Λ = W · Bᵀ`: the exact coordinates for the orthonormal starting bases.
    fn initial_values(&self, weight: &Tensor) -> Result<Tensor> {
        no_grad(|| self.apply(weight, true))
    }

    fn params(&self) -> Vec<(String, Param)> {
        match &self.store {
            Store::Trained(p) => vec![("basis".into(), p.clone())],
            Store::Fixed(_) => Vec::new(),
        }
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        match &self.store {
            Store::Trained(_) => Vec::new(),
            Store::Fixed(b) => vec![("basis".into(), b.clone())],
        }
    }

    fn sparse_form(&self, layer: &MaskedLayer) -> Result<Option<Box<dyn Module>>> {
        Ok(Some(Box::new(super::path::BasisConv2d::from_layer(layer, self)?)))
    }

    fn name(&self) -> &'static str {
        "filter-basis"
    }
}

/// Interspace pruning's settings on a sparse method.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IpConfig {
    /// The starting basis.
    pub init: BasisInit,
    /// One basis per layer or per input channel.
    pub granularity: Granularity,
    /// Train the basis (the method) or keep it fixed (a fixed DCT basis is an ablation; the
    /// fixed standard basis is standard pruning).
    pub train_basis: bool,
    /// The seed random bases derive from (layer `l` uses a seed mixed from it and `l`).
    pub seed: u64,
}

impl IpConfig {
    /// The filter basis of prunable layer `index` when `module` is a convolution with a kernel
    /// larger than 1x1 (`None`: 1x1 convolutions and linear layers, whose basis would be a
    /// scalar, keep the identity, standard pruning).
    pub fn parametrization(&self, index: usize, module: &dyn Module) -> Result<Option<Box<dyn Parametrization>>> {
        let Some(conv) = unwrapped(module).downcast_ref::<Conv2d>() else {
            return Ok(None);
        };
        let w = conv.weight.leaf();
        let s = w.shape();
        if s[2] * s[3] <= 1 {
            return Ok(None);
        }
        let seed = crate::trainer::epoch_seed(self.seed ^ 0x1B_A515, index);
        Ok(Some(Box::new(FilterBasis::new(
            s,
            self.init,
            self.granularity,
            self.train_basis,
            seed,
            w.dtype(),
            w.device(),
        )?)))
    }

    /// The masked layer of prunable layer `index`: `module` with its filter basis
    /// ([`IpConfig::parametrization`]) or, for 1x1 convolutions and linear layers, the identity.
    pub fn masked_layer(&self, index: usize, module: Box<dyn Module>, fixed: Fixed) -> Result<MaskedLayer> {
        match self.parametrization(index, module.as_ref())? {
            Some(param) => MaskedLayer::wrap_with(module, fixed, param),
            None => MaskedLayer::wrap(module, fixed),
        }
    }

    /// One line for summaries (`dct, per layer, trained`).
    pub fn describe(&self) -> String {
        format!(
            "{}, per {}, {}",
            self.init.name(),
            if self.granularity == Granularity::Layer { "layer" } else { "input channel" },
            if self.train_basis { "trained" } else { "fixed" }
        )
    }
}
