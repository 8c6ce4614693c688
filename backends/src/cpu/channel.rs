//! Fused per-channel kernels (batch normalization): statistics, backward sums and the
//! channel-wise multiply-add, each one pass (two for the variance) over `[N, C, S]` with no
//! temporaries. Sums run in `LANES` independent accumulators of the element type over each
//! contiguous `S` run (so they vectorize; f32 in an AVX-512 build where the CPU has it) and in
//! f64 across runs.

use rayon::prelude::*;
use std::borrow::Cow;
use std::mem::MaybeUninit;

use super::strided::check_extent;
use super::strided::{contiguous_slice, par_build, PAR_THRESHOLD};
use crate::channel::{check_pair, ChannelGeom};
use crate::{CpuStorage, Element, Error, FloatElement, Layout, Result};

const LANES: usize = 16;

/// `Σ f(aᵢ)` over a slice in `LANES` accumulators of the element type (fixed-size chunks, so
/// the loop vectorizes without bounds checks), the lanes and the tail summed in f64.
#[inline(always)]
pub(super) fn lane_sum1<T: FloatElement>(a: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut acc = [T::zero(); LANES];
    let chunks = a.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        let c: &[T; LANES] = c.try_into().expect("exact chunk");
        for k in 0..LANES {
            acc[k] += f(c[k]);
        }
    }
    let mut total: f64 = acc.iter().map(|&v| Element::to_f64(v)).sum();
    for &v in rest {
        total += Element::to_f64(f(v));
    }
    total
}

/// `Σ f(aᵢ, bᵢ)` over two equally long slices, as [`lane_sum1`].
#[inline(always)]
pub(super) fn lane_sum2<T: FloatElement>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let x: &[T; LANES] = x.try_into().expect("exact chunk");
        let y: &[T; LANES] = y.try_into().expect("exact chunk");
        for k in 0..LANES {
            acc[k] += f(x[k], y[k]);
        }
    }
    let mut total: f64 = acc.iter().map(|&v| Element::to_f64(v)).sum();
    for (&x, &y) in ra.iter().zip(rb) {
        total += Element::to_f64(f(x, y));
    }
    total
}

/// What one run of a channel multiply-add adds to `x·a + d`.
#[derive(Clone, Copy)]
pub(super) enum Term<'a, T> {
    /// Nothing.
    None,
    /// `y·b`.
    Scaled(&'a [T], T),
    /// `y·b` where the gate passes `x`, else nothing (the activation's mask recomputed).
    Gated(&'a [T], T, Gate<T>),
}

/// A recomputed activation mask: passes `x` where `p = x·s + t > 0`, and also `p < 6` when
/// `relu6` (ReLU's and ReLU6's backward, from the forward pass's scale and shift).
#[derive(Clone, Copy)]
pub(super) struct Gate<T> {
    /// The forward pass's per-channel scale.
    s: T,
    /// The forward pass's per-channel shift.
    t: T,
    /// Whether the activation was ReLU6 (else ReLU).
    relu6: bool,
}

/// The activation that ends a channel multiply-add run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Clip {
    /// None.
    None,
    /// `max(y, 0)`.
    Relu,
    /// `min(max(y, 0), 6)`.
    Relu6,
}

/// One channel's run of [`Backend::channel_fma`](crate::Backend::channel_fma) and its relatives
/// into `dst`: `x·a + d` plus the term, then the clip (none with a gated term).
type FmaRun<T> = for<'a> fn(&mut [MaybeUninit<T>], &[T], (T, T), Term<'a, T>, Clip);

/// `(Σ ĝ, Σ ĝ (x − m))` of a run of the gradient `g` and the input `x`, given `m`, where
/// `ĝ = g`, or with a gate, `g` where the gate passes `x` and 0 elsewhere.
type GradSums<T> = fn(&[T], &[T], T, Option<Gate<T>>) -> (f64, f64);

