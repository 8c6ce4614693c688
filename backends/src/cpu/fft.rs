//! Real 2-D FFT over the last two axes with `rustfft`, in PyTorch's `rfft2`/`irfft2` conventions.
//!
//! Forward (`rfft2`): unnormalized, `X[k, l] = Σ_{h,w} x[h, w] e^{-2πi (kh/H + lw/W)}` for
//! `l < W/2 + 1`, returned as separate real and imaginary buffers `[..., H, W/2 + 1]`.
//! Inverse (`irfft2` with `s = (H, W)`): a complex inverse transform over `H` on the half
//! spectrum, then a complex-to-real transform over `W` per row (the imaginary parts of column 0
//! and, for even `W`, column `W/2` are ignored there, as a C2R transform does), scaled by
//! `1/(HW)`. Any sizes work (odd, even, prime, 1).
//!
//! Each plane is one task (planes run in parallel over the leading dimensions). Rows are
//! transformed two at a time as one complex FFT (`a + i b`, separated by Hermitian symmetry),
//! columns of the half spectrum all at once. f32 computes in f32, f64 in f64. Plans come from a
//! per-thread `FftPlanner` (which caches them) on the calling thread.

use super::strided::contiguous_slice;
use crate::planning::fft::{irfft2_check, rfft2_dims};
use crate::{CpuStorage, Error, FloatElement, Layout, Result};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftNum, FftPlanner};
use std::cell::RefCell;
use std::sync::Arc;

/// A float type with a cached, per-thread FFT planner.
trait FftFloat: FloatElement + FftNum {
    /// A (cached) plan for a transform of `len` points.
    fn plan(len: usize, inverse: bool) -> Arc<dyn Fft<Self>>;
}

macro_rules! fft_float {
    ($t:ty, $tls:ident) => {
        thread_local! {
            static $tls: RefCell<FftPlanner<$t>> = RefCell::new(FftPlanner::new());
        }
        impl FftFloat for $t {
            fn plan(len: usize, inverse: bool) -> Arc<dyn Fft<Self>> {
                $tls.with(|p| {
                    let mut p = p.borrow_mut();
                    if inverse {
                        p.plan_fft_inverse(len)
                    } else {
                        p.plan_fft_forward(len)
                    }
                })
            }
        }
    };
}
fft_float!(f32, PLANNER_F32);
fft_float!(f64, PLANNER_F64);

/// Per-worker buffers, reused across planes.
struct Work<T> {
    rows: Vec<Complex<T>>,
    cols: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
}

impl<T: FftFloat> Work<T> {
    fn new(h: usize, w: usize, scratch: usize) -> Self {
        let z = Complex::new(T::zero(), T::zero());
        Work { rows: vec![z; h.div_ceil(2) * w], cols: vec![z; (w / 2 + 1) * h], scratch: vec![z; scratch] }
    }
}

/// The plans both directions need: (rows of `W`, columns of `H`), and the scratch length.
fn plans<T: FftFloat>(h: usize, w: usize, inverse: bool) -> (Arc<dyn Fft<T>>, Arc<dyn Fft<T>>, usize) {
    let pw = T::plan(w, inverse);
    let ph = T::plan(h, inverse);
    let scratch = pw.get_inplace_scratch_len().max(ph.get_inplace_scratch_len());
    (pw, ph, scratch)
}

