//! Fused layer-norm kernels over `[R, D]` rows (see [`crate::row_norm`]): the forward pass reads
//! each row twice (statistics, then the normalized and scaled output) from cache and writes it
//! once; the backward pass computes the input gradient and the weight and bias gradients in one
//! sweep. Rows are processed in fixed blocks of [`ROW_BLOCK`] in parallel; the weight and bias
//! gradients are summed per block and the blocks in order, so results do not depend on the
//! thread count.

use rayon::prelude::*;

use super::channel::{float_only, lane_sum1, lane_sum2};
use super::strided::check_extent;
use super::strided::{contiguous_slice, PAR_THRESHOLD};
use crate::row_norm::{check_pair, RowGeom};
use crate::{CpuStorage, Element, Error, FloatElement, Layout, Result};

/// Rows per parallel task.
const ROW_BLOCK: usize = 64;

/// An optional `[len]` vector of `T`, checked.
fn vector<'a, T: FloatElement>(
    op: &'static str,
    what: &str,
    v: Option<&'a CpuStorage>,
    len: usize,
) -> Result<Option<&'a [T]>> {
    let Some(v) = v else { return Ok(None) };
    let s = v.as_slice::<T>().ok_or_else(|| {
        Error::invalid(op, format!("{what} must have the input's dtype {}, got {}", T::DTYPE, v.dtype()))
    })?;
    if s.len() != len {
        return Err(Error::invalid(op, format!("{what} must have {len} elements, got {}", s.len())));
    }
    Ok(Some(s))
}

/// Runs `f(block index, rows of out)` over the blocks of `out` (`ROW_BLOCK` rows of `d`), in
/// parallel when the input is large, collecting the results in block order.
fn per_block<T: Send, R: Send>(out: &mut [T], d: usize, f: impl Fn(usize, &mut [T]) -> R + Sync + Send) -> Vec<R> {
    let chunk = ROW_BLOCK * d.max(1);
    if out.len() >= PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(chunk).enumerate().map(|(i, c)| f(i, c)).collect()
    } else {
        out.chunks_mut(chunk).enumerate().map(|(i, c)| f(i, c)).collect()
    }
}

/// Mean and `1/sqrt(var + eps)` of one row (the variance in a second pass about the mean).
#[inline(always)]
fn row_stats<T: FloatElement>(row: &[T], eps: f64) -> (T, T) {
    let d = row.len() as f64;
    let mean = lane_sum1(row, |v| v) / d;
    let m = T::from_f64(mean);
    let ss = lane_sum1(row, |v| (v - m) * (v - m));
    // Centered on the rounded mean: correct for the residual shift.
    let shift = mean - Element::to_f64(m);
    let var = (ss / d - shift * shift).max(0.0);
    (m, T::from_f64(1.0 / (var + eps).sqrt()))
}

/// The forward pass over one block of rows: `y` from `x` (both `rows x d`), returning each
/// row's `(mean, rstd)`. Plain `for` loops (no `map`/`collect` adaptors, which the compiler may
/// leave as calls out of the AVX-512 copy [`forward_f32`], and so unvectorized).
#[inline(always)]
fn forward_rows<T: FloatElement>(
    x: &[T],
    y: &mut [T],
    d: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    eps: f64,
) -> Vec<(T, T)> {
    let mut stats = Vec::with_capacity(y.len() / d.max(1));
    for (yr, xr) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
        let (m, rs) = row_stats(xr, eps);
        match (w, b) {
            (Some(w), Some(b)) => {
                for (((o, &v), &w), &b) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                    *o = (v - m) * rs * w + b;
                }
            }
            (Some(w), None) => {
                for ((o, &v), &w) in yr.iter_mut().zip(xr).zip(w) {
                    *o = (v - m) * rs * w;
                }
            }
            (None, Some(b)) => {
                for ((o, &v), &b) in yr.iter_mut().zip(xr).zip(b) {
                    *o = (v - m) * rs + b;
                }
            }
            (None, None) => {
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = (v - m) * rs;
                }
            }
        }
        stats.push((m, rs));
    }
    stats
}

