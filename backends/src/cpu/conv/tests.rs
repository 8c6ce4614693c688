//! Every convolution algorithm against the reference kernels, forced through the planner
//! ([`with_algorithm`]) on odd shapes: each pass of an algorithm against the same pass by
//! im2col + GEMM (the depthwise loops for depthwise layers), in the same element type, with the
//! outputs of the kernels that write in full poisoned with NaN first (an element a kernel skips
//! shows); im2col and the depthwise loops themselves against naive f64 loops.

use super::*;
use crate::cpu::testing::{assert_close_scaled, in_pools_of_1_and_3, values};

/// The three passes of `algorithm` (forced) on dense operands.
struct Passes<T> {
    y: Vec<T>,
    dx: Option<Vec<T>>,
    dw: Option<Vec<T>>,
}

/// Which of its passes a test runs.
#[derive(Clone, Copy)]
struct Runs {
    backward_data: bool,
    backward_weight: bool,
}

const ALL: Runs = Runs { backward_data: true, backward_weight: true };

fn storage<T: GemmElement>(v: Vec<T>) -> CpuStorage {
    CpuStorage::from_vec(v)
}

fn to_vec<T: GemmElement>(s: CpuStorage) -> Vec<T> {
    s.as_slice::<T>().expect("the pass's dtype").to_vec()
}

/// Runs the passes `runs` of `algorithm` on the deterministic `x` (seed 1), `w` (2) and `dY`
/// (3) of the geometry `g`, through the public entry points with the algorithm forced.
fn run<T: GemmElement>(algorithm: Algorithm, g: &Geom, p: &Conv2dParams, runs: Runs) -> Passes<T> {
    let (lx, lw, ly) =
        (Layout::contiguous(&g.x_shape()), Layout::contiguous(&g.w_shape()), Layout::contiguous(&g.y_shape()));
    let x = storage(values::<T>(lx.numel(), 1));
    let w = storage(values::<T>(lw.numel(), 2));
    let gy = storage(values::<T>(ly.numel(), 3));
    with_algorithm(algorithm, || Passes {
        y: to_vec(conv2d(&x, &lx, &w, &lw, p).expect("forward")),
        dx: runs
            .backward_data
            .then(|| to_vec(conv2d_backward_data(&gy, &ly, &w, &lw, p, (g.h, g.w)).expect("input gradient"))),
        dw: runs
            .backward_weight
            .then(|| to_vec(conv2d_backward_weight(&x, &lx, &gy, &ly, p, (g.kh, g.kw)).expect("weight gradient"))),
    })
}

/// The passes `runs` of `algorithm` against the reference algorithm on `[n, c, h, w]` through
/// `[o, c/groups, kh, kw]` filters with `p`: within `tol` of the largest expected magnitude for
/// the data passes, `weight_tol` for the weight gradient.
#[allow(clippy::too_many_arguments)]
fn check<T: GemmElement>(
    algorithm: Algorithm,
    (n, c, h, w): (usize, usize, usize, usize),
    (o, kh, kw): (usize, usize, usize),
    p: Conv2dParams,
    runs: Runs,
    tol: f64,
    weight_tol: f64,
) {
    let g = Geom::new(&[n, c, h, w], &[o, c / p.groups, kh, kw], &p).unwrap();
    let isa = Isa::of(T::DTYPE).unwrap();
    let pass_ok = |pass| algorithm.supports(&g, pass, isa);
    assert!(pass_ok(ConvPass::Forward), "{} cannot compute {g:?}", algorithm.name());
    assert!(!runs.backward_data || pass_ok(ConvPass::BackwardData), "{} input gradient {g:?}", algorithm.name());
    assert!(!runs.backward_weight || pass_ok(ConvPass::BackwardWeight), "{} weight gradient {g:?}", algorithm.name());
    let reference = if g.is_depthwise() { Algorithm::Depthwise } else { Algorithm::Im2col };
    let (got, want) = (run::<T>(algorithm, &g, &p, runs), run::<T>(reference, &g, &p, runs));
    let what = format!("{} {g:?}", algorithm.name());
    assert_close_scaled(&format!("forward {what}"), &got.y, &want.y, tol);
    if let (Some(got), Some(want)) = (got.dx, want.dx) {
        assert_close_scaled(&format!("backward data {what}"), &got, &want, tol);
    }
    if let (Some(got), Some(want)) = (got.dw, want.dw) {
        assert_close_scaled(&format!("backward weight {what}"), &got, &want, weight_tol);
    }
}

