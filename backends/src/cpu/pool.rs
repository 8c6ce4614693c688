//! Pooling over NCHW: max (with argmax indices), average, adaptive average, and their
//! gradients, for f32 and f64. Every kernel works plane by plane (`N * C` independent planes),
//! in parallel over planes.

use super::strided::check_extent;
use super::strided::contiguous_slice as dense;
use crate::ops::Pool2dParams;
use crate::planning::pool::{avg_pool_backward_shape, check_adaptive, four_d, max_pool_backward_shapes};
use crate::{CpuStorage, Error, FloatElement, Layout, Result};
use rayon::prelude::*;

/// Planes per rayon task at least, so tiny planes do not drown in scheduling.
fn min_planes(plane: usize) -> usize {
    (4096 / plane.max(1)).max(1)
}

/// The input range `start..end` (clipped to `0..len`) of window `i` with kernel `k`, stride `s`
/// and padding `p`, and the window's extent clipped to the padded input instead (PyTorch's
/// divisor for `count_include_pad`).
#[inline]
fn window(i: usize, k: usize, s: usize, p: usize, len: usize) -> (usize, usize, usize) {
    let start = (i * s) as isize - p as isize;
    let end_padded = (start + k as isize).min((len + p) as isize);
    let padded = (end_padded - start).max(0) as usize;
    let lo = start.max(0) as usize;
    let hi = (end_padded.min(len as isize)).max(0) as usize;
    (lo.min(hi), hi, padded)
}

// ----- max pooling -----

/// One tap of a row of max-pooling windows: `src[k]` (at flat input index `first + k·step`)
/// against each window's running maximum `best[k]` and its index `at[k]`. The first maximum
/// stays, and NaN wins over numbers.
type Taps<T> = fn(&mut [T], &mut [i64], &[T], usize, usize);

/// The tap kernel of max pooling, for f32 built with AVX-512 where the CPU has it; f64 keeps
/// the default build.
trait PoolTaps: FloatElement {
    /// See [`Taps`].
    const TAPS: Taps<Self> = taps_of::<Self>;
}

impl PoolTaps for f64 {}

impl PoolTaps for f32 {
    const TAPS: Taps<f32> = taps_f32;
}

f32_avx512!(
    /// [`taps_of`] for f32.
    fn taps_f32(best: &mut [f32], at: &mut [i64], src: &[f32], first: usize, step: usize) => taps_of
);

/// See [`Taps`].
#[inline(always)]
fn taps_of<T: FloatElement>(best: &mut [T], at: &mut [i64], src: &[T], first: usize, step: usize) {
    for (k, ((b, i), &v)) in best.iter_mut().zip(at.iter_mut()).zip(src).enumerate() {
        let take = v > *b || (v.is_nan() && !b.is_nan());
        *b = if take { v } else { *b };
        *i = if take { (first + k * step) as i64 } else { *i };
    }
}

/// `row` split into its `stride` phases, each `phases.len() / stride` long:
/// `phases[q·len + i] = row[i·stride + q]` (the tails past the row are left as they were).
fn split_phases<T: Copy>(row: &[T], stride: usize, phases: &mut [T]) {
    let len = phases.len() / stride;
    match stride {
        1 => phases[..row.len()].copy_from_slice(row),
        // Pairs deinterleave in vector shuffles (the ResNet stem's pooling).
        2 => {
            let (even, odd) = phases.split_at_mut(len);
            let pairs = row.chunks_exact(2);
            if let [last] = pairs.remainder() {
                even[row.len() / 2] = *last;
            }
            for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                *e = p[0];
                *o = p[1];
            }
        }
        _ => {
            for (q, phase) in phases.chunks_exact_mut(len).enumerate() {
                for (d, &v) in phase.iter_mut().zip(row[q.min(row.len())..].iter().step_by(stride)) {
                    *d = v;
                }
            }
        }
    }
}

