//! Direct sparse convolution over phase planes (f32 and f64; f32 runs 16 lanes wide with
//! AVX-512 where the CPU has it): forward, input gradient and the gradient of the stored
//! values, for any stride, padding, dilation and groups.
//!
//! # The layout
//!
//! Each image's zero-padded input `[C, H + 2p_h, W + 2p_w]` is split into `s_h·s_w` *phase
//! planes* (row phase `a`, column phase `b`: `plane_ab[c][r][q] = x_pad[c][r·s_h + a][q·s_w +
//! b]`), each `[C, Hq, Wq]` with `Hq = ⌈(H + 2p_h)/s_h⌉`, `Wq = ⌈(W + 2p_w)/s_w⌉`. Tap `(i, j)`
//! of the kernel reads phase `((i·d_h) mod s_h, (j·d_w) mod s_w)` shifted by
//! `(⌊i·d_h/s_h⌋, ⌊j·d_w/s_w⌋)`, so every stored weight `k` of output channel `o` has one flat
//! offset `off_k` and
//!
//! ```text
//! y'[o][t] = Σ_k v_k · P[off_k + t]      for t = oh·Wq + ow over the Ho x Wq grid
//! ```
//!
//! is a sum of contiguous runs: output rows are computed `Wq` wide (the columns past `Wo` are
//! discarded), which makes every run as long as the whole output plane, whatever the stride.
//! Runs go in chunks of 64 values, kept in registers (four 16-lane accumulators) while every
//! stored weight of the row adds its shifted run.
//!
//! The input gradient scatters the same runs back (`dP[off_k + t] += v_k · dy'[o][t]`, the
//! discarded columns of `dy'` zero) and folds the phase planes back into the input; the values'
//! gradient is one dot product per stored weight, `Σ_n Σ_t dy'_n[o][t] · P_n[off_k + t]`.
//!
//! Work per image is `nnz · Ho · Wq` multiply-adds against the dense `O · C/g · kH · kW · Ho ·
//! Wo`, with one vector load per multiply-add (a dense GEMM reuses each load many times), so
//! the sparse path pays at low densities; [`crate::Fused::sparse_conv2d`]'s callers choose it
//! by measured cost.
//!
//! Parallelism: images over rayon's threads (each with its own phase planes); with fewer images
//! than threads, the output channels of an image (forward) instead. The values' gradient sums
//! per-thread partials in a fixed order.

mod kernels;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

use super::strided::contiguous_slice;
use crate::ops::{Conv2dParams, SparsePattern};
use crate::{CpuStorage, Error, FloatElement, Layout, Result};

use kernels::SparseKernels;
pub(crate) use kernels::CHUNK;

/// Every size and offset of one sparse convolution.
#[derive(Clone, Debug)]
struct Plan {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    hq: usize,
    wq: usize,
    /// `Ho·Wq` rounded up to a multiple of [`CHUNK`].
    run: usize,
    /// Length of one image's phase planes, padded for the last chunk's overrun.
    plen: usize,
    /// The flat offset of every stored weight, in the pattern's order.
    offs: Vec<u32>,
}

impl Plan {
    fn new(op: &'static str, x: &[usize], pattern: &SparsePattern, p: &Conv2dParams) -> Result<Plan> {
        pattern.validate(op)?;
        let [o, cg, kh, kw] = pattern.shape;
        let y = p.output_shape(x, &pattern.shape)?;
        let (n, c, h, w) = (x[0], x[1], x[2], x[3]);
        let (sh, sw) = p.stride;
        let (ph, pw) = p.padding;
        let (dh, dw) = p.dilation;
        let hq = (h + 2 * ph).div_ceil(sh);
        let wq = (w + 2 * pw).div_ceil(sw);
        let plane = hq * wq;
        let run = (y[2] * wq).div_ceil(CHUNK) * CHUNK;
        let plen = sh * sw * c * plane + wq + 2 * CHUNK;
        if plen > u32::MAX as usize {
            return Err(Error::invalid(op, format!("input {x:?} is too large for 32-bit offsets")));
        }
        let og = o / p.groups;
        let mut offs = Vec::with_capacity(pattern.nnz());
        for oc in 0..o {
            let gi = oc / og;
            for &col in &pattern.cols[pattern.row_ptr[oc] as usize..pattern.row_ptr[oc + 1] as usize] {
                let col = col as usize;
                let (ci, i, j) = (col / (kh * kw), col / kw % kh, col % kw);
                let (a, r0) = ((i * dh) % sh, (i * dh) / sh);
                let (b, q0) = ((j * dw) % sw, (j * dw) / sw);
                let off = ((a * sw + b) * c + gi * cg + ci) * plane + r0 * wq + q0;
                offs.push(off as u32);
            }
        }
        Ok(Plan { n, c, h, w, o, oh: y[2], ow: y[3], sh, sw, ph, pw, hq, wq, run, plen, offs })
    }

