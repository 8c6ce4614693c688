//! The 16x16 transpose of vectors that the weight gradients of both tile sizes use to put
//! output channels along the lanes.

use std::arch::x86_64::*;

/// Transposes the 16x16 block `r` (row `i` = vector `i`) in place: 4 rounds of interleaving
/// rows `i` and `i + 8`, each moving one bit of the column index into the row index.
#[inline(always)]
pub(in crate::cpu::conv) unsafe fn transpose16(r: &mut [__m512; 16]) {
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for _ in 0..4 {
        let s: [__m512; 16] = std::array::from_fn(|j| {
            let (i, h) = (j / 2, j % 2);
            _mm512_permutex2var_ps(r[i], if h == 0 { lo } else { hi }, r[i + 8])
        });
        *r = s;
    }
}
