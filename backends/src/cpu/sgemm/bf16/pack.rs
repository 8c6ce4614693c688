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
            // Each column is contiguous in `k`: its pairs are adjacent floats. Blocks of 16
            // columns go through 16 x 16 transposes of pair words, the panel's columns past the
            // edge as zeros.
            for j in (0..nr).step_by(16) {
                let n = cols.saturating_sub(j).min(16);
                // Wrapping: past the edge (`n == 0`) the columns are never read.
                columns16(src.wrapping_offset(j as isize * cs), cs, n, kc, d.add(j), nr, (nr - j).min(16));
            }
            continue;
        }
        if cs == 1 {
            // Each row is contiguous.
            row_pairs(kc, cols, nr, src, rs, d);
            continue;
        }
        for p in 0..kp {
            let lo = src.offset(2 * p as isize * rs);
            let hi = (2 * p + 1 < kc).then(|| lo.offset(rs));
            let out = d.add(p * nr);
            for j in 0..cols {
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

/// `vpermw` indices that interleave the two halves of a `vcvtne2ps2bf16` result (the low
/// step's 16 bf16, then the high step's) into 16 pair words.
const INTERLEAVE: [i16; 32] = {
    let mut t = [0i16; 32];
    let mut j = 0;
    while j < 16 {
        t[2 * j] = j as i16;
        t[2 * j + 1] = 16 + j as i16;
        j += 1;
    }
    t
};

/// One panel of `B` with contiguous rows (row `p` at `src + p * rs`, `cols <= nr` columns):
/// for each pair of steps, 16 columns at a time, two masked loads (zeros past `cols`, and for
/// the missing high step past an odd `kc`), one `vcvtne2ps2bf16` (rounded as [`bf16_bits`]) and
/// one `vpermw` into pair words, stored across the panel's `nr` words.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn row_pairs(kc: usize, cols: usize, nr: usize, src: *const f32, rs: isize, d: *mut u32) {
    let mask = |count: usize| if count >= 16 { u16::MAX } else { (1u16 << count) - 1 };
    let idx = _mm512_loadu_si512(INTERLEAVE.as_ptr().cast());
    for p in 0..kc.div_ceil(2) {
        let lo = src.offset(2 * p as isize * rs);
        let has_hi = 2 * p + 1 < kc;
        let out = d.add(p * nr);
        for j in (0..nr).step_by(16) {
            let m = mask(cols.saturating_sub(j));
            // Wrapping: past the edge (`m == 0`) nothing is read.
            let l = _mm512_maskz_loadu_ps(m, lo.wrapping_add(j));
            let h = if has_hi { _mm512_maskz_loadu_ps(m, lo.offset(rs).wrapping_add(j)) } else { _mm512_setzero_ps() };
            let halves = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(h, l));
            let words = _mm512_permutexvar_epi16(idx, halves);
            if nr - j >= 16 {
                _mm512_storeu_si512(out.add(j) as *mut __m512i, words);
            } else {
                _mm512_mask_storeu_epi32(out.add(j) as *mut i32, mask(nr - j), words);
            }
        }
    }
}

/// The pair words of `n <= 16` columns contiguous in `k` (column `j` at `src + j * cs`, `kc`
/// steps), stored down a panel: word `p` of column `j` at `out[p * stride + j]`, for the first
/// `lanes` columns (those from `n` on as zeros). Sixteen pairs of every column at a time: two
/// loads and one `vcvtne2ps2bf16` per column (rounded as [`bf16_bits`]; the bf16 of step `2p`
/// lands in the low half of word `p`), then a 16 x 16 transpose of the words ([`transpose16`])
/// and one store per pair. Blocks cut by `kc`, `n` or `lanes` take masked loads (zeros past
/// `kc`) and stores.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn columns16(src: *const f32, cs: isize, n: usize, kc: usize, out: *mut u32, stride: usize, lanes: usize) {
    let kp = kc.div_ceil(2);
    let full = kc / 32 * 32;
    let p0 = match (n, lanes) {
        (16, 16) => full_blocks::<16>(src, cs, full, out, stride),
        // An 8-row panel of a row-major `A`.
        (8, 8) => full_blocks::<8>(src, cs, full, out, stride),
        _ => 0,
    };
    if p0 < kp {
        columns16_masked(src, cs, n, kc, p0, out, stride, lanes);
    }
}

/// [`columns16`] for `N` (8 or 16) columns stored whole, the first `k` steps (a multiple of 32);
/// returns the pairs done.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn full_blocks<const N: usize>(src: *const f32, cs: isize, k: usize, out: *mut u32, stride: usize) -> usize {
    for p0 in (0..k / 2).step_by(16) {
        let mut w = [_mm512_setzero_si512(); 16];
        for (j, wj) in w.iter_mut().enumerate().take(N) {
            let col = src.offset(j as isize * cs).add(2 * p0);
            let (lo, hi) = (_mm512_loadu_ps(col), _mm512_loadu_ps(col.add(16)));
            *wj = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
        }
        transpose16(&mut w);
        for (q, wq) in w.iter().enumerate() {
            let dst = out.add((p0 + q) * stride);
            if N == 16 {
                _mm512_storeu_si512(dst as *mut __m512i, *wq);
            } else {
                _mm256_storeu_si256(dst as *mut __m256i, _mm512_castsi512_si256(*wq));
            }
        }
    }
    k / 2
}