/// Max pooling of dense planes: each output scans its window in order (rows, then columns)
/// and keeps the first maximum, NaN winning over numbers. A row of outputs is updated tap by
/// tap across the row (each output's running maximum and index stay in the output buffers),
/// from the input row split into its `stride` phases (`phase[q][i] = row[i·stride + q]`), so
/// that every tap reads a contiguous run and the updates vectorize. Columns whose windows are
/// clipped by the padding or the edge scan their own clipped windows.
fn max_pool_float<T: PoolTaps>(x: &[T], l: &Layout, p: &Pool2dParams, out: &[usize]) -> (Vec<T>, Vec<i64>) {
    let [_, _, h, w] = four_d("max_pool2d", l.shape()).expect("checked");
    let (oh, ow) = (out[2], out[3]);
    let numel: usize = out.iter().product();
    let mut vals = vec![T::zero(); numel];
    let mut idx = vec![0i64; numel];
    if numel == 0 {
        return (vals, idx);
    }
    let x = dense(x, l);
    let (hw, ohw) = (h * w, oh * ow);
    let ((kh, kw), (sh, sw), (ph, pw)) = (p.kernel, p.stride, p.padding);
    let cols: Vec<(usize, usize)> = (0..ow)
        .map(|j| {
            let (w0, w1, _) = window(j, kw, sw, pw, w);
            (w0, w1)
        })
        .collect();
    // Columns `ja..jb` have whole windows inside the row: `j·sw ≥ pw` and `j·sw − pw + kw ≤ w`.
    let ja = pw.div_ceil(sw).min(ow);
    let jb = (if w + pw >= kw { ((w + pw - kw) / sw + 1).min(ow) } else { 0 }).max(ja);
    let phase_len = w.div_ceil(sw);
    vals.par_chunks_mut(ohw).zip(idx.par_chunks_mut(ohw)).enumerate().with_min_len(min_planes(ohw)).for_each_init(
        || vec![T::zero(); sw * phase_len],
        |phases, (pl, (vp, ip))| {
            let xp = &x[pl * hw..(pl + 1) * hw];
            for i in 0..oh {
                let (h0, h1, _) = window(i, kh, sh, ph, h);
                let (vr, ir) = (&mut vp[i * ow..(i + 1) * ow], &mut ip[i * ow..(i + 1) * ow]);
                // Minus infinity at the window's first position: what an all-minus-infinity
                // (or empty) window keeps.
                for ((v, ix), &(w0, _)) in vr.iter_mut().zip(ir.iter_mut()).zip(&cols) {
                    *v = T::neg_infinity();
                    *ix = (h0 * w + w0) as i64;
                }
                for r in h0..h1 {
                    let row = &xp[r * w..(r + 1) * w];
                    // (A clipped window's taps in turn, inlined: no dispatch per tap.)
                    for j in (0..ja).chain(jb..ow) {
                        let (w0, w1) = cols[j];
                        for c in w0..w1 {
                            taps_of(&mut vr[j..j + 1], &mut ir[j..j + 1], &row[c..c + 1], r * w + c, 1);
                        }
                    }
                    if ja == jb {
                        continue;
                    }
                    split_phases(row, sw, phases);
                    for t in 0..kw {
                        // Column `j·sw − pw + t` is phase `q` at `j + base`: `ja·sw − pw + t ≥ 0`.
                        let first = ja * sw + t - pw;
                        let (q, at) = (first % sw, first / sw);
                        let src = &phases[q * phase_len + at..q * phase_len + at + (jb - ja)];
                        (T::TAPS)(&mut vr[ja..jb], &mut ir[ja..jb], src, r * w + first, sw);
                    }
                }
            }
        },
    );
    (vals, idx)
}

