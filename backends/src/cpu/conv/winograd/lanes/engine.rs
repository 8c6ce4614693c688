//! The passes shared by the lane-tiled Winograd paths, F(2x2, 3x3) (`f2`) and F(4x4, 3x3)
//! (`f4`): the split of the work over images, tile rows and threads, the scratch buffers,
//! and the weight-gradient products. Each tile size brings its kernels as a [`Tiling`].

use super::pass::{Dest, GradSrc, Pass, Tiling};
use crate::cpu::conv::common::accumulate_in_runs;
use crate::cpu::gemm::SendPtr;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// A vector scratch buffer of at least `len` vectors (grown, never shrunk).
pub(in crate::cpu::conv) fn vectors(buf: &mut Vec<__m512>, len: usize) -> *mut __m512 {
    if buf.len() < len {
        // SAFETY: an all-zero bit pattern is a valid `__m512`.
        buf.resize(len, unsafe { std::mem::zeroed() });
    }
    buf.as_mut_ptr()
}

/// Source planes `x` through transformed filters `wt` (`[ξ][cin][cout rounded up to 16]`) into
/// the destination planes `y` (every element written). Image groups are spread over the
/// threads, and their tile rows too when there are few groups.
pub(in crate::cpu::conv) fn data_pass(t: &Tiling, x: &[f32], wt: &[f32], p: &Pass, y: &mut [MaybeUninit<f32>]) {
    let (in_image, out_image) = (p.cin * p.h * p.w, p.cout * p.oh * p.ow);
    let (m, k, xis) = (t.tile, t.row_vectors(), t.positions());
    assert_eq!(x.len(), p.n * in_image, "winograd lanes: source size");
    assert_eq!(y.len(), p.n * out_image, "winograd lanes: destination size");
    assert_eq!(wt.len(), xis * p.cin * p.cout.next_multiple_of(16), "winograd lanes: filter size");
    assert!(crate::cpu::isa::use_avx512_vl(), "winograd lanes: the CPU lacks AVX-512F/VL");
    let lanes = p.lanes;
    let groups = p.n.div_ceil(lanes.slots);
    let threads = rayon::current_num_threads();
    let parts = if groups >= 2 * threads { 1 } else { (2 * threads).div_ceil(groups.max(1)).min(p.th) };
    let per_part = p.th.div_ceil(parts);
    let yp = SendPtr(y.as_mut_ptr().cast::<f32>());
    (0..groups * parts).into_par_iter().for_each_init(
        || (Vec::new(), Vec::new(), Vec::new()),
        |(prep, u, ms), task| {
            let (grp, part, y) = (task / parts, task % parts, &yp);
            let (tr0, tr1) = (part * per_part, ((part + 1) * per_part).min(p.th));
            if tr0 >= tr1 {
                return;
            }
            let img0 = grp * lanes.slots;
            let images = (p.n - img0).min(lanes.slots);
            let (q0, q1) = (m * tr0, m * tr1 + 2);
            let prep_c = (q1 - q0) * lanes.vectors * k;
            let prep = vectors(prep, p.cin * prep_c);
            let (u, ms) = (vectors(u, xis * p.cin), vectors(ms, 16 * xis));
            // SAFETY: AVX-512F and VL are present (asserted). `x` holds images
            // `img0..img0 + images` of `in_image` floats; `prep` has room for `cin` blocks of
            // `prep_c` vectors; `wt` has the asserted size; `u` and `ms` have room for `xis cin`
            // and `16 xis` vectors; each task stores tile rows `tr0..tr1` of its own images
            // only, inside their `oh x ow` planes — disjoint across tasks.
            unsafe {
                (t.prepare)(x.as_ptr().add(img0 * in_image), in_image, images, p, (q0, q1), prep);
                for tr in tr0..tr1 {
                    for v in 0..lanes.vectors {
                        let dst = Dest { y: y.0.add(img0 * out_image), image: out_image, images, tr, v };
                        let at = prep.add(m * (tr - tr0) * lanes.vectors * k);
                        (t.tile_vector)(p, at, prep_c, wt.as_ptr(), u, ms, &dst);
                    }
                }
            }
        },
    );
}

/// Bytes of transformed tiles (source and gradient side) per weight-gradient chunk: half an L2
/// cache.
const GRAD_CHUNK_BYTES: usize = 512 << 10;

