//! The AVX-512 pieces of the lane-tiled F(4x4, 3x3) pass: the transforms along one axis, the
//! column-transformed source rows, and one vector of tiles of one tile row through the input
//! transform, the products and the output transform.

use crate::cpu::conv::winograd::lanes::engine::products;
use crate::cpu::conv::winograd::lanes::pass::{Dest, Pass};
use crate::cpu::mask16::{below, inside};
use std::arch::x86_64::*;

/// `a·x + y`.
#[inline(always)]
unsafe fn fma(a: f32, x: __m512, y: __m512) -> __m512 {
    _mm512_fmadd_ps(_mm512_set1_ps(a), x, y)
}

/// `Bᵀ` applied to the 6 taps `d` of each lane (the input transform along one axis).
#[inline(always)]
pub(super) unsafe fn bt(d: [__m512; 6]) -> [__m512; 6] {
    let t0 = fma(-4.0, d[2], d[4]);
    let t1 = fma(-4.0, d[1], d[3]);
    let t2 = _mm512_sub_ps(d[4], d[2]);
    let t3 = _mm512_mul_ps(_mm512_set1_ps(2.0), _mm512_sub_ps(d[3], d[1]));
    [
        fma(4.0, d[0], fma(-5.0, d[2], d[4])),
        _mm512_add_ps(t0, t1),
        _mm512_sub_ps(t0, t1),
        _mm512_add_ps(t2, t3),
        _mm512_sub_ps(t2, t3),
        fma(4.0, d[1], fma(-5.0, d[3], d[5])),
    ]
}

/// `Aᵀ` applied to 6 values (the output transform along one axis).
#[inline(always)]
pub(super) unsafe fn at(m: [__m512; 6]) -> [__m512; 4] {
    let (s12, d12) = (_mm512_add_ps(m[1], m[2]), _mm512_sub_ps(m[1], m[2]));
    let (s34, d34) = (_mm512_add_ps(m[3], m[4]), _mm512_sub_ps(m[3], m[4]));
    [
        _mm512_add_ps(_mm512_add_ps(m[0], s12), s34),
        fma(2.0, d34, d12),
        fma(4.0, s34, s12),
        _mm512_add_ps(fma(8.0, d34, d12), m[5]),
    ]
}

/// `A` applied to 4 values (the transpose of the output transform, for the gradient).
#[inline(always)]
pub(super) unsafe fn a(d: [__m512; 4]) -> [__m512; 6] {
    let (e, o) = (_mm512_add_ps(d[0], d[2]), _mm512_add_ps(d[1], d[3]));
    let e4 = fma(4.0, d[2], d[0]);
    let o8 = _mm512_mul_ps(_mm512_set1_ps(2.0), fma(4.0, d[3], d[1]));
    [d[0], _mm512_add_ps(e, o), _mm512_sub_ps(e, o), _mm512_add_ps(e4, o8), _mm512_sub_ps(e4, o8), d[3]]
}

/// The lane indices `4 (l % p) + j` (`p` a power of two up to 8): tap `j` of each lane's tile
/// from two 16-float vectors holding 32 consecutive columns, for `vpermt2ps`.
#[inline(always)]
pub(super) unsafe fn tap_picks(p: usize, j: usize) -> __m512i {
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let within = _mm512_and_si512(lane, _mm512_set1_epi32(p as i32 - 1));
    _mm512_add_epi32(_mm512_slli_epi32::<2>(within), _mm512_set1_epi32(j as i32))
}

/// The lanes of image slot `s` when each image has `per` lanes.
#[inline(always)]
pub(super) fn slot_mask(s: usize, per: usize) -> __mmask16 {
    below((s + 1) * per) & !below(s * per)
}

/// Columns `4 t + j` (`j < N <= 4`) of the row `row`, from column `start` on (masked to the
/// row's `w` columns, zero outside), for the tiles `t` of the lanes: 16 tiles from 64 columns
/// when `per` is 16, else tile `l % per` of each lane `l`, whose lanes `mask` selects (the rest
/// of `d` is kept).
#[inline(always)]
pub(super) unsafe fn taps<const N: usize>(
    row: *const f32,
    start: isize,
    w: usize,
    per: usize,
    mask: __mmask16,
    d: &mut [__m512; N],
) {
    macro_rules! load {
        ($at:expr) => {
            _mm512_maskz_loadu_ps(inside($at, w), row.wrapping_offset($at))
        };
    }
    let (v0, v1) = (load!(start), load!(start + 16));
    if per == 16 {
        let (v2, v3) = (load!(start + 32), load!(start + 48));
        for (j, dj) in d.iter_mut().enumerate() {
            let picks = tap_picks(8, j);
            let lo = _mm512_permutex2var_ps(v0, picks, v1);
            let hi = _mm512_permutex2var_ps(v2, picks, v3);
            *dj = _mm512_mask_blend_ps(0xff00, lo, hi);
        }
    } else {
        for (j, dj) in d.iter_mut().enumerate() {
            *dj = _mm512_mask_mov_ps(*dj, mask, _mm512_permutex2var_ps(v0, tap_picks(per, j), v1));
        }
    }
}