pub(crate) fn max_pool2d(x: &CpuStorage, l: &Layout, p: &Pool2dParams) -> Result<(CpuStorage, CpuStorage)> {
    const OP: &str = "max_pool2d";
    check_extent(OP, x, l)?;
    let out = p.output_shape(OP, l.shape())?;
    match x {
        CpuStorage::F32(x) => {
            let (v, i) = max_pool_float(x, l, p, &out);
            Ok((CpuStorage::F32(v), CpuStorage::I64(i)))
        }
        CpuStorage::F64(x) => {
            let (v, i) = max_pool_float(x, l, p, &out);
            Ok((CpuStorage::F64(v), CpuStorage::I64(i)))
        }
        _ => Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    }
}

fn max_pool_backward_float<T: FloatElement>(
    gy: &[T],
    lgy: &Layout,
    idx: &[i64],
    li: &Layout,
    input: [usize; 4],
) -> Result<Vec<T>> {
    let [n, c, h, w] = input;
    let hw = h * w;
    let mut gx = vec![T::zero(); n * c * hw];
    let ohw = lgy.shape()[2] * lgy.shape()[3];
    if gx.is_empty() || ohw == 0 {
        return Ok(gx);
    }
    let gy = dense(gy, lgy);
    let idx = dense(idx, li);
    gx.par_chunks_mut(hw).enumerate().with_min_len(min_planes(hw)).try_for_each(|(pl, gp)| {
        let (g, ix) = (&gy[pl * ohw..(pl + 1) * ohw], &idx[pl * ohw..(pl + 1) * ohw]);
        for (&v, &i) in g.iter().zip(ix) {
            if i < 0 || i as usize >= hw {
                return Err(Error::IndexOutOfRange { op: "max_pool2d_backward", index: i, size: hw });
            }
            gp[i as usize] += v;
        }
        Ok(())
    })?;
    Ok(gx)
}

pub(crate) fn max_pool2d_backward(
    gy: &CpuStorage,
    lgy: &Layout,
    idx: &CpuStorage,
    li: &Layout,
    input_shape: &[usize],
) -> Result<CpuStorage> {
    const OP: &str = "max_pool2d_backward";
    check_extent(OP, gy, lgy)?;
    check_extent(OP, idx, li)?;
    let (input, _) = max_pool_backward_shapes(lgy, li, input_shape)?;
    let CpuStorage::I64(ix) = idx else {
        return Err(Error::UnsupportedDType { op: OP, dtype: idx.dtype() });
    };
    match gy {
        CpuStorage::F32(g) => Ok(CpuStorage::F32(max_pool_backward_float(g, lgy, ix, li, input)?)),
        CpuStorage::F64(g) => Ok(CpuStorage::F64(max_pool_backward_float(g, lgy, ix, li, input)?)),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: gy.dtype() }),
    }
}

// ----- average pooling -----

/// The divisor of a window as PyTorch computes it.
#[inline]
fn avg_divisor(p: &Pool2dParams, hs: (usize, usize, usize), ws: (usize, usize, usize)) -> usize {
    if p.count_include_pad {
        hs.2 * ws.2
    } else {
        (hs.1 - hs.0) * (ws.1 - ws.0)
    }
}

fn avg_pool_float<T: FloatElement>(x: &[T], l: &Layout, p: &Pool2dParams, out: &[usize]) -> Vec<T> {
    let [_, _, h, w] = four_d("avg_pool2d", l.shape()).expect("checked");
    let (oh, ow) = (out[2], out[3]);
    let mut y = vec![T::zero(); out.iter().product()];
    if y.is_empty() {
        return y;
    }
    let x = dense(x, l);
    let (hw, ohw) = (h * w, oh * ow);
    y.par_chunks_mut(ohw).enumerate().with_min_len(min_planes(ohw)).for_each(|(pl, yp)| {
        let xp = &x[pl * hw..(pl + 1) * hw];
        for i in 0..oh {
            let hs = window(i, p.kernel.0, p.stride.0, p.padding.0, h);
            for j in 0..ow {
                let ws = window(j, p.kernel.1, p.stride.1, p.padding.1, w);
                let mut s = T::zero();
                for r in hs.0..hs.1 {
                    for &v in &xp[r * w + ws.0..r * w + ws.1] {
                        s += v;
                    }
                }
                let d = avg_divisor(p, hs, ws);
                yp[i * ow + j] = if d == 0 { T::nan() } else { s / T::from_f64(d as f64) };
            }
        }
    });
    y
}

