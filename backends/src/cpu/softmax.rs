//! Softmax and log-softmax along one axis, numerically stable (the maximum is subtracted first).

use super::strided::Rows;
use crate::planning::reduce::split_axes;
use crate::{CpuStorage, Error, FloatElement, Layout, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// `e^x` as fast as the element type allows: the vectorizable [`super::fast_math::exp_f32`] for
/// f32 (a few ulp), libm's for f64.
pub(super) trait ExpFast: Copy {
    /// `e^x`.
    fn exp_fast(x: Self) -> Self;
}

impl ExpFast for f32 {
    #[inline(always)]
    fn exp_fast(x: f32) -> f32 {
        super::fast_math::exp_f32(x)
    }
}

impl ExpFast for f64 {
    #[inline(always)]
    fn exp_fast(x: f64) -> f64 {
        x.exp()
    }
}

/// Folds `v` in 16 interleaved lanes (element `i` into lane `i % 16`), then the lanes in order:
/// independent dependency chains instead of one (one vector register of f32 in the AVX-512
/// build), for the max and the sum of a row.
#[inline(always)]
fn lane_fold<T: Copy>(v: &[T], init: T, f: impl Fn(T, T) -> T) -> T {
    let mut lanes = [init; 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l = f(*l, x);
        }
    }
    for (l, &x) in lanes.iter_mut().zip(rest) {
        *l = f(*l, x);
    }
    let mut total = init;
    for l in lanes {
        total = f(total, l);
    }
    total
}

/// Softmax (or log-softmax) of one row in place: subtract the maximum, exponentiate, normalize.
///
/// Plain `for` loops throughout (no `for_each` or `fold` adaptors, which the compiler may leave
/// as calls out of the AVX-512 copy of [`rows_in_place_f32`], and so unvectorized).
#[inline(always)]
fn row_in_place<T: FloatElement + ExpFast>(dst: &mut [T], log: bool) {
    let max = lane_fold(dst, T::neg_infinity(), |a, x| if x > a || x.is_nan() { x } else { a });
    let shift = if max.is_finite() { max } else { T::zero() };
    if !log {
        // Exponentials in their own loop (it vectorizes), then the sum.
        for x in dst.iter_mut() {
            *x = T::exp_fast(*x - shift);
        }
        let sum = lane_fold(dst, T::zero(), |a, e| a + e);
        let inv = T::one() / sum;
        for x in dst.iter_mut() {
            *x = *x * inv;
        }
        return;
    }
    let mut sum = T::zero();
    for x in dst.iter_mut() {
        sum += (*x - shift).exp();
    }
    let lse = sum.ln();
    for x in dst.iter_mut() {
        *x = *x - shift - lse;
    }
}

/// Softmax (not log) of every `block`-long row of `src` into `dst`: each row copied, then
/// [`row_in_place`].
#[inline(always)]
fn rows_softmax_of<T: FloatElement + ExpFast>(src: &[T], dst: &mut [MaybeUninit<T>], block: usize) {
    for (s, d) in src.chunks_exact(block).zip(dst.chunks_exact_mut(block)) {
        for (o, &x) in d.iter_mut().zip(s) {
            o.write(x);
        }
        // SAFETY: every element of the row was just written.
        let d = unsafe { &mut *(d as *mut [MaybeUninit<T>] as *mut [T]) };
        row_in_place(d, false);
    }
}

/// [`rows_softmax_of`] for f32: the AVX-512 intrinsics kernel
/// ([`super::softmax_avx512::rows`]) where the CPU has AVX-512F.
fn rows_softmax_f32(src: &[f32], dst: &mut [MaybeUninit<f32>], block: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::isa::use_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { super::softmax_avx512::rows(src, dst, block) };
    }
    rows_softmax_of(src, dst, block)
}

/// [`row_in_place`] for every `block`-long row of `rows`.
#[inline(always)]
fn rows_in_place_of<T: FloatElement + ExpFast>(rows: &mut [T], block: usize, log: bool) {
    for r in rows.chunks_mut(block) {
        row_in_place(r, log);
    }
}

f32_avx512!(
    /// [`rows_in_place_of`] for f32 (16 lanes for the maximum, the exponentials and the scaling
    /// in the AVX-512 build).
    fn rows_in_place_f32(rows: &mut [f32], block: usize, log: bool) => rows_in_place_of
);

/// Softmax over rows of `T` in place ([`rows_in_place_of`]), for f32 built with AVX-512
/// where the CPU has it.
pub(super) trait RowsInPlace: FloatElement + ExpFast {
    const ROWS_IN_PLACE: fn(&mut [Self], usize, bool) = rows_in_place_of::<Self>;
    /// Softmax (not log) of rows out of place ([`rows_softmax_of`]).
    const ROWS_SOFTMAX: fn(&[Self], &mut [MaybeUninit<Self>], usize) = rows_softmax_of::<Self>;
}