/// The forward transform of one `h x w` plane into `re`/`im` (`h x wh` each).
fn rfft2_plane<T: FftFloat>(
    x: &[T],
    h: usize,
    w: usize,
    pw: &dyn Fft<T>,
    ph: &dyn Fft<T>,
    wk: &mut Work<T>,
    re: &mut [T],
    im: &mut [T],
) {
    let wh = w / 2 + 1;
    let half = <T as FloatElement>::from_f32(0.5);
    let zero = T::zero();
    // Rows 2r and 2r+1 packed as one complex row.
    for r in 0..h.div_ceil(2) {
        let a = &x[2 * r * w..(2 * r + 1) * w];
        let row = &mut wk.rows[r * w..(r + 1) * w];
        if 2 * r + 1 < h {
            let b = &x[(2 * r + 1) * w..(2 * r + 2) * w];
            for ((z, &ar), &br) in row.iter_mut().zip(a).zip(b) {
                *z = Complex::new(ar, br);
            }
        } else {
            for (z, &ar) in row.iter_mut().zip(a) {
                *z = Complex::new(ar, zero);
            }
        }
    }
    pw.process_with_scratch(&mut wk.rows, &mut wk.scratch);
    // Separate the pair and store the half spectrum transposed (columns contiguous).
    for r in 0..h.div_ceil(2) {
        let row = &wk.rows[r * w..(r + 1) * w];
        let second = 2 * r + 1 < h;
        for k in 0..wh {
            let zk = row[k];
            let zc = row[(w - k) % w].conj();
            let a = (zk + zc) * half;
            wk.cols[k * h + 2 * r] = a;
            if second {
                let d = zk - zc;
                // (zk - zc) / (2i)
                wk.cols[k * h + 2 * r + 1] = Complex::new(d.im * half, -d.re * half);
            }
        }
    }
    ph.process_with_scratch(&mut wk.cols, &mut wk.scratch);
    for k in 0..wh {
        for r in 0..h {
            let z = wk.cols[k * h + r];
            re[r * wh + k] = z.re;
            im[r * wh + k] = z.im;
        }
    }
}

/// The inverse transform of one half-spectrum plane (`h x wh`) into `out` (`h x w`).
#[allow(clippy::too_many_arguments)]
fn irfft2_plane<T: FftFloat>(
    re: &[T],
    im: &[T],
    h: usize,
    w: usize,
    pw: &dyn Fft<T>,
    ph: &dyn Fft<T>,
    wk: &mut Work<T>,
    out: &mut [T],
) {
    let wh = w / 2 + 1;
    let zero = T::zero();
    let scale = T::one() / <T as crate::Element>::from_f64((h * w) as f64);
    for r in 0..h {
        for k in 0..wh {
            wk.cols[k * h + r] = Complex::new(re[r * wh + k], im[r * wh + k]);
        }
    }
    ph.process_with_scratch(&mut wk.cols, &mut wk.scratch);
    // C2R over rows, two rows per complex transform: z = X_a + i X_b with X_a, X_b Hermitian.
    let cols = &wk.cols;
    let at = |k: usize, r: usize| -> Complex<T> {
        if r >= h {
            return Complex::new(zero, zero);
        }
        let mut v = cols[k * h + r];
        if k == 0 || 2 * k == w {
            v.im = zero;
        }
        v
    };
    for p in 0..h.div_ceil(2) {
        let row = &mut wk.rows[p * w..(p + 1) * w];
        for (n, z) in row.iter_mut().enumerate() {
            let (xa, xb) = if n < wh {
                (at(n, 2 * p), at(n, 2 * p + 1))
            } else {
                (at(w - n, 2 * p).conj(), at(w - n, 2 * p + 1).conj())
            };
            // xa + i xb
            *z = Complex::new(xa.re - xb.im, xa.im + xb.re);
        }
    }
    pw.process_with_scratch(&mut wk.rows, &mut wk.scratch);
    for p in 0..h.div_ceil(2) {
        let row = &wk.rows[p * w..(p + 1) * w];
        for (o, z) in out[2 * p * w..(2 * p + 1) * w].iter_mut().zip(row) {
            *o = z.re * scale;
        }
        if 2 * p + 1 < h {
            for (o, z) in out[(2 * p + 1) * w..(2 * p + 2) * w].iter_mut().zip(row) {
                *o = z.im * scale;
            }
        }
    }
}

fn rfft2_impl<T: FftFloat>(x: &[T], l: &Layout) -> Result<(Vec<T>, Vec<T>)> {
    let (h, w) = rfft2_dims(l)?;
    let wh = w / 2 + 1;
    let batch = l.numel() / (h * w);
    let x = contiguous_slice(x, l);
    let (pw, ph, scratch) = plans::<T>(h, w, false);
    let mut re = vec![T::zero(); batch * h * wh];
    let mut im = vec![T::zero(); batch * h * wh];
    re.par_chunks_mut(h * wh).zip(im.par_chunks_mut(h * wh)).enumerate().for_each_init(
        || Work::<T>::new(h, w, scratch),
        |wk, (i, (re, im))| rfft2_plane(&x[i * h * w..(i + 1) * h * w], h, w, &*pw, &*ph, wk, re, im),
    );
    Ok((re, im))
}

