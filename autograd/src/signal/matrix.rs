//! The fixed matrices of the transforms, built once per size in f64 on the host and cached per
//! dtype and device, and the products that apply them along one axis.

use super::Wavelet;
use crate::{DType, Device, Result, Tensor};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// What a cached matrix is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MatrixKind {
    /// The composite multi-level analysis matrix `[len, Σ band lengths]` of a DWT.
    Dwt { wavelet: Wavelet, len: usize, level: usize },
    /// The two analysis filters of one DWT level as a conv2d weight `[2, 1, 1, L + 1]`.
    DwtFilters(Wavelet),
    /// The one-level 2-D analysis matrix `[h·w, 4·nh·nw]` of `[h, w]` maps (a Kronecker product).
    Dwt2 { wavelet: Wavelet, h: usize, w: usize },
    /// The transposed orthonormal DCT-II matrix `Cᵀ` (`[n, n]`).
    DctT(usize),
    /// The transposed 2-D DCT-II matrix `C_hᵀ ⊗ C_wᵀ` (`[h·w, h·w]`).
    Dct2T(usize, usize),
}

/// At most this many matrices are kept; the cache is emptied when it would grow past it.
const CACHE_LIMIT: usize = 256;

type Cache = Mutex<HashMap<(MatrixKind, DType, Device), Tensor>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The matrix `kind` as a constant tensor (no gradient) of `dtype` on `device`; `build` returns
/// its f64 values (row-major) and shape the first time it is needed.
///
/// Cached tensors stay alive (and count in [`crate::live_buffers`]) until the cache is full.
pub(crate) fn cached(
    kind: MatrixKind,
    dtype: DType,
    device: Device,
    build: impl FnOnce() -> (Vec<f64>, Vec<usize>),
) -> Result<Tensor> {
    let key = (kind, dtype, device);
    if let Some(t) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(t.clone());
    }
    let (values, shape) = build();
    let t = crate::no_grad(|| Tensor::from_vec(values, &shape)?.to_dtype(dtype)?.to_device(device))?;
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= CACHE_LIMIT {
        c.clear();
    }
    c.insert(key, t.clone());
    Ok(t)
}

/// `x[..., n] @ m[n, k]` as one GEMM over all leading dims: `[..., k]`.
pub(crate) fn apply_last(x: &Tensor, m: &Tensor) -> Result<Tensor> {
    let nd = x.ndim();
    let (n, k) = (m.shape()[0], m.shape()[1]);
    let mut out = x.shape().to_vec();
    out[nd - 1] = k;
    x.reshape(&[-1, n as isize])?.matmul(m)?.reshape_to(&out)
}

/// `m` applied along the second-to-last axis: `[..., n, w]` -> `[..., k, w]` (`mᵀ x` per matrix),
/// as one GEMM over a transposed copy.
pub(crate) fn apply_second_last(x: &Tensor, m: &Tensor) -> Result<Tensor> {
    let nd = x.ndim();
    apply_last(&x.transpose(nd - 2, nd - 1)?, m)?.transpose(nd - 2, nd - 1)
}

/// The Kronecker product of row-major matrices `a` (`[ar, ac]`) and `b` (`[br, bc]`):
/// `[ar·br, ac·bc]` with entry `(i·br + j, p·bc + q)` = `a[i, p] · b[j, q]`, the matrix of
/// `X ↦ aᵀ X b` on row-major flattened `[ar, br]` maps.
pub(crate) fn kron(a: &[f64], (ar, ac): (usize, usize), b: &[f64], (br, bc): (usize, usize)) -> Vec<f64> {
    let cols = ac * bc;
    let mut k = vec![0.0; ar * br * cols];
    for i in 0..ar {
        for j in 0..br {
            let row = &mut k[(i * br + j) * cols..(i * br + j + 1) * cols];
            for p in 0..ac {
                let a_ip = a[i * ac + p];
                for q in 0..bc {
                    row[p * bc + q] = a_ip * b[j * bc + q];
                }
            }
        }
    }
    k
}

/// `m` (`[h·w, oh·ow]`) applied to the row-major flattened last two axes: `[..., h, w]` ->
/// `[..., oh, ow]`, one GEMM.
pub(crate) fn apply_last_two(x: &Tensor, m: &Tensor, out_hw: (usize, usize)) -> Result<Tensor> {
    let nd = x.ndim();
    let mut out = x.shape().to_vec();
    out[nd - 2] = out_hw.0;
    out[nd - 1] = out_hw.1;
    x.reshape(&[-1, m.shape()[0] as isize])?.matmul(m)?.reshape_to(&out)
}
