//! The AVX-512 pieces of the lane-tiled Winograd pass: the column-transformed source rows,
//! and one vector of tiles of one tile row through transform, products and inverse transform.

use crate::cpu::conv::winograd::lanes::engine::products;
use crate::cpu::conv::winograd::lanes::pass::{Dest, Pass};
use crate::cpu::mask16::{below, inside};
use std::arch::x86_64::*;

/// `B^T` applied to the 4 taps `d` of each lane (Winograd F(2x2, 3x3)'s input transform along
/// one axis): `[d0 - d2, d1 + d2, d2 - d1, d1 - d3]`.
#[inline(always)]
unsafe fn bt(d: [__m512; 4]) -> [__m512; 4] {
    [_mm512_sub_ps(d[0], d[2]), _mm512_add_ps(d[1], d[2]), _mm512_sub_ps(d[2], d[1]), _mm512_sub_ps(d[1], d[3])]
}

/// `A^T` applied to 4 values (the output transform along one axis): `[m0 + m1 + m2, m1 - m2 - m3]`.
#[inline(always)]
unsafe fn at(m: [__m512; 4]) -> [__m512; 2] {
    [_mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]), _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3])]
}

/// The lane indices `2 (l % per)` and `2 (l % per) + 1` (`per` a power of two up to 16): the
/// even and odd columns of each image's slot, for `vpermt2ps`/`vpermps`.
#[inline(always)]
pub(super) unsafe fn column_picks(per: usize) -> [__m512i; 2] {
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let within = _mm512_and_si512(lane, _mm512_set1_epi32(per as i32 - 1));
    let even = _mm512_add_epi32(within, within);
    [even, _mm512_add_epi32(even, _mm512_set1_epi32(1))]
}

/// Writes, for source channels `0..cin` and padded rows `q0..q1` of the images of one lane
/// group, the 4 column-transformed vectors of every tile vector: `prep[((c (q1 - q0) + q - q0)
/// vectors + v) 4 + k] = (B^T d)[k]`, where lane `l` of vector `v` holds tile column
/// `16 v + l` (one image per group) or tile column `l % per` of image `l / per`, and `d` are
/// the 4 padded source columns `2 tc ..= 2 tc + 3` of padded row `q` (zero in the padding
/// and past the images).
///
/// # Safety
/// AVX-512F and VL; `x` addresses `images` images of `cin` planes of `h x w` floats,
/// `image` floats apart; `prep` has room for `cin (q1 - q0) vectors 4` vectors.
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn prepare(
    x: *const f32,
    image: usize,
    images: usize,
    p: &Pass,
    (q0, q1): (usize, usize),
    prep: *mut __m512,
) {
    let lanes = &p.lanes;
    let [even, odd] = column_picks(16);
    // Grouped images: lane l reads padded column 2 (l % per) + j.
    let [g0, g1] = column_picks(lanes.per);
    let two = _mm512_set1_epi32(2);
    let grouped = [g0, g1, _mm512_add_epi32(g0, two), _mm512_add_epi32(g1, two)];
    let mut out = prep;
    for c in 0..p.cin {
        for q in q0..q1 {
            let sr = (q as isize - p.ph as isize).try_into().ok().filter(|&r: &usize| r < p.h);
            for v in 0..lanes.vectors {
                let mut d = [_mm512_setzero_ps(); 4];
                if let Some(sr) = sr {
                    for s in 0..images.min(lanes.slots) {
                        let row = x.add(s * image + (c * p.h + sr) * p.w);
                        let start = (32 * v) as isize - p.pw as isize;
                        macro_rules! load {
                            ($at:expr) => {
                                _mm512_maskz_loadu_ps(inside($at, p.w), row.wrapping_offset($at))
                            };
                        }
                        let (a, b) = (load!(start), load!(start + 16));
                        if lanes.per == 16 {
                            let (a2, b2) = (load!(start + 2), load!(start + 18));
                            d = [
                                _mm512_permutex2var_ps(a, even, b),
                                _mm512_permutex2var_ps(a, odd, b),
                                _mm512_permutex2var_ps(a2, even, b2),
                                _mm512_permutex2var_ps(a2, odd, b2),
                            ];
                        } else {
                            let slot = below((s + 1) * lanes.per) & !below(s * lanes.per);
                            for j in 0..4 {
                                d[j] = _mm512_mask_mov_ps(d[j], slot, _mm512_permutex2var_ps(a, grouped[j], b));
                            }
                        }
                    }
                }
                for (k, t) in bt(d).into_iter().enumerate() {
                    out.add(k).write(t);
                }
                out = out.add(4);
            }
        }
    }
}

