//! Packing f32 operands into bf16 pair panels (see the [module docs](super)): `B` (`kc x nc`)
//! becomes `ceil(nc / NR)` panels of `ceil(kc / 2)` pairs of `NR` words; `A` (`mc x kc`) the
//! same of its transpose with `MR` words. Rows or columns past the edge, and the high half past
//! an odd `kc`, are zero.

use std::arch::x86_64::*;

use super::bf16_bits;

/// Packs `mc x kc` of `A` (element `(i, p)` at `a + i * rs + p * cs`) into `mr`-row panels:
/// [`pack_b`] of the transpose.
///
/// # Safety
/// `a` must address the whole block with these strides; `dst` must hold
/// `ceil(mc / mr) * mr * ceil(kc / 2)` words.
pub(super) unsafe fn pack_a(mr: usize, mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, dst: *mut u32) {
    pack_b(mr, kc, mc, a, cs, rs, dst)
}

/// Packs `kc x nc` of `B` (element `(p, j)` at `b + p * rs + j * cs`) into `nr`-column panels of
/// bf16 pairs.
///
/// # Safety
/// `b` must address the whole block with these strides; `dst` must hold
/// `ceil(nc / nr) * nr * ceil(kc / 2)` words; the CPU must have AVX512_BF16 (see
/// [`super::supported`]).
pub(super) unsafe fn pack_b(nr: usize, kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, dst: *mut u32) {
    let kp = kc.div_ceil(2);
    for (panel, j0) in (0..nc).step_by(nr).enumerate() {
        let cols = nr.min(nc - j0);
        let d = dst.add(panel * nr * kp);
        let src = b.offset(j0 as isize * cs);
        if rs == 1 {
            // Each column is contiguous in `k`: its pairs are adjacent floats, 16 pairs per
            // conversion, stored down the panel.
            for j in 0..cols {
                column_pairs(src.offset(j as isize * cs), kc, d.add(j), nr);
            }
            for p in 0..kp {
                for j in cols..nr {
                    *d.add(p * nr + j) = 0;
                }
            }
            continue;
        }
        for p in 0..kp {
            let lo = src.offset(2 * p as isize * rs);
            let hi = (2 * p + 1 < kc).then(|| lo.offset(rs));
            let out = d.add(p * nr);
            let mut j = 0;
            if cs == 1 {
                while j + 16 <= cols {
                    pairs16(lo.add(j), hi.map(|h| h.add(j)), out.add(j));
                    j += 16;
                }
                // The 8-row panels of A stored with its rows contiguous (a transposed matrix).
                if j + 8 <= cols {
                    pairs8(lo.add(j), hi.map(|h| h.add(j)), out.add(j));
                    j += 8;
                }
            }
            for j in j..cols {
                let l = u32::from(bf16_bits(*lo.offset(j as isize * cs)));
                let h = hi.map_or(0, |h| u32::from(bf16_bits(*h.offset(j as isize * cs))));
                *out.add(j) = l | h << 16;
            }
            for j in cols..nr {
                *out.add(j) = 0;
            }
        }
    }
}

/// Sixteen words from sixteen contiguous floats of the low step and (if any) of the high step:
/// `vcvtneps2bf16` rounds them (to nearest, ties to even, as [`bf16_bits`]), then the halves
/// are widened and interleaved.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pairs16(lo: *const f32, hi: Option<*const f32>, out: *mut u32) {
    let widen = |p: *const f32| {
        _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(p))))
    };
    let l = widen(lo);
    let words = match hi {
        Some(h) => _mm512_or_si512(l, _mm512_slli_epi32::<16>(widen(h))),
        None => l,
    };
    _mm512_storeu_si512(out as *mut __m512i, words);
}

/// [`pairs16`] for eight floats of each step (256-bit vectors).
#[target_feature(enable = "avx512f,avx512vl,avx512bf16")]
unsafe fn pairs8(lo: *const f32, hi: Option<*const f32>, out: *mut u32) {
    let widen = |p: *const f32| {
        _mm256_cvtepu16_epi32(std::mem::transmute::<__m128bh, __m128i>(_mm256_cvtneps_pbh(_mm256_loadu_ps(p))))
    };
    let l = widen(lo);
    let words = match hi {
        Some(h) => _mm256_or_si256(l, _mm256_slli_epi32::<16>(widen(h))),
        None => l,
    };
    _mm256_storeu_si256(out as *mut __m256i, words);
}

/// The `ceil(kc / 2)` pair words of one column contiguous in `k` (`col[0..kc]`), stored at
/// `out[p * stride]`: 32 floats at a time through `vcvtne2ps2bf16` (rounded as [`bf16_bits`];
/// the bf16 of step `2p` lands in the low half of word `p`), the rest one by one.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn column_pairs(col: *const f32, kc: usize, out: *mut u32, stride: usize) {
    let mut p = 0;
    let mut words = [0u32; 16];
    while 2 * p + 32 <= kc {
        let (lo, hi) = (_mm512_loadu_ps(col.add(2 * p)), _mm512_loadu_ps(col.add(2 * p + 16)));
        let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(words.as_mut_ptr() as *mut __m512i, v);
        for (q, w) in words.iter().enumerate() {
            *out.add((p + q) * stride) = *w;
        }
        p += 16;
    }
    while 2 * p < kc {
        let l = u32::from(bf16_bits(*col.add(2 * p)));
        let h = if 2 * p + 1 < kc { u32::from(bf16_bits(*col.add(2 * p + 1))) } else { 0 };
        *out.add(p * stride) = l | h << 16;
        p += 1;
    }
}
