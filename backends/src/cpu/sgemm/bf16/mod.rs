//! f32 products with bf16 operands and f32 accumulation, on AVX512_BF16's `vdpbf16ps`: the
//! operands are rounded to bf16 (round to nearest, ties to even) while they are packed, and
//! each instruction adds two products per lane (`c += a₀·b₀ + a₁·b₁`, products exact in f32)
//! into f32 accumulators: twice the multiply-adds per instruction of the f32 kernel, at about
//! 3 significant decimal digits per operand. The mixed-precision mode's GEMM (PyTorch's
//! `float32_matmul_precision("medium")` does the same on CPUs with bf16 dot products).
//!
//! Same loop nest as the f32 GEMM ([`super`]): `B` packed per block of columns and `k`, `A` per
//! block of rows, an `8 x 32` tile in 16 accumulators. Packed panels hold one `u32` per row (or
//! column) and pair of `k` steps: the bf16 of step `2p` in the low half, of step `2p + 1` in the
//! high half (zero past an odd `k`), the layout `vdpbf16ps` reads.

mod kernel;
mod pack;

use std::cell::RefCell;
use std::sync::OnceLock;

use super::{Operand, Panels};

/// Rows of the tile.
const MR: usize = 8;
/// Columns of the tile.
const NR: usize = 32;
/// Steps of `k` per packed block (`KC / 2` pairs: a block of `B` as many bytes as the f32
/// GEMM's; the rows per block of `A` are the f32 GEMM's `MC`).
const KC: usize = 512;

/// Whether this CPU has the bf16 dot-product instructions (AVX512_BF16 with AVX-512F, VL and BW),
/// detected once.
pub(crate) fn supported() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512bf16")
    })
}

/// The bf16 bits of `x`, rounded to nearest with ties to even (NaN stays a quiet NaN).
pub(crate) fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// `x` rounded to bf16, as f32.
#[cfg(test)]
pub(crate) fn round_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(x)) << 16)
}

thread_local! {
    /// This thread's packing buffers for `A` and `B`.
    static PACK: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The bf16 kernel and its pair panels, for the shared loop nest ([`super::blocked`]).
pub(super) struct Bf16;

impl Panels for Bf16 {
    type Word = u32;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = KC;
    const STEPS: usize = 2;

    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, dst: *mut u32) {
        pack::pack_a(MR, mc, kc, a, rs, cs, dst)
    }

    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, dst: *mut u32) {
        pack::pack_b(NR, kc, nc, b, rs, cs, dst)
    }

    unsafe fn tile(kw: usize, a: *const u32, b: *const u32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
        kernel::tile(kw, a, b, c, ldc, alpha, beta)
    }

    unsafe fn edge(
        kw: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    ) {
        kernel::edge(kw, a, b, c, ldc, corner, alpha, beta)
    }

    /// bf16 operands are rounded as they are packed: `A` is always packed.
    const DIRECT_A: bool = false;

    /// Packs the panel on the stack (rounding it to bf16) and runs the tile.
    unsafe fn direct(
        kc: usize,
        a: *const f32,
        strides: (isize, isize),
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    ) {
        super::direct_by_packing::<Self>(kc, a, strides, b, c, ldc, corner, alpha, beta)
    }

    fn with_buffers<R>(f: impl FnOnce(&mut Vec<u32>, &mut Vec<u32>) -> R) -> R {
        PACK.with(|bufs| {
            let (a, b) = &mut *bufs.borrow_mut();
            f(a, b)
        })
    }
}

/// `C = alpha * bf16(A) bf16(B) + beta * C + bias` with f32 accumulation; `C` row-major with
/// row stride `ldc`, `bias` null or `n` f32 values added to every row (as in
/// [`super::sgemm`]). With `beta == 0` the old `C` is never read.
///
/// # Safety
/// [`supported`] must hold; `a` (`m x k`) and `b` (`k x n`) must be readable, and `bias` when
/// not null; `c` must address `m` rows of `n` writable floats that alias none of them.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_bf16(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
) {
    super::blocked::<Bf16>(m, k, n, alpha, a, b, beta, bias, c, ldc, super::in_place::<Bf16>(a, k, n))
}

