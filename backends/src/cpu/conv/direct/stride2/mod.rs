//! Direct 3x3 stride-2 convolution (no dilation, one group) in f32 under AVX-512: the
//! downsampling layers of ResNets, forward (up to 128 input channels) and weight gradient (up
//! to 32); the input gradient stays with im2col + GEMM and col2im.
//!
//! With `xp` the padded source, `y[r][j] = Σ w[kh][kw] xp[2 r + kh][2 j + kw]`. Writing
//! `kh = 2 α + a` and `kw = 2 β + b`, every tap reads one of 6 *tap planes*
//! `T[a][b, β][i][j] = xp[2 i + a][2 (j + β) + b]` (`(b, β)` is `(0, 0)`, `(1, 0)` or `(0, 1)`)
//! at row `r + α`, column `j`. The tap planes are stored with rows of exactly the output width,
//! so output position `p = r ow + j` of every tap is `T[..][p + α ow]`: a tap is one unaligned
//! vector load of 16 consecutive output positions, at any width, and the output planes are
//! written as they lie. The tap planes of a source plane are built once per image, with
//! masked loads and `vpermt2ps` keeping the even columns ([`kernels::tap_planes`]).
//!
//! - Forward: register tiles of [`OC`](kernels::OC) output channels x
//!   [`V`](kernels::V) vectors of positions sum a broadcast weight times a tap load over the
//!   input channels and 9 taps; images are spread over the threads.
//! - Weight gradient: `∂L/∂w[o][c][t] = Σ_p dY[o][p] · T_t[c][p]` in vector accumulators for
//!   [`GRAD_OC`](kernels::GRAD_OC) output channels x 9 taps of one input channel over a chunk
//!   of images, then their lane sums; chunks are spread over threads with one accumulator per
//!   thread, summed in order (a fixed order for a given thread count).

mod kernels;

use crate::cpu::conv::common::accumulate_in_runs;
use crate::cpu::gemm::SendPtr;
use crate::planning::conv::Geom;
use kernels::{forward_tile, tap_planes, weight_tile, Taps, GRAD_OC, OC, V};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The tap-plane geometry of a convolution.
fn taps(g: &Geom) -> Taps {
    Taps::new((g.h, g.w), (g.ph, g.pw), (g.oh, g.ow))
}

/// The tap planes of every channel of one image (`c h w` floats at `x`) into `t`
/// (`c` blocks of `6 len`, slack zero).
fn image_taps(x: &[f32], c: usize, tg: &Taps, t: &mut [f32]) {
    let plane = tg.h * tg.w;
    debug_assert!(x.len() >= c * plane && t.len() >= c * tg.per_channel());
    for ch in 0..c {
        // SAFETY: AVX-512F and VL are present (the callers assert it); the source plane and
        // the channel's `6 len` floats of `t` are in bounds (checked above).
        unsafe { tap_planes(x.as_ptr().add(ch * plane), tg, t.as_mut_ptr().add(ch * tg.per_channel())) };
    }
}

/// `w` (`[O, C, 3, 3]`) as `[O / OC][C][9][OC]`, zero past `O`.
fn pack(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    let blocks = o.div_ceil(OC);
    let mut out = vec![0.0; blocks * c * 9 * OC];
    for oc in 0..o {
        for ch in 0..c {
            for t in 0..9 {
                out[(((oc / OC) * c + ch) * 9 + t) * OC + oc % OC] = w[(oc * c + ch) * 9 + t];
            }
        }
    }
    out
}