impl RowsInPlace for f64 {}

impl RowsInPlace for f32 {
    const ROWS_IN_PLACE: fn(&mut [f32], usize, bool) = rows_in_place_f32;
    const ROWS_SOFTMAX: fn(&[f32], &mut [MaybeUninit<f32>], usize) = rows_softmax_f32;
}

/// Softmax (not log) of each `block`-long row of `rows`, in place.
pub(super) fn softmax_rows_in_place<T: RowsInPlace>(rows: &mut [T], block: usize) {
    (T::ROWS_IN_PLACE)(rows, block, false)
}

/// Rows per parallel task of the contiguous path.
const ROWS_PER_TASK: usize = 64;

/// A new vector of `n` elements (whole `block`-long rows) filled by `f(range, out)` over runs of
/// [`ROWS_PER_TASK`] rows, `range` being the run's place in the vector; in parallel when `n`
/// is large.
///
/// # Safety
/// `f` must initialize every element of the `out` it is given.
unsafe fn build_rows<T: Send>(
    n: usize,
    block: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let task = block * ROWS_PER_TASK;
    let fill = |out: &mut [MaybeUninit<T>]| {
        if out.len() >= super::strided::PAR_THRESHOLD {
            out.par_chunks_mut(task).enumerate().for_each(|(i, o)| f(i * task..i * task + o.len(), o));
        } else {
            f(0..out.len(), out);
        }
    };
    // SAFETY: the caller's `f` initializes every chunk, and the chunks cover the vector.
    unsafe { super::strided::build(n, fill) }
}

/// The input gradient of one row from the output row `y` and the output gradient `g`:
/// softmax `y·(g − Σ g·y)`, log-softmax `g − e^y·Σ g`.
#[inline(always)]
fn row_backward<T: FloatElement + ExpFast>(y: &[T], g: &[T], out: &mut [MaybeUninit<T>], log: bool) {
    if log {
        let total = lane_fold(g, T::zero(), |a, x| a + x);
        for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
            o.write(g - T::exp_fast(y) * total);
        }
        return;
    }
    let mut lanes = [T::zero(); 8];
    let (yc, gc) = (y.chunks_exact(8), g.chunks_exact(8));
    let (yr, gr) = (yc.remainder(), gc.remainder());
    for (y8, g8) in yc.zip(gc) {
        for k in 0..8 {
            lanes[k] += y8[k] * g8[k];
        }
    }
    for (k, (&y, &g)) in yr.iter().zip(gr).enumerate() {
        lanes[k] += y * g;
    }
    let dot = lanes.into_iter().fold(T::zero(), |a, x| a + x);
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
        o.write(y * (g - dot));
    }
}

/// [`row_backward`] for every `block`-long row.
#[inline(always)]
fn rows_backward_of<T: FloatElement + ExpFast>(y: &[T], g: &[T], out: &mut [MaybeUninit<T>], block: usize, log: bool) {
    for ((y, g), o) in y.chunks(block).zip(g.chunks(block)).zip(out.chunks_mut(block)) {
        row_backward(y, g, o, log);
    }
}

f32_avx512!(
    /// [`rows_backward_of`] for f32.
    fn rows_backward_f32(y: &[f32], g: &[f32], out: &mut [MaybeUninit<f32>], block: usize, log: bool) => rows_backward_of
);

/// A softmax backward over rows of `T` ([`rows_backward_of`]).
type RowsBackwardFn<T> = fn(&[T], &[T], &mut [MaybeUninit<T>], usize, bool);

/// Softmax backward over rows of `T`, for f32 built with AVX-512 where the CPU has it.
pub(super) trait RowsBackward: RowsInPlace {
    const ROWS_BACKWARD: RowsBackwardFn<Self> = rows_backward_of::<Self>;
}

impl RowsBackward for f64 {}

impl RowsBackward for f32 {
    const ROWS_BACKWARD: RowsBackwardFn<f32> = rows_backward_f32;
}

/// The softmax backward `y·(g − Σ g·y)` of each `block`-long row of `y` and `g` into `out` (same
/// length), by the row kernel of [`RowsBackward`].
pub(super) fn softmax_backward_rows<T: RowsBackward>(y: &[T], g: &[T], out: &mut [T], block: usize) {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the kernel only writes initialized values.
    let out = unsafe { &mut *(out as *mut [T] as *mut [MaybeUninit<T>]) };
    (T::ROWS_BACKWARD)(y, g, out, block, false)
}

