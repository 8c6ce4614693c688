//! Direct 3x3 convolution (stride 1, no dilation, one group) in f32 under AVX-512: the narrow
//! layers of CIFAR ResNets, where the channel counts (16-32) are too small for a GEMM — or
//! Winograd's 16 GEMMs — to run near the FMA peak.
//!
//! Each vector holds 16 adjacent output columns of one row. A register tile of
//! [`OC`](kernels::OC) output channels x [`ROWS`](kernels::ROWS) rows sums, over the input
//! channels and the 9 taps, a broadcast weight times an unaligned row load of the source plane:
//! every load feeds several FMAs and no data is unfolded or transformed. The source planes are
//! first copied into zero-bordered planes (one image at a time, per thread), so padding and the
//! last, partial column vector need no branches; the last vector is stored under a mask.
//!
//! - Backward data is the same pass over `dY` with the filters flipped and their channels
//!   swapped, padding `2 - p`.
//! - Backward weight sums `dY[o] ⊙ shift(x[c], kh, kw)` in vector accumulators for
//!   [`GRAD_OC`](kernels::GRAD_OC) output channels x 9 taps of one input channel over a chunk of
//!   images, then adds their lane sums into the gradient. Chunks are spread over threads with one
//!   accumulator per thread, summed in order (a fixed order for a given thread count).

mod kernels;

use crate::cpu::conv::common::{accumulate_in_runs, scratch};
use crate::cpu::gemm::SendPtr;
use crate::planning::conv::Geom;
use kernels::{forward_tile, weight_tile, GRAD_OC, OC, ROWS};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Floats of zero-bordered source planes per weight-gradient chunk of images (with their
/// `dY` planes: about half an L2 cache).
const GRAD_CHUNK_ELEMS: usize = 1 << 17;

/// One pass: source planes `[n, cin, h, w]` read with padding (`ph`, `pw`), destination
/// planes `[n, cout, oh, ow]` with `oh = h + 2 ph - 2`, and the zero-bordered copy of a
/// source plane (`rows x stride`) the kernels read.
#[derive(Clone, Copy, Debug)]
struct Pass {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    /// 16-column vectors per output row.
    vectors: usize,
    /// Row stride of a bordered plane: every vector's 3 shifted loads stay inside a row.
    stride: usize,
    /// Rows of a bordered plane: whole row tiles plus the two the taps reach below.
    rows: usize,
}

impl Pass {
    fn new(n: usize, cin: usize, (h, w): (usize, usize), cout: usize, (ph, pw): (usize, usize)) -> Pass {
        let (oh, ow) = (h + 2 * ph - 2, w + 2 * pw - 2);
        let vectors = ow.div_ceil(16);
        Pass {
            n,
            cin,
            h,
            w,
            cout,
            ph,
            pw,
            oh,
            ow,
            vectors,
            stride: 16 * vectors + 2,
            rows: oh.next_multiple_of(ROWS) + 2,
        }
    }
    fn plane(&self) -> usize {
        self.rows * self.stride
    }
    fn in_image(&self) -> usize {
        self.cin * self.h * self.w
    }
    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    /// The store mask of the last vector of a row.
    fn tail(&self) -> u16 {
        match self.ow % 16 {
            0 => 0xffff,
            r => (1u16 << r) - 1,
        }
    }
    /// Copies the source planes of one image into zero-bordered planes.
    fn border(&self, src: &[f32], dst: &mut [f32]) {
        let (h, w, ph, pw) = (self.h, self.w, self.ph, self.pw);
        for (s, d) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(self.plane())) {
            for (i, row) in d.chunks_exact_mut(self.stride).enumerate() {
                match i.checked_sub(ph).filter(|&si| si < h) {
                    Some(si) => {
                        row[..pw].fill(0.0);
                        row[pw..pw + w].copy_from_slice(&s[si * w..(si + 1) * w]);
                        row[pw + w..].fill(0.0);
                    }
                    None => row.fill(0.0),
                }
            }
        }
    }
}