#[cfg(test)]
mod tests {
    use super::super::naive_check::{self, Case, Reference};
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to the even 1 + 2^-6.
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0), 1.0 + 1.0 / 128.0);
        assert_eq!(round_bf16(-2.5), -2.5);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
        assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
    }

    /// One product against a naive f64 loop over the bf16-rounded operands: each
    /// `vdpbf16ps` step is exact products rounded once into f32, so the tolerance is the f32
    /// GEMM's; operands rounded any other way (truncated, or not at all) miss it by about
    /// `2^-9` of the sum of magnitudes.
    #[allow(clippy::too_many_arguments)]
    fn check(m: usize, k: usize, n: usize, ta: bool, tb: bool, alpha: f32, beta: f32) {
        let reference = Reference { round: round_bf16, tol: |k, _, mag| 2e-7 * (k as f64 + 2.0) * mag };
        for bias in [false, true] {
            let case = Case { m, k, n, ta, tb, alpha, beta, bias };
            naive_check::check(case, &reference, "bf16", |a, b, bias, c, ldc| {
                // SAFETY: the check's operands, bias and `C` are sized for `case`; `c` is a
                // distinct buffer.
                unsafe { gemm_bf16(m, k, n, alpha, a, b, beta, bias, c, ldc) }
            });
            // The loop nest with `A` read through `Panels::direct` (packed on the stack).
            naive_check::check(case, &reference, "bf16 A in place", |a, b, bias, c, ldc| {
                // SAFETY: as above.
                unsafe { super::super::blocked::<Bf16>(m, k, n, alpha, a, b, beta, bias, c, ldc, true) }
            });
        }
    }

    #[test]
    fn odd_shapes_match_naive() {
        if !supported() {
            return;
        }
        for m in 1..=19 {
            for (k, n) in [(1, 1), (2, 37), (3, 37), (37, 5), (16, 32), (9, 33), (29, 17)] {
                check(m, k, n, false, false, 1.0, 0.0);
            }
        }
        for n in 1..=37 {
            for k in 1..=21 {
                check(7, k, n, n % 2 == 0, k % 3 == 0, 1.0, 0.0);
            }
        }
    }

    #[test]
    fn transposed_operands_alpha_beta_and_blocks() {
        if !supported() {
            return;
        }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                check(13, 11, 35, ta, tb, alpha, beta);
                check(9, 64, 65, ta, tb, alpha, beta);
            }
        }
        // Crosses KC, MC and the column block with ragged edges in every dimension.
        use super::super::MC;
        check(MC + 9, KC + 7, 1100, false, false, 1.0, 0.0);
        check(MC + 9, 2 * KC + 1, 45, true, true, 0.5, 1.0);
        check(5, 0, 7, false, false, 1.0, 0.5);
    }

    /// The operands really are rounded to bf16: a product whose exact value differs from the
    /// rounded operands' one comes out as the rounded operands' product.
    #[test]
    fn operands_are_rounded_to_bf16() {
        if !supported() {
            return;
        }
        let (a, b) = ([1.0f32 + 3.0 / 256.0], [1.0f32 + 1.0 / 256.0 + 1.0 / 65536.0]);
        let mut c = [0f32];
        // SAFETY: 1 x 1 x 1 product of the arrays above.
        unsafe {
            gemm_bf16(
                1,
                1,
                1,
                1.0,
                Operand { ptr: a.as_ptr(), rs: 1, cs: 1 },
                Operand { ptr: b.as_ptr(), rs: 1, cs: 1 },
                0.0,
                std::ptr::null(),
                c.as_mut_ptr(),
                1,
            );
        }
        assert_eq!(c[0], (1.0 + 1.0 / 64.0) * (1.0 + 1.0 / 128.0));
    }
}