/// The fused softmax backward over contiguous rows along the last axis; `None` for other
/// views and axes (the caller falls back to the composite).
fn backward_rows<T: RowsBackward>(
    y: &[T],
    ly: &Layout,
    g: &[T],
    lg: &Layout,
    axis: usize,
    log: bool,
) -> Option<Vec<T>> {
    if axis + 1 != ly.ndim() {
        return None;
    }
    let (y, g) = (&y[ly.contiguous_range()?], &g[lg.contiguous_range()?]);
    let block = ly.shape()[axis];
    if block == 0 || y.is_empty() {
        return Some(vec![]);
    }
    // SAFETY: every row of the output is written by `row_backward`.
    Some(unsafe { build_rows(y.len(), block, |r, o| (T::ROWS_BACKWARD)(&y[r.clone()], &g[r], o, block, log)) })
}

/// See [`crate::Backend::softmax_backward`]: the fused kernel for contiguous f32/f64 rows along
/// the last axis, `None` where it does not apply (the backend composes the op then).
pub(crate) fn softmax_backward(
    y: &CpuStorage,
    ly: &Layout,
    g: &CpuStorage,
    lg: &Layout,
    axis: usize,
    log: bool,
) -> Result<Option<CpuStorage>> {
    const OP: &str = "softmax_backward";
    crate::softmax_grad::check(OP, ly, lg, axis)?;
    super::strided::check_extent(OP, y, ly)?;
    super::strided::check_extent(OP, g, lg)?;
    match (y, g) {
        (CpuStorage::F32(y), CpuStorage::F32(g)) => Ok(backward_rows(y, ly, g, lg, axis, log).map(CpuStorage::F32)),
        (CpuStorage::F64(y), CpuStorage::F64(g)) => Ok(backward_rows(y, ly, g, lg, axis, log).map(CpuStorage::F64)),
        _ if y.dtype() != g.dtype() => Err(Error::DTypeMismatch { op: OP, lhs: y.dtype(), rhs: g.dtype() }),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: y.dtype() }),
    }
}

fn softmax_typed<T: RowsInPlace>(v: &[T], l: &Layout, axis: usize, log: bool) -> Result<Vec<T>> {
    let (pl, n_out, block, _) = split_axes("softmax", l, &[axis], true)?;
    if block == 0 {
        return Ok(vec![]);
    }
    if axis == l.ndim() - 1 {
        if let Some(range) = l.contiguous_range() {
            let v = &v[range];
            if !log {
                // Rows already in place (the attention scores): straight into the output.
                // SAFETY: `ROWS_SOFTMAX` writes every element of each row.
                return Ok(unsafe { build_rows(v.len(), block, |r, o| (T::ROWS_SOFTMAX)(&v[r], o, block)) });
            }
            // Log-softmax: copy, then work in place.
            let mut out = v.to_vec();
            if out.len() >= super::strided::PAR_THRESHOLD {
                out.par_chunks_mut(block * ROWS_PER_TASK).for_each(|c| (T::ROWS_IN_PLACE)(c, block, log));
            } else {
                (T::ROWS_IN_PLACE)(&mut out, block, log);
            }
            return Ok(out);
        }
    }
    // Work in the permuted order (axis last), then scatter back to the input's row-major order.
    let rows = Rows::new([&pl]);
    let mut perm_out = vec![T::zero(); n_out * block];
    let body = |(o, dst): (usize, &mut [T])| {
        let mut i = 0;
        let [st] = rows.inner_strides();
        rows.for_each(o * block, block, |[off], len, _| {
            for j in 0..len {
                dst[i] = v[off + j * st];
                i += 1;
            }
        });
        row_in_place(dst, log);
    };
    if n_out * block >= super::strided::PAR_THRESHOLD {
        perm_out.par_chunks_mut(block).enumerate().for_each(body);
    } else {
        perm_out.chunks_mut(block).enumerate().for_each(body);
    }
    if axis == l.ndim() - 1 {
        return Ok(perm_out);
    }
    // perm_out is laid out as the permuted shape (axis moved last): view it back.
    let nd = l.ndim();
    let mut pshape: Vec<usize> = (0..nd).filter(|&d| d != axis).map(|d| l.shape()[d]).collect();
    pshape.push(l.shape()[axis]);
    let mut inv: Vec<usize> = (0..nd - 1).map(|i| if i < axis { i } else { i + 1 }).collect();
    inv.push(axis);
    // `inv[i]` is the original dim at permuted position i; the inverse permutation maps back.
    let mut back = vec![0; nd];
    for (i, &d) in inv.iter().enumerate() {
        back[d] = i;
    }
    let view = Layout::contiguous(&pshape).permute(&back)?;
    let mut out = vec![T::zero(); l.numel()];
    super::strided::gather_view(&perm_out, &view, &mut out);
    Ok(out)
}