/// A case of a 3x3 path's tests: batch, input channels, (height, width), output channels,
/// padding.
type Case3x3 = (usize, usize, (usize, usize), usize, (usize, usize));

/// Runs `check` on every case of `cases`, then on every case of `pooled` in rayon pools of 1
/// and 3 threads (the algorithm's splitting over threads); on a CPU without AVX-512F/VL, where
/// the AVX-512 algorithms do not run, it says so and checks nothing.
fn check_avx512_cases(
    algorithm: Algorithm,
    cases: &[Case3x3],
    pooled: &[Case3x3],
    check: impl Fn(Case3x3) + Sync + Send,
) {
    if Isa::of(DType::F32) != Some(Isa::Avx512) {
        eprintln!("{}: no AVX-512F/VL on this CPU, kernels not run", algorithm.name());
        return;
    }
    cases.iter().for_each(|&c| check(c));
    in_pools_of_1_and_3(|| pooled.iter().for_each(|&c| check(c)));
}

/// The three f32 passes of a 3x3 stride-1 AVX-512 algorithm (the input gradient where its
/// padding fits the flipped pass, at most 2), at tolerances scaled by the channels.
fn check_3x3_stride1(algorithm: Algorithm, (n, c, (h, w), o, pad): Case3x3) {
    let p = Conv2dParams { padding: pad, ..Default::default() };
    let tol = 1e-5 * (c.max(o) as f64).sqrt();
    let runs = Runs { backward_data: pad.0 <= 2 && pad.1 <= 2, backward_weight: true };
    check::<f32>(algorithm, (n, c, h, w), (o, 3, 3), p, runs, tol, tol * 4.0);
}

#[test]
fn winograd4_matches_the_generic_kernels_on_odd_shapes_and_thread_counts() {
    // Planes whose tile rows fill 1, 2, 4, 8, 16 and more lanes (sizes off 4, partial groups of
    // images), channel counts off 16, every padding the passes accept.
    const SHAPES: [Case3x3; 14] = [
        (3, 8, (7, 5), 5, (1, 1)),
        (2, 9, (6, 6), 1, (0, 0)),
        (5, 8, (10, 13), 6, (1, 0)),
        (2, 12, (6, 4), 17, (2, 2)),
        (17, 8, (4, 4), 8, (1, 1)),
        (2, 16, (9, 70), 10, (0, 2)),
        (3, 16, (32, 32), 16, (1, 1)),
        (5, 32, (16, 16), 32, (1, 1)),
        (9, 64, (8, 8), 64, (1, 1)),
        (2, 17, (15, 15), 33, (1, 1)),
        (1, 8, (5, 130), 9, (2, 1)),
        (9, 10, (5, 6), 12, (1, 1)),
        (2, 130, (6, 7), 140, (1, 1)),
        (2, 8, (58, 66), 8, (1, 1)),
    ];
    // Tile rows split over the threads (one image group).
    const POOLED: [Case3x3; 2] = [(1, 16, (20, 34), 12, (1, 1)), (2, 8, (11, 9), 24, (1, 1))];
    let a = Algorithm::WinogradF4;
    check_avx512_cases(a, &SHAPES, &POOLED, |case| check_3x3_stride1(a, case));
}