/// Writes, for source channels `0..cin` and padded rows `q0..q1` of the images of one lane
/// group, the 6 column-transformed vectors of every tile vector: `prep[((c (q1 - q0) + q - q0)
/// vectors + v) 6 + k] = (Bᵀ d)[k]`, where lane `l` of vector `v` holds tile column `16 v + l`
/// (one image per group) or tile column `l % per` of image `l / per`, and `d` are the 6 padded
/// source columns `4 tc ..= 4 tc + 5` of padded row `q` (zero in the padding and past the
/// images).
///
/// # Safety
/// AVX-512F and VL; `x` addresses `images` images of `cin` planes of `h x w` floats, `image`
/// floats apart; `prep` has room for `cin (q1 - q0) vectors 6` vectors.
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
    let mut out = prep;
    for c in 0..p.cin {
        for q in q0..q1 {
            let sr = (q as isize - p.ph as isize).try_into().ok().filter(|&r: &usize| r < p.h);
            for v in 0..lanes.vectors {
                let (mut lo, mut hi) = ([_mm512_setzero_ps(); 4], [_mm512_setzero_ps(); 2]);
                if let Some(sr) = sr {
                    let start = (64 * v) as isize - p.pw as isize;
                    for s in 0..images.min(lanes.slots) {
                        let row = x.add(s * image + (c * p.h + sr) * p.w);
                        let mask = slot_mask(s, lanes.per);
                        // Taps 0-3 from the tile's first column, taps 4-5 from 4 columns on.
                        taps(row, start, p.w, lanes.per, mask, &mut lo);
                        taps(row, start + 4, p.w, lanes.per, mask, &mut hi);
                    }
                }
                for (k, t) in bt([lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]).into_iter().enumerate() {
                    out.add(k).write(t);
                }
                out = out.add(6);
            }
        }
    }
}

/// `U[c][ξ] = (Bᵀ d B)[ξ]` of tile vector `v` for every source channel `c`, into `u[36 c + ξ]`
/// (`ξ = 6 i + k`, `i` down the rows): `Bᵀ` down the 6 prepared rows from `prep` (channel 0, the
/// tile row's first padded row; channels `prep_c` vectors apart).
///
/// # Safety
/// AVX-512F and VL; `prep` as for [`tile_vector`], `u` writable for `36 cin` vectors.
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn source_tiles(p: &Pass, prep: *const __m512, prep_c: usize, v: usize, u: *mut __m512) {
    let row_stride = 6 * p.lanes.vectors;
    for c in 0..p.cin {
        let base = prep.add(c * prep_c + 6 * v);
        for k in 0..6 {
            let t = bt(std::array::from_fn(|i| *base.add(i * row_stride + k)));
            for (i, ti) in t.into_iter().enumerate() {
                u.add(c * 36 + 6 * i + k).write(ti);
            }
        }
    }
}

/// Lane indices that interleave pairs: `[a0, b0, a1, b1, ...]` from the low (`hi = false`) or
/// high halves of two vectors `a`, `b`.
#[inline(always)]
unsafe fn pair_picks(hi: bool) -> __m512i {
    let o = if hi { 8 } else { 0 };
    _mm512_setr_epi32(
        o,
        16 + o,
        1 + o,
        17 + o,
        2 + o,
        18 + o,
        3 + o,
        19 + o,
        4 + o,
        20 + o,
        5 + o,
        21 + o,
        6 + o,
        22 + o,
        7 + o,
        23 + o,
    )
}

/// Lane indices that interleave two pair vectors `P` (from columns 0, 1) and `Q` (columns 2,
/// 3) into 4 tiles of 4 columns, from tile `4 h` on (`h` 0 or 1) of the 8 pairs each holds.
#[inline(always)]
unsafe fn quad_picks(h: i32) -> __m512i {
    let o = 8 * h;
    _mm512_setr_epi32(
        o,
        1 + o,
        16 + o,
        17 + o,
        2 + o,
        3 + o,
        18 + o,
        19 + o,
        4 + o,
        5 + o,
        20 + o,
        21 + o,
        6 + o,
        7 + o,
        22 + o,
        23 + o,
    )
}

