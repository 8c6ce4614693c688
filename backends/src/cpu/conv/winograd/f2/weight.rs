//! The gradient side of the lane-tiled F(2x2, 3x3) weight gradient
//! `∂L/∂Ŵ[ξ][c][o] = Σ_tiles U[c][ξ] · (A dY Aᵀ)[o][ξ]` over the 16 positions. The tile
//! transforms keep tiles in lanes, as in the forward pass; the products
//! (`lanes::engine`) want output channels in lanes (so nothing needs a lane sum), so the
//! transformed `dY` of each tile vector is transposed in 16x16 blocks (`transpose16`).

use super::kernels::column_picks;
use crate::cpu::conv::winograd::lanes::pass::{GradSrc, Pass};
use crate::cpu::conv::winograd::lanes::transpose::transpose16;
use crate::cpu::mask16::below;
use std::arch::x86_64::*;

/// `A` applied to the 2 values of each lane (the transpose of the output transform, along one
/// axis): `[d0, d0 + d1, d0 - d1, -d1]`.
#[inline(always)]
unsafe fn a(d: [__m512; 2]) -> [__m512; 4] {
    [d[0], _mm512_add_ps(d[0], d[1]), _mm512_sub_ps(d[0], d[1]), _mm512_sub_ps(_mm512_setzero_ps(), d[1])]
}

/// `V = A dY Aᵀ` of one tile vector for every destination channel, transposed to
/// `vt[(16 ξ + tile) coutp + o]` (`coutp = cout` rounded up to 16; zero past `cout`). `tmp`
/// holds 256 vectors of scratch.
///
/// # Safety
/// AVX-512F and VL; `src.gy` addresses `images` images of `cout` planes of `oh x ow` floats,
/// `src.image` floats apart; `vt` is writable for `256 coutp` floats.
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn grad_tiles(p: &Pass, src: &GradSrc, tmp: *mut __m512, vt: *mut f32) {
    let lanes = &p.lanes;
    let [even, odd] = column_picks(16);
    let pick = column_picks(lanes.per);
    let coutp = p.cout.next_multiple_of(16);
    let plane = p.oh * p.ow;
    for ob in (0..coutp).step_by(16) {
        for k in 0..16 {
            let o = ob + k;
            // dY of the tile vector: rows 2 tr and 2 tr + 1, the tiles' two columns.
            let mut d = [[_mm512_setzero_ps(); 2]; 2];
            for (r, dr) in d.iter_mut().enumerate() {
                let oy = 2 * src.tr + r;
                if o >= p.cout || oy >= p.oh {
                    continue;
                }
                let row = src.gy.add(o * plane + oy * p.ow);
                if lanes.per == 16 {
                    let col = 32 * src.v;
                    let a = _mm512_maskz_loadu_ps(below(p.ow - col), row.add(col));
                    let b = if p.ow > col + 16 {
                        _mm512_maskz_loadu_ps(below(p.ow - col - 16), row.add(col + 16))
                    } else {
                        _mm512_setzero_ps()
                    };
                    *dr = [_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b)];
                } else {
                    for s in 0..src.images.min(lanes.slots) {
                        let a = _mm512_maskz_loadu_ps(below(p.ow), row.add(s * src.image));
                        let slot = below((s + 1) * lanes.per) & !below(s * lanes.per);
                        for (cc, v) in dr.iter_mut().enumerate() {
                            *v = _mm512_mask_mov_ps(*v, slot, _mm512_permutexvar_ps(pick[cc], a));
                        }
                    }
                }
            }
            let cols = [a(d[0]), a(d[1])];
            for j in 0..4 {
                let rows = a([cols[0][j], cols[1][j]]);
                for (i, v) in rows.into_iter().enumerate() {
                    tmp.add(16 * k + 4 * i + j).write(v);
                }
            }
        }
        for xi in 0..16 {
            let mut blk: [__m512; 16] = std::array::from_fn(|k| *tmp.add(16 * k + xi));
            transpose16(&mut blk);
            for (t, v) in blk.into_iter().enumerate() {
                _mm512_storeu_ps(vt.add((16 * xi + t) * coutp + ob), v);
            }
        }
    }
}
