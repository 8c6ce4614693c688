//! 2-D convolution: forward, backward-data and backward-weight, for f32/f64 (and i8 -> i32
//! forward for quantized inference).
//!
//! The general path is a tiled im2col + GEMM per image and group: a tile of output rows is
//! unfolded into a `[C/g * kH * kW, rows * oW]` column buffer that stays in cache, and one GEMM
//! multiplies it with the group's weight. Images are spread over rayon's threads, each with its
//! own column buffer and a single-threaded [`gemm`]; when there are too few images to keep the
//! threads busy, images run one after the other and the parallelism moves inside (im2col over
//! channels, [`gemm_par`] over output panels) — one level of parallelism either way.
//!
//! Special paths: 1x1 kernels with stride 1 and no padding skip im2col (the input plane is the
//! GEMM operand); depthwise convolutions (`groups == C_in == C_out`) are direct shift-and-add
//! loops per channel plane, no GEMM.
//!
//! Backward-data is `W^T dY` followed by col2im (a scatter-add into the input gradient), or the
//! direct path for 1x1 and depthwise. Backward-weight is `dY col^T` accumulated over images, in
//! one accumulator per thread and a final reduction (no races, and a fixed summation order for a
//! given thread count).
//!
//! Ahead of these, in this order: in f32 on CPUs with AVX-512, 3x3 stride-1 layers with at
//! least 8 input channels, at most 128 x 128 channels (64 x 64 for the weight gradient) and
//! output planes of at least 12x12 go to Winograd F(4x4, 3x3) with tiles across the vector
//! lanes ([`winograd4`]); the other such layers of at most 256 x 256 channels to Winograd
//! F(2x2, 3x3) with tiles across the lanes ([`winograd_lanes`]); the other narrow 3x3 stride-1 layers (at most 32
//! channels, e.g. a 3-channel stem) to the direct kernel ([`direct3x3`]); 3x3 depthwise layers
//! to [`depthwise3x3`]; remaining 3x3 stride-1 layers (and f64) to the GEMM form of Winograd
//! ([`winograd`]). 3x3 stride-2 layers in f32 under AVX-512 go to a direct kernel over
//! deinterleaved tap planes ([`stride2_3x3`]: forward up to 128 input channels, weight gradient
//! up to 32). In f32 under AVX-512, im2col and col2im with row stride 1 or 2 use masked vector
//! loads ([`im2col_avx512`]).

use super::copy::check_extent;
use super::gemm::{gemm, gemm_par, GemmElement, MatRef};
use super::strided::{build, contiguous_slice as dense};
use super::winograd;
use super::{depthwise3x3, direct3x3, im2col_avx512, stride2_3x3, winograd4, winograd_lanes};
use crate::ops::Conv2dParams;
use crate::{CpuStorage, Error, Layout, Result};
use rayon::prelude::*;

/// Elements of one im2col tile when each thread works on its own image (about an L2 cache).
/// (1 MiB of f32: measured best among 2^16..2^20 for 64 channels at 32x32.)
const TILE_ELEMS: usize = 1 << 18;
/// Elements of one im2col tile when the threads share one image.
const TILE_ELEMS_SHARED: usize = 1 << 20;

/// Every size a convolution needs, checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) o: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    pub(crate) sh: usize,
    pub(crate) sw: usize,
    pub(crate) ph: usize,
    pub(crate) pw: usize,
    pub(crate) dh: usize,
    pub(crate) dw: usize,
    pub(crate) g: usize,
}

impl Geom {
    pub(crate) fn new(x: &[usize], w: &[usize], p: &Conv2dParams) -> Result<Self> {
        if w.len() == 4 && (w[2] == 0 || w[3] == 0) {
            return Err(Error::invalid("conv2d", format!("empty kernel in weight {w:?} (input {x:?})")));
        }
        let y = p.output_shape(x, w)?;
        Ok(Geom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            o: w[0],
            kh: w[2],
            kw: w[3],
            oh: y[2],
            ow: y[3],
            sh: p.stride.0,
            sw: p.stride.1,
            ph: p.padding.0,
            pw: p.padding.1,
            dh: p.dilation.0,
            dw: p.dilation.1,
            g: p.groups,
        })
    }
    pub(crate) fn cg(&self) -> usize {
        self.c / self.g
    }
    pub(crate) fn og(&self) -> usize {
        self.o / self.g
    }
    pub(crate) fn kk(&self) -> usize {
        self.kh * self.kw
    }
    /// Rows of the im2col matrix of one group.
    pub(crate) fn ckk(&self) -> usize {
        self.cg() * self.kk()
    }
    pub(crate) fn in_plane(&self) -> usize {
        self.h * self.w
    }
    pub(crate) fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    pub(crate) fn x_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    pub(crate) fn w_shape(&self) -> [usize; 4] {
        [self.o, self.cg(), self.kh, self.kw]
    }
    pub(crate) fn y_shape(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    pub(crate) fn is_depthwise(&self) -> bool {
        self.g > 1 && self.g == self.c && self.g == self.o
    }
    /// Output rows per im2col tile so that a tile holds about `budget` elements.
    pub(crate) fn tile_rows(&self, budget: usize) -> usize {
        (budget / (self.ckk() * self.ow).max(1)).clamp(1, self.oh)
    }
}

/// The output positions `lo..hi` (of `out_len`) whose input position `i * stride + off` falls
/// inside `0..in_len`.
#[inline]
fn valid_range(out_len: usize, stride: usize, off: isize, in_len: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if off >= 0 { 0 } else { ((-off + s - 1) / s) as usize };
    let end = in_len as isize - off;
    let hi = if end <= 0 { 0 } else { (((end + s - 1) / s) as usize).min(out_len) };
    (lo.min(hi), hi)
}

