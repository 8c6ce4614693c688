//! Fused per-channel kernels (batch normalization): statistics, backward sums and the
//! channel-wise multiply-add, each one pass (two for the variance) over `[N, C, S]` with no
//! temporaries. Sums run in `LANES` independent accumulators of the element type over each
//! contiguous `S` run (so they vectorize; f32 in an AVX-512 build where the CPU has it) and in
//! f64 across runs.

use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::copy::check_extent;
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

/// One channel's run of [`Backend::channel_fma`](crate::Backend::channel_fma) (`relu`:
/// [`Backend::channel_fma_relu`](crate::Backend::channel_fma_relu)) into `dst`.
type FmaRun<T> = fn(&mut [MaybeUninit<T>], &[T], (T, T), Option<(&[T], T)>, bool);

/// `(Σ g, Σ g (x − m))` of a run of the gradient `g` and the input `x`, given `m`.
type GradSums<T> = fn(&[T], &[T], T) -> (f64, f64);

/// The per-run sums of batch norm, for f32 built with AVX-512 where the CPU has it (16 lanes
/// per accumulator step); f64 keeps the default build.
pub(super) trait RunSums: FloatElement {
    /// `(Σ v, Σ (v − m)²)` of a run, the mean `m` from the first sum.
    const MOMENTS: fn(&[Self]) -> Moments = moments_of::<Self>;
    /// `(Σ g, Σ g (x − m))` of a run of the gradient `g` and the input `x`.
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
    fn grad_sums_f32(g: &[f32], x: &[f32], m: f32) -> (f64, f64) => grad_sums_of
);
f32_avx512!(
    /// [`fma_run_of`] for f32.
    fn fma_run_f32(
        dst: &mut [MaybeUninit<f32>],
        x: &[f32],
        ad: (f32, f32),
        extra: Option<(&[f32], f32)>,
        relu: bool,
    ) => fma_run_of
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

/// See [`RunSums::FMA_RUN`]: `x·a + d`, plus `y·b` when `extra = (y, b)`, then ReLU when `relu`.
#[inline(always)]
fn fma_run_of<T: FloatElement>(
    dst: &mut [MaybeUninit<T>],
    x: &[T],
    (a, d): (T, T),
    extra: Option<(&[T], T)>,
    relu: bool,
) {
    match extra {
        None if relu => dst.iter_mut().zip(x).for_each(|(o, &v)| {
            let y = v * a + d;
            o.write(if y < T::zero() { T::zero() } else { y });
        }),
        None => dst.iter_mut().zip(x).for_each(|(o, &v)| {
            o.write(v * a + d);
        }),
        Some((y, b)) => dst.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (&v, &w))| {
            o.write(v * a + w * b + d);
        }),
    }
}

/// See [`RunSums::GRAD_SUMS`].
#[inline(always)]
fn grad_sums_of<T: FloatElement>(g: &[T], x: &[T], m: T) -> (f64, f64) {
    (lane_sum1(g, |v| v), lane_sum2(g, x, |g, x| g * (x - m)))
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
    gr: &[T],
    lg: &Layout,
    x: &[T],
    lx: &Layout,
    mean: &CpuStorage,
) -> Result<(CpuStorage, CpuStorage)> {
    let g = check_pair("channel_sums", lg, lx)?;
    let mean = vector::<T>("channel_sums", "mean", mean, g.c)?;
    let (gr, x) = (contiguous_slice(gr, lg), contiguous_slice(x, lx));
    let sums = fold_channels(
        &g,
        (0.0, 0.0),
        |(sg, sgx), n, c| {
            let (m, o) = (mean[c], (n * g.c + c) * g.s);
            let (gr, x) = (&gr[o..o + g.s], &x[o..o + g.s]);
            let (a, b) = (T::GRAD_SUMS)(gr, x, m);
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

fn fma_typed<T: RunSums>(
    x: &[T],
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
    extra: Option<(&CpuStorage, &Layout, &CpuStorage)>,
    relu: bool,
) -> Result<CpuStorage> {
    const OP: &str = "channel_fma";
    let g = ChannelGeom::of(OP, lx)?;
    let scale = vector::<T>(OP, "scale", scale, g.c)?;
    let shift = vector::<T>(OP, "shift", shift, g.c)?;
    let x = contiguous_slice(x, lx);
    let extra = match extra {
        None => None,
        Some((y, ly, ys)) => {
            check_pair(OP, ly, lx)?;
            check_extent(OP, y, ly)?;
            let yv = y.as_slice::<T>().ok_or_else(|| {
                Error::invalid(OP, format!("y must have the input's dtype {}, got {}", T::DTYPE, y.dtype()))
            })?;
            Some((contiguous_slice(yv, ly), vector::<T>(OP, "y_scale", ys, g.c)?))
        }
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
                let extra = extra.as_ref().map(|(y, ys)| (&y[pos..run_end], ys[c]));
                (T::FMA_RUN)(dst, src, (scale[c], shift[c]), extra, relu);
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

/// See [`crate::Backend::channel_sums`].
pub(crate) fn channel_sums(
    g: &CpuStorage,
    lg: &Layout,
    x: &CpuStorage,
    lx: &Layout,
    mean: &CpuStorage,
) -> Result<(CpuStorage, CpuStorage)> {
    check_extent("channel_sums", g, lg)?;
    check_extent("channel_sums", x, lx)?;
    float_only!("channel_sums", g, gv, T => {
        let xv = x.as_slice::<T>().ok_or(Error::DTypeMismatch { op: "channel_sums", lhs: g.dtype(), rhs: x.dtype() })?;
        sums_typed::<T>(gv, lg, xv, lx, mean)
    })
}

/// See [`crate::Backend::channel_fma`].
pub(crate) fn channel_fma(
    x: &CpuStorage,
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
    extra: Option<(&CpuStorage, &Layout, &CpuStorage)>,
) -> Result<CpuStorage> {
    check_extent("channel_fma", x, lx)?;
    float_only!("channel_fma", x, v, T => fma_typed::<T>(v, lx, scale, shift, extra, false))
}

/// See [`crate::Backend::channel_fma_relu`].
pub(crate) fn channel_fma_relu(
    x: &CpuStorage,
    lx: &Layout,
    scale: &CpuStorage,
    shift: &CpuStorage,
) -> Result<CpuStorage> {
    check_extent("channel_fma_relu", x, lx)?;
    float_only!("channel_fma_relu", x, v, T => fma_typed::<T>(v, lx, scale, shift, None, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{fma_composite, fma_relu_composite, stats_composite, sums_composite};
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
    fn fma_matches_the_composite_with_and_without_a_second_term_and_relu() {
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
            let got = channel_fma_relu(&x, &lx, &a, &d).unwrap();
            let want = fma_relu_composite(&CpuBackend, &x, &lx, &a, &d).unwrap();
            assert_eq!(f64s(&got), f64s(&want));
            assert!(f64s(&got).contains(&0.0));
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
        let x32 = CpuStorage::F32(vec![1.0; 24]);
        let err = channel_fma(&x32, &l, &ok, &ok, None).unwrap_err().to_string();
        assert!(err.contains("dtype"), "{err}");
    }
}
