//! Conformance of max, average and adaptive average pooling (and their gradients) against
//! naive f64 loops following PyTorch's rules.

use super::{assert_close, download, logical, tol, upload, views_of, TestRng};
use crate::ops::Pool2dParams;
use crate::{Backend, DType, Error, Layout};

/// Window `i` along one axis as PyTorch's CPU kernels compute it: the input range clipped to
/// `0..len`, and the size of the window clipped to the padded input (the `count_include_pad`
/// divisor).
fn ref_window(i: usize, k: usize, s: usize, p: usize, len: usize) -> (usize, usize, usize) {
    let start = i as i64 * s as i64 - p as i64;
    let end = (start + k as i64).min(len as i64 + p as i64);
    let size = (end - start) as usize;
    (start.max(0) as usize, end.min(len as i64) as usize, size)
}

/// Naive max pooling: values and flat indices (first maximum, NaN wins).
pub fn naive_max_pool2d(x: &[f64], xs: [usize; 4], p: &Pool2dParams) -> (Vec<f64>, Vec<f64>) {
    let ys = p.output_shape("max_pool2d", &xs).unwrap();
    let [n, c, h, w] = xs;
    let (oh, ow) = (ys[2], ys[3]);
    let (mut vals, mut idx) = (vec![], vec![]);
    for pl in 0..n * c {
        for i in 0..oh {
            let (h0, h1, _) = ref_window(i, p.kernel.0, p.stride.0, p.padding.0, h);
            for j in 0..ow {
                let (w0, w1, _) = ref_window(j, p.kernel.1, p.stride.1, p.padding.1, w);
                let mut best: Option<(f64, usize)> = None;
                for r in h0..h1 {
                    for q in w0..w1 {
                        let v = x[pl * h * w + r * w + q];
                        let better = match best {
                            None => true,
                            Some((b, _)) => !b.is_nan() && (v.is_nan() || v > b),
                        };
                        if better {
                            best = Some((v, r * w + q));
                        }
                    }
                }
                let (v, k) = best.expect("non-empty window");
                vals.push(v);
                idx.push(k as f64);
            }
        }
    }
    (vals, idx)
}

/// Naive average pooling.
pub fn naive_avg_pool2d(x: &[f64], xs: [usize; 4], p: &Pool2dParams) -> Vec<f64> {
    let ys = p.output_shape("avg_pool2d", &xs).unwrap();
    let [n, c, h, w] = xs;
    let (oh, ow) = (ys[2], ys[3]);
    let mut out = vec![];
    for pl in 0..n * c {
        for i in 0..oh {
            let (h0, h1, hs) = ref_window(i, p.kernel.0, p.stride.0, p.padding.0, h);
            for j in 0..ow {
                let (w0, w1, ws) = ref_window(j, p.kernel.1, p.stride.1, p.padding.1, w);
                let mut s = 0.0;
                for r in h0..h1 {
                    for q in w0..w1 {
                        s += x[pl * h * w + r * w + q];
                    }
                }
                let d = if p.count_include_pad { hs * ws } else { (h1 - h0) * (w1 - w0) };
                out.push(s / d as f64);
            }
        }
    }
    out
}

/// Naive gradient of average pooling.
pub fn naive_avg_pool2d_backward(gy: &[f64], xs: [usize; 4], p: &Pool2dParams) -> Vec<f64> {
    let ys = p.output_shape("avg_pool2d", &xs).unwrap();
    let [n, c, h, w] = xs;
    let (oh, ow) = (ys[2], ys[3]);
    let mut gx = vec![0.0; n * c * h * w];
    for pl in 0..n * c {
        for i in 0..oh {
            let (h0, h1, hs) = ref_window(i, p.kernel.0, p.stride.0, p.padding.0, h);
            for j in 0..ow {
                let (w0, w1, ws) = ref_window(j, p.kernel.1, p.stride.1, p.padding.1, w);
                let d = if p.count_include_pad { hs * ws } else { (h1 - h0) * (w1 - w0) };
                for r in h0..h1 {
                    for q in w0..w1 {
                        gx[pl * h * w + r * w + q] += gy[(pl * oh + i) * ow + j] / d as f64;
                    }
                }
            }
        }
    }
    gx
}