/// `dst[i] = src[i * stride]` for every `i` of `dst`; stride 1 and 2 (every stride-2
/// convolution) get loops the compiler vectorizes, instead of `step_by`'s scalar one.
#[inline]
fn copy_strided<T: Copy>(dst: &mut [T], src: &[T], stride: usize) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let src = &src[..(n - 1) * stride + 1];
    match stride {
        1 => dst.copy_from_slice(src),
        2 => {
            // Pairs, so the loop is an interleaved load the compiler vectorizes; the last
            // element may have no partner.
            for (d, pair) in dst[..n - 1].iter_mut().zip(src.chunks_exact(2)) {
                *d = pair[0];
            }
            dst[n - 1] = src[2 * (n - 1)];
        }
        _ => {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[i * stride];
            }
        }
    }
}

/// `dst[i * stride] += src[i]` for every `i` of `src` (the adjoint of [`copy_strided`]).
#[inline]
fn add_strided<T: GemmElement>(dst: &mut [T], src: &[T], stride: usize) {
    let n = src.len();
    if n == 0 {
        return;
    }
    let dst = &mut dst[..(n - 1) * stride + 1];
    match stride {
        1 => {
            for (d, v) in dst.iter_mut().zip(src) {
                *d += *v;
            }
        }
        2 => {
            for (pair, v) in dst.chunks_exact_mut(2).zip(&src[..n - 1]) {
                pair[0] += *v;
            }
            dst[2 * (n - 1)] += src[n - 1];
        }
        _ => {
            for (i, v) in src.iter().enumerate() {
                dst[i * stride] += *v;
            }
        }
    }
}

/// Unfolds output rows `r0..r1` of channels `c0..c1` of one image into `col`
/// (`[(c1-c0) * kH * kW, (r1-r0) * oW]`, row-major); padding reads as `zero`.
#[allow(clippy::too_many_arguments)]
pub(super) fn im2col<T: Copy>(x: &[T], g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, col: &mut [T], zero: T) {
    let ncols = (r1 - r0) * g.ow;
    let plane = g.in_plane();
    let mut rows = col.chunks_exact_mut(ncols);
    for c in c0..c1 {
        let xp = &x[c * plane..(c + 1) * plane];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let dst = rows.next().expect("im2col: column buffer too small");
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
                for (r, d) in (r0..r1).zip(dst.chunks_exact_mut(g.ow)) {
                    let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                    if ih < 0 || ih as usize >= g.h {
                        d.fill(zero);
                        continue;
                    }
                    d[..lo].fill(zero);
                    d[hi..].fill(zero);
                    if lo < hi {
                        let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                        copy_strided(&mut d[lo..hi], &xp[start..], g.sw);
                    }
                }
            }
        }
    }
}

/// Adds the columns `col` (as [`im2col`] lays them out) back into channels `c0..c1` of an image
/// gradient `dx`.
pub(super) fn col2im<T: GemmElement>(col: &[T], g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, dx: &mut [T]) {
    let ncols = (r1 - r0) * g.ow;
    let plane = g.in_plane();
    let mut rows = col.chunks_exact(ncols);
    for c in c0..c1 {
        let xp = &mut dx[c * plane..(c + 1) * plane];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let src = rows.next().expect("col2im: column buffer too small");
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
                if lo >= hi {
                    continue;
                }
                for (r, s) in (r0..r1).zip(src.chunks_exact(g.ow)) {
                    let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                    if ih < 0 || ih as usize >= g.h {
                        continue;
                    }
                    let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                    add_strided(&mut xp[start..], &s[lo..hi], g.sw);
                }
            }
        }
    }
}

/// [`im2col`] for the float types, through the AVX-512 kernels where they apply (f32, stride 1
/// or 2).
#[allow(clippy::too_many_arguments)]
fn unfold<T: GemmElement>(x: &[T], g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, col: &mut [T]) {
    if im2col_avx512::applies(g) {
        if let (Some(x), Some(col)) = (T::as_f32(x), T::as_f32_mut(col)) {
            return im2col_avx512::im2col(x, g, c0, c1, r0, r1, col);
        }
    }
    im2col(x, g, c0, c1, r0, r1, col, T::zero())
}

/// [`col2im`], through the AVX-512 kernel where it applies (f32, stride 1 or 2).
fn fold<T: GemmElement>(col: &[T], g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, dx: &mut [T]) {
    if im2col_avx512::applies(g) {
        if let (Some(col), Some(dx)) = (T::as_f32(col), T::as_f32_mut(dx)) {
            return im2col_avx512::col2im(col, g, c0, c1, r0, r1, dx);
        }
    }
    col2im(col, g, c0, c1, r0, r1, dx)
}

/// The first `len` elements of a reusable scratch buffer (grown, never shrunk, so tiles of
/// different sizes do not refill it).
pub(super) fn scratch<T: Copy + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    &mut buf[..len]
}

/// Splits `0..count` into one contiguous run per thread, calls `f(run, acc)` for each run with
/// its own zeroed accumulator of `len` elements, and returns the accumulators summed in run
/// order: a fixed summation order for a given thread count (no races, no atomics).
pub(super) fn accumulate_in_runs<T: GemmElement>(
    count: usize,
    len: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync,
) -> Vec<T> {
    let parts = rayon::current_num_threads().clamp(1, count.max(1));
    let per = count.div_ceil(parts).max(1);
    let accs: Vec<Vec<T>> = (0..count.div_ceil(per).max(1))
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![T::zero(); len];
            f(part * per..((part + 1) * per).min(count), &mut acc);
            acc
        })
        .collect();
    let mut accs = accs.into_iter();
    let mut sum = accs.next().expect("at least one run");
    for a in accs {
        for (d, v) in sum.iter_mut().zip(&a) {
            *d += *v;
        }
    }
    sum
}

