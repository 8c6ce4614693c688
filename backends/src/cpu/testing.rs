//! Helpers shared by the CPU kernels' unit tests.

use super::conv::{backward_data_direct, backward_weight_direct, forward_direct, Geom};
use super::gemm::GemmElement;
use crate::FloatElement;
use std::mem::MaybeUninit;

/// `n` deterministic pseudo-random values in [-1, 1) from `seed` (xorshift).
pub(crate) fn values<T: FloatElement>(n: usize, seed: u64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f32((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        })
        .collect()
}

/// Asserts `got` equals `want` element-wise within `tol` times the largest magnitude of `want`
/// (at least 1), naming `what` and the first element that differs.
pub(crate) fn assert_close_scaled<T: FloatElement>(what: &str, got: &[T], want: &[T], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1f64, |m, v| m.max(v.to_f64().unwrap().abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64().unwrap(), w.to_f64().unwrap());
        assert!((g - w).abs() <= tol * scale, "{what}: element {i} is {g}, want {w}");
    }
}

/// Runs a kernel that must initialize all of its `len`-element output on an output filled with
/// NaN first, and returns it: an element the kernel skips shows up as NaN, not as garbage.
pub(crate) fn poisoned<T: FloatElement>(len: usize, kernel: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut out = vec![MaybeUninit::new(T::from_f64(f64::NAN)); len];
    kernel(&mut out);
    // SAFETY: every element was initialized (to NaN) before the kernel ran.
    out.into_iter().map(|v| unsafe { v.assume_init() }).collect()
}

/// A data pass of a convolution path (forward, or input gradient): two operands and the
/// geometry into an output it must write in full.
pub(crate) type DataPass<'a, T> = &'a dyn Fn(&[T], &[T], &Geom, &mut [MaybeUninit<T>]);

/// The weight-gradient pass of a convolution path: input, output gradient and geometry.
pub(crate) type WeightPass<'a, T> = &'a dyn Fn(&[T], &[T], &Geom) -> Vec<T>;

/// A convolution path's three passes, as its unit tests hand them to [`check_conv_passes`].
pub(crate) struct ConvPasses<'a, T> {
    /// Forward.
    pub(crate) forward: DataPass<'a, T>,
    /// Input gradient, when the path takes this shape.
    pub(crate) backward_data: Option<DataPass<'a, T>>,
    /// Weight gradient, when the path computes it.
    pub(crate) backward_weight: Option<WeightPass<'a, T>>,
}

/// Runs a path's passes on deterministic `x`, `w` and `dY` for the geometry `g` (outputs
/// poisoned with NaN first) and asserts them close to the generic kernels (`forward_direct`,
/// `backward_data_direct`, `backward_weight_direct`): within `tol` for the data passes and
/// `weight_tol` for the weight gradient, relative to the largest expected magnitude.
pub(crate) fn check_conv_passes<T: GemmElement>(g: &Geom, passes: ConvPasses<'_, T>, tol: f64, weight_tol: f64) {
    let what = format!("{g:?}");
    let x = values::<T>(g.x_shape().iter().product(), 1);
    let w = values::<T>(g.w_shape().iter().product(), 2);
    let gy = values::<T>(g.y_shape().iter().product(), 3);

    let mut want = vec![T::zero(); gy.len()];
    forward_direct(&x, &w, g, &mut want);
    let got = poisoned(gy.len(), |y| (passes.forward)(&x, &w, g, y));
    assert_close_scaled(&format!("forward {what}"), &got, &want, tol);

    if let Some(backward_data) = passes.backward_data {
        let mut want = vec![T::zero(); x.len()];
        backward_data_direct(&gy, &w, g, &mut want);
        let got = poisoned(x.len(), |dx| backward_data(&gy, &w, g, dx));
        assert_close_scaled(&format!("backward data {what}"), &got, &want, tol);
    }

    if let Some(backward_weight) = passes.backward_weight {
        let want = backward_weight_direct(&x, &gy, g);
        let got = backward_weight(&x, &gy, g);
        assert_close_scaled(&format!("backward weight {what}"), &got, &want, weight_tol);
    }
}

/// A case of an f32 3x3 stride-1 path's tests: batch, input channels, (height, width), output
/// channels, padding.
pub(crate) type Case3x3 = (usize, usize, (usize, usize), usize, (usize, usize));

/// Runs `check` (a path's [`check_3x3_path`]) on every case of `cases`, then on every case of
/// `pooled` in rayon pools of 1 and 3 threads ([`in_pools_of_1_and_3`]: the path's splitting
/// over threads); on a CPU without AVX-512F/VL, where the paths do not run, it says so and
/// checks nothing.
pub(crate) fn check_3x3_cases(
    path: &str,
    cases: &[Case3x3],
    pooled: &[Case3x3],
    check: impl Fn(Case3x3) + Sync + Send,
) {
    if !super::use_avx512_vl() {
        eprintln!("{path}: no AVX-512F/VL on this CPU, kernels not run");
        return;
    }
    cases.iter().for_each(|&c| check(c));
    in_pools_of_1_and_3(|| pooled.iter().for_each(|&c| check(c)));
}

/// Runs `f` inside rayon pools of 1 and 3 threads (one thread, and more threads than this
/// machine's usual 2): the kernels' splitting and in-order merging under both.
pub(crate) fn in_pools_of_1_and_3(f: impl Fn() + Sync + Send) {
    for threads in [1, 3] {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool").install(&f);
    }
}

/// An f32 weight-gradient pass writing into its `[O, C, kH, kW]` output slice (the
/// AVX-512 kernels' form).
pub(crate) type WeightIntoPass<'a> = &'a dyn Fn(&[f32], &[f32], &Geom, &mut [f32]);

/// An f32 weight-gradient pass that writes into its output slice, as a [`WeightPass`]: the
/// slice starts as NaN, so an element the pass skips shows.
pub(crate) fn weight_into(pass: WeightIntoPass<'_>) -> impl Fn(&[f32], &[f32], &Geom) -> Vec<f32> + '_ {
    move |x, gy, g| {
        let mut dw = vec![f32::NAN; g.w_shape().iter().product()];
        pass(x, gy, g, &mut dw);
        dw
    }
}

/// The three passes of an f32 path for dense 3x3 stride-1 convolutions against the generic
/// kernels, on `[n, c, h, w]` through `o` filters with padding `pad` (the input gradient only
/// where the flipped pass fits, padding at most 2), at tolerances scaled by the channels.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_3x3_path(
    n: usize,
    c: usize,
    (h, w): (usize, usize),
    o: usize,
    pad: (usize, usize),
    forward: DataPass<'_, f32>,
    backward_data: DataPass<'_, f32>,
    backward_weight: WeightIntoPass<'_>,
) {
    let p = crate::ops::Conv2dParams { padding: pad, ..Default::default() };
    let g = Geom::new(&[n, c, h, w], &[o, c, 3, 3], &p).unwrap();
    let tol = 1e-5 * (c.max(o) as f64).sqrt();
    let weight = weight_into(backward_weight);
    let passes = ConvPasses {
        forward,
        backward_data: (g.ph <= 2 && g.pw <= 2).then_some(backward_data),
        backward_weight: Some(&weight),
    };
    check_conv_passes(&g, passes, tol, tol * 4.0);
}