/// The per-run sums of batch norm, for f32 built with AVX-512 where the CPU has it (16 lanes
/// per accumulator step); f64 keeps the default build.
pub(super) trait RunSums: FloatElement {
    /// `(Σ v, Σ (v − m)²)` of a run, the mean `m` from the first sum.
    const MOMENTS: fn(&[Self]) -> Moments = moments_of::<Self>;
    /// See [`GradSums`].
    const GRAD_SUMS: GradSums<Self> = grad_sums_of::<Self>;
    /// See [`FmaRun`].
    const FMA_RUN: FmaRun<Self> = fma_run_of::<Self>;
}

impl RunSums for f64 {}

impl RunSums for f32 {
    const MOMENTS: fn(&[f32]) -> Moments = moments_f32;
    const GRAD_SUMS: GradSums<f32> = grad_sums_f32;
    const FMA_RUN: FmaRun<f32> = fma_run_f32;
}

f32_avx512!(
    /// [`moments_of`] for f32.
    fn moments_f32(run: &[f32]) -> Moments => moments_of
);
f32_avx512!(
    /// [`grad_sums_of`] for f32.
    fn grad_sums_f32(g: &[f32], x: &[f32], m: f32, gate: Option<Gate<f32>>) -> (f64, f64) => grad_sums_of
);
f32_avx512!(
    /// [`fma_run_of`] for f32.
    fn fma_run_f32(dst: &mut [MaybeUninit<f32>], x: &[f32], ad: (f32, f32), term: Term<'_, f32>, clip: Clip) => fma_run_of
);

/// See [`RunSums::MOMENTS`].
#[inline(always)]
fn moments_of<T: FloatElement>(run: &[T]) -> Moments {
    let count = run.len() as f64;
    let mean = lane_sum1(run, |v| v) / count;
    let m = T::from_f64(mean);
    let ss = lane_sum1(run, |v| (v - m) * (v - m));
    // Deviations were taken from the rounded mean: correct for the residual shift.
    let shift = mean - Element::to_f64(m);
    Moments { count, mean, m2: (ss - count * shift * shift).max(0.0) }
}

/// See [`FmaRun`]. The pre-activation is `x·a + d` rounded as written (no fused multiply-add),
/// so that [`Term::Gated`] recomputes the forward pass's mask exactly.
#[inline(always)]
fn fma_run_of<T: FloatElement>(dst: &mut [MaybeUninit<T>], x: &[T], ad: (T, T), term: Term<'_, T>, clip: Clip) {
    let (zero, six) = (T::zero(), T::from_f64(6.0));
    // `NaN` stays `NaN` (no comparison holds), as in the unary ReLU and ReLU6 kernels.
    match clip {
        Clip::None => fma_run_clipped(dst, x, ad, term, |y| y),
        Clip::Relu => fma_run_clipped(dst, x, ad, term, |y| if y < zero { zero } else { y }),
        Clip::Relu6 => fma_run_clipped(dst, x, ad, term, |y| {
            if y < zero {
                zero
            } else if y > six {
                six
            } else {
                y
            }
        }),
    }
}

/// [`fma_run_of`] with the clip as a function (one loop per clip, so each vectorizes).
#[inline(always)]
fn fma_run_clipped<T: FloatElement>(
    dst: &mut [MaybeUninit<T>],
    x: &[T],
    (a, d): (T, T),
    term: Term<'_, T>,
    clip: impl Fn(T) -> T,
) {
    let zero = T::zero();
    match term {
        Term::None => dst.iter_mut().zip(x).for_each(|(o, &v)| {
            o.write(clip(v * a + d));
        }),
        Term::Scaled(y, b) => dst.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (&v, &w))| {
            o.write(clip(v * a + d + w * b));
        }),
        Term::Gated(y, b, gate) => {
            let (s, t, six) = (gate.s, gate.t, T::from_f64(6.0));
            if gate.relu6 {
                dst.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (&v, &w))| {
                    let p = v * s + t;
                    o.write(clip(v * a + d + if (p > zero) & (p < six) { w * b } else { zero }));
                })
            } else {
                dst.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (&v, &w))| {
                    o.write(clip(v * a + d + if v * s + t > zero { w * b } else { zero }));
                })
            }
        }
    }
}