#[test]
fn winograd_lanes_matches_im2col_on_odd_shapes_and_thread_counts() {
    // Planes whose tile rows fill 1, 2, 4, 8, 16 and more lanes (odd widths and heights,
    // partial groups of images), channel counts off 16, every padding the passes accept.
    const SHAPES: [Case3x3; 13] = [
        (3, 8, (7, 5), 5, (1, 1)),
        (2, 9, (3, 3), 1, (0, 0)),
        (5, 8, (10, 13), 6, (1, 0)),
        (2, 12, (6, 4), 17, (2, 2)),
        (3, 8, (1, 1), 8, (1, 1)),
        (2, 16, (9, 40), 10, (0, 2)),
        (5, 16, (32, 32), 16, (1, 1)),
        (3, 32, (16, 16), 32, (1, 1)),
        (6, 64, (8, 8), 64, (1, 1)),
        (2, 17, (15, 15), 33, (1, 1)),
        (1, 8, (5, 70), 9, (2, 1)),
        (9, 10, (4, 4), 12, (1, 1)),
        (2, 130, (6, 7), 140, (1, 1)),
    ];
    // Tile rows split over the threads (one image group).
    const POOLED: [Case3x3; 2] = [(1, 16, (20, 34), 12, (1, 1)), (2, 8, (11, 9), 24, (1, 1))];
    let a = Algorithm::WinogradF2;
    check_avx512_cases(a, &SHAPES, &POOLED, |case| check_3x3_stride1(a, case));
}

#[test]
fn direct3x3_matches_im2col_on_odd_shapes_and_thread_counts() {
    // Widths below, at and past one vector, channel counts off the tile sizes, every padding
    // the passes accept.
    const SHAPES: [Case3x3; 9] = [
        (2, 3, (7, 5), 5, (1, 1)),
        (1, 1, (3, 3), 1, (0, 0)),
        (3, 8, (10, 13), 6, (1, 0)),
        (2, 5, (6, 4), 7, (2, 2)),
        (1, 4, (1, 1), 4, (1, 1)),
        (2, 16, (9, 40), 10, (0, 2)),
        (5, 16, (32, 32), 16, (1, 1)),
        (2, 17, (16, 16), 33, (1, 1)),
        (1, 2, (5, 18), 9, (3, 1)),
    ];
    // Several weight-gradient chunks per thread (summed per thread, then across threads) and
    // fewer images than threads (channel blocks split).
    const POOLED: [Case3x3; 2] = [(40, 16, (20, 34), 12, (1, 1)), (1, 8, (12, 12), 24, (1, 1))];
    let a = Algorithm::Direct3x3;
    check_avx512_cases(a, &SHAPES, &POOLED, |case| check_3x3_stride1(a, case));
}

#[test]
fn stride2_3x3_matches_the_generic_kernels_on_odd_shapes_and_thread_counts() {
    // Odd and even sizes (output rows of 1 to 40 positions, planes ending inside a vector and a
    // tile), channel counts off the tile sizes, paddings 0 to 2, the ResNet-20 downsampling
    // layers.
    const SHAPES: [Case3x3; 10] = [
        (2, 3, (7, 5), 5, (1, 1)),
        (1, 1, (3, 3), 1, (0, 0)),
        (3, 8, (10, 13), 6, (1, 0)),
        (2, 5, (6, 4), 7, (2, 2)),
        (1, 4, (1, 1), 4, (1, 1)),
        (2, 16, (9, 80), 10, (0, 2)),
        (5, 16, (32, 32), 32, (1, 1)),
        (3, 32, (16, 16), 64, (1, 1)),
        (2, 17, (15, 15), 33, (1, 1)),
        (1, 2, (5, 18), 9, (2, 1)),
    ];
    // Several weight-gradient chunks per thread and fewer images than threads (output-channel
    // blocks split).
    const POOLED: [Case3x3; 2] = [(40, 16, (20, 34), 12, (1, 1)), (1, 8, (12, 12), 24, (1, 1))];
    let a = Algorithm::Direct3x3Stride2;
    check_avx512_cases(a, &SHAPES, &POOLED, |(n, c, (h, w), o, pad)| {
        let p = Conv2dParams { stride: (2, 2), padding: pad, ..Default::default() };
        let tol = 1e-5 * (c.max(o) as f64).sqrt();
        let runs = Runs { backward_data: false, backward_weight: true };
        check::<f32>(a, (n, c, h, w), (o, 3, 3), p, runs, tol, tol * 4.0);
    });
}