fn irfft2_impl<T: FftFloat>(re: &[T], lre: &Layout, im: &[T], lim: &Layout, (h, w): (usize, usize)) -> Result<Vec<T>> {
    irfft2_check(lre, lim, (h, w))?;
    let wh = w / 2 + 1;
    let batch = lre.numel() / (h * wh);
    let re = contiguous_slice(re, lre);
    let im = contiguous_slice(im, lim);
    let (pw, ph, scratch) = plans::<T>(h, w, true);
    let mut out = vec![T::zero(); batch * h * w];
    out.par_chunks_mut(h * w).enumerate().for_each_init(
        || Work::<T>::new(h, w, scratch),
        |wk, (i, o)| {
            let s = i * h * wh..(i + 1) * h * wh;
            irfft2_plane(&re[s.clone()], &im[s], h, w, &*pw, &*ph, wk, o)
        },
    );
    Ok(out)
}

/// `torch.fft.rfft2` over the last two axes: real and imaginary parts, each `[..., H, W/2+1]`.
pub(crate) fn rfft2(x: &CpuStorage, l: &Layout) -> Result<(CpuStorage, CpuStorage)> {
    super::strided::check_extent("rfft2", x, l)?;
    match x {
        CpuStorage::F32(v) => rfft2_impl(v, l).map(|(r, i)| (CpuStorage::F32(r), CpuStorage::F32(i))),
        CpuStorage::F64(v) => rfft2_impl(v, l).map(|(r, i)| (CpuStorage::F64(r), CpuStorage::F64(i))),
        _ => Err(Error::UnsupportedDType { op: "rfft2", dtype: x.dtype() }),
    }
}

/// `torch.fft.irfft2(z, s = out_hw)` from a half spectrum `[..., H, W/2+1]` to `[..., H, W]`.
pub(crate) fn irfft2(
    re: &CpuStorage,
    lre: &Layout,
    im: &CpuStorage,
    lim: &Layout,
    out_hw: (usize, usize),
) -> Result<CpuStorage> {
    super::strided::check_extent("irfft2", re, lre)?;
    super::strided::check_extent("irfft2", im, lim)?;
    match (re, im) {
        (CpuStorage::F32(r), CpuStorage::F32(i)) => irfft2_impl(r, lre, i, lim, out_hw).map(CpuStorage::F32),
        (CpuStorage::F64(r), CpuStorage::F64(i)) => irfft2_impl(r, lre, i, lim, out_hw).map(CpuStorage::F64),
        _ if re.dtype() != im.dtype() => Err(Error::DTypeMismatch { op: "irfft2", lhs: re.dtype(), rhs: im.dtype() }),
        _ => Err(Error::UnsupportedDType { op: "irfft2", dtype: re.dtype() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(s: &CpuStorage, want: &[f64]) {
        let got = s.to_f64_vec();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} != {want:?}");
        }
    }

    #[test]
    fn impulse_and_constant() {
        // A constant plane has only a DC term; an impulse at the origin a flat spectrum.
        let x = CpuStorage::F64(vec![1.0; 6]);
        let (re, im) = rfft2(&x, &Layout::contiguous(&[2, 3])).unwrap();
        close(&re, &[6.0, 0.0, 0.0, 0.0]);
        close(&im, &[0.0; 4]);
        let back = irfft2(&re, &Layout::contiguous(&[2, 2]), &im, &Layout::contiguous(&[2, 2]), (2, 3)).unwrap();
        close(&back, &[1.0; 6]);
        let mut d = vec![0.0f32; 12];
        d[0] = 1.0;
        let (re, im) = rfft2(&CpuStorage::F32(d), &Layout::contiguous(&[3, 4])).unwrap();
        close(&re, &[1.0; 9]);
        close(&im, &[0.0; 9]);
        assert!(irfft2(&re, &Layout::contiguous(&[3, 3]), &im, &Layout::contiguous(&[3, 3]), (3, 7)).is_err());
    }
}