/// Whether to spread images over threads (each image single-threaded) rather than parallelize
/// inside each image.
fn parallel_over_images(n: usize) -> bool {
    let t = rayon::current_num_threads();
    t == 1 || n >= 4 * t || (n >= t && n / t * t == n)
}

// ----- forward -----

/// One image's forward convolution on the calling thread: `y` is the image's `[O, oH, oW]`.
fn forward_image<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [T], col: &mut Vec<T>) {
    let (og, cg, ckk, hwo) = (g.og(), g.cg(), g.ckk(), g.out_plane());
    for gi in 0..g.g {
        let wg = MatRef { data: w, offset: gi * og * ckk, rs: ckk, cs: 1 };
        let yg = &mut y[gi * og * hwo..(gi + 1) * og * hwo];
        if g.is_pointwise() {
            let b = MatRef { data: x, offset: gi * cg * g.in_plane(), rs: g.in_plane(), cs: 1 };
            gemm(og, cg, hwo, T::one(), wg, b, T::zero(), yg, hwo);
            continue;
        }
        let rows = g.tile_rows(TILE_ELEMS);
        let mut r0 = 0;
        while r0 < g.oh {
            let r1 = (r0 + rows).min(g.oh);
            let ncols = (r1 - r0) * g.ow;
            let col = scratch(col, ckk * ncols);
            unfold(x, g, gi * cg, (gi + 1) * cg, r0, r1, col);
            let b = MatRef { data: &col[..], offset: 0, rs: ncols, cs: 1 };
            gemm(og, ckk, ncols, T::one(), wg, b, T::zero(), &mut yg[r0 * g.ow..], hwo);
            r0 = r1;
        }
    }
}

/// One image's forward convolution using every thread: `y` is the image's `[O, oH, oW]`.
fn forward_image_shared<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [T], col: &mut Vec<T>) {
    let (og, cg, ckk, hwo, kk) = (g.og(), g.cg(), g.ckk(), g.out_plane(), g.kk());
    for gi in 0..g.g {
        let wg = MatRef { data: w, offset: gi * og * ckk, rs: ckk, cs: 1 };
        let yg = &mut y[gi * og * hwo..(gi + 1) * og * hwo];
        if g.is_pointwise() {
            let b = MatRef { data: x, offset: gi * cg * g.in_plane(), rs: g.in_plane(), cs: 1 };
            gemm_par(og, cg, hwo, T::one(), wg, b, T::zero(), yg, hwo);
            continue;
        }
        let rows = g.tile_rows(TILE_ELEMS_SHARED);
        let mut r0 = 0;
        while r0 < g.oh {
            let r1 = (r0 + rows).min(g.oh);
            let ncols = (r1 - r0) * g.ow;
            scratch(col, ckk * ncols).par_chunks_mut(kk * ncols).enumerate().for_each(|(c, part)| {
                let c = gi * cg + c;
                unfold(x, g, c, c + 1, r0, r1, part);
            });
            let b = MatRef { data: &col[..], offset: 0, rs: ncols, cs: 1 };
            gemm_par(og, ckk, ncols, T::one(), wg, b, T::zero(), &mut yg[r0 * g.ow..], hwo);
            r0 = r1;
        }
    }
}

/// Walks the taps of a depthwise filter over one plane: for each filter value `wv` and each
/// output row `r` it touches, calls `f(wv, r, start, lo, hi)` where output columns `lo..hi` of
/// row `r` meet input elements `start, start + sW, ...` of the input plane.
fn for_each_tap_row<T: GemmElement>(k: &[T], g: &Geom, mut f: impl FnMut(T, usize, usize, usize, usize)) {
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let wv = k[ki * g.kw + kj];
            let off = (kj * g.dw) as isize - g.pw as isize;
            let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
            if lo >= hi {
                continue;
            }
            for r in 0..g.oh {
                let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                if ih < 0 || ih as usize >= g.h {
                    continue;
                }
                let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                f(wv, r, start, lo, hi);
            }
        }
    }
}

/// Depthwise forward for one `[oH, oW]` output plane from its `[H, W]` input plane and
/// `[kH, kW]` filter.
fn depthwise_plane<T: GemmElement>(x: &[T], k: &[T], g: &Geom, y: &mut [T]) {
    for_each_tap_row(k, g, |wv, r, start, lo, hi| {
        let yr = &mut y[r * g.ow..(r + 1) * g.ow];
        if g.sw == 1 {
            for (d, s) in yr[lo..hi].iter_mut().zip(&x[start..start + hi - lo]) {
                *d += wv * *s;
            }
        } else {
            for (d, s) in yr[lo..hi].iter_mut().zip(x[start..].iter().step_by(g.sw)) {
                *d += wv * *s;
            }
        }
    });
}