#[test]
fn depthwise3x3_matches_the_generic_loops_on_odd_shapes() {
    let a = Algorithm::Depthwise3x3;
    if Isa::of(DType::F32) != Some(Isa::Avx512) {
        eprintln!("{}: no AVX-512F/VL on this CPU, kernels not run", a.name());
        return;
    }
    // Widths below, at and across vectors (and across two for stride 2), every padding.
    for (n, c, (h, w), s, pad) in [
        (2, 3, (7, 5), 1, (1, 1)),
        (1, 2, (3, 3), 1, (0, 0)),
        (3, 5, (10, 17), 1, (1, 0)),
        (2, 4, (6, 33), 1, (2, 2)),
        (1, 2, (1, 1), 1, (1, 1)),
        (2, 3, (9, 40), 2, (1, 1)),
        (2, 6, (8, 8), 2, (0, 1)),
        (1, 2, (5, 70), 2, (2, 0)),
        (4, 7, (16, 16), 1, (1, 1)),
    ] {
        let p = Conv2dParams { padding: pad, stride: (s, s), groups: c, ..Default::default() };
        let g = Geom::new(&[n, c, h, w], &[c, 1, 3, 3], &p).unwrap();
        let runs = Runs { backward_data: a.supports(&g, ConvPass::BackwardData, Isa::Avx512), backward_weight: true };
        check::<f32>(a, (n, c, h, w), (c, 3, 3), p, runs, 1e-6, 1e-5);
    }
}

/// Batch, input channels, (height, width), output channels, padding of the GEMM Winograd's
/// cases.
const WINOGRAD_SHAPES: [Case3x3; 7] = [
    (2, 8, (7, 5), 9, (1, 1)),
    (1, 9, (3, 3), 8, (0, 0)),
    (3, 8, (10, 13), 12, (1, 0)),
    (2, 11, (6, 4), 8, (2, 2)),
    (1, 8, (1, 1), 8, (1, 1)),
    (2, 16, (9, 40), 10, (0, 2)),
    (5, 10, (8, 8), 17, (1, 1)),
];

/// All three passes of the GEMM Winograd against im2col.
fn check_winograd<T: GemmElement>((n, c, (h, w), o, pad): Case3x3, tol: f64) {
    let p = Conv2dParams { padding: pad, ..Default::default() };
    check::<T>(Algorithm::WinogradGemm, (n, c, h, w), (o, 3, 3), p, ALL, tol, tol);
}

#[test]
fn winograd_matches_im2col_f64_on_odd_shapes() {
    WINOGRAD_SHAPES.into_iter().for_each(|case| check_winograd::<f64>(case, 1e-12));
}

#[test]
fn winograd_matches_im2col_f32_on_odd_shapes() {
    WINOGRAD_SHAPES.into_iter().for_each(|case| check_winograd::<f32>(case, 2e-5));
}

#[test]
fn winograd_with_many_chunks_and_threads() {
    // Enough tile rows for several chunks per thread (so the per-thread accumulators of the
    // weight gradient are summed), in pools of 1 and 3 threads.
    in_pools_of_1_and_3(|| check_winograd::<f64>((6, 64, (20, 34), 40, (1, 1)), 1e-12));
}

