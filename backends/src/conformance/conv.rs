//! Conformance of `conv2d` and its two backward passes against naive f64 loops.

use super::{assert_close, download, host, logical, tol, upload, views_of, TestRng};
use crate::ops::Conv2dParams;
use crate::{Backend, DType, Error, Layout};

/// One convolution problem: input `[n, c, h, w]`, weight `[o, c/groups, kh, kw]`.
#[derive(Clone, Copy, Debug)]
pub struct ConvCase {
    pub x: [usize; 4],
    pub o: usize,
    pub k: (usize, usize),
    pub p: Conv2dParams,
}

impl ConvCase {
    #[allow(clippy::too_many_arguments)]
    const fn new(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        o: usize,
        k: (usize, usize),
        s: usize,
        pad: usize,
        d: usize,
        g: usize,
    ) -> Self {
        ConvCase {
            x: [n, c, h, w],
            o,
            k,
            p: Conv2dParams { stride: (s, s), padding: (pad, pad), dilation: (d, d), groups: g },
        }
    }
    pub fn w_shape(&self) -> [usize; 4] {
        [self.o, self.x[1] / self.p.groups, self.k.0, self.k.1]
    }
    pub fn y_shape(&self) -> Vec<usize> {
        self.p.output_shape(&self.x, &self.w_shape()).expect("a valid case")
    }
    /// Terms summed per output element (for f32 tolerances).
    fn terms(&self) -> usize {
        (self.x[1] / self.p.groups) * self.k.0 * self.k.1
    }
}

/// Hand-picked cases covering every path: general, grouped, depthwise, pointwise, tiled, odd sizes.
pub const CONV_CASES: &[ConvCase] = &[
    ConvCase::new(2, 3, 7, 7, 4, (3, 3), 1, 1, 1, 1),
    ConvCase::new(1, 4, 33, 33, 6, (3, 3), 2, 1, 1, 2),
    ConvCase::new(3, 6, 7, 5, 6, (3, 3), 1, 1, 1, 6),
    ConvCase::new(2, 5, 9, 11, 5, (3, 3), 2, 2, 2, 5),
    ConvCase::new(2, 8, 6, 6, 4, (1, 1), 1, 0, 1, 1),
    ConvCase::new(2, 8, 6, 6, 4, (1, 1), 1, 0, 1, 2),
    ConvCase::new(1, 3, 1, 1, 2, (1, 1), 1, 0, 1, 1),
    ConvCase::new(2, 16, 33, 33, 8, (3, 3), 1, 1, 1, 1),
    ConvCase::new(3, 4, 7, 9, 6, (2, 3), 3, 2, 1, 2),
    ConvCase::new(2, 3, 8, 8, 3, (5, 5), 1, 2, 2, 1),
    ConvCase::new(1, 2, 3, 3, 3, (3, 3), 1, 0, 1, 1),
    ConvCase::new(2, 4, 7, 7, 3, (1, 1), 2, 0, 1, 1),
    ConvCase::new(1, 4, 5, 5, 3, (1, 1), 1, 1, 1, 1),
    ConvCase::new(2, 3, 7, 7, 6, (3, 3), 1, 1, 1, 3),
    ConvCase::new(1, 2, 3, 3, 2, (3, 3), 1, 2, 1, 1),
    ConvCase::new(5, 2, 1, 7, 3, (1, 3), 1, 1, 1, 1),
    ConvCase::new(2, 7, 3, 33, 7, (3, 1), 3, 1, 2, 7),
];

/// `n` random valid cases with small odd sizes.
pub fn random_conv_cases(rng: &mut TestRng, n: usize) -> Vec<ConvCase> {
    let mut out = vec![];
    while out.len() < n {
        let g = [1, 1, 2, 3][rng.below(4)];
        let cg = 1 + rng.below(3);
        let og = 1 + rng.below(3);
        let depthwise = rng.below(4) == 0;
        let (c, o) = if depthwise { (g * cg, g * cg) } else { (g * cg, g * og) };
        let g = if depthwise { c } else { g };
        let case = ConvCase::new(
            1 + rng.below(3),
            c,
            1 + rng.below(9),
            1 + rng.below(9),
            o,
            (1 + rng.below(3), 1 + rng.below(3)),
            1 + rng.below(3),
            rng.below(3),
            1 + rng.below(2),
            g,
        );
        if case.p.output_shape(&case.x, &case.w_shape()).is_ok() {
            out.push(case);
        }
    }
    out
}

