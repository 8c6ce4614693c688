//! Lane masks of 16-float AVX-512 vectors, shared by the kernels that read row pieces with
//! masked loads (`depthwise3x3`, `im2col_avx512`).

use std::arch::x86_64::__mmask16;

/// The lanes `l < 16` with `0 <= start + l < w`: where a 16-lane load at column `start` of a
/// row of `w` columns stays inside the row.
#[inline(always)]
pub(super) fn inside(start: isize, w: usize) -> __mmask16 {
    let lo = (-start).clamp(0, 16) as u32;
    let hi = (w as isize - start).clamp(0, 16) as u32;
    if hi <= lo {
        0
    } else {
        (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16
    }
}

/// The lanes `l < min(n, 16)`.
#[inline(always)]
pub(super) fn below(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        (1u16 << n) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_cover_the_lanes_inside() {
        assert_eq!(inside(0, 16), 0xffff);
        assert_eq!(inside(-1, 16), 0xfffe);
        assert_eq!(inside(-16, 16), 0);
        assert_eq!(inside(4, 10), 0b11_1111);
        assert_eq!(inside(10, 10), 0);
        assert_eq!(inside(-3, 5), 0b1111_1000);
        assert_eq!(below(0), 0);
        assert_eq!(below(3), 0b111);
        assert_eq!(below(16), 0xffff);
        assert_eq!(below(40), 0xffff);
    }
}