fn conv2d_float<T: GemmElement>(x: &[T], lx: &Layout, w: &[T], lw: &Layout, g: &Geom) -> Vec<T> {
    let len = g.y_shape().iter().product();
    if len == 0 || g.ckk() == 0 {
        return vec![T::zero(); len];
    }
    let x = dense(x, lx);
    let w = dense(w, lw);
    let (x, w) = (&x[..], &w[..]);
    if let (true, Some(x32), Some(w32)) = (winograd4::applies(g), T::as_f32(x), T::as_f32(w)) {
        // SAFETY: the F(4x4) pass writes every output element.
        return T::from_f32_vec(unsafe { build(len, |y| winograd4::forward(x32, w32, g, y)) });
    }
    if let (true, Some(x32), Some(w32)) = (winograd_lanes::applies(g), T::as_f32(x), T::as_f32(w)) {
        // SAFETY: the lane-tiled Winograd pass writes every output element.
        return T::from_f32_vec(unsafe { build(len, |y| winograd_lanes::forward(x32, w32, g, y)) });
    }
    if let (true, Some(x32), Some(w32)) = (direct3x3::applies(g), T::as_f32(x), T::as_f32(w)) {
        // SAFETY: the direct pass writes every output element.
        return T::from_f32_vec(unsafe { build(len, |y| direct3x3::forward(x32, w32, g, y)) });
    }
    if let (true, Some(x32), Some(w32)) = (stride2_3x3::applies(g), T::as_f32(x), T::as_f32(w)) {
        // SAFETY: the stride-2 pass writes every output element.
        return T::from_f32_vec(unsafe { build(len, |y| stride2_3x3::forward(x32, w32, g, y)) });
    }
    if let (true, Some(x32), Some(w32)) = (depthwise3x3::applies(g), T::as_f32(x), T::as_f32(w)) {
        // SAFETY: the depthwise pass writes every output element.
        return T::from_f32_vec(unsafe { build(len, |y| depthwise3x3::forward(x32, w32, g, y)) });
    }
    if winograd::applies(g) {
        // SAFETY: the Winograd pass writes every output element.
        return unsafe { build(len, |y| winograd::forward(x, w, g, y)) };
    }
    let mut y = vec![T::zero(); len];
    forward_direct(x, w, g, &mut y);
    y
}

/// The forward convolution without the Winograd path (depthwise, 1x1 and im2col + GEMM) of
/// dense `x` and `w` into the zeroed `y`.
pub(super) fn forward_direct<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [T]) {
    let (hwi, hwo) = (g.in_plane(), g.out_plane());
    if g.is_depthwise() {
        let kk = g.kk();
        y.par_chunks_mut(hwo).with_min_len(8).enumerate().for_each(|(p, yp)| {
            let c = p % g.c;
            depthwise_plane(&x[p * hwi..(p + 1) * hwi], &w[c * kk..(c + 1) * kk], g, yp);
        });
        return;
    }
    let (img_in, img_out) = (g.c * hwi, g.o * hwo);
    if parallel_over_images(g.n) {
        y.par_chunks_mut(img_out).enumerate().for_each_init(Vec::new, |col, (i, yi)| {
            forward_image(&x[i * img_in..(i + 1) * img_in], w, g, yi, col);
        });
    } else {
        let mut col = Vec::new();
        for (i, yi) in y.chunks_mut(img_out).enumerate() {
            forward_image_shared(&x[i * img_in..(i + 1) * img_in], w, g, yi, &mut col);
        }
    }
}

fn conv2d_i8(x: &[i8], lx: &Layout, w: &[i8], lw: &Layout, g: &Geom) -> Vec<i32> {
    let mut y = vec![0i32; g.y_shape().iter().product()];
    if y.is_empty() || g.ckk() == 0 {
        return y;
    }
    let x = dense(x, lx);
    let w = dense(w, lw);
    let (x, w) = (&x[..], &w[..]);
    let (og, cg, ckk, hwo) = (g.og(), g.cg(), g.ckk(), g.out_plane());
    let img_in = g.c * g.in_plane();
    y.par_chunks_mut(g.o * hwo).enumerate().for_each_init(Vec::new, |col, (i, yi)| {
        let xi = &x[i * img_in..(i + 1) * img_in];
        let col = scratch(col, ckk * hwo);
        for gi in 0..g.g {
            im2col(xi, g, gi * cg, (gi + 1) * cg, 0, g.oh, col, 0i8);
            let a = MatRef { data: w, offset: gi * og * ckk, rs: ckk, cs: 1 };
            let b = MatRef { data: &col[..], offset: 0, rs: hwo, cs: 1 };
            super::int8::gemm_i8(og, ckk, hwo, a, b, &mut yi[gi * og * hwo..(gi + 1) * og * hwo]);
        }
    });
    y
}

fn check_dtypes(op: &'static str, a: &CpuStorage, b: &CpuStorage) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    Ok(())
}

/// Re-labels an error from `Conv2dParams::output_shape` (which names `conv2d`) with `op`.
fn relabel(op: &'static str, e: Error) -> Error {
    match e {
        Error::InvalidArgument { msg, .. } => Error::InvalidArgument { op, msg },
        Error::ShapeMismatch { lhs, rhs, .. } => Error::ShapeMismatch { op, lhs, rhs },
        e => e,
    }
}

pub(crate) fn conv2d(x: &CpuStorage, lx: &Layout, w: &CpuStorage, lw: &Layout, p: &Conv2dParams) -> Result<CpuStorage> {
    const OP: &str = "conv2d";
    check_extent(OP, x, lx)?;
    check_extent(OP, w, lw)?;
    check_dtypes(OP, x, w)?;
    let g = Geom::new(lx.shape(), lw.shape(), p)?;
    match (x, w) {
        (CpuStorage::F32(x), CpuStorage::F32(w)) => Ok(CpuStorage::F32(conv2d_float(x, lx, w, lw, &g))),
        (CpuStorage::F64(x), CpuStorage::F64(w)) => Ok(CpuStorage::F64(conv2d_float(x, lx, w, lw, &g))),
        (CpuStorage::I8(x), CpuStorage::I8(w)) => Ok(CpuStorage::I32(conv2d_i8(x, lx, w, lw, &g))),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    }
}

