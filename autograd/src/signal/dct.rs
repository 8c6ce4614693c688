//! The orthonormal DCT-II (as `scipy.fft.dct(x, type=2, norm='ortho')`) along the last axis or
//! the last two axes, and its inverse (the orthonormal DCT-III), as products with the cached
//! `n × n` DCT matrix `C[k, i] = s_k cos(π (2i + 1) k / 2n)`, `s_0 = √(1/n)`, `s_k = √(2/n)`.
//! `C` is orthogonal, so the inverse is `Cᵀ`; both directions are differentiable.

use super::matrix::{apply_last, apply_last_two, apply_second_last, cached, kron, MatrixKind};
use crate::{Error, Result, Tensor};

/// Maps of at most this many pixels are transformed by [`dct2`]/[`idct2`] with the 2-D matrix
/// `C_hᵀ ⊗ C_wᵀ` in one GEMM; larger ones with two separable 1-D passes.
pub const DCT2_KRON_MAX_PIXELS: usize = 256;

/// The row-major values of `Cᵀ` (`[n, n]`, entry `(i, k)` = `C[k, i]`).
fn dct_t_values(n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let s = if k == 0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
            v[i * n + k] = s * (std::f64::consts::PI * (2 * i + 1) as f64 * k as f64 / (2 * n) as f64).cos();
        }
    }
    v
}

/// `Cᵀ` of `like`'s dtype and device.
fn dct_t(n: usize, like: &Tensor) -> Result<Tensor> {
    cached(MatrixKind::DctT(n), like.dtype(), like.device(), || (dct_t_values(n), vec![n, n]))
}

/// `C_hᵀ ⊗ C_wᵀ` (`[h·w, h·w]`): the 2-D DCT-II of row-major flattened `[h, w]` maps.
fn dct2_t(h: usize, w: usize, like: &Tensor) -> Result<Tensor> {
    cached(MatrixKind::Dct2T(h, w), like.dtype(), like.device(), || {
        (kron(&dct_t_values(h), (h, h), &dct_t_values(w), (w, w)), vec![h * w, h * w])
    })
}

fn check(op: &'static str, x: &Tensor, axes: usize) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType { op, dtype: x.dtype() });
    }
    let nd = x.ndim();
    if nd < axes || x.shape()[nd - axes..].contains(&0) {
        return Err(Error::invalid(
            op,
            format!("needs {axes} non-empty trailing axes to transform, got shape {:?}", x.shape()),
        ));
    }
    Ok(())
}

/// The orthonormal DCT-II of `x` along its last axis (`scipy.fft.dct(x, type=2, norm='ortho')`).
///
/// ```
/// use autograd::signal::dct;
/// use autograd::Tensor;
/// let x = Tensor::from_vec(vec![1.0f64, 1.0, 1.0, 1.0], &[4]).unwrap();
/// let y = dct(&x).unwrap().to_vec::<f64>().unwrap();
/// assert!((y[0] - 2.0).abs() < 1e-15 && y[1..].iter().all(|v| v.abs() < 1e-15));
/// ```
pub fn dct(x: &Tensor) -> Result<Tensor> {
    check("dct", x, 1)?;
    apply_last(x, &dct_t(x.shape()[x.ndim() - 1], x)?)
}

/// The inverse of [`dct`] (the orthonormal DCT-III, `scipy.fft.idct(x, type=2, norm='ortho')`)
/// along the last axis.
///
/// ```
/// use autograd::signal::{dct, idct};
/// use autograd::Tensor;
/// let x = Tensor::from_vec(vec![0.5f64, -1.0, 2.0], &[3]).unwrap();
/// let y = idct(&dct(&x).unwrap()).unwrap().to_vec::<f64>().unwrap();
/// assert!((y[2] - 2.0).abs() < 1e-14);
/// ```
pub fn idct(y: &Tensor) -> Result<Tensor> {
    check("idct", y, 1)?;
    apply_last(y, &dct_t(y.shape()[y.ndim() - 1], y)?.t()?)
}

/// The orthonormal 2-D DCT-II over the last two axes (`scipy.fft.dctn(x, type=2, norm='ortho',
/// axes=(-2, -1))`).
///
/// ```
/// use autograd::signal::{dct2, idct2};
/// use autograd::Tensor;
/// let x = Tensor::randn(&[2, 5, 3], 0).unwrap();
/// let y = dct2(&x).unwrap();
/// assert_eq!(y.shape(), &[2, 5, 3]);
/// let back = idct2(&y).unwrap();
/// assert!(back.sub(&x).unwrap().abs().unwrap().max(&[0, 1, 2], false).unwrap().item().unwrap() < 1e-5);
/// ```
pub fn dct2(x: &Tensor) -> Result<Tensor> {
    check("dct2", x, 2)?;
    let nd = x.ndim();
    let hw = (x.shape()[nd - 2], x.shape()[nd - 1]);
    if hw.0 * hw.1 <= DCT2_KRON_MAX_PIXELS {
        return apply_last_two(x, &dct2_t(hw.0, hw.1, x)?, hw);
    }
    let y = apply_last(x, &dct_t(x.shape()[nd - 1], x)?)?;
    apply_second_last(&y, &dct_t(x.shape()[nd - 2], x)?)
}

/// The inverse of [`dct2`] over the last two axes (`scipy.fft.idctn(..., norm='ortho')`).
///
/// ```
/// use autograd::signal::idct2;
/// use autograd::Tensor;
/// // The (0, 0) basis image of a 2x2 DCT is constant 1/2.
/// let y = Tensor::from_vec(vec![1.0f64, 0.0, 0.0, 0.0], &[2, 2]).unwrap();
/// let x = idct2(&y).unwrap().to_vec::<f64>().unwrap();
/// assert!(x.iter().all(|v| (v - 0.5).abs() < 1e-15));
/// ```
pub fn idct2(y: &Tensor) -> Result<Tensor> {
    check("idct2", y, 2)?;
    let nd = y.ndim();
    let hw = (y.shape()[nd - 2], y.shape()[nd - 1]);
    if hw.0 * hw.1 <= DCT2_KRON_MAX_PIXELS {
        return apply_last_two(y, &dct2_t(hw.0, hw.1, y)?.t()?, hw);
    }
    let x = apply_last(y, &dct_t(y.shape()[nd - 1], y)?.t()?)?;
    apply_second_last(&x, &dct_t(y.shape()[nd - 2], y)?.t()?)
}