/// `x` `[n, c, h, w]` convolved with `w` `[o, c/g, kh, kw]` by the definition, in f64.
fn naive_forward(x: &[f64], w: &[f64], g: &Geom) -> Vec<f64> {
    let mut y = vec![0.0; g.y_shape().iter().product()];
    let (cg, og) = (g.cg(), g.og());
    for n in 0..g.n {
        for o in 0..g.o {
            for r in 0..g.oh {
                for col in 0..g.ow {
                    let mut s = 0.0;
                    for ci in 0..cg {
                        let c = (o / og) * cg + ci;
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                                let iw = (col * g.sw + kj * g.dw) as isize - g.pw as isize;
                                if ih < 0 || iw < 0 || ih as usize >= g.h || iw as usize >= g.w {
                                    continue;
                                }
                                let xv = x[((n * g.c + c) * g.h + ih as usize) * g.w + iw as usize];
                                s += xv * w[((o * cg + ci) * g.kh + ki) * g.kw + kj];
                            }
                        }
                    }
                    y[((n * g.o + o) * g.oh + r) * g.ow + col] = s;
                }
            }
        }
    }
    y
}

/// The adjoints of [`naive_forward`], by linearity: the input gradient is `Σ_k gy_k ∂y_k/∂x`,
/// each `∂y_k/∂x` the forward of a unit impulse read back, so both gradients are the forward's
/// transposes computed from it (`⟨gy, conv(x, w)⟩` differentiated one element at a time).
fn naive_gradients(x: &[f64], w: &[f64], gy: &[f64], g: &Geom) -> (Vec<f64>, Vec<f64>) {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    let unit = |len: usize, i: usize| {
        let mut e = vec![0.0; len];
        e[i] = 1.0;
        e
    };
    let dx = (0..x.len()).map(|i| dot(gy, &naive_forward(&unit(x.len(), i), w, g))).collect();
    let dw = (0..w.len()).map(|i| dot(gy, &naive_forward(x, &unit(w.len(), i), g))).collect();
    (dx, dw)
}