/// See [`GradSums`].
#[inline(always)]
fn grad_sums_of<T: FloatElement>(g: &[T], x: &[T], m: T, gate: Option<Gate<T>>) -> (f64, f64) {
    let (zero, six) = (T::zero(), T::from_f64(6.0));
    match gate {
        None => (lane_sum1(g, |v| v), lane_sum2(g, x, |g, x| g * (x - m))),
        Some(Gate { s, t, relu6: false }) => {
            let pass = |g: T, x: T| if x * s + t > zero { g } else { zero };
            (lane_sum2(g, x, pass), lane_sum2(g, x, |g, x| pass(g, x) * (x - m)))
        }
        Some(Gate { s, t, relu6: true }) => {
            let pass = |g: T, x: T| {
                let p = x * s + t;
                if (p > zero) & (p < six) {
                    g
                } else {
                    zero
                }
            };
            (lane_sum2(g, x, pass), lane_sum2(g, x, |g, x| pass(g, x) * (x - m)))
        }
    }
}

/// Images per block of the per-channel reductions. Blocks are fixed (not one per thread) and
/// merged in order, so the results do not depend on the thread count.
const BLOCK_IMAGES: usize = 4;

/// Per-channel partials `A` of a `[N, C, S]` tensor read in memory order: `run(acc, n, c)`
/// folds the run of image `n`, channel `c` into that channel's partial of the run's block of
/// images; blocks run in parallel when the tensor is large and are merged in order.
fn fold_channels<A: Clone + Send + Sync>(
    g: &ChannelGeom,
    zero: A,
    run: impl Fn(&mut A, usize, usize) + Sync + Send,
    merge: impl Fn(&mut A, &A),
) -> Vec<A> {
    let block = |b: usize| {
        let mut acc = vec![zero.clone(); g.c];
        for n in b * BLOCK_IMAGES..((b + 1) * BLOCK_IMAGES).min(g.n) {
            for (c, a) in acc.iter_mut().enumerate() {
                run(a, n, c);
            }
        }
        acc
    };
    let blocks = g.n.div_ceil(BLOCK_IMAGES);
    let parts: Vec<Vec<A>> = if g.n * g.c * g.s >= PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        (0..blocks).into_par_iter().map(block).collect()
    } else {
        (0..blocks).map(block).collect()
    };
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![zero; g.c]);
    for p in parts {
        for (t, v) in total.iter_mut().zip(&p) {
            merge(t, v);
        }
    }
    total
}

/// Count, mean and sum of squared deviations of a set of values.
#[derive(Clone, Copy)]
pub(super) struct Moments {
    count: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// The moments of no values.
    const ZERO: Moments = Moments { count: 0.0, mean: 0.0, m2: 0.0 };

    /// Chan et al.'s merge of two sets' moments.
    fn merge(&mut self, o: &Moments) {
        let count = self.count + o.count;
        if count == 0.0 {
            return;
        }
        let delta = o.mean - self.mean;
        self.mean += delta * o.count / count;
        self.m2 += o.m2 + delta * delta * self.count * o.count / count;
        self.count = count;
    }
}

/// The `[C]` vector `v` as a slice of `T`, or an error naming `op` and `what`.
fn vector<'a, T: FloatElement>(op: &'static str, what: &str, v: &'a CpuStorage, c: usize) -> Result<&'a [T]> {
    let s = v.as_slice::<T>().ok_or_else(|| {
        Error::invalid(op, format!("{what} must have the input's dtype {}, got {}", T::DTYPE, v.dtype()))
    })?;
    if s.len() != c {
        return Err(Error::invalid(op, format!("{what} must have {c} elements (one per channel), got {}", s.len())));
    }
    Ok(s)
}

fn stats_typed<T: RunSums>(x: &[T], l: &Layout) -> Result<(CpuStorage, CpuStorage)> {
    let g = ChannelGeom::of("channel_stats", l)?;
    let x = contiguous_slice(x, l);
    let stats = fold_channels(
        &g,
        Moments::ZERO,
        |acc, n, c| acc.merge(&(T::MOMENTS)(&x[(n * g.c + c) * g.s..(n * g.c + c + 1) * g.s])),
        Moments::merge,
    );
    let (mean, var): (Vec<T>, Vec<T>) =
        stats.iter().map(|m| (T::from_f64(m.mean), T::from_f64(m.m2 / m.count.max(1.0)))).unzip();
    Ok((T::into_cpu(mean), T::into_cpu(var)))
}

