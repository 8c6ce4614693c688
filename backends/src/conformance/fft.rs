//! Conformance checks for the real 2-D FFT against a naive O(n²) DFT in f64.

use super::*;
use crate::Error;
use std::f64::consts::TAU;

/// Plane sizes: odd, even, prime, 1, and a power of two.
const PLANES: [(usize, usize); 9] = [(1, 1), (1, 7), (3, 1), (3, 4), (4, 3), (7, 33), (33, 7), (8, 16), (5, 127)];

/// Naive `rfft2` of contiguous planes `[batch, h, w]`: (re, im), each `[batch, h, w/2+1]`.
fn naive_rfft2(x: &[f64], h: usize, w: usize) -> (Vec<f64>, Vec<f64>) {
    let wh = w / 2 + 1;
    let batch = x.len() / (h * w);
    let (mut re, mut im) = (vec![0.0; batch * h * wh], vec![0.0; batch * h * wh]);
    for bi in 0..batch {
        let p = &x[bi * h * w..(bi + 1) * h * w];
        for k in 0..h {
            for l in 0..wh {
                let (mut sr, mut si) = (0.0, 0.0);
                for r in 0..h {
                    for c in 0..w {
                        // Reduce the phase exactly in integers before the trig call.
                        let t = ((k * r) % h) as f64 / h as f64 + ((l * c) % w) as f64 / w as f64;
                        let (s, co) = (TAU * t).sin_cos();
                        sr += p[r * w + c] * co;
                        si -= p[r * w + c] * s;
                    }
                }
                re[bi * h * wh + k * wh + l] = sr;
                im[bi * h * wh + k * wh + l] = si;
            }
        }
    }
    (re, im)
}

/// Naive `irfft2` with `s = (h, w)` from half spectra `[batch, h, w/2+1]`: a complex inverse
/// DFT over `h`, then a complex-to-real inverse over `w` that uses only the real parts of
/// column 0 and (even `w`) column `w/2`; scaled by `1/(hw)`.
fn naive_irfft2(re: &[f64], im: &[f64], h: usize, w: usize) -> Vec<f64> {
    let wh = w / 2 + 1;
    let batch = re.len() / (h * wh);
    let mut out = vec![0.0; batch * h * w];
    for bi in 0..batch {
        let o = bi * h * wh;
        // Column inverse DFT.
        let mut y = vec![(0.0, 0.0); h * wh];
        for r in 0..h {
            for l in 0..wh {
                let (mut sr, mut si) = (0.0, 0.0);
                for k in 0..h {
                    let (s, c) = (TAU * ((k * r) % h) as f64 / h as f64).sin_cos();
                    let (zr, zi) = (re[o + k * wh + l], im[o + k * wh + l]);
                    sr += zr * c - zi * s;
                    si += zr * s + zi * c;
                }
                y[r * wh + l] = (sr, si);
            }
        }
        // Complex-to-real over rows.
        for r in 0..h {
            for n in 0..w {
                let mut acc = y[r * wh].0;
                for l in 1..wh {
                    let (yr, yi) = y[r * wh + l];
                    if 2 * l == w {
                        acc += yr * if n % 2 == 0 { 1.0 } else { -1.0 };
                    } else {
                        let (s, c) = (TAU * ((l * n) % w) as f64 / w as f64).sin_cos();
                        acc += 2.0 * (yr * c - yi * s);
                    }
                }
                out[bi * h * w + r * w + n] = acc / (h * w) as f64;
            }
        }
    }
    out
}

/// Tolerance for transforms of `n`-point planes of values of magnitude 1.
fn fft_tol(dtype: DType, n: usize) -> (f64, f64) {
    let s = (n as f64).sqrt();
    match dtype {
        DType::F32 => (1e-4, 2e-5 * s),
        _ => (1e-10, 1e-12 * s),
    }
}