/// im2col + GEMM and the depthwise loops, the reference algorithms, against the definition in
/// f64 on odd geometries: strides, paddings, dilations, groups, 1x1 and rectangular kernels.
#[test]
fn reference_algorithms_match_the_definition_on_odd_geometries() {
    // (n, c, (h, w), o, (kh, kw), stride, padding, dilation, groups)
    type Odd =
        (usize, usize, (usize, usize), usize, (usize, usize), (usize, usize), (usize, usize), (usize, usize), usize);
    let cases: [Odd; 9] = [
        (2, 3, (7, 5), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
        (1, 4, (6, 9), 6, (2, 3), (2, 1), (0, 2), (1, 1), 2),
        (3, 2, (5, 5), 3, (1, 1), (1, 1), (0, 0), (1, 1), 1),
        (2, 5, (9, 8), 2, (1, 1), (2, 2), (1, 0), (1, 1), 1),
        (1, 3, (11, 7), 5, (3, 2), (3, 2), (2, 1), (2, 3), 1),
        (2, 6, (7, 7), 6, (3, 3), (1, 1), (1, 1), (1, 1), 6),
        (2, 4, (8, 9), 4, (5, 3), (2, 1), (2, 1), (1, 2), 4),
        (1, 3, (6, 6), 3, (3, 3), (2, 2), (0, 0), (2, 2), 3),
        (5, 8, (4, 5), 4, (3, 3), (1, 1), (1, 1), (1, 1), 2),
    ];
    for (n, c, (h, w), o, (kh, kw), stride, padding, dilation, groups) in cases {
        let p = Conv2dParams { stride, padding, dilation, groups };
        let g = Geom::new(&[n, c, h, w], &[o, c / groups, kh, kw], &p).unwrap();
        let x = values::<f64>(g.x_shape().iter().product(), 1);
        let wv = values::<f64>(g.w_shape().iter().product(), 2);
        let gy = values::<f64>(g.y_shape().iter().product(), 3);
        let y = naive_forward(&x, &wv, &g);
        let (dx, dw) = naive_gradients(&x, &wv, &gy, &g);
        let mut algorithms = vec![Algorithm::Im2col];
        if g.is_depthwise() {
            algorithms.push(Algorithm::Depthwise);
        }
        for a in algorithms {
            let got = run::<f64>(a, &g, &p, ALL);
            let what = format!("{} {g:?}", a.name());
            assert_close_scaled(&format!("forward {what}"), &got.y, &y, 1e-12);
            assert_close_scaled(&format!("backward data {what}"), &got.dx.unwrap(), &dx, 1e-12);
            assert_close_scaled(&format!("backward weight {what}"), &got.dw.unwrap(), &dw, 1e-12);
        }
    }
}

/// im2col with several images per GEMM (small output planes) against the definition in f64, in
/// pools of 1, 2 and 3 threads: odd batches, strides, paddings, rectangular kernels and planes,
/// some batches ending in a short group.
#[test]
fn im2col_groups_of_images_match_the_definition() {
    // (n, c, (h, w), o, (kh, kw), stride, padding)
    type Case = (usize, usize, (usize, usize), usize, (usize, usize), (usize, usize), (usize, usize));
    let cases: [Case; 4] = [
        (8, 3, (5, 6), 4, (3, 3), (2, 1), (1, 1)),
        (13, 5, (4, 4), 7, (3, 3), (1, 1), (1, 1)),
        (6, 4, (7, 5), 3, (1, 1), (2, 2), (0, 0)),
        (9, 2, (6, 7), 5, (2, 3), (1, 2), (0, 1)),
    ];
    for threads in [1, 2, 3] {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool").install(|| {
            for (n, c, (h, w), o, (kh, kw), stride, padding) in cases {
                let p = Conv2dParams { stride, padding, dilation: (1, 1), groups: 1 };
                let g = Geom::new(&[n, c, h, w], &[o, c, kh, kw], &p).unwrap();
                let per = im2col::batched::images_per_group(&g);
                assert!(per.is_some_and(|p| p >= 2 && p <= n), "{threads} threads {g:?}: {per:?} images per GEMM");
                let x = values::<f64>(g.x_shape().iter().product(), 1);
                let wv = values::<f64>(g.w_shape().iter().product(), 2);
                let gy = values::<f64>(g.y_shape().iter().product(), 3);
                let y = naive_forward(&x, &wv, &g);
                let (dx, dw) = naive_gradients(&x, &wv, &gy, &g);
                let got = run::<f64>(Algorithm::Im2col, &g, &p, ALL);
                let what = format!("{threads} threads {g:?}");
                assert_close_scaled(&format!("forward {what}"), &got.y, &y, 1e-12);
                assert_close_scaled(&format!("backward data {what}"), &got.dx.unwrap(), &dx, 1e-12);
                assert_close_scaled(&format!("backward weight {what}"), &got.dw.unwrap(), &dw, 1e-12);
            }
        });
    }
}

/// The quantized forward (im2col + integer GEMM, forced and planned alike) against the
/// definition, exactly.
#[test]
fn im2col_i8_matches_the_definition_exactly() {
    let p = Conv2dParams { stride: (2, 1), padding: (1, 2), dilation: (1, 2), groups: 2 };
    let g = Geom::new(&[2, 4, 7, 9], &[6, 2, 3, 3], &p).unwrap();
    let (lx, lw) = (Layout::contiguous(&g.x_shape()), Layout::contiguous(&g.w_shape()));
    let xi: Vec<i8> = (0..lx.numel()).map(|i| (i * 37 % 255) as i8).collect();
    let wi: Vec<i8> = (0..lw.numel()).map(|i| (i * 11 % 255) as i8).collect();
    let want = naive_forward(
        &xi.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        &wi.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        &g,
    );
    let (x, w) = (CpuStorage::from_vec(xi), CpuStorage::from_vec(wi));
    for got in [conv2d(&x, &lx, &w, &lw, &p), with_algorithm(Algorithm::Im2col, || conv2d(&x, &lx, &w, &lw, &p))] {
        let got: Vec<f64> = got.unwrap().as_slice::<i32>().unwrap().iter().map(|&v| v as f64).collect();
        assert_eq!(got, want);
    }
    let e = with_algorithm(Algorithm::WinogradGemm, || conv2d(&x, &lx, &w, &lw, &p)).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("winograd"), "{e}");
}