pub(crate) fn avg_pool2d(x: &CpuStorage, l: &Layout, p: &Pool2dParams) -> Result<CpuStorage> {
    const OP: &str = "avg_pool2d";
    check_extent(OP, x, l)?;
    let out = p.output_shape(OP, l.shape())?;
    match x {
        CpuStorage::F32(x) => Ok(CpuStorage::F32(avg_pool_float(x, l, p, &out))),
        CpuStorage::F64(x) => Ok(CpuStorage::F64(avg_pool_float(x, l, p, &out))),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    }
}

fn avg_pool_backward_float<T: FloatElement>(gy: &[T], lgy: &Layout, p: &Pool2dParams, input: [usize; 4]) -> Vec<T> {
    let [n, c, h, w] = input;
    let (oh, ow) = (lgy.shape()[2], lgy.shape()[3]);
    let (hw, ohw) = (h * w, oh * ow);
    let mut gx = vec![T::zero(); n * c * hw];
    if gx.is_empty() || ohw == 0 {
        return gx;
    }
    let gy = dense(gy, lgy);
    gx.par_chunks_mut(hw).enumerate().with_min_len(min_planes(hw)).for_each(|(pl, gp)| {
        let g = &gy[pl * ohw..(pl + 1) * ohw];
        for i in 0..oh {
            let hs = window(i, p.kernel.0, p.stride.0, p.padding.0, h);
            for j in 0..ow {
                let ws = window(j, p.kernel.1, p.stride.1, p.padding.1, w);
                let d = avg_divisor(p, hs, ws);
                if d == 0 {
                    continue;
                }
                let v = g[i * ow + j] / T::from_f64(d as f64);
                for r in hs.0..hs.1 {
                    for e in &mut gp[r * w + ws.0..r * w + ws.1] {
                        *e += v;
                    }
                }
            }
        }
    });
    gx
}

pub(crate) fn avg_pool2d_backward(
    gy: &CpuStorage,
    lgy: &Layout,
    p: &Pool2dParams,
    input_shape: &[usize],
) -> Result<CpuStorage> {
    const OP: &str = "avg_pool2d_backward";
    check_extent(OP, gy, lgy)?;
    let input = avg_pool_backward_shape(lgy, p, input_shape)?;
    match gy {
        CpuStorage::F32(g) => Ok(CpuStorage::F32(avg_pool_backward_float(g, lgy, p, input))),
        CpuStorage::F64(g) => Ok(CpuStorage::F64(avg_pool_backward_float(g, lgy, p, input))),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: gy.dtype() }),
    }
}

// ----- adaptive average pooling -----