// ----- backward data -----

/// One image's input gradient on the calling thread: `gy` is `[O, oH, oW]`, `dx` (zeroed) is
/// `[C, H, W]`.
fn backward_data_image<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [T], col: &mut Vec<T>) {
    let (og, cg, ckk, hwo, hwi) = (g.og(), g.cg(), g.ckk(), g.out_plane(), g.in_plane());
    for gi in 0..g.g {
        // W_g^T: [ckk, og]
        let wt = MatRef { data: w, offset: gi * og * ckk, rs: 1, cs: ckk };
        if g.is_pointwise() {
            let b = MatRef { data: gy, offset: gi * og * hwo, rs: hwo, cs: 1 };
            gemm(cg, og, hwi, T::one(), wt, b, T::zero(), &mut dx[gi * cg * hwi..(gi + 1) * cg * hwi], hwi);
            continue;
        }
        let rows = g.tile_rows(TILE_ELEMS);
        let mut r0 = 0;
        while r0 < g.oh {
            let r1 = (r0 + rows).min(g.oh);
            let ncols = (r1 - r0) * g.ow;
            let col = scratch(col, ckk * ncols);
            let b = MatRef { data: gy, offset: gi * og * hwo + r0 * g.ow, rs: hwo, cs: 1 };
            gemm(ckk, og, ncols, T::one(), wt, b, T::zero(), col, ncols);
            fold(col, g, gi * cg, (gi + 1) * cg, r0, r1, dx);
            r0 = r1;
        }
    }
}

/// One image's input gradient using every thread.
fn backward_data_image_shared<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [T], col: &mut Vec<T>) {
    let (og, cg, ckk, hwo, hwi, kk) = (g.og(), g.cg(), g.ckk(), g.out_plane(), g.in_plane(), g.kk());
    for gi in 0..g.g {
        let wt = MatRef { data: w, offset: gi * og * ckk, rs: 1, cs: ckk };
        let dxg = &mut dx[gi * cg * hwi..(gi + 1) * cg * hwi];
        if g.is_pointwise() {
            let b = MatRef { data: gy, offset: gi * og * hwo, rs: hwo, cs: 1 };
            gemm_par(cg, og, hwi, T::one(), wt, b, T::zero(), dxg, hwi);
            continue;
        }
        let rows = g.tile_rows(TILE_ELEMS_SHARED);
        let mut r0 = 0;
        while r0 < g.oh {
            let r1 = (r0 + rows).min(g.oh);
            let ncols = (r1 - r0) * g.ow;
            let col = scratch(col, ckk * ncols);
            let b = MatRef { data: gy, offset: gi * og * hwo + r0 * g.ow, rs: hwo, cs: 1 };
            gemm_par(ckk, og, ncols, T::one(), wt, b, T::zero(), col, ncols);
            let col = &*col;
            dxg.par_chunks_mut(hwi).zip(col.par_chunks(kk * ncols)).for_each(|(dxc, part)| {
                fold(part, g, 0, 1, r0, r1, dxc);
            });
            r0 = r1;
        }
    }
}

/// Depthwise input gradient of one plane: scatters `gy` (`[oH, oW]`) through the `[kH, kW]`
/// filter into `dx` (`[H, W]`).
fn depthwise_plane_backward<T: GemmElement>(gy: &[T], k: &[T], g: &Geom, dx: &mut [T]) {
    for_each_tap_row(k, g, |wv, r, start, lo, hi| {
        let gr = &gy[r * g.ow..(r + 1) * g.ow];
        if g.sw == 1 {
            for (d, s) in dx[start..start + hi - lo].iter_mut().zip(&gr[lo..hi]) {
                *d += wv * *s;
            }
        } else {
            for (d, s) in dx[start..].iter_mut().step_by(g.sw).zip(&gr[lo..hi]) {
                *d += wv * *s;
            }
        }
    });
}

fn backward_data_float<T: GemmElement>(gy: &[T], lgy: &Layout, w: &[T], lw: &Layout, g: &Geom) -> Vec<T> {
    let len = g.x_shape().iter().product();
    if len == 0 || g.o == 0 || g.kk() == 0 {
        return vec![T::zero(); len];
    }
    let gy = dense(gy, lgy);
    let w = dense(w, lw);
    let (gy, w) = (&gy[..], &w[..]);
    if let (true, Some(gy32), Some(w32)) = (winograd4::applies_backward_data(g), T::as_f32(gy), T::as_f32(w)) {
        // SAFETY: the F(4x4) pass writes every input-gradient element.
        return T::from_f32_vec(unsafe { build(len, |dx| winograd4::backward_data(gy32, w32, g, dx)) });
    }
    if let (true, Some(gy32), Some(w32)) = (winograd_lanes::applies_backward_data(g), T::as_f32(gy), T::as_f32(w)) {
        // SAFETY: the lane-tiled Winograd pass writes every element of the input gradient.
        return T::from_f32_vec(unsafe { build(len, |dx| winograd_lanes::backward_data(gy32, w32, g, dx)) });
    }
    if let (true, Some(gy32), Some(w32)) = (direct3x3::applies_backward_data(g), T::as_f32(gy), T::as_f32(w)) {
        // SAFETY: the direct pass writes every element of the input gradient.
        return T::from_f32_vec(unsafe { build(len, |dx| direct3x3::backward_data(gy32, w32, g, dx)) });
    }
    if let (true, Some(gy32), Some(w32)) = (depthwise3x3::applies_backward_data(g), T::as_f32(gy), T::as_f32(w)) {
        // SAFETY: the depthwise pass writes every element of the input gradient.
        return T::from_f32_vec(unsafe { build(len, |dx| depthwise3x3::backward_data(gy32, w32, g, dx)) });
    }
    if winograd::applies_backward_data(g) {
        // SAFETY: the Winograd pass writes every element of the input gradient.
        return unsafe { build(len, |dx| winograd::backward_data(gy, w, g, dx)) };
    }
    let mut dx = vec![T::zero(); len];
    backward_data_direct(gy, w, g, &mut dx);
    dx
}