/// The quantized depthwise forward (the planner's choice for depthwise i8) and im2col against
/// the definition, exactly, for strides, paddings, dilations and kernel sizes, with the
/// extreme byte values.
#[test]
fn depthwise_i8_matches_the_definition_exactly() {
    let cases = [
        ([2, 5, 9, 8], (3, 3), (1, 1), (1, 1), (1, 1)),
        ([1, 7, 14, 14], (3, 3), (2, 2), (1, 1), (1, 1)),
        ([3, 4, 7, 6], (5, 3), (2, 1), (2, 0), (1, 2)),
        ([1, 3, 4, 4], (3, 3), (1, 1), (0, 0), (1, 1)),
        // Stride 1 (the flattened-plane path) dilated and unevenly padded; stride in one axis.
        ([2, 3, 6, 9], (3, 3), (1, 1), (2, 1), (2, 1)),
        ([1, 2, 5, 7], (2, 3), (1, 2), (1, 0), (1, 1)),
        ([2, 2, 1, 1], (1, 1), (1, 1), (0, 0), (1, 1)),
    ];
    for (xs, (kh, kw), stride, padding, dilation) in cases {
        let c = xs[1];
        let p = Conv2dParams { stride, padding, dilation, groups: c };
        let g = Geom::new(&xs, &[c, 1, kh, kw], &p).unwrap();
        assert_eq!(plan::choose(&g, ConvPass::Forward, Isa::Int8), Algorithm::Depthwise);
        let (lx, lw) = (Layout::contiguous(&g.x_shape()), Layout::contiguous(&g.w_shape()));
        let xi: Vec<i8> = (0..lx.numel()).map(|i| if i % 5 == 0 { -128 } else { (i * 37 % 255) as u8 as i8 }).collect();
        let wi: Vec<i8> = (0..lw.numel()).map(|i| if i % 4 == 0 { -128 } else { (i * 11 % 255) as u8 as i8 }).collect();
        let want = naive_forward(
            &xi.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &wi.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &g,
        );
        let (x, w) = (CpuStorage::from_vec(xi), CpuStorage::from_vec(wi));
        for a in [Algorithm::Depthwise, Algorithm::Im2col] {
            let got = with_algorithm(a, || conv2d(&x, &lx, &w, &lw, &p)).unwrap();
            let got: Vec<f64> = got.as_slice::<i32>().unwrap().iter().map(|&v| v as f64).collect();
            assert_eq!(got, want, "{} {g:?}", a.name());
        }
    }
}

/// The profiler's question: the algorithm of each pass, as planned (and as forced).
#[test]
fn algorithm_names_what_runs() {
    let p = Conv2dParams { padding: (1, 1), ..Default::default() };
    let (x, w) = ([2, 16, 8, 8], [16, 16, 3, 3]);
    for pass in [ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeight] {
        let g = Geom::new(&x, &w, &p).unwrap();
        let want = plan::choose(&g, pass, Isa::of(DType::F64).unwrap());
        assert_eq!(algorithm(pass, DType::F64, &x, &w, &p).unwrap(), want);
        let forced = with_algorithm(Algorithm::Im2col, || algorithm(pass, DType::F32, &x, &w, &p)).unwrap();
        assert_eq!(forced, Algorithm::Im2col);
    }
    assert!(algorithm(ConvPass::Forward, DType::U8, &x, &w, &p).is_err());
}

