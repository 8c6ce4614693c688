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
    let acc = products(kp, a, b);
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

/// The tile's accumulators: `Σ_p` of the pair dot products.
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn products(kp: usize, mut a: *const u32, mut b: *const u32) -> [[__m512; 2]; MR] {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for _ in 0..kp {
        let b0: __m512bh = std::mem::transmute(_mm512_load_si512(b as *const __m512i));
        let b1: __m512bh = std::mem::transmute(_mm512_load_si512(b.add(16) as *const __m512i));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(i) as i32));
            row[0] = _mm512_dpbf16_ps(row[0], ai, b0);
            row[1] = _mm512_dpbf16_ps(row[1], ai, b1);
        }
        a = a.add(MR);
        b = b.add(NR);
    }
    acc
}

/// [`tile`] for the `rows x cols` corner of a tile cut by the edge of `C`: the full tile's
/// products, stored only inside the corner.
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
    let acc = products(kp, a, b);
    let mut tmp = [0f32; MR * NR];
    for (i, row) in acc.iter().enumerate() {
        for (h, v) in row.iter().enumerate() {
            _mm512_storeu_ps(tmp.as_mut_ptr().add(i * NR + 16 * h), *v);
        }
    }
    for i in 0..rows {
        for (j, t) in tmp[i * NR..i * NR + cols].iter().enumerate() {
            // Through the raw pointer: with beta == 0, C may be uninitialized and is only written.
            let d = c.add(i * ldc + j);
            d.write(if beta == 0.0 { alpha * t } else { alpha * t + beta * d.read() });
        }
    }
}