/// The 4 columns `y[0..4]` of each lane's tile row interleaved into column order: the 64
/// floats `S[4 l + c] = y[c][l]`, as 4 vectors.
#[inline(always)]
pub(super) unsafe fn interleave4(y: [__m512; 4]) -> [__m512; 4] {
    let (plo, phi) = (pair_picks(false), pair_picks(true));
    let (p_lo, p_hi) = (_mm512_permutex2var_ps(y[0], plo, y[1]), _mm512_permutex2var_ps(y[0], phi, y[1]));
    let (q_lo, q_hi) = (_mm512_permutex2var_ps(y[2], plo, y[3]), _mm512_permutex2var_ps(y[2], phi, y[3]));
    let (i0, i1) = (quad_picks(0), quad_picks(1));
    [
        _mm512_permutex2var_ps(p_lo, i0, q_lo),
        _mm512_permutex2var_ps(p_lo, i1, q_lo),
        _mm512_permutex2var_ps(p_hi, i0, q_hi),
        _mm512_permutex2var_ps(p_hi, i1, q_hi),
    ]
}

/// Stores one output row of a tile vector, `s` as [`interleave4`] gives it, into the row at
/// `row` of the group's first image (images `image` floats apart, rows `ow` wide): columns
/// `64 v ..` when `per` is 16, else image `l / per`'s columns from its lanes.
#[inline(always)]
pub(super) unsafe fn store_row(s: &[__m512; 4], row: *mut f32, p: &Pass, image: usize, images: usize, v: usize) {
    let per = p.lanes.per;
    if per == 16 {
        for (q, sq) in s.iter().enumerate() {
            let col = 64 * v + 16 * q;
            if col >= p.ow {
                break;
            }
            _mm512_mask_storeu_ps(row.add(col), below(p.ow - col), *sq);
        }
        return;
    }
    for im in 0..images.min(p.lanes.slots) {
        // Image `im`'s columns are the stream's floats `f0 .. f0 + ow`.
        let f0 = 4 * per * im;
        let base = row.add(im * image);
        for (q, sq) in s.iter().enumerate() {
            let (lo, hi) = ((16 * q).max(f0), (16 * q + 16).min(f0 + p.ow));
            if lo < hi {
                let mask = below(hi - 16 * q) & !below(lo - 16 * q);
                // Lane `j` of vector `q` is column `16 q + j - f0` (masked lanes touch nothing).
                _mm512_mask_storeu_ps(base.wrapping_add(16 * q).wrapping_sub(f0), mask, *sq);
            }
        }
    }
}

/// One tile vector of one tile row through the whole pass: `U = Bᵀ d B` for every source
/// channel (into `u`), `M[o][ξ] = Σ_c U[c][ξ] · Ŵ[ξ][c][o]` for 16 destination channels at a
/// time (into `m`), then `Y = Aᵀ M A`, stored to the destination rows `4 tr ..= 4 tr + 3`.
///
/// # Safety
/// AVX-512F and VL. `prep` addresses channel 0, padded row `4 tr` of a prepared block whose
/// channels are `prep_c` vectors apart (rows `6 vectors` apart); `wt` holds `36 cin coutp`
/// floats; `u` has room for `36 cin` vectors, `m` for 576; `dst` addresses the group's
/// destination planes (`cout` planes of `oh x ow` per image).
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
    source_tiles(p, prep, prep_c, dst.v, u);
    let plane = p.oh * p.ow;
    for ob in (0..p.cout).step_by(16) {
        products::<36>(p, u, wt, ob, m);
        for k in 0..16.min(p.cout - ob) {
            let mk = m.add(36 * k);
            // Along the columns of each of the 6 rows, then down the rows.
            let cols: [[__m512; 4]; 6] = std::array::from_fn(|i| at(std::array::from_fn(|j| *mk.add(6 * i + j))));
            let ys: [[__m512; 4]; 4] = std::array::from_fn(|c| at(std::array::from_fn(|i| cols[i][c])));
            for r in 0..4 {
                let oy = 4 * dst.tr + r;
                if oy >= p.oh {
                    break;
                }
                let row = dst.y.add((ob + k) * plane + oy * p.ow);
                store_row(&interleave4(std::array::from_fn(|c| ys[c][r])), row, p, dst.image, dst.images, dst.v);
            }
        }
    }
}