/// The filters of `w` (`[rows, cols, 3, 3]`, or `[cols, rows, 3, 3]` flipped when `flip`)
/// for destination channels `rows` from source channels `cols`, as
/// `[rows / OC][cols][9][OC]` (zero past the last row).
fn pack(w: &[f32], rows: usize, cols: usize, flip: bool) -> Vec<f32> {
    let blocks = rows.div_ceil(OC);
    let mut p = vec![0.0; blocks * cols * 9 * OC];
    for r in 0..rows {
        for c in 0..cols {
            for t in 0..9 {
                let v = if flip { w[(c * rows + r) * 9 + 8 - t] } else { w[(r * cols + c) * 9 + t] };
                p[((r / OC * cols + c) * 9 + t) * OC + r % OC] = v;
            }
        }
    }
    p
}

/// Source planes `x` through packed filters `wp` into the destination planes `y` (every
/// element written). Images are spread over the threads; with fewer images than twice the
/// threads, each image's channel blocks are split too.
fn data_pass(x: &[f32], wp: &[f32], ps: &Pass, y: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), ps.n * ps.in_image(), "direct3x3: source size");
    assert_eq!(y.len(), ps.n * ps.cout * ps.out_plane(), "direct3x3: destination size");
    assert!(crate::cpu::isa::use_avx512_vl(), "direct3x3: the CPU lacks AVX-512F/VL");
    let blocks = ps.cout.div_ceil(OC);
    let threads = rayon::current_num_threads();
    let splits = if ps.n >= 2 * threads { 1 } else { (2 * threads).div_ceil(ps.n.max(1)).min(blocks) };
    let per = blocks.div_ceil(splits);
    let yp = SendPtr(y.as_mut_ptr().cast::<f32>());
    (0..ps.n * splits).into_par_iter().for_each_init(Vec::new, |buf, task| {
        let (img, part, y) = (task / splits, task % splits, &yp);
        let src = scratch(buf, ps.cin * ps.plane());
        ps.border(&x[img * ps.in_image()..(img + 1) * ps.in_image()], src);
        let (tail, plane_out) = (ps.tail(), ps.out_plane());
        for blk in part * per..((part + 1) * per).min(blocks) {
            let chans = OC.min(ps.cout - blk * OC);
            for r0 in (0..ps.oh).step_by(ROWS) {
                for v in 0..ps.vectors {
                    let mask = if v + 1 == ps.vectors { tail } else { 0xffff };
                    // SAFETY: AVX-512F and VL are present (asserted). The bordered planes hold
                    // `rows >= r0 + ROWS + 2` rows of `stride >= 16 v + 18` floats; `wp`
                    // holds `blocks` packed blocks; the tile stores `chans` channels of
                    // image `img` from `blk * OC`, rows `r0..r0 + rows`, columns
                    // `16 v..` under the mask (inside `ow`) — disjoint across tasks.
                    unsafe {
                        forward_tile(
                            src.as_ptr().add(r0 * ps.stride + 16 * v),
                            ps.plane(),
                            ps.stride,
                            ps.cin,
                            wp.as_ptr().add(blk * ps.cin * 9 * OC),
                            y.0.add((img * ps.cout + blk * OC) * plane_out + r0 * ps.ow + 16 * v),
                            plane_out,
                            ps.ow,
                            chans,
                            ROWS.min(ps.oh - r0),
                            mask,
                        )
                    }
                }
            }
        }
    });
}

/// Forward convolution (`x` `[N, C, H, W]`, `w` `[O, C, 3, 3]`, dense) into `y`
/// (`[N, O, oH, oW]`, every element written).
pub(in crate::cpu::conv) fn forward(x: &[f32], w: &[f32], g: &Geom, y: &mut [MaybeUninit<f32>]) {
    let ps = Pass::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw));
    debug_assert_eq!((ps.oh, ps.ow), (g.oh, g.ow));
    data_pass(x, &pack(w, g.o, g.c, false), &ps, y);
}

