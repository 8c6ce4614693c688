//! The ternary 1x1 convolution's plane kernel on AVX-512BW: additions and subtractions only,
//! with the accumulators in registers.
//!
//! For one output channel of one image, `out[p] = Σ_{c ∈ plus} x[c, p] − Σ_{c ∈ minus} x[c, p]`
//! over the plane. The image's planes are first copied to zero-padded rows of a multiple of 32
//! bytes on 64-byte boundaries ([`PaddedPlanes`], once per image for all output channels); the
//! plane is cut into tiles of 128 pixels held in four 32-lane `i16` registers, and each listed
//! input channel adds (or subtracts) its 128 bytes, loaded and sign-extended to `i16` in one
//! instruction per 32 pixels. An `i16` lane holds the sum of
//! up to 255 terms of `|x| ≤ 128` exactly (`255 · 128 = 32,640`), so every 255 channels the
//! registers are widened and added into the tile's `i32` sums. The portable kernel
//! (`int8::accumulate_plane`) adds into an `i32` plane in memory, one load, add and store per
//! 16 pixels and channel; this one does one sign-extending load and one add per 32.

use std::arch::x86_64::*;

/// Pixels per tile (four registers of 32 `i16` lanes).
const TILE: usize = 128;
/// Terms an `i16` lane sums exactly before the widening flush.
const FLUSH: usize = 255;

/// One image's input planes copied to rows of a multiple of 32 bytes, zero-padded, starting on
/// 64-byte boundaries: every 32-byte load of the kernel is whole and never splits a cache line
/// (a 7x7 plane's rows are 49 bytes: most loads would straddle two lines, and the last chunk
/// would need a mask).
pub(crate) struct PaddedPlanes {
    buf: Vec<i8>,
    start: usize,
    /// Bytes per row (`hw` rounded up to 32).
    pub ld: usize,
}

impl PaddedPlanes {
    /// The `c` planes of `hw` bytes in `x` (`[c, hw]`), padded.
    pub(crate) fn new(x: &[i8], c: usize, hw: usize) -> PaddedPlanes {
        let ld = hw.next_multiple_of(32).max(32);
        let mut buf = vec![0i8; c * ld + 64];
        let start = buf.as_ptr().align_offset(64).min(64);
        for ch in 0..c {
            buf[start + ch * ld..start + ch * ld + hw].copy_from_slice(&x[ch * hw..(ch + 1) * hw]);
        }
        PaddedPlanes { buf, start, ld }
    }

    fn rows(&self) -> &[i8] {
        &self.buf[self.start..]
    }
}

/// `out = Σ plus planes − Σ minus planes` of the padded planes `x`, `out` of `hw` elements (the
/// valid pixels of each row).
///
/// # Safety
/// AVX-512F, BW and VL ([`crate::cpu::isa::use_avx512_bw`]); every listed channel is one of
/// `x`'s planes, and `out.len() <= x.ld`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn accumulate_plane_avx512(out: &mut [i32], x: &PaddedPlanes, plus: &[u32], minus: &[u32]) {
    let (hw, ld) = (out.len(), x.ld);
    let rows = x.rows();
    debug_assert!(plus.iter().chain(minus).all(|&c| (c as usize + 1) * ld <= rows.len()));
    for t0 in (0..hw).step_by(TILE) {
        let width = TILE.min(ld - t0);
        let mut sums = [0i32; TILE];
        let base = rows.as_ptr().add(t0);
        match width / 32 {
            1 => tile::<1>(base, ld, plus, minus, &mut sums),
            2 => tile::<2>(base, ld, plus, minus, &mut sums),
            3 => tile::<3>(base, ld, plus, minus, &mut sums),
            _ => tile::<4>(base, ld, plus, minus, &mut sums),
        }
        let valid = TILE.min(hw - t0);
        out[t0..t0 + valid].copy_from_slice(&sums[..valid]);
    }
}

