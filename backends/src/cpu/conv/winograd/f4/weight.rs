//! The gradient side of the lane-tiled F(4x4, 3x3) weight gradient
//! `∂L/∂Ŵ[ξ][c][o] = Σ_tiles U[c][ξ] · (A dY Aᵀ)[o][ξ]` over the 36 positions: `A dY Aᵀ` of each
//! tile vector, transposed in 16x16 blocks so that output channels lie along the lanes for the
//! shared products (`lanes::engine`).

use super::kernels::{a, slot_mask, taps};
use crate::cpu::conv::winograd::lanes::pass::{GradSrc, Pass};
use crate::cpu::conv::winograd::lanes::transpose::transpose16;
use std::arch::x86_64::*;

/// `V = A dY Aᵀ` of one tile vector for every destination channel, transposed to
/// `vt[(16 ξ + tile) coutp + o]` (`coutp = cout` rounded up to 16; zero past `cout`). `tmp`
/// holds 576 vectors of scratch.
///
/// # Safety
/// AVX-512F and VL; `src.gy` addresses `images` images of `cout` planes of `oh x ow` floats,
/// `src.image` floats apart; `vt` is writable for `576 coutp` floats.
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn grad_tiles(p: &Pass, src: &GradSrc, tmp: *mut __m512, vt: *mut f32) {
    let lanes = &p.lanes;
    let coutp = p.cout.next_multiple_of(16);
    let plane = p.oh * p.ow;
    for ob in (0..coutp).step_by(16) {
        for k in 0..16 {
            let o = ob + k;
            // dY of the tile vector: rows 4 tr ..= 4 tr + 3, each tile's 4 columns.
            let mut d = [[_mm512_setzero_ps(); 4]; 4];
            for (r, dr) in d.iter_mut().enumerate() {
                let oy = 4 * src.tr + r;
                if o >= p.cout || oy >= p.oh {
                    continue;
                }
                let row = src.gy.add(o * plane + oy * p.ow);
                let start = (64 * src.v) as isize;
                for s in 0..src.images.min(lanes.slots) {
                    taps(row.add(s * src.image), start, p.ow, lanes.per, slot_mask(s, lanes.per), dr);
                }
            }
            // Along the columns of each row, then down the rows: V[6 i + j].
            let cols = d.map(|dr| a(dr));
            for j in 0..6 {
                for (i, v) in a(std::array::from_fn(|r| cols[r][j])).into_iter().enumerate() {
                    tmp.add(36 * k + 6 * i + j).write(v);
                }
            }
        }
        for xi in 0..36 {
            let mut blk: [__m512; 16] = std::array::from_fn(|k| *tmp.add(36 * k + xi));
            transpose16(&mut blk);
            for (t, v) in blk.into_iter().enumerate() {
                _mm512_storeu_ps(vt.add((16 * xi + t) * coutp + ob), v);
            }
        }
    }
}
