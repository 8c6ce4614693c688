//! Softmax forward over contiguous f32 rows with AVX-512F intrinsics: every row in 16-lane
//! chunks, the last one masked (no scalar tail), the maximum and the sum reduced once per row,
//! and a vector `exp` whose `2^n` step is `vscalefps`. Rows of the attention scores (65 wide in
//! ViT-Tiny/4) are short, so the per-row fixed costs are what this kernel keeps small.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::fast_math::{EXP_TAYLOR, LN2_HI, LN2_LO};
use super::mask16::below;

/// `e^x` in 16 lanes: Cody–Waite reduction by ln 2 and the degree-7 Taylor polynomial of
/// [`super::fast_math::exp_f32`], scaled by `2^n` with `vscalefps` (which
/// underflows gradually to 0 and overflows to infinity). Inputs are clamped to
/// `[-104, 89]` first; NaN lanes are not expected (the caller handles NaN rows).
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn exp16(x: __m512) -> __m512 {
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0)), _mm512_set1_ps(89.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
        x,
        _mm512_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    let mut p = _mm512_set1_ps(EXP_TAYLOR[0]);
    for &c in &EXP_TAYLOR[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// Softmax of each `block`-long row of `src` into `dst` (equal lengths, a multiple of
/// `block`, `block >= 1`). A row holding a NaN is all NaN; a row of only `-inf` is NaN (0/0),
/// and a row whose maximum is `+inf` follows from `e^(x)` with no shift, as the generic kernel.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f,fma")]
pub(super) unsafe fn rows(src: &[f32], dst: &mut [MaybeUninit<f32>], block: usize) {
    assert!(block > 0 && src.len() == dst.len() && src.len().is_multiple_of(block), "softmax rows");
    let neg_inf = _mm512_set1_ps(f32::NEG_INFINITY);
    for (s, d) in src.chunks_exact(block).zip(dst.chunks_exact_mut(block)) {
        let (sp, dp) = (s.as_ptr(), d.as_mut_ptr() as *mut f32);
        // SAFETY (all loads and stores below): lanes at `i + l` with `l < below(block - i)`
        // lie inside the row; masked-off lanes are not touched.
        let mut m = neg_inf;
        let mut nan: __mmask16 = 0;
        let mut i = 0;
        while i < block {
            let k = below(block - i);
            let x = unsafe { _mm512_mask_loadu_ps(neg_inf, k, sp.add(i)) };
            m = _mm512_max_ps(m, x);
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            i += 16;
        }
        if nan != 0 {
            d.iter_mut().for_each(|v| {
                v.write(f32::NAN);
            });
            continue;
        }
        let max = _mm512_reduce_max_ps(m);
        let shift = _mm512_set1_ps(if max.is_finite() { max } else { 0.0 });
        let mut sum = _mm512_setzero_ps();
        let mut i = 0;
        while i < block {
            let k = below(block - i);
            let x = unsafe { _mm512_maskz_loadu_ps(k, sp.add(i)) };
            let e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(x, shift)));
            sum = _mm512_add_ps(sum, e);
            unsafe { _mm512_mask_storeu_ps(dp.add(i), k, e) };
            i += 16;
        }
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        let mut i = 0;
        while i < block {
            let k = below(block - i);
            unsafe {
                let e = _mm512_maskz_loadu_ps(k, dp.add(i));
                _mm512_mask_storeu_ps(dp.add(i), k, _mm512_mul_ps(e, inv));
            }
            i += 16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `exp16` against f64's `exp`: a few ulp wherever the result is a normal f32, 0 far below
    /// and infinity far above the range (on CPUs without AVX-512F there is nothing to check).
    #[test]
    fn exp16_is_within_a_few_ulp() {
        if !crate::cpu::isa::use_avx512() {
            return;
        }
        let xs: Vec<f32> = (0..20_000).map(|i| -110.0 + i as f32 * 0.01).collect();
        for c in xs.chunks_exact(16) {
            let mut out = [0f32; 16];
            // SAFETY: the CPU has AVX-512F (checked above); 16 lanes in and out.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), exp16(_mm512_loadu_ps(c.as_ptr()))) };
            for (&x, &e) in c.iter().zip(&out) {
                let want = (x as f64).exp();
                if want < f32::MIN_POSITIVE as f64 {
                    assert!((e as f64) < 2.0 * f32::MIN_POSITIVE as f64 && e >= 0.0, "exp({x}) = {e}");
                } else if want > f32::MAX as f64 {
                    assert_eq!(e, f32::INFINITY, "exp({x})");
                } else {
                    let ulp = want * f32::EPSILON as f64;
                    assert!((e as f64 - want).abs() <= 4.0 * ulp, "exp({x}) = {e}, want {want}");
                }
            }
        }
    }
}