fn adaptive_ref_window(i: usize, len: usize, out: usize) -> (usize, usize) {
    ((i * len) / out, ((i + 1) * len).div_ceil(out))
}

/// Naive adaptive average pooling.
pub fn naive_adaptive_avg_pool2d(x: &[f64], xs: [usize; 4], (oh, ow): (usize, usize)) -> Vec<f64> {
    let [n, c, h, w] = xs;
    let mut out = vec![];
    for pl in 0..n * c {
        for i in 0..oh {
            let (h0, h1) = adaptive_ref_window(i, h, oh);
            for j in 0..ow {
                let (w0, w1) = adaptive_ref_window(j, w, ow);
                let mut s = 0.0;
                for r in h0..h1 {
                    for q in w0..w1 {
                        s += x[pl * h * w + r * w + q];
                    }
                }
                out.push(s / ((h1 - h0) * (w1 - w0)) as f64);
            }
        }
    }
    out
}

fn random_view<B: Backend>(
    b: &B,
    data: Vec<f64>,
    shape: &[usize],
    kind: usize,
    dtype: DType,
) -> (B::Storage, Layout, Vec<f64>) {
    let views = views_of(shape);
    let v = &views[kind % views.len()];
    assert_eq!(data.len(), v.buffer_len);
    let data: Vec<f64> = match dtype {
        DType::F32 => data.into_iter().map(|x| x as f32 as f64).collect(),
        _ => data,
    };
    (upload(b, &data, dtype), v.layout.clone(), logical(&data, &v.layout))
}

fn buffer_len(shape: &[usize], kind: usize) -> usize {
    let views = views_of(shape);
    views[kind % views.len()].buffer_len
}