/// `rfft2` against the naive DFT: every plane size, batched (`[2, 3, H, W]`), unbatched, strided
/// views, f32 and f64.
pub fn check_rfft2<B: Backend>(b: &B) {
    let mut rng = TestRng::new(51);
    for (h, w) in PLANES {
        let wh = w / 2 + 1;
        for shape in [vec![h, w], vec![2, 3, h, w]] {
            for v in views_of(&shape) {
                let data = rng.vec(v.buffer_len, -1.0, 1.0);
                let x = logical(&data, &v.layout);
                let (want_re, want_im) = naive_rfft2(&x, h, w);
                for dtype in [DType::F32, DType::F64] {
                    let s = upload(b, &data, dtype);
                    let (re, im) = b.rfft2(&s, &v.layout).unwrap();
                    let mut oshape = shape.clone();
                    *oshape.last_mut().unwrap() = wh;
                    let lo = Layout::contiguous(&oshape);
                    let (rtol, atol) = fft_tol(dtype, h * w);
                    let what = format!("rfft2 {dtype} {shape:?} {}", v.kind);
                    assert_close(&download(b, &re, &lo), &want_re, rtol, atol, &format!("{what} (real)"));
                    assert_close(&download(b, &im, &lo), &want_im, rtol, atol, &format!("{what} (imaginary)"));
                }
            }
        }
    }
    let x = upload(b, &[0.0; 4], DType::I64);
    assert!(matches!(b.rfft2(&x, &Layout::contiguous(&[2, 2])), Err(Error::UnsupportedDType { op: "rfft2", .. })));
    let x = upload(b, &[0.0; 4], DType::F32);
    assert!(b.rfft2(&x, &Layout::contiguous(&[4])).is_err(), "rfft2 of a 1-D tensor");
}

/// `irfft2` against the naive inverse on arbitrary (non-Hermitian) half spectra, strided views,
/// and the round trip `irfft2(rfft2(x), (H, W)) == x` for odd and even `H`, `W`.
pub fn check_irfft2<B: Backend>(b: &B) {
    let mut rng = TestRng::new(52);
    for (h, w) in PLANES {
        let wh = w / 2 + 1;
        for shape in [vec![h, w], vec![2, 3, h, w]] {
            let mut hshape = shape.clone();
            *hshape.last_mut().unwrap() = wh;
            let views = views_of(&hshape);
            for (vi, v) in views.iter().enumerate() {
                // The imaginary part through another kind of view than the real part.
                let v2 = &views[(vi + 1) % views.len()];
                let dre = rng.vec(v.buffer_len, -1.0, 1.0);
                let dim = rng.vec(v2.buffer_len, -1.0, 1.0);
                let want = naive_irfft2(&logical(&dre, &v.layout), &logical(&dim, &v2.layout), h, w);
                for dtype in [DType::F32, DType::F64] {
                    let (sre, sim) = (upload(b, &dre, dtype), upload(b, &dim, dtype));
                    let out = b.irfft2(&sre, &v.layout, &sim, &v2.layout, (h, w)).unwrap();
                    let got = download(b, &out, &Layout::contiguous(&shape));
                    let (rtol, atol) = fft_tol(dtype, h * w);
                    let what = format!("irfft2 {dtype} {shape:?} re {} im {}", v.kind, v2.kind);
                    assert_close(&got, &want, rtol, atol / (h * w) as f64 * 4.0, &what);
                }
            }
            // Round trip.
            let views = views_of(&shape);
            let v = &views[rng.below(views.len())];
            let data = rng.vec(v.buffer_len, -1.0, 1.0);
            let x = logical(&data, &v.layout);
            for dtype in [DType::F32, DType::F64] {
                let s = upload(b, &data, dtype);
                let (re, im) = b.rfft2(&s, &v.layout).unwrap();
                let lh = Layout::contiguous(&hshape);
                let back = b.irfft2(&re, &lh, &im, &lh, (h, w)).unwrap();
                let got = download(b, &back, &Layout::contiguous(&shape));
                let (rtol, atol) = tol(dtype);
                assert_close(
                    &got,
                    &x,
                    rtol * 10.0,
                    atol * 10.0,
                    &format!("irfft2(rfft2(x)) {dtype} {shape:?} {}", v.kind),
                );
            }
        }
    }
    // Errors: a half spectrum that does not match out_hw, mismatched parts, integer input.
    let z = upload(b, &[0.0; 12], DType::F32);
    let l = Layout::contiguous(&[3, 4]);
    let e = b.irfft2(&z, &l, &z, &l, (3, 4)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "irfft2", .. }), "{e}");
    assert!(b.irfft2(&z, &l, &z, &l, (3, 6)).is_ok());
    assert!(b.irfft2(&z, &l, &z, &l, (3, 7)).is_ok());
    assert!(b.irfft2(&z, &l, &z, &Layout::contiguous(&[4, 3]), (3, 6)).is_err());
    let z64 = upload(b, &[0.0; 12], DType::F64);
    assert!(matches!(b.irfft2(&z, &l, &z64, &l, (3, 6)), Err(Error::DTypeMismatch { op: "irfft2", .. })));
    let zi = upload(b, &[0.0; 12], DType::I32);
    assert!(matches!(b.irfft2(&zi, &l, &zi, &l, (3, 6)), Err(Error::UnsupportedDType { op: "irfft2", .. })));
}
