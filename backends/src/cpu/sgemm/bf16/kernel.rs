//! The bf16 micro-kernel: an `8 x 32` tile of `C` from packed bf16 pair panels (see the
//! [module docs](super)), 16 f32 accumulators, one `vdpbf16ps` per accumulator and pair of `k`
//! steps.

use std::arch::x86_64::*;

use super::{MR, NR};

/// `C[i, j] = alpha * Σ_p dot(a[p * MR + i], b[p * NR + j]) + beta * C[i, j]` over `kp` pairs
/// for the full tile; with `beta == 0` the old `C` is not read.
///
/// # Safety
/// The CPU must have AVX512_BF16; `a` and `b` must hold `kp` packed pairs (`b` 64-byte
/// aligned); `c` must address `MR` rows of `NR` writable floats with row stride `ldc`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn tile(kp: usize, a: *const u32, b: *const u32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
    let acc = products::<2>(kp, a, b);
    let (va, vb) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    for (i, row) in acc.iter().enumerate() {
        for (h, v) in row.iter().enumerate() {
            let d = c.add(i * ldc + 16 * h);
            let y = _mm512_mul_ps(va, *v);
            let y = if beta == 0.0 { y } else { _mm512_fmadd_ps(vb, _mm512_loadu_ps(d), y) };
            _mm512_storeu_ps(d, y);
        }
    }
}

/// The tile's accumulators: `Σ_p` of the pair dot products, for the first `H` (1 or 2) halves
/// of 16 columns (one half: the edge tiles of at most 16 columns skip the other's products).
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn products<const H: usize>(kp: usize, mut a: *const u32, mut b: *const u32) -> [[__m512; H]; MR] {
    let mut acc = [[_mm512_setzero_ps(); H]; MR];
    for _ in 0..kp {
        let mut bh = [std::mem::transmute::<__m512i, __m512bh>(_mm512_setzero_si512()); H];
        for (h, v) in bh.iter_mut().enumerate() {
            *v = std::mem::transmute::<__m512i, __m512bh>(_mm512_load_si512(b.add(16 * h) as *const __m512i));
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let ai: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(i) as i32));
            for (r, v) in row.iter_mut().zip(&bh) {
                *r = _mm512_dpbf16_ps(*r, ai, *v);
            }
        }
        a = a.add(MR);
        b = b.add(NR);
    }
    acc
}

/// [`tile`] for the `rows x cols` corner of a tile cut by the edge of `C`: the products of the
/// halves of 16 columns the corner reaches, stored with masks inside the corner.
///
/// # Safety
/// As [`tile`], with `c` addressing `rows` rows of `cols` writable floats.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn edge(
    kp: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    alpha: f32,
    beta: f32,
) {
    if cols <= 16 {
        store_corner(&products::<1>(kp, a, b), c, ldc, (rows, cols), alpha, beta);
    } else {
        store_corner(&products::<2>(kp, a, b), c, ldc, (rows, cols), alpha, beta);
    }
}

/// `C = alpha * acc + beta * C` inside the `rows x cols` corner, through masked loads and stores
/// (with `beta == 0` the old `C` is not read: it may be uninitialized).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_corner<const H: usize>(
    acc: &[[__m512; H]; MR],
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    alpha: f32,
    beta: f32,
) {
    let (va, vb) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    for (i, row) in acc.iter().enumerate().take(rows) {
        for (h, v) in row.iter().enumerate() {
            let n = cols.saturating_sub(16 * h).min(16);
            let m = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
            let d = c.add(i * ldc + 16 * h);
            let y = _mm512_mul_ps(va, *v);
            let y = if beta == 0.0 { y } else { _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, d), y) };
            _mm512_mask_storeu_ps(d, m, y);
        }
    }
}