/// One tile of `32·CH` pixels starting at `base` (channel 0's first pixel of the tile; channel
/// `c` at `base + c·ld`), summed into `sums`.
///
/// # Safety
/// As [`accumulate_plane_avx512`]; the tile lies inside every listed row.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn tile<const CH: usize>(base: *const i8, ld: usize, plus: &[u32], minus: &[u32], sums: &mut [i32; TILE]) {
    let mut acc = [_mm512_setzero_si512(); CH];
    let mut terms = 0usize;
    add_rows::<CH, false>(&mut acc, &mut terms, base, ld, plus, sums);
    add_rows::<CH, true>(&mut acc, &mut terms, base, ld, minus, sums);
    flush(&mut acc, sums);
}

/// Adds (or, with `SUB`, subtracts) the tile's bytes of each row in `list` to the `i16`
/// registers, flushing them into `sums` every [`FLUSH`] terms (`terms` counts since the last).
///
/// # Safety
/// As [`tile`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn add_rows<const CH: usize, const SUB: bool>(
    acc: &mut [__m512i; CH],
    terms: &mut usize,
    base: *const i8,
    ld: usize,
    list: &[u32],
    sums: &mut [i32; TILE],
) {
    for &c in list {
        if *terms == FLUSH {
            flush(acc, sums);
            *terms = 0;
        }
        let row = base.add(c as usize * ld);
        for (k, a) in acc.iter_mut().enumerate() {
            let v = _mm512_cvtepi8_epi16(_mm256_loadu_si256(row.add(32 * k).cast()));
            *a = if SUB { _mm512_sub_epi16(*a, v) } else { _mm512_add_epi16(*a, v) };
        }
        *terms += 1;
    }
}

/// Widens the `i16` registers into `sums` (`i32`) and clears them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn flush<const CH: usize>(acc: &mut [__m512i; CH], sums: &mut [i32; TILE]) {
    for (k, a) in acc.iter_mut().enumerate() {
        for half in 0..2 {
            let part = if half == 0 { _mm512_castsi512_si256(*a) } else { _mm512_extracti64x4_epi64::<1>(*a) };
            let s = sums.as_mut_ptr().add(32 * k + 16 * half);
            _mm512_storeu_si512(s.cast(), _mm512_add_epi32(_mm512_loadu_si512(s.cast()), _mm512_cvtepi16_epi32(part)));
        }
        *a = _mm512_setzero_si512();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Σ plus − Σ minus` by plain loops in `i64`.
    fn naive(x: &[i8], hw: usize, plus: &[u32], minus: &[u32]) -> Vec<i32> {
        (0..hw)
            .map(|p| {
                let s: i64 = plus.iter().map(|&c| i64::from(x[c as usize * hw + p])).sum::<i64>()
                    - minus.iter().map(|&c| i64::from(x[c as usize * hw + p])).sum::<i64>();
                s as i32
            })
            .collect()
    }

    fn bw() -> bool {
        crate::cpu::isa::use_avx512_bw()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against the naive sums on odd plane sizes (partial tiles and chunks) and channel
        /// counts past the 255-term flush, every byte value included.
        #[test]
        fn the_plane_kernel_equals_the_naive_sums(
            hw in 1usize..300, c in 1usize..700, seed in 0u64..1000, extreme in any::<bool>()
        ) {
            if !bw() {
                return Ok(());
            }
            let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 33) as u32 };
            let x: Vec<i8> = (0..c * hw).map(|_| if extreme { -128 } else { next() as u8 as i8 }).collect();
            let (mut plus, mut minus) = (Vec::new(), Vec::new());
            for ch in 0..c as u32 {
                match next() % 3 {
                    0 => plus.push(ch),
                    1 => minus.push(ch),
                    _ => {}
                }
            }
            if extreme {
                // All terms of one sign: the largest magnitudes the flush must keep exact.
                minus.clear();
                plus = (0..c as u32).collect();
            }
            let mut out = vec![7i32; hw];
            let padded = PaddedPlanes::new(&x, c, hw);
            unsafe { accumulate_plane_avx512(&mut out, &padded, &plus, &minus) };
            prop_assert_eq!(out, naive(&x, hw, &plus, &minus));
        }
    }
}