/// The transformed weight gradient `∂L/∂Ŵ` of `x` (`[N, cin, h, w]`) and `gy` (`[N, cout, oh,
/// ow]`), dense, as `[ξ][cin][cout rounded up to 16]`. Chunks of tile rows of one image group
/// are spread over the threads, one accumulator per thread, summed in order (a fixed order for
/// a given thread count).
pub(in crate::cpu::conv) fn weight_pass(t: &Tiling, x: &[f32], gy: &[f32], p: &Pass) -> Vec<f32> {
    let (in_image, out_image) = (p.cin * p.h * p.w, p.cout * p.oh * p.ow);
    let (m, k, xis) = (t.tile, t.row_vectors(), t.positions());
    assert_eq!(x.len(), p.n * in_image, "winograd lanes: input size");
    assert_eq!(gy.len(), p.n * out_image, "winograd lanes: gradient size");
    assert!(crate::cpu::isa::use_avx512_vl(), "winograd lanes: the CPU lacks AVX-512F/VL");
    let lanes = p.lanes;
    let (cinp, coutp) = (p.cin.next_multiple_of(16), p.cout.next_multiple_of(16));
    // Tile rows per chunk: the chunk's transformed tiles within the budget.
    let per_vector = 64 * xis * (cinp + coutp);
    let rows = (GRAD_CHUNK_BYTES / (per_vector * lanes.vectors)).clamp(1, p.th);
    let (parts, groups) = (p.th.div_ceil(rows), p.n.div_ceil(lanes.slots));
    accumulate_in_runs(groups * parts, xis * p.cin * coutp, |chunks, d: &mut [f32]| {
        let (mut prep, mut tmp) = (Vec::new(), Vec::new());
        let tvs = rows * lanes.vectors;
        // Vectors (64-byte aligned), zero in the channels past `cin`, which stay unwritten.
        let mut u = Vec::new();
        let u = vectors(&mut u, tvs * cinp * xis);
        let mut vt = vec![0.0f32; tvs * 16 * xis * coutp];
        for chunk in chunks {
            let (grp, part) = (chunk / parts, chunk % parts);
            let (tr0, tr1) = (part * rows, ((part + 1) * rows).min(p.th));
            let img0 = grp * lanes.slots;
            let images = (p.n - img0).min(lanes.slots);
            let (q0, q1) = (m * tr0, m * tr1 + 2);
            let prep_c = (q1 - q0) * lanes.vectors * k;
            let prep = vectors(&mut prep, p.cin * prep_c);
            let tmp = vectors(&mut tmp, 16 * xis);
            // SAFETY: AVX-512F and VL are present (asserted). `x` and `gy` hold images
            // `img0..img0 + images`; `prep` has room for `cin` blocks of `prep_c` vectors; `u`
            // holds `tvs` blocks of `cinp xis` vectors (channels past `cin` stay zero), `vt`
            // `tvs` blocks of `16 xis coutp` floats, `tmp` `16 xis` vectors, `d` the
            // `xis cin coutp` floats of the accumulator.
            unsafe {
                (t.prepare)(x.as_ptr().add(img0 * in_image), in_image, images, p, (q0, q1), prep);
                let mut n = 0;
                for tr in tr0..tr1 {
                    for v in 0..lanes.vectors {
                        let at = prep.add(m * (tr - tr0) * lanes.vectors * k);
                        (t.source_tiles)(p, at, prep_c, v, u.add(n * cinp * xis));
                        let src = GradSrc { gy: gy.as_ptr().add(img0 * out_image), image: out_image, images, tr, v };
                        (t.grad_tiles)(p, &src, tmp, vt.as_mut_ptr().add(n * 16 * xis * coutp));
                        n += 1;
                    }
                }
                weight_products(p, xis, u.cast(), vt.as_ptr(), n, d.as_mut_ptr());
            }
        }
    })
}

/// `M[k][ξ] = Σ_c U[c][ξ] · Ŵ[ξ][c][ob + k]` of one tile vector for the 16 destination channels
/// from `ob` on, into `m[XIS k + ξ]`: `u` as `[cin][XIS]` vectors, `wt` as `[XIS][cin][coutp]`
/// floats, 16 accumulators of broadcast-weight FMAs per position.
///
/// # Safety
/// AVX-512F (the caller is built with it); `u` holds `XIS cin` vectors, `wt` `XIS cin coutp`
/// floats with `ob + 16 <= coutp`, `m` has room for `16 XIS` vectors.
#[inline(always)]
pub(in crate::cpu::conv) unsafe fn products<const XIS: usize>(
    p: &Pass,
    u: *const __m512,
    wt: *const f32,
    ob: usize,
    m: *mut __m512,
) {
    let coutp = p.cout.next_multiple_of(16);
    for xi in 0..XIS {
        let mut acc = [_mm512_setzero_ps(); 16];
        let mut w = wt.add(xi * p.cin * coutp + ob);
        for c in 0..p.cin {
            let uv = *u.add(c * XIS + xi);
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(uv, _mm512_set1_ps(*w.add(k)), *a);
            }
            w = w.add(coutp);
        }
        for (k, a) in acc.into_iter().enumerate() {
            m.add(XIS * k + xi).write(a);
        }
    }
}

/// Adds the products of a chunk of `tvs` tile vectors into `d[(ξ cin + c) coutp + o]`:
/// `Σ_t Σ_tile u[t][c][ξ][tile] · vt[t][ξ][tile][o]` over the `xis` positions, with `u` as
/// `[tvs][cinp][xis][16]` floats (`cinp = cin` rounded up to 16, zero past `cin`) and `vt` as
/// `[tvs][xis][16][coutp]` (the tiling's `grad_tiles`), as broadcast-`u` FMAs in 16
/// accumulators of 16 output channels.
///
/// # Safety
/// AVX-512F and VL; `u` holds `tvs cinp xis 16` floats, `vt` `tvs xis 16 coutp`, `d`
/// `xis cin coutp`.
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn weight_products(p: &Pass, xis: usize, u: *const f32, vt: *const f32, tvs: usize, d: *mut f32) {
    let (cinp, coutp) = (p.cin.next_multiple_of(16), p.cout.next_multiple_of(16));
    let per_c = 16 * xis;
    for xi in 0..xis {
        for ob in (0..coutp).step_by(16) {
            for cb in (0..p.cin).step_by(16) {
                let mut acc = [_mm512_setzero_ps(); 16];
                for t in 0..tvs {
                    let ut = u.add(((t * cinp + cb) * xis + xi) * 16);
                    let vtt = vt.add((t * per_c + 16 * xi) * coutp + ob);
                    for k in 0..16 {
                        let v = _mm512_loadu_ps(vtt.add(k * coutp));
                        for (cc, a) in acc.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(_mm512_set1_ps(*ut.add(cc * per_c + k)), v, *a);
                        }
                    }
                }
                for (cc, a) in acc.into_iter().enumerate().take(p.cin - cb) {
                    let at = d.add((xi * p.cin + cb + cc) * coutp + ob);
                    _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), a));
                }
            }
        }
    }
}