/// The backward pass over one block of rows: `gx` from `g` and `x` (`rows x d`) and the rows'
/// saved statistics, returning the block's partial weight and bias gradients.
#[inline(always)]
fn backward_rows<T: FloatElement>(
    g: &[T],
    x: &[T],
    mean: &[T],
    rstd: &[T],
    gx: &mut [T],
    d: usize,
    w: Option<&[T]>,
) -> (Vec<T>, Vec<T>) {
    let inv_d = T::from_f64(1.0 / d as f64);
    let (mut gw, mut gb) = (vec![T::zero(); d], vec![T::zero(); d]);
    // ĝ = g·w for one row, into a scratch row (the weightless case reads g itself).
    let mut ghat = vec![T::zero(); if w.is_some() { d } else { 0 }];
    for (r, gxr) in gx.chunks_mut(d).enumerate() {
        let (xr, gr) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
        let (m, rs) = (mean[r], rstd[r]);
        let gh: &[T] = match w {
            Some(w) => {
                for j in 0..d {
                    ghat[j] = gr[j] * w[j];
                }
                &ghat
            }
            None => gr,
        };
        let a = T::from_f64(lane_sum1(gh, |v| v)) * inv_d;
        let c = T::from_f64(lane_sum2(gh, xr, |g, x| g * (x - m) * rs)) * inv_d;
        for j in 0..d {
            let xh = (xr[j] - m) * rs;
            gxr[j] = rs * (gh[j] - a - xh * c);
            gw[j] += gr[j] * xh;
            gb[j] += gr[j];
        }
    }
    (gw, gb)
}

/// A block's forward pass ([`forward_rows`]) for `T`.
type ForwardBlock<T> = fn(&[T], &mut [T], usize, Option<&[T]>, Option<&[T]>, f64) -> Vec<(T, T)>;
/// A block's backward pass ([`backward_rows`]) for `T`.
type BackwardBlock<T> = fn(&[T], &[T], &[T], &[T], &mut [T], usize, Option<&[T]>) -> (Vec<T>, Vec<T>);

/// The per-block kernels of an element type: for f32 built with AVX-512 where the CPU has it
/// (the generic code then runs 16 lanes at a time); f64 keeps the default build.
trait RowKernels: FloatElement {
    const FORWARD: ForwardBlock<Self> = forward_rows::<Self>;
    const BACKWARD: BackwardBlock<Self> = backward_rows::<Self>;
}

impl RowKernels for f64 {}

impl RowKernels for f32 {
    const FORWARD: ForwardBlock<f32> = forward_f32;
    const BACKWARD: BackwardBlock<f32> = backward_f32;
}

f32_avx512!(
    /// [`forward_rows`] for f32.
    fn forward_f32(x: &[f32], y: &mut [f32], d: usize, w: Option<&[f32]>, b: Option<&[f32]>, eps: f64) -> Vec<(f32, f32)> => forward_rows
);
f32_avx512!(
    /// [`backward_rows`] for f32.
    fn backward_f32(
        g: &[f32],
        x: &[f32],
        mean: &[f32],
        rstd: &[f32],
        gx: &mut [f32],
        d: usize,
        w: Option<&[f32]>,
    ) -> (Vec<f32>, Vec<f32>) => backward_rows
);

fn forward_typed<T: RowKernels>(
    x: &[T],
    lx: &Layout,
    d: usize,
    weight: Option<&CpuStorage>,
    bias: Option<&CpuStorage>,
    eps: f64,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    const OP: &str = "layer_norm";
    let g = RowGeom::of(OP, lx, d)?;
    let w = vector::<T>(OP, "weight", weight, d)?;
    let b = vector::<T>(OP, "bias", bias, d)?;
    let x = contiguous_slice(x, lx);
    let mut y = vec![T::zero(); x.len()];
    let stats = per_block(&mut y, d, |blk, out| {
        let first = blk * ROW_BLOCK * d;
        (T::FORWARD)(&x[first..first + out.len()], out, d, w, b, eps)
    });
    let (mean, rstd): (Vec<T>, Vec<T>) = stats.into_iter().flatten().unzip();
    debug_assert_eq!(mean.len(), g.r);
    Ok((T::into_cpu(y), T::into_cpu(mean), T::into_cpu(rstd)))
}

