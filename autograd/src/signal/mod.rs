//! Differentiable signal transforms: Daubechies discrete wavelet transforms (1-D multi-level
//! along the last axis, 2-D one level over the last two axes) and the orthonormal DCT, built
//! from framework ops (GEMM with cached fixed matrices, or strided convolutions), so gradients
//! of every order come from the tape, for f32 and f64 on any device.
//!
//! # Index alignment (identical to PyWavelets, `mode='zero'`)
//!
//! One analysis level maps a signal `x` of length `m` to two bands of `n = ⌊(m + L − 1)/2⌋`
//! coefficients (`L` = filter length): the full linear convolution of `x` with the
//! decomposition filters (length `m + L − 1`, zeros outside the signal), keeping the
//! odd-indexed samples, `lo[i] = Σ_k dec_lo[k] · x[2i + 1 − k]` and likewise `hi` with
//! `dec_hi`. A multi-level transform splits the approximation again; the bands are returned as
//! the approximation of the last level plus the details, finest first (`details[0]` is
//! level 1), and PyWavelets' `wavedec` order `[cA_L, cD_L, ..., cD_1]` is available from
//! [`DwtCoeffs::to_pywt_order`] and in the packed form ([`Dwt::forward_packed`]).
//!
//! Synthesis places the coefficients at even positions of a zero vector of length `2n`,
//! full-convolves with the reconstruction filters (the reversed decomposition filters), sums
//! the branches and keeps the samples from `L − 2` on, cropped to the target length: for these
//! orthogonal wavelets that is exactly the transpose of the analysis map restricted to the `m`
//! signal samples, so reconstruction is perfect for every length, not only powers of two. The
//! inverse takes the signal length explicitly because `n` bands come from two lengths `m`.
//!
//! For `db3` and `N = 196`, three levels give bands of lengths `[28, 28, 52, 100]`
//! (`pywt.wavedec(x, 'db3', mode='zero', level=3)`).
//!
//! The 2-D transform ([`dwt2`]) applies one level along the last axis and then along the
//! second-to-last, returning `cA, cH, cV, cD` as `pywt.dwt2`. The DCT ([`dct`], [`dct2`])
//! matches `scipy.fft.dct(x, type=2, norm='ortho')`.
//!
//! ```
//! use autograd::signal::{dwt, idwt, Wavelet};
//! use autograd::Tensor;
//! let x = Tensor::randn(&[8, 16, 49], 0).unwrap().requires_grad_();
//! let c = dwt(&x, Wavelet::Db3, 3).unwrap();
//! // Zero the finest detail band and reconstruct: a differentiable low-pass filter.
//! let mut c2 = c.clone();
//! c2.details[0] = c.details[0].mul_scalar(0.0).unwrap();
//! let y = idwt(&c2, Wavelet::Db3, 49).unwrap();
//! let g = y.square().unwrap().sum_all().unwrap().backward().unwrap();
//! assert_eq!(g.get(&x).unwrap().shape(), &[8, 16, 49]);
//! ```
//!
//! The fixed matrices are cached per size, dtype and device (at most a few hundred; they stay
//! alive between calls).

mod dct;
mod dwt;
mod dwt2;
mod filters;
mod matrix;

pub use dct::{dct, dct2, idct, idct2, DCT2_KRON_MAX_PIXELS};
pub use dwt::{dwt, idwt, Dwt, DwtAlgorithm, DwtCoeffs, MATRIX_MAX_LEN, MAX_LEVEL};
pub use dwt2::{dwt2, idwt2, Dwt2, Dwt2Coeffs, KRON_MAX_ENTRIES};
pub use filters::Wavelet;