pub(crate) fn softmax(s: &CpuStorage, l: &Layout, axis: usize, log: bool) -> Result<CpuStorage> {
    super::strided::check_extent("softmax", s, l)?;
    match s {
        CpuStorage::F32(v) => Ok(CpuStorage::F32(softmax_typed(v, l, axis, log)?)),
        CpuStorage::F64(v) => Ok(CpuStorage::F64(softmax_typed(v, l, axis, log)?)),
        _ => Err(Error::UnsupportedDType { op: "softmax", dtype: s.dtype() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contiguous last-axis path (parallel blocks of rows, AVX-512 where the CPU has it)
    /// against an f64 reference, on rows of odd widths with huge, tiny and infinite entries (a
    /// row of only `-inf` is NaN, as in PyTorch).
    #[test]
    fn contiguous_rows_match_f64() {
        for (rows, width) in [(700usize, 65usize), (3, 17), (400, 1), (90, 200)] {
            let data: Vec<f32> = (0..rows * width)
                .map(|i| match i % 97 {
                    5 => f32::NEG_INFINITY,
                    11 => 80.0,
                    _ => ((i * 37 % 101) as f32 - 50.0) * 0.21,
                })
                .collect();
            let l = Layout::contiguous(&[rows, width]);
            for log in [false, true] {
                let got = softmax_typed(&data, &l, 1, log).unwrap();
                for (r, row) in data.chunks(width).enumerate() {
                    let m = row.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x as f64));
                    let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
                    for (j, &x) in row.iter().enumerate() {
                        let want = if log { x as f64 - lse } else { (x as f64 - lse).exp() };
                        let g = got[r * width + j] as f64;
                        let ok = if want.is_nan() {
                            g.is_nan()
                        } else if want.is_infinite() {
                            g == want
                        } else {
                            (g - want).abs() <= 1e-5 * want.abs().max(1.0)
                        };
                        assert!(ok, "log {log} [{rows}, {width}] row {r} col {j}: {g} vs {want}");
                    }
                }
            }
        }
    }

    /// The f32 rows kernel (the AVX-512 one where the CPU has it) against the generic kernel,
    /// at widths around the 16-lane chunks, on rows holding a NaN, `+inf`, only `-inf`, and
    /// values far apart.
    #[test]
    fn f32_rows_match_the_generic_kernel() {
        for width in [1usize, 2, 15, 16, 17, 31, 33, 65, 130] {
            let rows = 8;
            let mut data: Vec<f32> = (0..rows * width).map(|i| ((i * 53 % 89) as f32 - 44.0) * 0.37).collect();
            data[width / 2] = f32::NAN;
            data[width + width / 3] = f32::INFINITY;
            data[2 * width..3 * width].fill(f32::NEG_INFINITY);
            data[3 * width] = 85.0;
            data[4 * width - 1] = f32::NEG_INFINITY;
            let run = |f: fn(&[f32], &mut [MaybeUninit<f32>], usize)| {
                // SAFETY: both kernels write every element.
                unsafe { crate::cpu::strided::build(data.len(), |o| f(&data, o, width)) }
            };
            let (got, want) = (run(rows_softmax_f32), run(rows_softmax_of::<f32>));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let ok = if w.is_nan() { g.is_nan() } else { (g - w).abs() <= 2e-6 * w.abs().max(1e-30) };
                assert!(ok, "width {width} [{}, {}]: {g} vs {w}", i / width, i % width);
            }
        }
    }

    /// The fused backward on rows large enough to run in parallel blocks (and a ragged last
    /// block) equals the composite of the separate ops.
    #[test]
    fn fused_backward_matches_the_composite() {
        let (rows, width) = (1001usize, 65usize);
        let y: Vec<f32> = (0..rows * width).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
        let g: Vec<f32> = (0..rows * width).map(|i| ((i * 53 % 89) as f32 - 44.0) * 0.05).collect();
        let l = Layout::contiguous(&[rows, width]);
        let (ys, gs) = (CpuStorage::F32(y), CpuStorage::F32(g));
        for log in [false, true] {
            let fused = softmax_backward(&ys, &l, &gs, &l, 1, log).unwrap().expect("the fused kernel applies");
            let composite =
                crate::softmax_grad::softmax_backward_composite(&crate::CpuBackend, &ys, &l, &gs, &l, 1, log).unwrap();
            let (a, b) = (fused.as_slice::<f32>().unwrap(), composite.as_slice::<f32>().unwrap());
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "log {log} [{i}]: {x} vs {y}");
            }
        }
    }
}