/// Input gradient (`gy` `[N, O, oH, oW]`, `w` `[O, C, 3, 3]`, dense) into `dx`
/// (`[N, C, H, W]`, every element written).
pub(in crate::cpu::conv) fn backward_data(gy: &[f32], w: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
    let ps = Pass::new(g.n, g.o, (g.oh, g.ow), g.c, (2 - g.ph, 2 - g.pw));
    debug_assert_eq!((ps.oh, ps.ow), (g.h, g.w));
    data_pass(gy, &pack(w, g.c, g.o, true), &ps, dx);
}

/// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, O, oH, oW]`, dense) into `dw`
/// (`[O, C, 3, 3]`, every element written).
pub(in crate::cpu::conv) fn backward_weight(x: &[f32], gy: &[f32], g: &Geom, dw: &mut [f32]) {
    let ps = Pass::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw));
    assert_eq!(x.len(), ps.n * ps.in_image(), "direct3x3: input size");
    assert_eq!(gy.len(), ps.n * ps.cout * ps.out_plane(), "direct3x3: gradient size");
    assert_eq!(dw.len(), ps.cout * ps.cin * 9, "direct3x3: weight gradient size");
    assert!(crate::cpu::isa::use_avx512_vl(), "direct3x3: the CPU lacks AVX-512F/VL");
    let (c, o, plane_out) = (ps.cin, ps.cout, ps.out_plane());
    let per_image = c * ps.plane() + o * plane_out;
    let chunk = (GRAD_CHUNK_ELEMS / per_image.max(1)).clamp(1, ps.n.max(1));
    let sum = accumulate_in_runs(ps.n.div_ceil(chunk), o * c * 9, |chunks, acc: &mut [f32]| {
        let mut buf = Vec::new();
        for ch in chunks {
            let (i0, i1) = (ch * chunk, ((ch + 1) * chunk).min(ps.n));
            let src = scratch(&mut buf, (i1 - i0) * c * ps.plane());
            for (i, s) in (i0..i1).zip(src.chunks_exact_mut(c * ps.plane())) {
                ps.border(&x[i * ps.in_image()..(i + 1) * ps.in_image()], s);
            }
            for o0 in (0..o).step_by(GRAD_OC) {
                for ci in 0..c {
                    let args = (
                        gy[(i0 * o + o0) * plane_out..].as_ptr(),
                        src[ci * ps.plane()..].as_ptr(),
                        acc[(o0 * c + ci) * 9..].as_mut_ptr(),
                    );
                    // SAFETY: AVX-512F and VL are present (asserted). For each of the chunk's
                    // images, `gy` holds the `n` planes from `o0` (`n <= o - o0`) of `oh`
                    // rows of `ow` floats (the last vector masked to `ow`); the bordered
                    // plane of channel `ci` has `oh + 2` rows of `16 vectors + 2` floats;
                    // `acc` has the `n * 9` places `(o0 + k) * c * 9 + ci * 9 + t`.
                    unsafe { grad_tile(o - o0, args, &ps, i1 - i0) };
                }
            }
        }
    });
    dw.copy_from_slice(&sum);
}

/// [`weight_tile`] for `min(left, GRAD_OC)` output channels.
///
/// # Safety
/// As for [`weight_tile`].
unsafe fn grad_tile(left: usize, (gy, src, out): (*const f32, *const f32, *mut f32), ps: &Pass, images: usize) {
    let (image_out, plane_out, image_src) = (ps.cout * ps.out_plane(), ps.out_plane(), ps.cin * ps.plane());
    macro_rules! run {
        ($n:literal) => {
            weight_tile::<$n>(
                gy,
                image_out,
                plane_out,
                ps.ow,
                src,
                image_src,
                ps.stride,
                images,
                ps.oh,
                ps.vectors,
                ps.tail(),
                out,
                ps.cin * 9,
            )
        };
    }
    const _: () = assert!(GRAD_OC == 3, "grad_tile dispatches 1..=3 channels");
    match left.min(GRAD_OC) {
        1 => run!(1),
        2 => run!(2),
        _ => run!(3),
    }
}