/// Forward convolution (`x` `[N, C, H, W]`, `w` `[O, C, 3, 3]`, dense) into `y`
/// (`[N, O, oH, oW]`, every element written).
pub(in crate::cpu::conv) fn forward(x: &[f32], w: &[f32], g: &Geom, y: &mut [MaybeUninit<f32>]) {
    let (in_image, plane) = (g.c * g.h * g.w, g.oh * g.ow);
    let out_image = g.o * plane;
    assert_eq!(x.len(), g.n * in_image, "stride2_3x3: input size");
    assert_eq!(w.len(), g.o * g.c * 9, "stride2_3x3: weight size");
    assert_eq!(y.len(), g.n * out_image, "stride2_3x3: output size");
    assert!(crate::cpu::isa::use_avx512_vl(), "stride2_3x3: the CPU lacks AVX-512F/VL");
    let (tg, wp) = (taps(g), pack(w, g.o, g.c));
    let offs = tg.offsets();
    let chan = tg.per_channel();
    let yp = SendPtr(y.as_mut_ptr().cast::<f32>());
    // Images over the threads, or output-channel blocks of one image when there are few.
    let threads = rayon::current_num_threads();
    let blocks = g.o.div_ceil(OC);
    let parts = if g.n >= 2 * threads { 1 } else { (2 * threads).div_ceil(g.n.max(1)).min(blocks) };
    let per_part = blocks.div_ceil(parts);
    (0..g.n * parts).into_par_iter().for_each_init(Vec::new, |t, task| {
        let (n, part, yp) = (task / parts, task % parts, &yp);
        if t.len() < g.c * chan {
            t.resize(g.c * chan, 0.0);
        }
        image_taps(&x[n * in_image..(n + 1) * in_image], g.c, &tg, t);
        // Positions outer: one tile's tap rows stay in L1 across the output-channel blocks.
        for pos in (0..plane).step_by(16 * V) {
            for ob in part * per_part..((part + 1) * per_part).min(blocks) {
                let chans = (g.o - ob * OC).min(OC);
                // SAFETY: AVX-512F and VL are present (asserted); the tap planes of `c`
                // channels are in `t` with the slack the tile reads; `wp` holds block `ob`;
                // the task writes output planes `ob OC ..` of image `n` only.
                unsafe {
                    let dst = yp.0.add(n * out_image + ob * OC * plane);
                    forward_tile(
                        t.as_ptr(),
                        chan,
                        &offs,
                        g.c,
                        wp.as_ptr().add(ob * g.c * 9 * OC),
                        dst,
                        plane,
                        chans,
                        pos,
                    );
                }
            }
        }
    });
}

/// Floats of tap planes and output-gradient planes per weight-gradient chunk of images
/// (about half an L2 cache).
const GRAD_CHUNK_ELEMS: usize = 1 << 17;

/// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, O, oH, oW]`, dense) into `dw`
/// (`[O, C, 3, 3]`, every element written).
pub(in crate::cpu::conv) fn backward_weight(x: &[f32], gy: &[f32], g: &Geom, dw: &mut [f32]) {
    let (in_image, plane) = (g.c * g.h * g.w, g.oh * g.ow);
    let out_image = g.o * plane;
    assert_eq!(x.len(), g.n * in_image, "stride2_3x3: input size");
    assert_eq!(gy.len(), g.n * out_image, "stride2_3x3: gradient size");
    assert_eq!(dw.len(), g.o * g.c * 9, "stride2_3x3: weight gradient size");
    assert!(crate::cpu::isa::use_avx512_vl(), "stride2_3x3: the CPU lacks AVX-512F/VL");
    let tg = taps(g);
    let (offs, chan) = (tg.offsets(), tg.per_channel());
    let tap_image = g.c * chan;
    let chunk = (GRAD_CHUNK_ELEMS / (tap_image + out_image)).clamp(1, g.n.max(1));
    let sums = accumulate_in_runs(g.n.div_ceil(chunk), dw.len(), |chunks, acc: &mut [f32]| {
        let mut t = vec![0.0f32; chunk * tap_image];
        for ck in chunks {
            let (n0, n1) = (ck * chunk, ((ck + 1) * chunk).min(g.n));
            for n in n0..n1 {
                let at = (n - n0) * tap_image;
                image_taps(&x[n * in_image..(n + 1) * in_image], g.c, &tg, &mut t[at..at + tap_image]);
            }
            let gy0 = gy[n0 * out_image..].as_ptr();
            for ch in 0..g.c {
                let tc = t[ch * chan..].as_ptr();
                for ob in (0..g.o).step_by(GRAD_OC) {
                    let out = acc[(ob * g.c + ch) * 9..].as_mut_ptr();
                    // SAFETY: AVX-512F and VL are present (asserted). For each image of the
                    // chunk, `gy0` addresses output planes `ob..` and `tc` the channel's tap
                    // planes with their slack; `out` addresses the `9` taps of channel `ch`
                    // of output channels `ob..`, `9 C` apart, inside `acc`.
                    unsafe {
                        let (gy_o, images) = (gy0.add(ob * plane), n1 - n0);
                        match g.o - ob {
                            1 => weight_tile::<1>(gy_o, out_image, tc, tap_image, &offs, images, plane, out, 9 * g.c),
                            2 => weight_tile::<2>(gy_o, out_image, tc, tap_image, &offs, images, plane, out, 9 * g.c),
                            _ => weight_tile::<3>(gy_o, out_image, tc, tap_image, &offs, images, plane, out, 9 * g.c),
                        }
                    }
                }
            }
        }
    });
    dw.copy_from_slice(&sums);
}