/// Every valid pooling configuration with kernels up to 3 over a few input sizes.
fn pool_params() -> Vec<Pool2dParams> {
    let mut out = vec![];
    for kh in 1..=3 {
        for kw in [1, 2, 3] {
            for s in 1..=3 {
                for pad in 0..=1 {
                    for ceil_mode in [false, true] {
                        for count_include_pad in [true, false] {
                            if 2 * pad > kh.min(kw) {
                                continue;
                            }
                            out.push(Pool2dParams {
                                kernel: (kh, kw),
                                stride: (s, if s == 3 { 2 } else { s }),
                                padding: (pad, pad),
                                ceil_mode,
                                count_include_pad,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

const POOL_INPUTS: [[usize; 4]; 4] = [[2, 3, 7, 7], [1, 2, 5, 8], [1, 1, 1, 3], [2, 2, 33, 9]];

/// Max pooling: values and indices exactly, with ties and NaNs, over views; its gradient.
pub fn check_max_pool2d<B: Backend>(b: &B) {
    let mut rng = TestRng::new(21);
    for (pi, p) in pool_params().iter().enumerate() {
        for (xi, xs) in POOL_INPUTS.iter().enumerate() {
            let Ok(ys) = p.output_shape("max_pool2d", xs) else { continue };
            let dtype = if (pi + xi) % 2 == 0 { DType::F32 } else { DType::F64 };
            let kind = pi + xi;
            // Few distinct values (ties) and the odd NaN.
            let data: Vec<f64> = (0..buffer_len(xs, kind))
                .map(|_| match rng.below(20) {
                    0 => f64::NAN,
                    1 => f64::NEG_INFINITY,
                    k => (k % 4) as f64 - 1.5,
                })
                .collect();
            let (s, l, x) = random_view(b, data, xs, kind, dtype);
            let what = format!("max_pool2d {p:?} {xs:?} {dtype} {}", views_of(xs)[kind % 4].kind);
            let (v, i) = b.max_pool2d(&s, &l, p).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(b.dtype(&i), DType::I64, "{what}: index dtype");
            let ly = Layout::contiguous(&ys);
            let (v, i) = (download(b, &v, &ly), download(b, &i, &ly));
            let (v_ref, i_ref) = naive_max_pool2d(&x, *xs, p);
            assert_close(&v, &v_ref, 0.0, 0.0, &format!("{what} values"));
            assert_eq!(i, i_ref, "{what} indices");

            let gdata = rng.vec(buffer_len(&ys, kind + 1), -1.0, 1.0);
            let (sg, lg, gy) = random_view(b, gdata, &ys, kind + 1, dtype);
            let idx = upload(b, &i, DType::I64);
            let gx = b.max_pool2d_backward(&sg, &lg, &idx, &ly, xs).unwrap_or_else(|e| panic!("{what} backward: {e}"));
            let gx = download(b, &gx, &Layout::contiguous(xs));
            let mut gx_ref = vec![0.0; xs.iter().product()];
            let (h, w) = (xs[2], xs[3]);
            let ohw = ys[2] * ys[3];
            for (k, (&g, &ix)) in gy.iter().zip(&i_ref).enumerate() {
                gx_ref[(k / ohw) * h * w + ix as usize] += g;
            }
            let (rtol, atol) = tol(dtype);
            assert_close(&gx, &gx_ref, rtol, atol, &format!("{what} backward"));
        }
    }
}

/// Average pooling (count_include_pad, ceil_mode), its gradient and the adjoint identity.
pub fn check_avg_pool2d<B: Backend>(b: &B) {
    let mut rng = TestRng::new(22);
    for (pi, p) in pool_params().iter().enumerate() {
        for (xi, xs) in POOL_INPUTS.iter().enumerate() {
            let Ok(ys) = p.output_shape("avg_pool2d", xs) else { continue };
            let dtype = if (pi + xi) % 2 == 0 { DType::F32 } else { DType::F64 };
            let kind = pi + 2 * xi;
            let (s, l, x) = random_view(b, rng.vec(buffer_len(xs, kind), -1.0, 1.0), xs, kind, dtype);
            let what = format!("avg_pool2d {p:?} {xs:?} {dtype} {}", views_of(xs)[kind % 4].kind);
            let y = b.avg_pool2d(&s, &l, p).unwrap_or_else(|e| panic!("{what}: {e}"));
            let y = download(b, &y, &Layout::contiguous(&ys));
            let (rtol, atol) = tol(dtype);
            assert_close(&y, &naive_avg_pool2d(&x, *xs, p), rtol, atol, &what);

            let (sg, lg, gy) = random_view(b, rng.vec(buffer_len(&ys, kind + 1), -1.0, 1.0), &ys, kind + 1, dtype);
            let gx = b.avg_pool2d_backward(&sg, &lg, p, xs).unwrap_or_else(|e| panic!("{what} backward: {e}"));
            let gx = download(b, &gx, &Layout::contiguous(xs));
            assert_close(&gx, &naive_avg_pool2d_backward(&gy, *xs, p), rtol, atol, &format!("{what} backward"));
            if dtype == DType::F64 {
                let lhs: f64 = y.iter().zip(&gy).map(|(a, b)| a * b).sum();
                let rhs: f64 = x.iter().zip(&gx).map(|(a, b)| a * b).sum();
                assert!((lhs - rhs).abs() <= 1e-10 * lhs.abs().max(1.0), "{what} adjoint: {lhs} vs {rhs}");
            }
        }
    }
}

/// Adaptive average pooling to sizes that divide, do not divide, and exceed the input.
pub fn check_adaptive_avg_pool2d<B: Backend>(b: &B) {
    let mut rng = TestRng::new(23);
    let inputs: [[usize; 4]; 4] = [[2, 3, 7, 7], [1, 2, 5, 8], [1, 1, 1, 3], [2, 2, 33, 9]];
    let outs = [(1, 1), (2, 3), (3, 3), (7, 4), (5, 9)];
    for (xi, xs) in inputs.iter().enumerate() {
        for (oi, &out) in outs.iter().enumerate() {
            let dtype = if (xi + oi) % 2 == 0 { DType::F32 } else { DType::F64 };
            let kind = xi + oi;
            let (s, l, x) = random_view(b, rng.vec(buffer_len(xs, kind), -1.0, 1.0), xs, kind, dtype);
            let what = format!("adaptive_avg_pool2d {xs:?} -> {out:?} {dtype}");
            let ys = [xs[0], xs[1], out.0, out.1];
            let y = b.adaptive_avg_pool2d(&s, &l, out).unwrap_or_else(|e| panic!("{what}: {e}"));
            let y = download(b, &y, &Layout::contiguous(&ys));
            let (rtol, atol) = tol(dtype);
            assert_close(&y, &naive_adaptive_avg_pool2d(&x, *xs, out), rtol, atol, &what);

            let (sg, lg, gy) = random_view(b, rng.vec(buffer_len(&ys, kind + 1), -1.0, 1.0), &ys, kind + 1, dtype);
            let gx = b.adaptive_avg_pool2d_backward(&sg, &lg, xs).unwrap_or_else(|e| panic!("{what} backward: {e}"));
            let gx = download(b, &gx, &Layout::contiguous(xs));
            // The gradient is the adjoint: <pool(e_k), gy> for each input basis vector e_k.
            let [n, c, h, w] = *xs;
            let mut gx_ref = vec![0.0; n * c * h * w];
            for pl in 0..n * c {
                for i in 0..out.0 {
                    let (h0, h1) = adaptive_ref_window(i, h, out.0);
                    for j in 0..out.1 {
                        let (w0, w1) = adaptive_ref_window(j, w, out.1);
                        let d = ((h1 - h0) * (w1 - w0)) as f64;
                        for r in h0..h1 {
                            for q in w0..w1 {
                                gx_ref[pl * h * w + r * w + q] += gy[(pl * out.0 + i) * out.1 + j] / d;
                            }
                        }
                    }
                }
            }
            assert_close(&gx, &gx_ref, rtol, atol, &format!("{what} backward"));
        }
    }
}

/// Bad shapes, windows, indices and dtypes come back as errors.
pub fn check_pool2d_errors<B: Backend>(b: &B) {
    let x = upload(b, &vec![1.0; 2 * 3 * 4 * 4], DType::F32);
    let l = Layout::contiguous(&[2, 3, 4, 4]);
    let l3 = Layout::contiguous(&[6, 4, 4]);
    let p = Pool2dParams::square(2);
    assert!(b.max_pool2d(&x, &l3, &p).is_err(), "3-D input");
    assert!(b.avg_pool2d(&x, &l3, &p).is_err(), "3-D input");
    assert!(b.max_pool2d(&x, &l, &Pool2dParams::square(5)).is_err(), "window larger than input");
    let bad_pad = Pool2dParams { padding: (2, 2), ..Pool2dParams::square(3) };
    assert!(b.avg_pool2d(&x, &l, &bad_pad).is_err(), "padding over half the kernel");
    assert!(b.adaptive_avg_pool2d(&x, &l, (0, 2)).is_err(), "empty output");
    let xi = upload(b, &vec![1.0; 2 * 3 * 4 * 4], DType::I64);
    assert!(matches!(b.max_pool2d(&xi, &l, &p), Err(Error::UnsupportedDType { .. })));

    // Gradients: wrong shapes and out-of-range indices.
    let gy = upload(b, &[1.0; 2 * 3 * 2 * 2], DType::F32);
    let lg = Layout::contiguous(&[2, 3, 2, 2]);
    assert!(b.avg_pool2d_backward(&gy, &lg, &p, &[2, 3, 4, 4]).is_ok());
    let e = b.avg_pool2d_backward(&gy, &lg, &p, &[2, 3, 6, 6]).unwrap_err().to_string();
    assert!(e.contains("avg_pool2d_backward") && e.contains("[2, 3, 2, 2]"), "message: {e}");
    assert!(b.adaptive_avg_pool2d_backward(&gy, &lg, &[2, 4, 4, 4]).is_err(), "channel mismatch");
    let idx = upload(b, &[0.0, 1.0, 4.0, 16.0].repeat(6), DType::I64);
    assert!(matches!(b.max_pool2d_backward(&gy, &lg, &idx, &lg, &[2, 3, 4, 4]), Err(Error::IndexOutOfRange { .. })));
    let idx = upload(b, &[0.0, 1.0, 4.0, 5.0].repeat(6), DType::I64);
    assert!(b.max_pool2d_backward(&gy, &lg, &idx, &lg, &[2, 3, 4, 4]).is_ok());
    assert!(b.max_pool2d_backward(&gy, &lg, &idx, &lg, &[2, 2, 4, 4]).is_err(), "channel mismatch");
    let l_other = Layout::contiguous(&[2, 3, 4, 1]);
    assert!(b.max_pool2d_backward(&gy, &lg, &idx, &l_other, &[2, 3, 4, 4]).is_err(), "index shape");
}