fn sums_typed<T: RunSums>(
    op: &'static str,
    gr: &[T],
    lg: &Layout,
    x: &[T],
    lx: &Layout,
    mean: &CpuStorage,
    gate: Option<((&CpuStorage, &CpuStorage), bool)>,
) -> Result<(CpuStorage, CpuStorage)> {
    let g = check_pair(op, lg, lx)?;
    let mean = vector::<T>(op, "mean", mean, g.c)?;
    let gate = match gate {
        Some(((gs, gd), relu6)) => {
            Some((vector::<T>(op, "gate scale", gs, g.c)?, vector::<T>(op, "gate shift", gd, g.c)?, relu6))
        }
        None => None,
    };
    let (gr, x) = (contiguous_slice(gr, lg), contiguous_slice(x, lx));
    let sums = fold_channels(
        &g,
        (0.0, 0.0),
        |(sg, sgx), n, c| {
            let (m, o) = (mean[c], (n * g.c + c) * g.s);
            let (gr, x) = (&gr[o..o + g.s], &x[o..o + g.s]);
            let (a, b) = (T::GRAD_SUMS)(gr, x, m, gate.map(|(s, t, relu6)| Gate { s: s[c], t: t[c], relu6 }));
            *sg += a;
            *sgx += b;
        },
        |(sg, sgx), (bg, bgx)| {
            *sg += bg;
            *sgx += bgx;
        },
    );
    let (sg, sgx): (Vec<T>, Vec<T>) = sums.into_iter().map(|(a, b)| (T::from_f64(a), T::from_f64(b))).unzip();
    Ok((T::into_cpu(sg), T::into_cpu(sgx)))
}

/// The second operand of a channel multiply-add, as the backend ops receive it.
#[derive(Clone, Copy)]
enum Second<'a> {
    /// None.
    None,
    /// `+ y·y_scale[c]`: `(y, its layout, y_scale)`.
    Scaled(&'a CpuStorage, &'a Layout, &'a CpuStorage),
    /// `+ r`: `(r, its layout)`.
    Residual(&'a CpuStorage, &'a Layout),
    /// `+ y·y_scale[c]` gated by `p = x·gate.0[c] + gate.1[c] > 0` (and `p < 6` when the
    /// flag, ReLU6, is set).
    Gated(&'a CpuStorage, &'a Layout, &'a CpuStorage, (&'a CpuStorage, &'a CpuStorage), bool),
}

/// The second operand's elements of `T` in `x`'s logical order, checked against `x`'s layout.
fn second_slice<'a, T: FloatElement>(
    op: &'static str,
    y: &'a CpuStorage,
    ly: &Layout,
    lx: &Layout,
) -> Result<Cow<'a, [T]>> {
    check_pair(op, ly, lx)?;
    check_extent(op, y, ly)?;
    let yv = y.as_slice::<T>().ok_or_else(|| {
        Error::invalid(op, format!("the second operand must have the input's dtype {}, got {}", T::DTYPE, y.dtype()))
    })?;
    Ok(contiguous_slice(yv, ly))
}