/// The three public passes in f32 (which take the AVX-512 direct and depthwise kernels where
/// the CPU has them) against f64 (Winograd or im2col) on shapes that reach each path, with a
/// non-contiguous input view.
#[test]
fn f32_fast_paths_agree_with_f64_through_the_dispatch() {
    // (n, c, h, w, o, stride, pad, groups): Winograd F(4x4) and F(2x2) with tiles in lanes,
    // depthwise stride 1 and 2, a narrow F(2x2) layer, the stem of a CIFAR ResNet (direct), a
    // stride-2 layer (tap planes).
    let cases = [
        (3, 16, 20, 33, 16, 1, 1, 1),
        (2, 8, 9, 14, 24, 1, 2, 1),
        (2, 12, 17, 19, 12, 1, 1, 12),
        (2, 12, 17, 35, 12, 2, 1, 12),
        (2, 40, 6, 7, 40, 1, 1, 1),
        (2, 3, 16, 16, 16, 1, 1, 1),
        (3, 16, 17, 19, 24, 2, 1, 1),
    ];
    for (n, c, h, w, o, s, pad, groups) in cases {
        let p = Conv2dParams { stride: (s, s), padding: (pad, pad), groups, ..Default::default() };
        let what = format!("n={n} c={c} {h}x{w} o={o} stride={s} pad={pad} groups={groups}");
        // x as a [N, C, W, H] buffer viewed transposed: a non-contiguous view.
        let lx = Layout::contiguous(&[n, c, w, h]).transpose(2, 3).unwrap();
        let lw = Layout::contiguous(&[o, c / groups, 3, 3]);
        let xv = values::<f64>(n * c * h * w, 5);
        let wv = values::<f64>(o * c / groups * 9, 6);
        let g = Geom::new(lx.shape(), lw.shape(), &p).unwrap();
        let ly = Layout::contiguous(&g.y_shape());
        let gyv = values::<f64>(ly.numel(), 7);
        let f32s = |v: &[f64]| CpuStorage::F32(v.iter().map(|&a| a as f32).collect());
        let (x64, w64, gy64) = (CpuStorage::F64(xv.clone()), CpuStorage::F64(wv.clone()), CpuStorage::F64(gyv.clone()));
        let (x32, w32, gy32) = (f32s(&xv), f32s(&wv), f32s(&gyv));
        let pairs = [
            ("forward", conv2d(&x32, &lx, &w32, &lw, &p), conv2d(&x64, &lx, &w64, &lw, &p)),
            (
                "backward data",
                conv2d_backward_data(&gy32, &ly, &w32, &lw, &p, (h, w)),
                conv2d_backward_data(&gy64, &ly, &w64, &lw, &p, (h, w)),
            ),
            (
                "backward weight",
                conv2d_backward_weight(&x32, &lx, &gy32, &ly, &p, (3, 3)),
                conv2d_backward_weight(&x64, &lx, &gy64, &ly, &p, (3, 3)),
            ),
        ];
        for (pass, got, want) in pairs {
            let (got, want) = (got.unwrap().to_f64_vec(), want.unwrap().to_f64_vec());
            assert_close_scaled(&format!("{pass} {what}"), &got, &want, 2e-5);
        }
    }
}

/// The poisoning itself: an element a kernel skips shows NaN in tests.
#[test]
fn outputs_written_in_full_start_as_nan_in_tests() {
    // SAFETY: the closure initializes every element but the last, which the poisoning already
    // set (NaN in tests).
    let v: Vec<f64> = unsafe {
        common::written_in_full(3, |y| {
            y[0].write(1.0);
            y[1].write(2.0);
        })
    };
    assert!(v[0] == 1.0 && v[1] == 2.0 && v[2].is_nan());
    assert!(common::overwritten::<f32>(2).iter().all(|v| v.is_nan()));
}