/// [`columns16`] from pair `p0` on, every block with masked loads and stores.
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn columns16_masked(
    src: *const f32,
    cs: isize,
    n: usize,
    kc: usize,
    p0: usize,
    out: *mut u32,
    stride: usize,
    lanes: usize,
) {
    let mask = |count: usize| if count >= 16 { u16::MAX } else { (1u16 << count) - 1 };
    let store = mask(lanes);
    let kp = kc.div_ceil(2);
    for p0 in (p0..kp).step_by(16) {
        let k0 = 2 * p0;
        let rem = kc - k0;
        let (mlo, mhi) = (mask(rem), mask(rem.saturating_sub(16)));
        let mut w = [_mm512_setzero_si512(); 16];
        for (j, wj) in w.iter_mut().enumerate().take(n) {
            let col = src.offset(j as isize * cs).add(k0);
            let lo = _mm512_maskz_loadu_ps(mlo, col);
            let hi = if mhi == 0 { _mm512_setzero_ps() } else { _mm512_maskz_loadu_ps(mhi, col.add(16)) };
            *wj = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
        }
        if n > 0 {
            transpose16(&mut w);
        }
        for (q, wq) in w.iter().enumerate().take(kp - p0) {
            _mm512_mask_storeu_epi32(out.add((p0 + q) * stride) as *mut i32, store, *wq);
        }
    }
}

/// The `vpermt2d` indices of [`transpose16`]'s rounds (block sizes 8, 4, 2, 1): the upper row
/// keeps its lanes without bit `d` and takes the lower row's from `j - d`; the lower row takes the
/// upper row's from `j + d` and keeps its lanes with bit `d` (indices 16 and up: the lower row).
const SWAPS: [[[i32; 16]; 2]; 4] = {
    let mut t = [[[0i32; 16]; 2]; 4];
    let mut r = 0;
    while r < 4 {
        let d = 8 >> r;
        let mut j = 0;
        while j < 16 {
            let right = j & d != 0;
            t[r][0][j] = if right { 16 + j - d } else { j } as i32;
            t[r][1][j] = if right { 16 + j } else { j + d } as i32;
            j += 1;
        }
        r += 1;
    }
    t
};

/// Transposes 16 rows of 16 words in place (`w[i]` lane `j` becomes `w[j]` lane `i`): for block
/// sizes 8, 4, 2 and 1, rows `i` and `i + d` (bit `d` of `i` clear) swap their off-diagonal
/// blocks, the upper row's lanes with bit `d` set against the lower row's lanes without it.
/// Written out pair by pair (constant indices), so the rows stay in registers.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn transpose16(w: &mut [__m512i; 16]) {
    macro_rules! round {
        ($r:expr, $d:expr, $($i:expr),*) => {{
            let lo = _mm512_loadu_si512(SWAPS[$r][0].as_ptr().cast());
            let hi = _mm512_loadu_si512(SWAPS[$r][1].as_ptr().cast());
            $(
                let (a, b) = (w[$i], w[$i + $d]);
                w[$i] = _mm512_permutex2var_epi32(a, lo, b);
                w[$i + $d] = _mm512_permutex2var_epi32(a, hi, b);
            )*
        }};
    }
    round!(0, 8, 0, 1, 2, 3, 4, 5, 6, 7);
    round!(1, 4, 0, 1, 2, 3, 8, 9, 10, 11);
    round!(2, 2, 0, 1, 4, 5, 8, 9, 12, 13);
    round!(3, 1, 0, 2, 4, 6, 8, 10, 12, 14);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both layouts of `B` (columns contiguous in `k`: the transposing blocks; rows contiguous)
    /// pack exactly as the word-by-word definition, for panel widths 8 and 32, odd and even
    /// `k` across the 32-step blocks, and widths that leave partial blocks and panels.
    #[test]
    fn pair_panels_match_the_definition() {
        if !super::super::supported() {
            return;
        }
        for (nr, kc, nc) in
            [(32usize, 1usize, 1usize), (32, 33, 70), (32, 64, 16), (8, 19, 13), (8, 97, 24), (32, 5, 45)]
        {
            let kp = kc.div_ceil(2);
            let panels = nc.div_ceil(nr);
            for columns in [true, false] {
                // Element (p, j): column-contiguous at j * ld + p, else row-contiguous at p * ld + j.
                let ld = if columns { kc + 3 } else { nc + 5 };
                let src: Vec<f32> = (0..ld * kc.max(nc)).map(|i| (i as f32 * 0.37).sin() * 1.0e3).collect();
                let at = |p: usize, j: usize| if columns { src[j * ld + p] } else { src[p * ld + j] };
                let (rs, cs) = if columns { (1, ld as isize) } else { (ld as isize, 1) };
                let mut got = vec![u32::MAX; panels * nr * kp];
                // SAFETY: `src` holds the kc x nc block with these strides; `got` the panels.
                unsafe { pack_b(nr, kc, nc, src.as_ptr(), rs, cs, got.as_mut_ptr()) };
                for panel in 0..panels {
                    for p in 0..kp {
                        for j in 0..nr {
                            let col = panel * nr + j;
                            let half = |k: usize| if col < nc && k < kc { u32::from(bf16_bits(at(k, col))) } else { 0 };
                            let want = half(2 * p) | half(2 * p + 1) << 16;
                            let what = format!("nr {nr} kc {kc} nc {nc} columns {columns} at pair {p}, column {col}");
                            assert_eq!(got[panel * nr * kp + p * nr + j], want, "{what}");
                        }
                    }
                }
            }
        }
    }
}