/// The input gradient without the Winograd path, of dense `gy` and `w` into the zeroed `dx`.
pub(super) fn backward_data_direct<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [T]) {
    let (hwi, hwo) = (g.in_plane(), g.out_plane());
    if g.is_depthwise() {
        let kk = g.kk();
        dx.par_chunks_mut(hwi).with_min_len(8).enumerate().for_each(|(p, dxp)| {
            let c = p % g.c;
            depthwise_plane_backward(&gy[p * hwo..(p + 1) * hwo], &w[c * kk..(c + 1) * kk], g, dxp);
        });
        return;
    }
    let (img_in, img_out) = (g.c * hwi, g.o * hwo);
    if parallel_over_images(g.n) {
        dx.par_chunks_mut(img_in).enumerate().for_each_init(Vec::new, |col, (i, dxi)| {
            backward_data_image(&gy[i * img_out..(i + 1) * img_out], w, g, dxi, col);
        });
    } else {
        let mut col = Vec::new();
        for (i, dxi) in dx.chunks_mut(img_in).enumerate() {
            backward_data_image_shared(&gy[i * img_out..(i + 1) * img_out], w, g, dxi, &mut col);
        }
    }
}

/// Checks a `gy` shape against what the forward pass with input `x_shape` and weight `w_shape`
/// would produce.
fn check_gy(op: &'static str, x_shape: &[usize], w_shape: &[usize], gy: &[usize], p: &Conv2dParams) -> Result<Geom> {
    let g = Geom::new(x_shape, w_shape, p).map_err(|e| relabel(op, e))?;
    if gy != g.y_shape() {
        return Err(Error::invalid(
            op,
            format!(
                "gradient {gy:?} does not match the output {:?} of input {x_shape:?} and weight {w_shape:?} ({p:?})",
                g.y_shape()
            ),
        ));
    }
    Ok(g)
}

/// Checks the operands of `conv2d_backward_data` (gradient `[N, O, oH, oW]`, weight
/// `[O, C/groups, kH, kW]`, input size `input_hw`) and returns the geometry.
pub(crate) fn geom_backward_data(
    sg: &[usize],
    sw: &[usize],
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<Geom> {
    const OP: &str = "conv2d_backward_data";
    if sg.len() != 4 || sw.len() != 4 {
        return Err(Error::invalid(
            OP,
            format!("expected 4-D gradient and weight, got gradient {sg:?} and weight {sw:?}"),
        ));
    }
    let c = sw[1]
        .checked_mul(p.groups)
        .ok_or_else(|| Error::invalid(OP, format!("weight {sw:?} with groups={} is too large", p.groups)))?;
    check_gy(OP, &[sg[0], c, input_hw.0, input_hw.1], sw, sg, p)
}

pub(crate) fn conv2d_backward_data(
    gy: &CpuStorage,
    lgy: &Layout,
    w: &CpuStorage,
    lw: &Layout,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<CpuStorage> {
    const OP: &str = "conv2d_backward_data";
    check_extent(OP, gy, lgy)?;
    check_extent(OP, w, lw)?;
    check_dtypes(OP, gy, w)?;
    let g = geom_backward_data(lgy.shape(), lw.shape(), p, input_hw)?;
    match (gy, w) {
        (CpuStorage::F32(gy), CpuStorage::F32(w)) => Ok(CpuStorage::F32(backward_data_float(gy, lgy, w, lw, &g))),
        (CpuStorage::F64(gy), CpuStorage::F64(w)) => Ok(CpuStorage::F64(backward_data_float(gy, lgy, w, lw, &g))),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: gy.dtype() }),
    }
}

// ----- backward weight -----

/// Adds one image's weight gradient into `acc` (`[O, C/g * kH * kW]`) on the calling thread.
fn backward_weight_image<T: GemmElement>(x: &[T], gy: &[T], g: &Geom, acc: &mut [T], col: &mut Vec<T>) {
    let (og, cg, ckk, hwo, hwi) = (g.og(), g.cg(), g.ckk(), g.out_plane(), g.in_plane());
    for gi in 0..g.g {
        let accg = &mut acc[gi * og * ckk..(gi + 1) * og * ckk];
        if g.is_pointwise() {
            let a = MatRef { data: gy, offset: gi * og * hwo, rs: hwo, cs: 1 };
            let b = MatRef { data: x, offset: gi * cg * hwi, rs: 1, cs: hwi };
            gemm(og, hwo, cg, T::one(), a, b, T::one(), accg, ckk);
            continue;
        }
        let rows = g.tile_rows(TILE_ELEMS);
        let mut r0 = 0;
        while r0 < g.oh {
            let r1 = (r0 + rows).min(g.oh);
            let ncols = (r1 - r0) * g.ow;
            let col = scratch(col, ckk * ncols);
            unfold(x, g, gi * cg, (gi + 1) * cg, r0, r1, col);
            let a = MatRef { data: gy, offset: gi * og * hwo + r0 * g.ow, rs: hwo, cs: 1 };
            let b = MatRef { data: &col[..], offset: 0, rs: 1, cs: ncols };
            gemm(og, ncols, ckk, T::one(), a, b, T::one(), accg, ckk);
            r0 = r1;
        }
    }
}