/// Direct 7-loop convolution (row-major contiguous f64 operands).
pub fn naive_conv2d(x: &[f64], xs: [usize; 4], w: &[f64], ws: [usize; 4], p: &Conv2dParams) -> Vec<f64> {
    let [n, c, h, wd] = xs;
    let [o, cg, kh, kw] = ws;
    let ys = p.output_shape(&xs, &ws).unwrap();
    let (oh, ow) = (ys[2], ys[3]);
    let og = o / p.groups;
    let mut y = vec![0.0; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            let grp = oc / og;
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = 0.0;
                    for ci in 0..cg {
                        let ic = grp * cg + ci;
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih = (i * p.stride.0 + ki * p.dilation.0) as isize - p.padding.0 as isize;
                                let iw = (j * p.stride.1 + kj * p.dilation.1) as isize - p.padding.1 as isize;
                                if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= wd {
                                    continue;
                                }
                                s += x[((b * c + ic) * h + ih as usize) * wd + iw as usize]
                                    * w[((oc * cg + ci) * kh + ki) * kw + kj];
                            }
                        }
                    }
                    y[((b * o + oc) * oh + i) * ow + j] = s;
                }
            }
        }
    }
    y
}

/// Calls `f(x_index, w_index, y_index)` for every multiply of the direct convolution.
fn for_each_tap(xs: [usize; 4], ws: [usize; 4], p: &Conv2dParams, mut f: impl FnMut(usize, usize, usize)) {
    let [n, c, h, wd] = xs;
    let [o, cg, kh, kw] = ws;
    let ys = p.output_shape(&xs, &ws).unwrap();
    let (oh, ow) = (ys[2], ys[3]);
    let og = o / p.groups;
    for b in 0..n {
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    for ci in 0..cg {
                        let ic = (oc / og) * cg + ci;
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih = (i * p.stride.0 + ki * p.dilation.0) as isize - p.padding.0 as isize;
                                let iw = (j * p.stride.1 + kj * p.dilation.1) as isize - p.padding.1 as isize;
                                if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= wd {
                                    continue;
                                }
                                f(
                                    ((b * c + ic) * h + ih as usize) * wd + iw as usize,
                                    ((oc * cg + ci) * kh + ki) * kw + kj,
                                    ((b * o + oc) * oh + i) * ow + j,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Transposed loops: the gradient of the input.
pub fn naive_conv2d_backward_data(gy: &[f64], w: &[f64], xs: [usize; 4], ws: [usize; 4], p: &Conv2dParams) -> Vec<f64> {
    let mut dx = vec![0.0; xs.iter().product()];
    for_each_tap(xs, ws, p, |xi, wi, yi| dx[xi] += w[wi] * gy[yi]);
    dx
}

/// Transposed loops: the gradient of the weight.
pub fn naive_conv2d_backward_weight(
    x: &[f64],
    gy: &[f64],
    xs: [usize; 4],
    ws: [usize; 4],
    p: &Conv2dParams,
) -> Vec<f64> {
    let mut dw = vec![0.0; ws.iter().product()];
    for_each_tap(xs, ws, p, |xi, wi, yi| dw[wi] += x[xi] * gy[yi]);
    dw
}

/// Random data for a view of `shape` (kind `kind` of [`views_of`]), rounded to `dtype`: the
/// uploaded buffer, its layout and its logical row-major values.
pub fn random_view<B: Backend>(
    b: &B,
    rng: &mut TestRng,
    shape: &[usize],
    kind: usize,
    dtype: DType,
) -> (B::Storage, Layout, Vec<f64>) {
    let views = views_of(shape);
    let v = &views[kind % views.len()];
    let data: Vec<f64> = rng.vec(v.buffer_len, -1.0, 1.0).into_iter().map(|x| round_to(x, dtype)).collect();
    (upload(b, &data, dtype), v.layout.clone(), logical(&data, &v.layout))
}

fn round_to(x: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => x as f32 as f64,
        _ => x,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Runs forward, backward-data and backward-weight of one case with the given view kinds and
/// checks them against the naive loops (and, in f64, the adjoint identities).
fn check_case<B: Backend>(b: &B, rng: &mut TestRng, case: &ConvCase, dtype: DType, kinds: [usize; 3]) {
    let what = format!("{case:?} {dtype} views {kinds:?}");
    let (xs, ws, ys) = (case.x, case.w_shape(), case.y_shape());
    let (sx, lx, x) = random_view(b, rng, &xs, kinds[0], dtype);
    let (sw, lw, w) = random_view(b, rng, &ws, kinds[1], dtype);
    let (sg, lg, gy) = random_view(b, rng, &ys, kinds[2], dtype);
    let (rtol, atol) = tol(dtype);
    // Rounding error of an f32 sum grows like the square root of its number of terms.
    let atol_for = |terms: usize| atol * (terms as f64).sqrt().max(1.0);

    let y = b.conv2d(&sx, &lx, &sw, &lw, &case.p).unwrap_or_else(|e| panic!("conv2d {what}: {e}"));
    let y = download(b, &y, &Layout::contiguous(&ys));
    let y_ref = naive_conv2d(&x, xs, &w, ws, &case.p);
    assert_close(&y, &y_ref, rtol, atol_for(case.terms()), &format!("conv2d {what}"));

    let dx = b
        .conv2d_backward_data(&sg, &lg, &sw, &lw, &case.p, (xs[2], xs[3]))
        .unwrap_or_else(|e| panic!("conv2d_backward_data {what}: {e}"));
    let dx = download(b, &dx, &Layout::contiguous(&xs));
    let dx_ref = naive_conv2d_backward_data(&gy, &w, xs, ws, &case.p);
    let terms_dx = case.o / case.p.groups * case.k.0 * case.k.1;
    assert_close(&dx, &dx_ref, rtol, atol_for(terms_dx), &format!("conv2d_backward_data {what}"));

    let dw = b
        .conv2d_backward_weight(&sx, &lx, &sg, &lg, &case.p, case.k)
        .unwrap_or_else(|e| panic!("conv2d_backward_weight {what}: {e}"));
    let dw = download(b, &dw, &Layout::contiguous(&ws));
    let dw_ref = naive_conv2d_backward_weight(&x, &gy, xs, ws, &case.p);
    let terms_dw = ys[0] * ys[2] * ys[3];
    assert_close(&dw, &dw_ref, rtol, atol_for(terms_dw), &format!("conv2d_backward_weight {what}"));

    if dtype == DType::F64 {
        // <conv(x, w), gy> == <x, conv_bwd_data(gy, w)> == <w, conv_bwd_weight(x, gy)>
        let lhs = dot(&y, &gy);
        let scale = lhs.abs().max(1.0);
        let via_dx = dot(&x, &dx);
        let via_dw = dot(&w, &dw);
        assert!((lhs - via_dx).abs() <= 1e-10 * scale, "adjoint (data) {what}: {lhs} vs {via_dx}");
        assert!((lhs - via_dw).abs() <= 1e-10 * scale, "adjoint (weight) {what}: {lhs} vs {via_dw}");
    }
}

fn run_cases<B: Backend>(b: &B, seed: u64) {
    let mut rng = TestRng::new(seed);
    for (i, case) in CONV_CASES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            check_case(b, &mut rng, case, dtype, [i, i / 4 + 1, i / 2 + 2]);
        }
    }
    // Every view kind on every operand for two cases (general and depthwise).
    for case in [&CONV_CASES[0], &CONV_CASES[3], &CONV_CASES[5]] {
        for k in 0..4 {
            check_case(b, &mut rng, case, DType::F32, [k, (k + 1) % 4, (k + 2) % 4]);
        }
    }
    for (i, case) in random_conv_cases(&mut rng, 40).iter().enumerate() {
        let dtype = if i % 2 == 0 { DType::F32 } else { DType::F64 };
        check_case(b, &mut rng, case, dtype, [i % 4, (i / 4) % 4, (i / 16) % 4]);
    }
}

/// Forward, backward-data and backward-weight over many parameter combinations and views.
pub fn check_conv2d<B: Backend>(b: &B) {
    run_cases(b, 11);
}

/// The same cases under a 3-thread pool, so that both the parallel-over-images and the
/// parallel-inside-one-image schedules of a CPU backend are exercised.
pub fn check_conv2d_thread_counts<B: Backend>(b: &B) {
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
        pool.install(|| {
            let mut rng = TestRng::new(100 + threads as u64);
            for case in CONV_CASES {
                check_case(b, &mut rng, case, DType::F64, [0, 0, 0]);
            }
        });
    }
}

/// Larger problems (several im2col tiles, the shared-image parallel path with N = 1).
pub fn check_conv2d_large<B: Backend>(b: &B) {
    let mut rng = TestRng::new(7);
    // Sizes chosen so a CPU backend's im2col splits into several tiles on both schedules.
    for case in [
        ConvCase::new(1, 24, 40, 37, 20, (3, 3), 1, 1, 1, 1),
        ConvCase::new(4, 32, 17, 19, 16, (3, 3), 2, 1, 1, 2),
        ConvCase::new(2, 32, 40, 40, 8, (3, 3), 1, 1, 1, 1),
        ConvCase::new(1, 64, 43, 43, 8, (3, 3), 1, 1, 1, 1),
    ] {
        check_case(b, &mut rng, &case, DType::F32, [0, 1, 0]);
        check_case(b, &mut rng, &case, DType::F64, [2, 0, 1]);
    }
}

/// int8 x int8 -> i32 forward, exact.
pub fn check_conv2d_i8<B: Backend>(b: &B) {
    let mut rng = TestRng::new(5);
    for (i, case) in CONV_CASES.iter().enumerate() {
        let (xs, ws, ys) = (case.x, case.w_shape(), case.y_shape());
        let vx = &views_of(&xs)[i % 4];
        let vw = &views_of(&ws)[(i / 4) % 4];
        let dx: Vec<f64> = (0..vx.buffer_len).map(|_| rng.below(255) as f64 - 127.0).collect();
        let dw: Vec<f64> = (0..vw.buffer_len).map(|_| rng.below(255) as f64 - 127.0).collect();
        let y = b
            .conv2d(&upload(b, &dx, DType::I8), &vx.layout, &upload(b, &dw, DType::I8), &vw.layout, &case.p)
            .unwrap_or_else(|e| panic!("conv2d i8 {case:?}: {e}"));
        assert_eq!(b.dtype(&y), DType::I32, "conv2d i8 result dtype");
        let got = download(b, &y, &Layout::contiguous(&ys));
        let want = naive_conv2d(&logical(&dx, &vx.layout), xs, &logical(&dw, &vw.layout), ws, &case.p);
        assert_eq!(got, want, "conv2d i8 {case:?}");
    }
}

/// Bad shapes and dtypes come back as errors naming the op and the shapes.
pub fn check_conv2d_errors<B: Backend>(b: &B) {
    let p = Conv2dParams::default();
    let f = |shape: &[usize], dtype: DType| {
        let n: usize = shape.iter().product();
        (b.from_host(&host(&vec![0.5; n], dtype)).unwrap(), Layout::contiguous(shape))
    };
    let (x, lx) = f(&[2, 3, 5, 5], DType::F32);
    let (w, lw) = f(&[4, 2, 3, 3], DType::F32);
    let e = b.conv2d(&x, &lx, &w, &lw, &p).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("[2, 3, 5, 5]") && e.contains("[4, 2, 3, 3]"), "message: {e}");

    let (w64, lw64) = f(&[4, 3, 3, 3], DType::F64);
    assert!(matches!(b.conv2d(&x, &lx, &w64, &lw64, &p), Err(Error::DTypeMismatch { .. })));

    let (wbig, lwbig) = f(&[4, 3, 7, 7], DType::F32);
    assert!(b.conv2d(&x, &lx, &wbig, &lwbig, &p).is_err(), "kernel larger than input");
    let (w3, lw3) = f(&[4, 3, 3], DType::F32);
    assert!(b.conv2d(&x, &lx, &w3, &lw3, &p).is_err(), "3-D weight");
    let bad = Conv2dParams { groups: 0, ..p };
    let (w_ok, lw_ok) = f(&[4, 3, 3, 3], DType::F32);
    assert!(b.conv2d(&x, &lx, &w_ok, &lw_ok, &bad).is_err(), "groups 0");
    let bad = Conv2dParams { stride: (0, 1), ..p };
    assert!(b.conv2d(&x, &lx, &w_ok, &lw_ok, &bad).is_err(), "stride 0");
    let g2 = Conv2dParams { groups: 2, ..p };
    assert!(b.conv2d(&x, &lx, &w, &lw, &g2).is_err(), "3 channels in 2 groups");

    // Gradients whose shape disagrees with the forward pass.
    let (gy, lgy) = f(&[2, 4, 4, 3], DType::F32);
    let e = b.conv2d_backward_data(&gy, &lgy, &w_ok, &lw_ok, &p, (5, 5)).unwrap_err().to_string();
    assert!(e.contains("conv2d_backward_data") && e.contains("[2, 4, 4, 3]"), "message: {e}");
    let e = b.conv2d_backward_weight(&x, &lx, &gy, &lgy, &p, (3, 3)).unwrap_err().to_string();
    assert!(e.contains("conv2d_backward_weight") && e.contains("[2, 4, 4, 3]"), "message: {e}");
    let (gy_ok, lgy_ok) = f(&[2, 4, 3, 3], DType::F32);
    assert!(b.conv2d_backward_data(&gy_ok, &lgy_ok, &w_ok, &lw_ok, &p, (5, 5)).is_ok());
    assert!(b.conv2d_backward_weight(&x, &lx, &gy_ok, &lgy_ok, &p, (3, 3)).is_ok());
    assert!(b.conv2d_backward_weight(&x, &lx, &gy_ok, &lgy_ok, &p, (2, 2)).is_err(), "wrong kernel size");
    let (gy_b, lgy_b) = f(&[3, 4, 3, 3], DType::F32);
    assert!(b.conv2d_backward_weight(&x, &lx, &gy_b, &lgy_b, &p, (3, 3)).is_err(), "batch mismatch");
    let (gy64, lgy64) = f(&[2, 4, 3, 3], DType::F64);
    assert!(matches!(
        b.conv2d_backward_data(&gy64, &lgy64, &w_ok, &lw_ok, &p, (5, 5)),
        Err(Error::DTypeMismatch { .. })
    ));
    assert!(matches!(b.conv2d_backward_weight(&x, &lx, &gy64, &lgy64, &p, (3, 3)), Err(Error::DTypeMismatch { .. })));
    let (xi, lxi) = f(&[2, 3, 5, 5], DType::I64);
    let (wi, lwi) = f(&[4, 3, 3, 3], DType::I64);
    assert!(matches!(b.conv2d(&xi, &lxi, &wi, &lwi, &p), Err(Error::UnsupportedDType { .. })));

    assert!(b.conv2d_backward_weight(&x, &lx, &gy_ok, &lgy_ok, &p, (0, 0)).is_err(), "empty kernel");
    let (w0, lw0) = f(&[4, 3, 0, 3], DType::F32);
    assert!(b.conv2d(&x, &lx, &w0, &lw0, &p).is_err(), "empty kernel");

    // An empty plane with padding: the output is all padding, zeros.
    let (xe, lxe) = f(&[1, 3, 0, 2], DType::F32);
    let (w1, lw1) = f(&[4, 3, 1, 1], DType::F32);
    let pad = Conv2dParams { padding: (1, 1), ..p };
    let y = b.conv2d(&xe, &lxe, &w1, &lw1, &pad).unwrap();
    assert_eq!(download(b, &y, &Layout::contiguous(&[1, 4, 2, 4])), vec![0.0; 32]);

    // Empty batch: a valid, empty result.
    let (x0, lx0) = f(&[0, 3, 5, 5], DType::F32);
    let y = b.conv2d(&x0, &lx0, &w_ok, &lw_ok, &p).unwrap();
    assert!(download(b, &y, &Layout::contiguous(&[0, 4, 3, 3])).is_empty());
}
