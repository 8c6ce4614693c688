//! Fused layer-norm kernels over `[R, D]` rows (see [`crate::row_norm`]): the forward pass reads
//! each row twice (statistics, then the normalized and scaled output) from cache and writes it
//! once; the backward pass computes the input gradient and the weight and bias gradients in one
//! sweep. Rows are processed in fixed blocks of [`ROW_BLOCK`] in parallel; the weight and bias
//! gradients are summed per block and the blocks in order, so results do not depend on the
//! thread count.

use rayon::prelude::*;

use super::channel::{float_only, lane_sum};
use super::copy::check_extent;
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
#[inline]
fn row_stats<T: FloatElement>(row: &[T], eps: f64) -> (T, T) {
    let d = row.len() as f64;
    let mean = lane_sum(row.len(), |i| row[i]) / d;
    let m = T::from_f64(mean);
    let ss = lane_sum(row.len(), |i| (row[i] - m) * (row[i] - m));
    // Centered on the rounded mean: correct for the residual shift.
    let shift = mean - Element::to_f64(m);
    let var = (ss / d - shift * shift).max(0.0);
    (m, T::from_f64(1.0 / (var + eps).sqrt()))
}

fn forward_typed<T: FloatElement>(
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
        let first = blk * ROW_BLOCK;
        out.chunks_mut(d)
            .enumerate()
            .map(|(i, yr)| {
                let xr = &x[(first + i) * d..(first + i + 1) * d];
                let (m, rs) = row_stats(xr, eps);
                match (w, b) {
                    (Some(w), Some(b)) => {
                        for j in 0..d {
                            yr[j] = (xr[j] - m) * rs * w[j] + b[j];
                        }
                    }
                    (Some(w), None) => yr.iter_mut().zip(xr).zip(w).for_each(|((o, &v), &w)| *o = (v - m) * rs * w),
                    (None, Some(b)) => yr.iter_mut().zip(xr).zip(b).for_each(|((o, &v), &b)| *o = (v - m) * rs + b),
                    (None, None) => yr.iter_mut().zip(xr).for_each(|(o, &v)| *o = (v - m) * rs),
                }
                (m, rs)
            })
            .collect::<Vec<_>>()
    });
    let (mean, rstd): (Vec<T>, Vec<T>) = stats.into_iter().flatten().unzip();
    debug_assert_eq!(mean.len(), g.r);
    Ok((T::into_cpu(y), T::into_cpu(mean), T::into_cpu(rstd)))
}

#[allow(clippy::too_many_arguments)]
fn backward_typed<T: FloatElement>(
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
    let inv_d = T::from_f64(1.0 / d as f64);
    let mut gx = vec![T::zero(); x.len()];
    let partial = per_block(&mut gx, d, |blk, out| {
        let (mut gw, mut gb) = (vec![T::zero(); d], vec![T::zero(); d]);
        for (i, gxr) in out.chunks_mut(d).enumerate() {
            let r = blk * ROW_BLOCK + i;
            let (xr, g) = (&x[r * d..(r + 1) * d], &gr[r * d..(r + 1) * d]);
            let (m, rs) = (mean[r], rstd[r]);
            let gh = |j: usize| match w {
                Some(w) => g[j] * w[j],
                None => g[j],
            };
            let a = T::from_f64(lane_sum(d, gh)) * inv_d;
            let c = T::from_f64(lane_sum(d, |j| gh(j) * (xr[j] - m) * rs)) * inv_d;
            for j in 0..d {
                let xh = (xr[j] - m) * rs;
                gxr[j] = rs * (gh(j) - a - xh * c);
                gw[j] += g[j] * xh;
                gb[j] += g[j];
            }
        }
        (gw, gb)
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