/// Adds one image's weight gradient into `acc` using every thread.
fn backward_weight_image_shared<T: GemmElement>(x: &[T], gy: &[T], g: &Geom, acc: &mut [T], col: &mut Vec<T>) {
    let (og, cg, ckk, hwo, hwi, kk) = (g.og(), g.cg(), g.ckk(), g.out_plane(), g.in_plane(), g.kk());
    for gi in 0..g.g {
        let accg = &mut acc[gi * og * ckk..(gi + 1) * og * ckk];
        if g.is_pointwise() {
            let a = MatRef { data: gy, offset: gi * og * hwo, rs: hwo, cs: 1 };
            let b = MatRef { data: x, offset: gi * cg * hwi, rs: 1, cs: hwi };
            gemm_par(og, hwo, cg, T::one(), a, b, T::one(), accg, ckk);
            continue;
        }
        let rows = g.tile_rows(TILE_ELEMS_SHARED);
        let mut r0 = 0;
        while r0 < g.oh {
            let r1 = (r0 + rows).min(g.oh);
            let ncols = (r1 - r0) * g.ow;
            scratch(col, ckk * ncols).par_chunks_mut(kk * ncols).enumerate().for_each(|(c, part)| {
                let c = gi * cg + c;
                unfold(x, g, c, c + 1, r0, r1, part);
            });
            let a = MatRef { data: gy, offset: gi * og * hwo + r0 * g.ow, rs: hwo, cs: 1 };
            let b = MatRef { data: &col[..], offset: 0, rs: 1, cs: ncols };
            gemm_par(og, ncols, ckk, T::one(), a, b, T::one(), accg, ckk);
            r0 = r1;
        }
    }
}

/// `Σ a[i] * b[i * stride]` with several independent accumulators (so it vectorizes).
#[inline]
fn dot_strided<T: GemmElement>(a: &[T], b: &[T], stride: usize) -> T {
    if stride == 1 {
        let b = &b[..a.len()];
        let mut lanes = [T::zero(); 16];
        let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for l in 0..16 {
                lanes[l] += x[l] * y[l];
            }
        }
        let mut s = lanes.iter().fold(T::zero(), |s, &v| s + v);
        for (x, y) in ar.iter().zip(br) {
            s += *x * *y;
        }
        s
    } else {
        a.iter().zip(b.iter().step_by(stride)).fold(T::zero(), |s, (x, y)| s + *x * *y)
    }
}

/// Depthwise weight gradient of one channel: `xs` are its `[H, W]` planes and `gys` its
/// `[oH, oW]` planes over the images; `dk` is its `[kH, kW]` filter gradient.
fn depthwise_weight_channel<T: GemmElement>(x: &[T], gy: &[T], g: &Geom, c: usize, dk: &mut [T]) {
    let (hwi, hwo) = (g.in_plane(), g.out_plane());
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let off = (kj * g.dw) as isize - g.pw as isize;
            let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
            let mut s = T::zero();
            if lo < hi {
                for n in 0..g.n {
                    let p = n * g.c + c;
                    let (xp, gp) = (&x[p * hwi..(p + 1) * hwi], &gy[p * hwo..(p + 1) * hwo]);
                    for (r, gr) in gp.chunks_exact(g.ow).enumerate() {
                        let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                        if ih < 0 || ih as usize >= g.h {
                            continue;
                        }
                        let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                        s += dot_strided(&gr[lo..hi], &xp[start..], g.sw);
                    }
                }
            }
            dk[ki * g.kw + kj] = s;
        }
    }
}

fn backward_weight_float<T: GemmElement>(x: &[T], lx: &Layout, gy: &[T], lgy: &Layout, g: &Geom) -> Vec<T> {
    let wlen: usize = g.w_shape().iter().product();
    if wlen == 0 || g.n == 0 {
        return vec![T::zero(); wlen];
    }
    let x = dense(x, lx);
    let gy = dense(gy, lgy);
    let (x, gy) = (&x[..], &gy[..]);
    if let (true, Some(x32), Some(gy32)) = (winograd4::applies_backward_weight(g), T::as_f32(x), T::as_f32(gy)) {
        let mut dw = vec![T::zero(); wlen];
        winograd4::backward_weight(x32, gy32, g, T::as_f32_mut(&mut dw).expect("T is f32"));
        return dw;
    }
    if let (true, Some(x32), Some(gy32)) = (winograd_lanes::applies(g), T::as_f32(x), T::as_f32(gy)) {
        let mut dw = vec![T::zero(); wlen];
        winograd_lanes::backward_weight(x32, gy32, g, T::as_f32_mut(&mut dw).expect("T is f32"));
        return dw;
    }
    if let (true, Some(x32), Some(gy32)) = (direct3x3::applies(g), T::as_f32(x), T::as_f32(gy)) {
        let mut dw = vec![T::zero(); wlen];
        direct3x3::backward_weight(x32, gy32, g, T::as_f32_mut(&mut dw).expect("T is f32"));
        return dw;
    }
    if let (true, Some(x32), Some(gy32)) = (stride2_3x3::applies_backward_weight(g), T::as_f32(x), T::as_f32(gy)) {
        let mut dw = vec![T::zero(); wlen];
        stride2_3x3::backward_weight(x32, gy32, g, T::as_f32_mut(&mut dw).expect("T is f32"));
        return dw;
    }
    if let (true, Some(x32), Some(gy32)) = (depthwise3x3::applies(g), T::as_f32(x), T::as_f32(gy)) {
        let mut dw = vec![T::zero(); wlen];
        depthwise3x3::backward_weight(x32, gy32, g, T::as_f32_mut(&mut dw).expect("T is f32"));
        return dw;
    }
    if winograd::applies(g) {
        return winograd::backward_weight(x, gy, g);
    }
    backward_weight_direct(x, gy, g)
}

