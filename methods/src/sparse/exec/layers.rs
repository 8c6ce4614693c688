//! The execution-form layers: a convolution and a linear layer that store only their non-zero
//! weights (compressed sparse rows) and run on the sparse convolution primitive
//! ([`Tensor::sparse_conv2d`]), recording the MACs of the stored weights only.

use std::sync::Arc;

use autograd::backends::ops::SparsePattern;
use autograd::{Conv2dParams, Result, Tensor};
use layers::{mac, Buffer, Mode, Module, Param};

use crate::sparse::engine::to_f32;

/// The stored values (a frozen parameter named `weight_values`, so the MAC counter names the
/// layer and exports save it), the pattern and its export buffers.
struct Stored {
    pattern: Arc<SparsePattern>,
    values: Param,
    row_ptr: Buffer,
    cols: Buffer,
    bias: Option<Param>,
}

impl Stored {
    fn new(weight: &Tensor, bias: Option<&Tensor>, shape: [usize; 4]) -> Result<Stored> {
        let dense = to_f32(weight)?;
        let pattern = Arc::new(SparsePattern::from_mask(shape, &dense)?);
        let idx: Vec<i64> = pattern.flat_indices().into_iter().map(|i| i as i64).collect();
        let idx = Tensor::from_vec(idx.clone(), &[idx.len()])?.to_device(weight.device())?;
        let values = weight.detach().reshape(&[-1])?.index_select(0, &idx)?;
        let as_i64 = |v: &[u32]| Tensor::from_vec(v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(), &[v.len()]);
        let values = Param::new(values);
        values.set_trainable(false);
        let bias = bias.map(|b| {
            let p = Param::new(b.detach());
            p.set_trainable(false);
            p
        });
        Ok(Stored {
            row_ptr: Buffer::new(as_i64(&pattern.row_ptr)?),
            cols: Buffer::new(as_i64(&pattern.cols)?),
            pattern,
            values,
            bias,
        })
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight_values".to_string(), self.values.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        vec![("weight_row_ptr".into(), self.row_ptr.clone()), ("weight_cols".into(), self.cols.clone())]
    }
}

/// A convolution with a sparse weight (see the [module docs](self)).
pub struct SparseConv2d {
    stored: Stored,
    params: Conv2dParams,
}

impl SparseConv2d {
    /// The non-zero entries of `weight` (`[O, C/groups, kH, kW]`) with `bias` and geometry.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, params: Conv2dParams) -> Result<SparseConv2d> {
        let s = weight.shape();
        Ok(SparseConv2d { stored: Stored::new(weight, bias, [s[0], s[1], s[2], s[3]])?, params })
    }

    /// Number of stored weights.
    pub fn nnz(&self) -> usize {
        self.stored.pattern.nnz()
    }
}

impl Module for SparseConv2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let s = &self.stored;
        let b = s.bias.as_ref().map(|b| b.tensor());
        let y = x.sparse_conv2d(&s.values.tensor(), &s.pattern, b.as_ref(), self.params)?;
        let per_out = (y.numel() / y.shape()[1].max(1)) as u64;
        mac::record(Some(&s.values), "sparse_conv2d", per_out * self.nnz() as u64, x.shape(), y.shape());
        Ok(y)
    }

    fn params(&self) -> Vec<(String, Param)> {
        self.stored.params()
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        self.stored.buffers()
    }
}

/// A linear layer with a sparse weight, run as a 1x1 sparse convolution over the rows.
pub struct SparseLinear {
    stored: Stored,
    in_features: usize,
}

impl SparseLinear {
    /// The non-zero entries of `weight` (`[out, in]`) with `bias`.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<SparseLinear> {
        let s = weight.shape();
        Ok(SparseLinear { stored: Stored::new(weight, bias, [s[0], s[1], 1, 1])?, in_features: s[1] })
    }

    /// Number of stored weights.
    pub fn nnz(&self) -> usize {
        self.stored.pattern.nnz()
    }
}

/// `x·Wᵀ + bias` for a sparse `W` (`[out, in]`, the stored `values` at `pattern`'s coordinates,
/// pattern shape `[out, in, 1, 1]`) and `x` of any rank with `in` as its last dimension: the
/// rows of `x` become the spatial positions of a 1x1 [`Tensor::sparse_conv2d`]
/// (`[rows, in]` -> `[1, in, 1, rows]`). Differentiable in `x`, `values` and `bias`.
pub fn sparse_linear(
    x: &Tensor,
    values: &Tensor,
    pattern: &Arc<SparsePattern>,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let [fout, fin, kh, kw] = pattern.shape;
    if kh != 1 || kw != 1 {
        return Err(autograd::Error::invalid("sparse_linear", format!("a pattern of shape {:?}", pattern.shape)));
    }
    if x.ndim() == 0 || x.shape()[x.ndim() - 1] != fin {
        return Err(autograd::Error::shape("sparse_linear", x.shape(), &[fout, fin]));
    }
    let rows = x.numel() / fin;
    let planes = x.reshape_to(&[rows, fin])?.t()?.contiguous()?.reshape_to(&[1, fin, 1, rows])?;
    let y = planes.sparse_conv2d(values, pattern, None, Conv2dParams::default())?;
    let mut out_shape = x.shape().to_vec();
    *out_shape.last_mut().expect("rank >= 1") = fout;
    let y = y.reshape_to(&[fout, rows])?.t()?.contiguous()?.reshape_to(&out_shape)?;
    match bias {
        Some(b) => y.add(b),
        None => Ok(y),
    }
}

impl Module for SparseLinear {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let s = &self.stored;
        let b = s.bias.as_ref().map(|b| b.tensor());
        let y = sparse_linear(x, &s.values.tensor(), &s.pattern, b.as_ref())?;
        let rows = x.numel() / self.in_features.max(1);
        mac::record(Some(&s.values), "sparse_linear", (rows * self.nnz()) as u64, x.shape(), y.shape());
        Ok(y)
    }

    fn params(&self) -> Vec<(String, Param)> {
        self.stored.params()
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        self.stored.buffers()
    }
}