#[allow(clippy::too_many_arguments)]
fn backward_typed<T: RowKernels>(
    gr: &[T],
    lg: &Layout,
    x: &[T],
    lx: &Layout,
    d: usize,
    mean: &CpuStorage,
    rstd: &CpuStorage,
    weight: Option<&CpuStorage>,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    const OP: &str = "layer_norm_backward";
    let g = check_pair(OP, lg, lx, d)?;
    let mean = vector::<T>(OP, "mean", Some(mean), g.r)?.expect("given");
    let rstd = vector::<T>(OP, "rstd", Some(rstd), g.r)?.expect("given");
    let w = vector::<T>(OP, "weight", weight, d)?;
    let (gr, x) = (contiguous_slice(gr, lg), contiguous_slice(x, lx));
    let mut gx = vec![T::zero(); x.len()];
    let partial = per_block(&mut gx, d, |blk, out| {
        let (first, rows) = (blk * ROW_BLOCK, out.len() / d.max(1));
        let (xs, gs) = (&x[first * d..first * d + out.len()], &gr[first * d..first * d + out.len()]);
        (T::BACKWARD)(gs, xs, &mean[first..first + rows], &rstd[first..first + rows], out, d, w)
    });
    let (mut gw, mut gb) = (vec![0f64; d], vec![0f64; d]);
    for (pw, pb) in partial {
        gw.iter_mut().zip(pw).for_each(|(a, v)| *a += Element::to_f64(v));
        gb.iter_mut().zip(pb).for_each(|(a, v)| *a += Element::to_f64(v));
    }
    let back = |v: Vec<f64>| T::into_cpu(v.into_iter().map(T::from_f64).collect());
    Ok((T::into_cpu(gx), back(gw), back(gb)))
}

/// See [`crate::Backend::layer_norm`].
pub(crate) fn layer_norm(
    x: &CpuStorage,
    lx: &Layout,
    d: usize,
    weight: Option<&CpuStorage>,
    bias: Option<&CpuStorage>,
    eps: f64,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    check_extent("layer_norm", x, lx)?;
    float_only!("layer_norm", x, v, T => forward_typed::<T>(v, lx, d, weight, bias, eps))
}

/// See [`crate::Backend::layer_norm_backward`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_norm_backward(
    g: &CpuStorage,
    lg: &Layout,
    x: &CpuStorage,
    lx: &Layout,
    d: usize,
    mean: &CpuStorage,
    rstd: &CpuStorage,
    weight: Option<&CpuStorage>,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    const OP: &str = "layer_norm_backward";
    check_extent(OP, g, lg)?;
    check_extent(OP, x, lx)?;
    float_only!(OP, g, gv, T => {
        let xv = x.as_slice::<T>().ok_or(Error::DTypeMismatch { op: OP, lhs: g.dtype(), rhs: x.dtype() })?;
        backward_typed::<T>(gv, lg, xv, lx, d, mean, rstd, weight)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{views_of, TestRng};
    use crate::row_norm::{layer_norm_backward_composite, layer_norm_composite};
    use crate::CpuBackend;

    fn f64s(s: &CpuStorage) -> Vec<f64> {
        s.as_slice::<f64>().expect("f64").to_vec()
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-10 * y.abs().max(1.0), "{what} [{i}]: {x} vs {y}");
        }
    }

    /// The composite fallback (what backends without a fused kernel run) agrees with the fused
    /// kernel, which the conformance suite checks against naive loops.
    #[test]
    fn fused_kernels_match_the_composite() {
        let mut rng = TestRng::new(5);
        for (shape, d) in [(vec![3usize, 4, 6], 24usize), (vec![70, 9], 9), (vec![2, 5, 3], 3)] {
            for v in views_of(&shape) {
                let x = CpuStorage::F64(rng.vec(v.buffer_len, -2.0, 3.0));
                let g = CpuStorage::F64(rng.vec(v.buffer_len, -1.0, 1.0));
                let w = CpuStorage::F64(rng.vec(d, -2.0, 2.0));
                let b = CpuStorage::F64(rng.vec(d, -1.0, 1.0));
                for (wo, bo) in [(Some(&w), Some(&b)), (None, None)] {
                    let what = format!("{shape:?} {} affine={}", v.kind, wo.is_some());
                    let fused = layer_norm(&x, &v.layout, d, wo, bo, 1e-5).unwrap();
                    let comp = layer_norm_composite(&CpuBackend, &x, &v.layout, d, wo, bo, 1e-5).unwrap();
                    close(&f64s(&fused.0), &f64s(&comp.0), &format!("y {what}"));
                    close(&f64s(&fused.1), &f64s(&comp.1), &format!("mean {what}"));
                    close(&f64s(&fused.2), &f64s(&comp.2), &format!("rstd {what}"));
                    let (m, r) = (&fused.1, &fused.2);
                    let fb = layer_norm_backward(&g, &v.layout, &x, &v.layout, d, m, r, wo).unwrap();
                    let cb =
                        layer_norm_backward_composite(&CpuBackend, &g, &v.layout, &x, &v.layout, d, m, r, wo).unwrap();
                    close(&f64s(&fb.0), &f64s(&cb.0), &format!("gx {what}"));
                    close(&f64s(&fb.1), &f64s(&cb.1), &format!("gw {what}"));
                    close(&f64s(&fb.2), &f64s(&cb.2), &format!("gb {what}"));
                }
            }
        }
    }
}