fn fma_typed<T: RunSums>(
    op: &'static str,
    x: &[T],
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
    second: Second<'_>,
    clip: Clip,
) -> Result<CpuStorage> {
    let g = ChannelGeom::of(op, lx)?;
    let scale = vector::<T>(op, "scale", scale, g.c)?;
    let shift = vector::<T>(op, "shift", shift, g.c)?;
    let x = contiguous_slice(x, lx);
    // (the second operand, its per-channel scale, the gate's scale, shift and ReLU6 flag)
    type Parts<'a, T> = (Cow<'a, [T]>, Option<&'a [T]>, Option<(&'a [T], &'a [T], bool)>);
    let parts: Option<Parts<'_, T>> = match second {
        Second::None => None,
        Second::Scaled(y, ly, ys) => {
            Some((second_slice(op, y, ly, lx)?, Some(vector::<T>(op, "y_scale", ys, g.c)?), None))
        }
        Second::Residual(r, lr) => Some((second_slice(op, r, lr, lx)?, None, None)),
        Second::Gated(y, ly, ys, (gs, gd), relu6) => Some((
            second_slice(op, y, ly, lx)?,
            Some(vector::<T>(op, "g_scale", ys, g.c)?),
            Some((vector::<T>(op, "gate scale", gs, g.c)?, vector::<T>(op, "gate shift", gd, g.c)?, relu6)),
        )),
    };
    let s = g.s.max(1);
    // SAFETY: the runs of each chunk cover it end to end, and each run writes all of `dst`.
    let out = unsafe {
        par_build(x.len(), |chunk, start| {
            let end = start + chunk.len();
            let mut pos = start;
            // Walk the chunk one (image, channel) run at a time.
            while pos < end {
                let row = pos / s;
                let c = row % g.c;
                let run_end = ((row + 1) * s).min(end);
                let dst = &mut chunk[pos - start..run_end - start];
                let src = &x[pos..run_end];
                let term = match &parts {
                    None => Term::None,
                    Some((y, ys, gate)) => {
                        let (y, b) = (&y[pos..run_end], ys.map_or(T::one(), |ys| ys[c]));
                        match gate {
                            Some((gs, gd, relu6)) => Term::Gated(y, b, Gate { s: gs[c], t: gd[c], relu6: *relu6 }),
                            None => Term::Scaled(y, b),
                        }
                    }
                };
                (T::FMA_RUN)(dst, src, (scale[c], shift[c]), term, clip);
                pos = run_end;
            }
        })
    };
    Ok(T::into_cpu(out))
}

/// Runs `$body` with `$v` bound to a float storage's slice and `$T` to its element type, or
/// returns an unsupported-dtype error naming `$op`.
macro_rules! float_only {
    ($op:expr, $s:expr, $v:ident, $T:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($v) => {
                type $T = f32;
                $body
            }
            CpuStorage::F64($v) => {
                type $T = f64;
                $body
            }
            other => Err(Error::UnsupportedDType { op: $op, dtype: other.dtype() }),
        }
    };
}
pub(super) use float_only;

/// See [`crate::Backend::channel_stats`].
pub(crate) fn channel_stats(x: &CpuStorage, l: &Layout) -> Result<(CpuStorage, CpuStorage)> {
    check_extent("channel_stats", x, l)?;
    float_only!("channel_stats", x, v, T => stats_typed::<T>(v, l))
}

/// See [`crate::Backend::channel_sums`] and [`crate::Backend::channel_sums_gated`] (`gate`).
fn sums(
    op: &'static str,
    g: &CpuStorage,
    lg: &Layout,
    x: &CpuStorage,
    lx: &Layout,
    mean: &CpuStorage,
    gate: Option<((&CpuStorage, &CpuStorage), bool)>,
) -> Result<(CpuStorage, CpuStorage)> {
    check_extent(op, g, lg)?;
    check_extent(op, x, lx)?;
    float_only!(op, g, gv, T => {
        let xv = x.as_slice::<T>().ok_or(Error::DTypeMismatch { op, lhs: g.dtype(), rhs: x.dtype() })?;
        sums_typed::<T>(op, gv, lg, xv, lx, mean, gate)
    })
}

/// See [`crate::Backend::channel_sums`].
pub(crate) fn channel_sums(
    g: &CpuStorage,
    lg: &Layout,
    x: &CpuStorage,
    lx: &Layout,
    mean: &CpuStorage,
) -> Result<(CpuStorage, CpuStorage)> {
    sums("channel_sums", g, lg, x, lx, mean, None)
}

