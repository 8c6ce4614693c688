//! im2col + GEMM: the general convolution, for every geometry and element type (f32, f64, and
//! i8 -> i32 forward for quantized inference).
//!
//! A tile of output rows is unfolded into a `[C/g * kH * kW, rows * oW]` column buffer that
//! stays in cache, and one GEMM multiplies it with the group's weight. Images are spread over
//! rayon's threads, each with its own column buffer and a single-threaded [`gemm`]; when there
//! are too few images to keep the threads busy, images run one after the other and the
//! parallelism moves inside (im2col over channels, [`gemm_par`] over output panels) — one level
//! of parallelism either way. 1x1 kernels with stride 1 and no padding skip im2col (the input
//! plane is the GEMM operand). Small output planes put several images into each GEMM instead
//! ([`batched`]).
//!
//! The input gradient is `W^T dY` followed by col2im (a scatter-add into the input gradient).
//! The weight gradient is `dY col^T` accumulated over images, in one accumulator per thread and
//! a final reduction (no races, and a fixed summation order for a given thread count).

use super::batched;
use super::unfold::{fold, im2col, unfold};
use crate::cpu::conv::common::{accumulate_in_runs, scratch};
use crate::cpu::gemm::{gemm, gemm_par, GemmElement, MatRef};
use crate::planning::conv::Geom;
use rayon::prelude::*;

/// Elements of one im2col tile when each thread works on its own image (about an L2 cache).
/// (1 MiB of f32: measured best among 2^16..2^20 for 64 channels at 32x32.)
const TILE_ELEMS: usize = 1 << 18;
/// Elements of one im2col tile when the threads share one image.
const TILE_ELEMS_SHARED: usize = 1 << 20;

/// Whether to spread images over threads (each image single-threaded) rather than parallelize
/// inside each image.
fn parallel_over_images(n: usize) -> bool {
    let t = rayon::current_num_threads();
    t == 1 || n >= 4 * t || (n >= t && n / t * t == n)
}

/// Images per GEMM when several share one ([`batched`]: small output planes, with enough
/// images to spread over the threads), or `None` for one image per GEMM.
fn image_groups(g: &Geom) -> Option<usize> {
    if parallel_over_images(g.n) {
        batched::images_per_group(g)
    } else {
        None
    }
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

/// The forward convolution of dense `x` and `w` into the zeroed `y`.
pub(in crate::cpu::conv) fn forward<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [T]) {
    let (img_in, img_out) = (g.c * g.in_plane(), g.o * g.out_plane());
    if let Some(imgs) = image_groups(g) {
        batched::forward(x, w, g, y, imgs);
    } else if parallel_over_images(g.n) {
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

/// The quantized forward convolution: dense `i8` `x` and `w` into `i32` `y` (zeroed), through
/// the integer GEMM.
pub(in crate::cpu::conv) fn forward_i8(x: &[i8], w: &[i8], g: &Geom, y: &mut [i32]) {
    let (og, cg, ckk, hwo) = (g.og(), g.cg(), g.ckk(), g.out_plane());
    let img_in = g.c * g.in_plane();
    y.par_chunks_mut(g.o * hwo).enumerate().for_each_init(Vec::new, |col, (i, yi)| {
        let xi = &x[i * img_in..(i + 1) * img_in];
        let col = scratch(col, ckk * hwo);
        for gi in 0..g.g {
            im2col(xi, g, gi * cg, (gi + 1) * cg, 0, g.oh, col, 0i8);
            let a = MatRef { data: w, offset: gi * og * ckk, rs: ckk, cs: 1 };
            let b = MatRef { data: &col[..], offset: 0, rs: hwo, cs: 1 };
            crate::cpu::int8::gemm_i8(og, ckk, hwo, a, b, &mut yi[gi * og * hwo..(gi + 1) * og * hwo]);
        }
    });
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

/// The input gradient of dense `gy` and `w` into the zeroed `dx`.
pub(in crate::cpu::conv) fn backward_data<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [T]) {
    let (img_in, img_out) = (g.c * g.in_plane(), g.o * g.out_plane());
    if let Some(imgs) = image_groups(g) {
        batched::backward_data(gy, w, g, dx, imgs);
    } else if parallel_over_images(g.n) {
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

/// The weight gradient (`[O, C/g, kH, kW]`) of dense `x` and `gy`.
pub(in crate::cpu::conv) fn backward_weight<T: GemmElement>(x: &[T], gy: &[T], g: &Geom) -> Vec<T> {
    let wlen: usize = g.w_shape().iter().product();
    let (img_in, img_out) = (g.c * g.in_plane(), g.o * g.out_plane());
    if let Some(imgs) = image_groups(g) {
        batched::backward_weight(x, gy, g, imgs)
    } else if parallel_over_images(g.n) {
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