/// PyTorch's adaptive window `floor(i*len/out) .. ceil((i+1)*len/out)`.
#[inline]
fn adaptive_window(i: usize, len: usize, out: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

fn adaptive_float<T: FloatElement>(x: &[T], l: &Layout, (oh, ow): (usize, usize)) -> Vec<T> {
    let [n, c, h, w] = four_d("adaptive_avg_pool2d", l.shape()).expect("checked");
    let (hw, ohw) = (h * w, oh * ow);
    let mut y = vec![T::zero(); n * c * ohw];
    if y.is_empty() {
        return y;
    }
    let x = dense(x, l);
    y.par_chunks_mut(ohw).enumerate().with_min_len(min_planes(ohw)).for_each(|(pl, yp)| {
        let xp = &x[pl * hw..(pl + 1) * hw];
        for i in 0..oh {
            let (h0, h1) = adaptive_window(i, h, oh);
            for j in 0..ow {
                let (w0, w1) = adaptive_window(j, w, ow);
                let mut s = T::zero();
                for r in h0..h1 {
                    for &v in &xp[r * w + w0..r * w + w1] {
                        s += v;
                    }
                }
                yp[i * ow + j] = s / T::from_f64(((h1 - h0) * (w1 - w0)) as f64);
            }
        }
    });
    y
}

pub(crate) fn adaptive_avg_pool2d(x: &CpuStorage, l: &Layout, out_hw: (usize, usize)) -> Result<CpuStorage> {
    const OP: &str = "adaptive_avg_pool2d";
    check_extent(OP, x, l)?;
    check_adaptive(OP, l.shape(), out_hw)?;
    match x {
        CpuStorage::F32(x) => Ok(CpuStorage::F32(adaptive_float(x, l, out_hw))),
        CpuStorage::F64(x) => Ok(CpuStorage::F64(adaptive_float(x, l, out_hw))),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    }
}

fn adaptive_backward_float<T: FloatElement>(gy: &[T], lgy: &Layout, input: [usize; 4]) -> Vec<T> {
    let [n, c, h, w] = input;
    let (oh, ow) = (lgy.shape()[2], lgy.shape()[3]);
    let (hw, ohw) = (h * w, oh * ow);
    let mut gx = vec![T::zero(); n * c * hw];
    if gx.is_empty() {
        return gx;
    }
    let gy = dense(gy, lgy);
    gx.par_chunks_mut(hw).enumerate().with_min_len(min_planes(hw)).for_each(|(pl, gp)| {
        let g = &gy[pl * ohw..(pl + 1) * ohw];
        for i in 0..oh {
            let (h0, h1) = adaptive_window(i, h, oh);
            for j in 0..ow {
                let (w0, w1) = adaptive_window(j, w, ow);
                let v = g[i * ow + j] / T::from_f64(((h1 - h0) * (w1 - w0)) as f64);
                for r in h0..h1 {
                    for e in &mut gp[r * w + w0..r * w + w1] {
                        *e += v;
                    }
                }
            }
        }
    });
    gx
}

pub(crate) fn adaptive_avg_pool2d_backward(gy: &CpuStorage, lgy: &Layout, input_shape: &[usize]) -> Result<CpuStorage> {
    const OP: &str = "adaptive_avg_pool2d_backward";
    check_extent(OP, gy, lgy)?;
    let sg = four_d(OP, lgy.shape())?;
    let input = check_adaptive(OP, input_shape, (sg[2], sg[3]))?;
    if sg[0] != input[0] || sg[1] != input[1] {
        return Err(Error::invalid(
            OP,
            format!("gradient {sg:?} does not match input shape {input_shape:?} in N and C"),
        ));
    }
    match gy {
        CpuStorage::F32(g) => Ok(CpuStorage::F32(adaptive_backward_float(g, lgy, input))),
        CpuStorage::F64(g) => Ok(CpuStorage::F64(adaptive_backward_float(g, lgy, input))),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: gy.dtype() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_into_their_stride_phases() {
        for stride in 1..=4 {
            for w in [1usize, 2, 5, 8, 9] {
                let row: Vec<f32> = (0..w).map(|c| c as f32).collect();
                let len = w.div_ceil(stride);
                let mut phases = vec![-1.0f32; stride * len];
                split_phases(&row, stride, &mut phases);
                for (c, &v) in row.iter().enumerate() {
                    assert_eq!(phases[(c % stride) * len + c / stride], v, "stride {stride} width {w} column {c}");
                }
            }
        }
    }

    #[test]
    fn windows_follow_pytorch() {
        // kernel 3, stride 2, pad 1 over 5: first window -1..2 clipped to 0..2, divisor 3.
        assert_eq!(window(0, 3, 2, 1, 5), (0, 2, 3));
        // last window 3..6, padded input ends at 6: 3..5, divisor 3.
        assert_eq!(window(2, 3, 2, 1, 5), (3, 5, 3));
        assert_eq!(adaptive_window(0, 5, 3), (0, 2));
        assert_eq!(adaptive_window(1, 5, 3), (1, 4));
        assert_eq!(adaptive_window(2, 5, 3), (3, 5));
    }
}