/// The weight gradient without the Winograd path, of dense `x` and `gy`.
pub(super) fn backward_weight_direct<T: GemmElement>(x: &[T], gy: &[T], g: &Geom) -> Vec<T> {
    let wlen: usize = g.w_shape().iter().product();
    let (hwi, hwo) = (g.in_plane(), g.out_plane());
    if g.is_depthwise() {
        let mut dw = vec![T::zero(); wlen];
        let kk = g.kk();
        dw.par_chunks_mut(kk).enumerate().for_each(|(c, dk)| depthwise_weight_channel(x, gy, g, c, dk));
        return dw;
    }
    let (img_in, img_out) = (g.c * hwi, g.o * hwo);
    if parallel_over_images(g.n) {
        accumulate_in_runs(g.n, wlen, |images, acc| {
            let mut col = Vec::new();
            for i in images {
                let (xi, gi) = (&x[i * img_in..(i + 1) * img_in], &gy[i * img_out..(i + 1) * img_out]);
                backward_weight_image(xi, gi, g, acc, &mut col);
            }
        })
    } else {
        let mut dw = vec![T::zero(); wlen];
        let mut col = Vec::new();
        for i in 0..g.n {
            let (xi, gi) = (&x[i * img_in..(i + 1) * img_in], &gy[i * img_out..(i + 1) * img_out]);
            backward_weight_image_shared(xi, gi, g, &mut dw, &mut col);
        }
        dw
    }
}

/// Checks the operands of `conv2d_backward_weight` (input `[N, C, H, W]`, gradient
/// `[N, O, oH, oW]`, kernel size `kernel_hw`) and returns the geometry.
pub(crate) fn geom_backward_weight(
    sx: &[usize],
    sg: &[usize],
    p: &Conv2dParams,
    kernel_hw: (usize, usize),
) -> Result<Geom> {
    const OP: &str = "conv2d_backward_weight";
    if sx.len() != 4 || sg.len() != 4 {
        return Err(Error::invalid(
            OP,
            format!("expected 4-D input and gradient, got input {sx:?} and gradient {sg:?}"),
        ));
    }
    if p.groups == 0 || !sx[1].is_multiple_of(p.groups) || !sg[1].is_multiple_of(p.groups) || sx[0] != sg[0] {
        return Err(Error::invalid(
            OP,
            format!(
                "input {sx:?} and gradient {sg:?} do not agree for groups={} (need equal batch sizes and channels divisible by groups)",
                p.groups
            ),
        ));
    }
    let w_shape = [sg[1], sx[1] / p.groups, kernel_hw.0, kernel_hw.1];
    check_gy(OP, sx, &w_shape, sg, p)
}

pub(crate) fn conv2d_backward_weight(
    x: &CpuStorage,
    lx: &Layout,
    gy: &CpuStorage,
    lgy: &Layout,
    p: &Conv2dParams,
    kernel_hw: (usize, usize),
) -> Result<CpuStorage> {
    const OP: &str = "conv2d_backward_weight";
    check_extent(OP, x, lx)?;
    check_extent(OP, gy, lgy)?;
    check_dtypes(OP, x, gy)?;
    let g = geom_backward_weight(lx.shape(), lgy.shape(), p, kernel_hw)?;
    match (x, gy) {
        (CpuStorage::F32(x), CpuStorage::F32(gy)) => Ok(CpuStorage::F32(backward_weight_float(x, lx, gy, lgy, &g))),
        (CpuStorage::F64(x), CpuStorage::F64(gy)) => Ok(CpuStorage::F64(backward_weight_float(x, lx, gy, lgy, &g))),
        _ => Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges() {
        // off = -1, stride 1, 5 outputs over 5 inputs: position 0 reads -1.
        assert_eq!(valid_range(5, 1, -1, 5), (1, 5));
        assert_eq!(valid_range(5, 1, 1, 5), (0, 4));
        assert_eq!(valid_range(3, 2, -1, 5), (1, 3));
        assert_eq!(valid_range(3, 2, 10, 5), (0, 0));
        let (lo, hi) = valid_range(3, 1, -10, 5);
        assert!(lo >= hi);
    }

    /// The three public passes in f32 (which take the AVX-512 direct and depthwise kernels
    /// where the CPU has them) against f64 (Winograd or im2col) on shapes that reach each
    /// path, with a non-contiguous input view.
    #[test]
    fn f32_fast_paths_agree_with_f64_through_the_dispatch() {
        use crate::cpu::testing::values;
        // (n, c, h, w, o, stride, pad, groups): Winograd F(4x4) and F(2x2) with tiles in
        // lanes, depthwise stride 1 and 2, a narrow F(2x2) layer, the stem of a CIFAR ResNet
        // (direct), a stride-2 layer (tap planes).
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
            let (x64, w64, gy64) =
                (CpuStorage::F64(xv.clone()), CpuStorage::F64(wv.clone()), CpuStorage::F64(gyv.clone()));
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
                crate::cpu::testing::assert_close_scaled(&format!("{pass} {what}"), &got, &want, 2e-5);
            }
        }
    }
}