/// See [`crate::Backend::channel_sums_gated`].
pub(crate) fn channel_sums_gated(
    g: &CpuStorage,
    lg: &Layout,
    x: &CpuStorage,
    lx: &Layout,
    mean: &CpuStorage,
    gate: (&CpuStorage, &CpuStorage),
    relu6: bool,
) -> Result<(CpuStorage, CpuStorage)> {
    sums("channel_sums_gated", g, lg, x, lx, mean, Some((gate, relu6)))
}

/// The channel multiply-adds: `x·scale[c] + shift[c]` plus the second operand, then the
/// clip.
fn fma(
    op: &'static str,
    x: &CpuStorage,
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
    second: Second<'_>,
    clip: Clip,
) -> Result<CpuStorage> {
    check_extent(op, x, lx)?;
    float_only!(op, x, v, T => fma_typed::<T>(op, v, lx, scale, shift, second, clip))
}

/// See [`crate::Backend::channel_fma`].
pub(crate) fn channel_fma(
    x: &CpuStorage,
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
    extra: Option<(&CpuStorage, &Layout, &CpuStorage)>,
) -> Result<CpuStorage> {
    let second = extra.map_or(Second::None, |(y, ly, ys)| Second::Scaled(y, ly, ys));
    fma("channel_fma", x, lx, scale, shift, second, Clip::None)
}

/// See [`crate::Backend::channel_fma_relu`].
pub(crate) fn channel_fma_relu(
    x: &CpuStorage,
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
    residual: Option<(&CpuStorage, &Layout)>,
    relu6: bool,
) -> Result<CpuStorage> {
    let second = residual.map_or(Second::None, |(r, lr)| Second::Residual(r, lr));
    let clip = if relu6 { Clip::Relu6 } else { Clip::Relu };
    fma("channel_fma_relu", x, lx, scale, shift, second, clip)
}

