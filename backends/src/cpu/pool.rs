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

/// Max pooling of dense planes: each output scans its window in order (rows, then columns)
/// and keeps the first maximum, NaN winning over numbers. The scan keeps its value and index in
/// registers and replaces them by selects, not branches: on data without order the branches
/// of a `v > best` test mispredicted about every other tap.
fn max_pool_float<T: FloatElement>(x: &[T], l: &Layout, p: &Pool2dParams, out: &[usize]) -> (Vec<T>, Vec<i64>) {
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
    vals.par_chunks_mut(ohw).zip(idx.par_chunks_mut(ohw)).enumerate().with_min_len(min_planes(ohw)).for_each(
        |(pl, (vp, ip))| {
            let xp = &x[pl * hw..(pl + 1) * hw];
            for i in 0..oh {
                let (h0, h1, _) = window(i, kh, sh, ph, h);
                for (j, &(w0, w1)) in cols.iter().enumerate() {
                    // Minus infinity at the window's first position: what an all-minus-infinity
                    // (or empty) window keeps.
                    let (mut best, mut bi) = (T::neg_infinity(), h0 * w + w0);
                    for r in h0..h1 {
                        for (c, &v) in (r * w + w0..).zip(&xp[r * w + w0..r * w + w1]) {
                            let take = v > best || (v.is_nan() && !best.is_nan());
                            best = if take { v } else { best };
                            bi = if take { c } else { bi };
                        }
                    }
                    vp[i * ow + j] = best;
                    ip[i * ow + j] = bi as i64;
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