    fn plane(&self) -> usize {
        self.hq * self.wq
    }

    /// The columns `q` of column phase `b` that hold input columns, `q_lo..q_hi`; the input
    /// column of `q` is `q·s_w + b − p_w` (the others are padding).
    fn cols(&self, b: usize) -> (usize, usize) {
        let lo = self.pw.saturating_sub(b).div_ceil(self.sw);
        let hi = if self.w + self.pw > b { ((self.w + self.pw - b - 1) / self.sw + 1).min(self.wq) } else { 0 };
        (lo, hi.max(lo))
    }

    /// The input row of row `r` of row phase `a`, if it is not padding.
    fn input_row(&self, a: usize, r: usize) -> Option<usize> {
        (r * self.sh + a).checked_sub(self.ph).filter(|&v| v < self.h)
    }

    /// Writes image `x` (`[C, H, W]`) into its phase planes `p` (zeroed, `plen` long): row by
    /// row, a plain copy at column stride 1.
    fn split<T: FloatElement>(&self, x: &[T], p: &mut [T]) {
        let (plane, hw) = (self.plane(), self.h * self.w);
        for a in 0..self.sh {
            for b in 0..self.sw {
                let (q0, q1) = self.cols(b);
                if q0 == q1 {
                    // A column phase past the input (stride > width + padding): all padding.
                    continue;
                }
                for c in 0..self.c {
                    let dst = &mut p[((a * self.sw + b) * self.c + c) * plane..][..plane];
                    let src = &x[c * hw..(c + 1) * hw];
                    for r in 0..self.hq {
                        let Some(hi) = self.input_row(a, r) else { continue };
                        let row = &src[hi * self.w..(hi + 1) * self.w];
                        let out = &mut dst[r * self.wq + q0..r * self.wq + q1];
                        let first = q0 * self.sw + b - self.pw;
                        if self.sw == 1 {
                            out.copy_from_slice(&row[first..first + out.len()]);
                        } else {
                            for (o, &v) in out.iter_mut().zip(row[first..].iter().step_by(self.sw)) {
                                *o = v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the phase planes `dp` back into image gradient `dx` (`[C, H, W]`, overwritten): the
    /// inverse of [`Plan::split`] on the non-padding positions.
    fn fold<T: FloatElement>(&self, dp: &[T], dx: &mut [T]) {
        let (plane, hw) = (self.plane(), self.h * self.w);
        for a in 0..self.sh {
            for b in 0..self.sw {
                let (q0, q1) = self.cols(b);
                if q0 == q1 {
                    // A column phase past the input (stride > width + padding): all padding.
                    continue;
                }
                for c in 0..self.c {
                    let src = &dp[((a * self.sw + b) * self.c + c) * plane..][..plane];
                    let dst = &mut dx[c * hw..(c + 1) * hw];
                    for r in 0..self.hq {
                        let Some(hi) = self.input_row(a, r) else { continue };
                        let row = &mut dst[hi * self.w..(hi + 1) * self.w];
                        let from = &src[r * self.wq + q0..r * self.wq + q1];
                        let first = q0 * self.sw + b - self.pw;
                        if self.sw == 1 {
                            row[first..first + from.len()].copy_from_slice(from);
                        } else {
                            for (o, &v) in row[first..].iter_mut().step_by(self.sw).zip(from) {
                                *o = v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// `dy` of one image and output channel (`[Ho, Wo]`) on the `Ho x Wq` grid, zero elsewhere,
    /// `run` long.
    fn widen<T: FloatElement>(&self, dy: &[T], out: &mut [T]) {
        out.fill(T::zero());
        for r in 0..self.oh {
            out[r * self.wq..r * self.wq + self.ow].copy_from_slice(&dy[r * self.ow..(r + 1) * self.ow]);
        }
    }

    /// The first `Wo` columns of each row of `grid` (`Ho x Wq`) into `y` (`[Ho, Wo]`).
    fn narrow<T: FloatElement>(&self, grid: &[T], y: &mut [T]) {
        for r in 0..self.oh {
            y[r * self.ow..(r + 1) * self.ow].copy_from_slice(&grid[r * self.wq..r * self.wq + self.ow]);
        }
    }

    fn row(&self, pattern: &SparsePattern, o: usize) -> std::ops::Range<usize> {
        pattern.row_ptr[o] as usize..pattern.row_ptr[o + 1] as usize
    }
}

fn forward<T: SparseKernels>(x: &[T], v: &[T], pattern: &SparsePattern, plan: &Plan) -> Vec<T> {
    let (in_img, out_plane) = (plan.c * plan.h * plan.w, plan.oh * plan.ow);
    let mut y = vec![T::zero(); plan.n * plan.o * out_plane];
    let channel = |p: &[T], o: usize, grid: &mut Vec<T>, out: &mut [T]| {
        let r = plan.row(pattern, o);
        T::forward_run(p, &plan.offs[r.clone()], &v[r], grid);
        plan.narrow(grid, out);
    };
    if plan.n >= rayon::current_num_threads() || plan.n * plan.o < 2 {
        // Planes reused across a thread's images: `split` rewrites the same interior
        // positions every time, the padding stays zero.
        y.par_chunks_mut(plan.o * out_plane).enumerate().for_each_init(
            || (vec![T::zero(); plan.plen], vec![T::zero(); plan.run]),
            |(p, grid), (i, yi)| {
                plan.split(&x[i * in_img..(i + 1) * in_img], p);
                for (o, out) in yi.chunks_mut(out_plane).enumerate() {
                    channel(p, o, grid, out);
                }
            },
        );
    } else {
        let mut p = vec![T::zero(); plan.plen];
        for (i, yi) in y.chunks_mut(plan.o * out_plane).enumerate() {
            plan.split(&x[i * in_img..(i + 1) * in_img], &mut p);
            yi.par_chunks_mut(out_plane)
                .enumerate()
                .for_each_init(|| vec![T::zero(); plan.run], |grid, (o, out)| channel(&p, o, grid, out));
        }
    }
    y
}

fn backward_data<T: SparseKernels>(gy: &[T], v: &[T], pattern: &SparsePattern, plan: &Plan) -> Vec<T> {
    let (in_img, out_plane) = (plan.c * plan.h * plan.w, plan.oh * plan.ow);
    let mut dx = vec![T::zero(); plan.n * in_img];
    dx.par_chunks_mut(in_img.max(1)).enumerate().for_each(|(i, dxi)| {
        let mut dp = vec![T::zero(); plan.plen];
        let mut grid = vec![T::zero(); plan.run];
        for o in 0..plan.o {
            let r = plan.row(pattern, o);
            if r.is_empty() {
                continue;
            }
            plan.widen(&gy[(i * plan.o + o) * out_plane..][..out_plane], &mut grid);
            T::scatter_run(&mut dp, &plan.offs[r.clone()], &v[r], &grid);
        }
        plan.fold(&dp, dxi);
    });
    dx
}

fn backward_values<T: SparseKernels>(x: &[T], gy: &[T], pattern: &SparsePattern, plan: &Plan) -> Vec<T> {
    let (in_img, out_plane) = (plan.c * plan.h * plan.w, plan.oh * plan.ow);
    let nnz = pattern.nnz();
    let parts = rayon::current_num_threads().clamp(1, plan.n.max(1));
    let per = plan.n.div_ceil(parts).max(1);
    let partial: Vec<Vec<T>> = (0..parts)
        .into_par_iter()
        .map(|t| {
            let mut dv = vec![T::zero(); nnz];
            let mut p = vec![T::zero(); plan.plen];
            let mut grid = vec![T::zero(); plan.run];
            for i in t * per..((t + 1) * per).min(plan.n) {
                plan.split(&x[i * in_img..(i + 1) * in_img], &mut p);
                for o in 0..plan.o {
                    let r = plan.row(pattern, o);
                    if r.is_empty() {
                        continue;
                    }
                    plan.widen(&gy[(i * plan.o + o) * out_plane..][..out_plane], &mut grid);
                    T::dot_runs(&p, &plan.offs[r.clone()], &grid, &mut dv[r]);
                }
            }
            dv
        })
        .collect();
    let mut dv = vec![T::zero(); nnz];
    for part in partial {
        for (d, p) in dv.iter_mut().zip(part) {
            *d += p;
        }
    }
    dv
}

fn check(op: &'static str, a: &CpuStorage, b: &CpuStorage) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    Ok(())
}

/// `$f(a, b)` on the contiguous f32 or f64 elements of two views of one dtype (checked before),
/// as a storage of that dtype.
macro_rules! on_floats {
    ($op:expr, ($a:expr, $la:expr), ($b:expr, $lb:expr), $f:expr) => {
        match ($a, $b) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                Ok(CpuStorage::F32($f(&contiguous_slice(a, $la), &contiguous_slice(b, $lb))))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                Ok(CpuStorage::F64($f(&contiguous_slice(a, $la), &contiguous_slice(b, $lb))))
            }
            (a, _) => Err(Error::UnsupportedDType { op: $op, dtype: a.dtype() }),
        }
    };
}

/// See [`crate::Fused::sparse_conv2d`].
pub(crate) fn sparse_conv2d(
    x: &CpuStorage,
    lx: &Layout,
    values: &CpuStorage,
    lv: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
) -> Result<CpuStorage> {
    const OP: &str = "sparse_conv2d";
    check(OP, x, values)?;
    pattern.check_values(OP, lv)?;
    let plan = Plan::new(OP, lx.shape(), pattern, p)?;
    on_floats!(OP, (x, lx), (values, lv), |x: &[_], v: &[_]| forward(x, v, pattern, &plan))
}

/// See [`crate::Fused::sparse_conv2d_backward_data`].
pub(crate) fn sparse_conv2d_backward_data(
    gy: &CpuStorage,
    lgy: &Layout,
    values: &CpuStorage,
    lv: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<CpuStorage> {
    const OP: &str = "sparse_conv2d_backward_data";
    check(OP, gy, values)?;
    pattern.check_values(OP, lv)?;
    let s = lgy.shape();
    if s.len() != 4 {
        return Err(Error::invalid(OP, format!("expected a 4-D output gradient, got {s:?}")));
    }
    let x = [s[0], pattern.shape[1] * p.groups, input_hw.0, input_hw.1];
    let plan = Plan::new(OP, &x, pattern, p)?;
    if s != [plan.n, plan.o, plan.oh, plan.ow] {
        return Err(Error::shape(OP, &[plan.n, plan.o, plan.oh, plan.ow], s));
    }
    on_floats!(OP, (gy, lgy), (values, lv), |g: &[_], v: &[_]| backward_data(g, v, pattern, &plan))
}

/// See [`crate::Fused::sparse_conv2d_backward_weight`].
pub(crate) fn sparse_conv2d_backward_weight(
    x: &CpuStorage,
    lx: &Layout,
    gy: &CpuStorage,
    lgy: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
) -> Result<CpuStorage> {
    const OP: &str = "sparse_conv2d_backward_weight";
    check(OP, x, gy)?;
    let plan = Plan::new(OP, lx.shape(), pattern, p)?;
    if lgy.shape() != [plan.n, plan.o, plan.oh, plan.ow] {
        return Err(Error::shape(OP, &[plan.n, plan.o, plan.oh, plan.ow], lgy.shape()));
    }
    on_floats!(OP, (x, lx), (gy, lgy), |x: &[_], g: &[_]| backward_values(x, g, pattern, &plan))
}