/// See [`crate::Backend::channel_fma_gated`].
pub(crate) fn channel_fma_gated(
    x: &CpuStorage,
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
    (g, lg, g_scale): (&CpuStorage, &Layout, &CpuStorage),
    gate: (&CpuStorage, &CpuStorage),
    relu6: bool,
) -> Result<CpuStorage> {
    fma("channel_fma_gated", x, lx, scale, shift, Second::Gated(g, lg, g_scale, gate, relu6), Clip::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{
        fma_composite, fma_gated_composite, fma_relu_composite, stats_composite, sums_composite, sums_gated_composite,
    };
    use crate::CpuBackend;

    /// A `[N, C, H, W]` f64 tensor with a per-channel offset (so the centering matters) and its
    /// layout; when `strided`, a `[N, C, W, H]` buffer viewed transposed (non-contiguous).
    fn input(n: usize, c: usize, h: usize, w: usize, seed: u64, strided: bool) -> (CpuStorage, Layout) {
        let len = n * c * h * w;
        let v: Vec<f64> = (0..len)
            .map(|i| {
                let r = ((i as u64 + 1).wrapping_mul(6364136223846793005).wrapping_add(seed) >> 33) as f64;
                (r / (1u64 << 31) as f64) - 0.5 + 10.0 * ((i / (h * w)) % c) as f64
            })
            .collect();
        let l = if strided {
            Layout::contiguous(&[n, c, w, h]).transpose(2, 3).unwrap()
        } else {
            Layout::contiguous(&[n, c, h, w])
        };
        (CpuStorage::F64(v), l)
    }

    fn f64s(s: &CpuStorage) -> Vec<f64> {
        s.to_f64_vec()
    }

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// Naive per-channel loops over the logical `[N, C, H, W]` elements.
    fn naive(s: &CpuStorage, l: &Layout) -> Vec<Vec<f64>> {
        let v = f64s(s);
        let sh = l.shape();
        let st = l.strides();
        let mut per = vec![Vec::new(); sh[1]];
        for n in 0..sh[0] {
            for c in 0..sh[1] {
                for h in 0..sh[2] {
                    for w in 0..sh[3] {
                        per[c].push(v[l.offset() + n * st[0] + c * st[1] + h * st[2] + w * st[3]]);
                    }
                }
            }
        }
        per
    }

    #[test]
    fn stats_match_a_naive_loop_and_the_composite() {
        for &(n, c, h, w, strided) in
            &[(2, 3, 5, 7, false), (3, 4, 6, 6, true), (5, 2, 1, 1, false), (64, 16, 8, 8, false)]
        {
            let (x, l) = input(n, c, h, w, 7, strided);
            let (mean, var) = channel_stats(&x, &l).unwrap();
            let per = naive(&x, &l);
            let m: Vec<f64> = per.iter().map(|v| v.iter().sum::<f64>() / v.len() as f64).collect();
            let vv: Vec<f64> = per
                .iter()
                .zip(&m)
                .map(|(v, m)| v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64)
                .collect();
            close(&f64s(&mean), &m, 1e-12);
            close(&f64s(&var), &vv, 1e-10);
            let (cm, cv) = stats_composite(&CpuBackend, &x, &l).unwrap();
            close(&f64s(&mean), &f64s(&cm), 1e-12);
            close(&f64s(&var), &f64s(&cv), 1e-10);
        }
    }

    #[test]
    fn f32_stats_keep_precision_on_offset_channels() {
        let (x, l) = input(8, 4, 16, 16, 3, false);
        let x32 = CpuStorage::F32(f64s(&x).iter().map(|&v| v as f32).collect());
        let (m64, v64) = channel_stats(&CpuStorage::F64(f64s(&x32)), &l).unwrap();
        let (m32, v32) = channel_stats(&x32, &l).unwrap();
        close(&f64s(&m32), &f64s(&m64), 1e-6);
        close(&f64s(&v32), &f64s(&v64), 1e-5);
    }

    #[test]
    fn sums_match_a_naive_loop_and_the_composite() {
        for &(n, c, h, w, strided) in &[(2, 3, 5, 7, true), (4, 5, 3, 2, false), (32, 16, 8, 8, false)] {
            let (x, lx) = input(n, c, h, w, 1, strided);
            let (g, lg) = input(n, c, h, w, 2, !strided);
            let mean = CpuStorage::F64((0..c).map(|i| 10.0 * i as f64 + 0.1).collect());
            let (sg, sgx) = channel_sums(&g, &lg, &x, &lx, &mean).unwrap();
            let (pg, px) = (naive(&g, &lg), naive(&x, &lx));
            let m = f64s(&mean);
            let want_g: Vec<f64> = pg.iter().map(|v| v.iter().sum()).collect();
            let want_gx: Vec<f64> =
                (0..c).map(|k| pg[k].iter().zip(&px[k]).map(|(g, x)| g * (x - m[k])).sum()).collect();
            close(&f64s(&sg), &want_g, 1e-11);
            close(&f64s(&sgx), &want_gx, 1e-11);
            let (cg, cgx) = sums_composite(&CpuBackend, &g, &lg, &x, &lx, &mean).unwrap();
            close(&f64s(&sg), &f64s(&cg), 1e-11);
            close(&f64s(&sgx), &f64s(&cgx), 1e-11);
        }
    }

    #[test]
    fn fma_matches_the_composite_with_and_without_a_second_term_relu_and_relu6() {
        for &(n, c, h, w, strided) in &[(2, 3, 5, 7, true), (3, 2, 1, 1, false), (64, 16, 8, 8, false)] {
            let (x, lx) = input(n, c, h, w, 4, strided);
            let (y, ly) = input(n, c, h, w, 5, !strided);
            let vecs = |k: f64| CpuStorage::F64((0..c).map(|i| k * (i as f64 - 1.3)).collect());
            let (a, d, b) = (vecs(0.7), vecs(-2.0), vecs(1.9));
            for extra in [None, Some((&y, &ly, &b))] {
                let got = channel_fma(&x, &lx, &a, &d, extra).unwrap();
                let want = fma_composite(&CpuBackend, &x, &lx, &a, &d, extra).unwrap();
                close(&f64s(&got), &f64s(&want), 1e-14);
            }
            for relu6 in [false, true] {
                for residual in [None, Some((&y, &ly))] {
                    let got = f64s(&channel_fma_relu(&x, &lx, &a, &d, residual, relu6).unwrap());
                    let want = fma_relu_composite(&CpuBackend, &x, &lx, &a, &d, residual, relu6).unwrap();
                    assert_eq!(got, f64s(&want));
                    // (The residual's channel offsets lift every output above zero.)
                    assert!(residual.is_some() || got.contains(&0.0));
                    // ReLU6 caps at 6 and keeps the values between.
                    assert_eq!(got.contains(&6.0), relu6 && (n * c * h * w > 6 || residual.is_some()));
                    assert!(got.iter().any(|&v| v > 0.0 && v < 6.0));
                }
                // Gated by the pre-activation `x·a + d`: the fused kernels and the composites
                // agree to the bit on the mask (elementwise ties would show as a large
                // difference).
                let mean = vecs(0.3);
                let got = channel_sums_gated(&y, &ly, &x, &lx, &mean, (&a, &d), relu6).unwrap();
                let want = sums_gated_composite(&CpuBackend, &y, &ly, &x, &lx, &mean, (&a, &d), relu6).unwrap();
                close(&f64s(&got.0), &f64s(&want.0), 1e-11);
                close(&f64s(&got.1), &f64s(&want.1), 1e-11);
                let got = channel_fma_gated(&x, &lx, &b, &mean, (&y, &ly, &d), (&a, &d), relu6).unwrap();
                let want =
                    fma_gated_composite(&CpuBackend, &x, &lx, &b, &mean, (&y, &ly, &d), (&a, &d), relu6).unwrap();
                close(&f64s(&got), &f64s(&want), 1e-14);
            }
            // And against a naive loop in logical order (the composite shares no code with it).
            let got = f64s(&channel_fma(&x, &lx, &a, &d, None).unwrap());
            let px = naive(&x, &lx);
            let (av, dv) = (f64s(&a), f64s(&d));
            let per = h * w;
            for (i, v) in got.iter().enumerate() {
                let (img, ch, k) = (i / (c * per), (i / per) % c, i % per);
                assert!((v - (px[ch][img * per + k] * av[ch] + dv[ch])).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn bad_operands_are_errors_naming_the_op() {
        let (x, l) = input(2, 3, 2, 2, 1, false);
        let short = CpuStorage::F64(vec![1.0; 2]);
        let ok = CpuStorage::F64(vec![1.0; 3]);
        let err = channel_fma(&x, &l, &short, &ok, None).unwrap_err().to_string();
        assert!(err.contains("channel_fma") && err.contains("3 elements"), "{err}");
        let err = channel_stats(&CpuStorage::F64(vec![1.0; 4]), &Layout::contiguous(&[4])).unwrap_err().to_string();
        assert!(err.contains("channel_stats") && err.contains("rank"), "{err}");
        let err = channel_stats(&CpuStorage::I64(vec![1; 4]), &Layout::contiguous(&[2, 2])).unwrap_err().to_string();
        assert!(err.contains("channel_stats") && err.contains("dtype"), "{err}");
        let (g, lg) = input(2, 3, 2, 3, 1, false);
        let err = channel_sums(&g, &lg, &x, &l, &ok).unwrap_err().to_string();
        assert!(err.contains("channel_sums"), "{err}");
        let err = channel_fma_relu(&x, &l, &ok, &ok, Some((&g, &lg)), false).unwrap_err().to_string();
        assert!(err.contains("channel_fma_relu") && err.contains("[2, 3, 2, 3]"), "{err}");
        let err = channel_sums_gated(&x, &l, &x, &l, &ok, (&ok, &short), true).unwrap_err().to_string();
        assert!(err.contains("channel_sums_gated") && err.contains("gate shift"), "{err}");
        let err = channel_fma_gated(&x, &l, &ok, &ok, (&g, &lg, &ok), (&ok, &ok), false).unwrap_err().to_string();
        assert!(err.contains("channel_fma_gated") && err.contains("[2, 3, 2, 3]"), "{err}");
        let x32 = CpuStorage::F32(vec![1.0; 24]);
        let err = channel_fma(&x32, &l, &ok, &ok, None).unwrap_err().to_string();
        assert!(err.contains("dtype"), "{err}");
    }
}