/// `U[c][ξ] = (Bᵀ d B)[ξ]` of tile vector `v` for every source channel `c`, into `u[16 c + ξ]`:
/// `Bᵀ` down the 4 prepared rows from `prep` (channel 0, the tile row's first padded row;
/// channels `prep_c` vectors apart).
///
/// # Safety
/// AVX-512F and VL; `prep` as for [`tile_vector`], `u` writable for `16 cin` vectors.
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn source_tiles(p: &Pass, prep: *const __m512, prep_c: usize, v: usize, u: *mut __m512) {
    let row_stride = 4 * p.lanes.vectors;
    for c in 0..p.cin {
        let base = prep.add(c * prep_c + 4 * v);
        let rows: [[__m512; 4]; 4] = std::array::from_fn(|i| std::array::from_fn(|k| *base.add(i * row_stride + k)));
        for k in 0..4 {
            let t = bt([rows[0][k], rows[1][k], rows[2][k], rows[3][k]]);
            for (i, ti) in t.into_iter().enumerate() {
                u.add(c * 16 + 4 * i + k).write(ti);
            }
        }
    }
}

/// One tile vector of one tile row through the whole pass: `U = B^T d B` for every source
/// channel (into `u`), `M[o][ξ] = Σ_c U[c][ξ] · Ŵ[ξ][c][o]` for 16 destination channels at a
/// time (into `m`), then `Y = A^T M A`, stored to the destination rows `2 tr`, `2 tr + 1`.
///
/// # Safety
/// AVX-512F and VL. `prep` addresses channel 0, padded row `2 tr` of a prepared block whose
/// channels are `prep_c` vectors apart (rows `4 vectors` apart); `wt` holds
/// `16 cin coutp` floats; `u` has room for `16 cin` vectors, `m` for 256; `dst` addresses
/// the group's destination planes (`cout` planes of `oh x ow` per image).
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn tile_vector(
    p: &Pass,
    prep: *const __m512,
    prep_c: usize,
    wt: *const f32,
    u: *mut __m512,
    m: *mut __m512,
    dst: &Dest,
) {
    let lanes = &p.lanes;
    source_tiles(p, prep, prep_c, dst.v, u);
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let plane = p.oh * p.ow;
    for ob in (0..p.cout).step_by(16) {
        products::<16>(p, u, wt, ob, m);
        for k in 0..16.min(p.cout - ob) {
            let mk = m.add(16 * k);
            let cols: [[__m512; 2]; 4] = std::array::from_fn(|j| at(std::array::from_fn(|i| *mk.add(4 * i + j))));
            for r in 0..2 {
                let oy = 2 * dst.tr + r;
                if oy >= p.oh {
                    break;
                }
                let y = at([cols[0][r], cols[1][r], cols[2][r], cols[3][r]]);
                let pair = [_mm512_permutex2var_ps(y[0], lo, y[1]), _mm512_permutex2var_ps(y[0], hi, y[1])];
                let row = dst.y.add((ob + k) * plane + oy * p.ow);
                if lanes.per == 16 {
                    let col = 32 * dst.v;
                    _mm512_mask_storeu_ps(row.add(col), below(p.ow - col), pair[0]);
                    if p.ow > col + 16 {
                        _mm512_mask_storeu_ps(row.add(col + 16), below(p.ow - col - 16), pair[1]);
                    }
                } else {
                    // Image s's 2 per columns start at lane 2 per s of the pair.
                    for s in 0..dst.images.min(lanes.slots) {
                        let first = 2 * lanes.per * s;
                        let off = first % 16;
                        let mask = below(off + p.ow) & !below(off);
                        let at = row.add(s * dst.image).wrapping_sub(off);
                        _mm512_mask_storeu_ps(at, mask, pair[first / 16]);
                    }
                }
            }
        }
    }
}
