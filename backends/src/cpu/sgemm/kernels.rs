//! The f32 micro-kernels: an `MR x NR` tile of `C` from packed panels of `A` (`MR` values per
//! step of `k`) and `B` (`NR` values per step), accumulated in vector registers.
//!
//! AVX-512 (`8 x 32`, 16 accumulators) and AVX2 + FMA (`6 x 16`, 12 accumulators). Eight rows
//! divide the channel counts convolutions use (16, 32, 64, ...), so their `C_out x pixels` GEMMs
//! waste no lanes on the row edge.

use std::arch::x86_64::*;

/// One micro-kernel: its tile shape and the tile update.
pub(super) trait MicroKernel {
    /// Rows of the tile (values of packed `A` per step of `k`).
    const MR: usize;
    /// Columns of the tile (values of packed `B` per step of `k`).
    const NR: usize;

    /// `C[i, j] = alpha * Σ_p a[p * MR + i] * b[p * NR + j] + beta * C[i, j]` for the full
    /// `MR x NR` tile; with `beta == 0` the old `C` is not read.
    ///
    /// # Safety
    /// The CPU must have the kernel's features; `a` and `b` must hold `kc` packed steps (`b`
    /// 64-byte aligned); `c` must address `MR` rows of `NR` writable floats with row stride `ldc`.
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32);
}

/// The AVX-512 kernel, 8 rows x 32 columns.
pub(super) struct Avx512;

impl MicroKernel for Avx512 {
    const MR: usize = 8;
    const NR: usize = 32;

    #[inline]
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
        tile_avx512(kc, a, b, c, ldc, alpha, beta)
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(kc: usize, mut a: *const f32, mut b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
    const MR: usize = Avx512::MR;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for _ in 0..kc {
        let b0 = _mm512_load_ps(b);
        let b1 = _mm512_load_ps(b.add(16));
        for i in 0..MR {
            let ai = _mm512_set1_ps(*a.add(i));
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a = a.add(MR);
        b = b.add(32);
    }
    let va = _mm512_set1_ps(alpha);
    let vb = _mm512_set1_ps(beta);
    for i in 0..MR {
        let cp = c.add(i * ldc);
        for h in 0..2 {
            let p = cp.add(16 * h);
            let v = if beta == 0.0 {
                _mm512_mul_ps(acc[i][h], va)
            } else {
                _mm512_fmadd_ps(_mm512_loadu_ps(p), vb, _mm512_mul_ps(acc[i][h], va))
            };
            _mm512_storeu_ps(p, v);
        }
    }
}

/// The AVX2 + FMA kernel, 6 rows x 16 columns.
pub(super) struct Avx2;

impl MicroKernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;

    #[inline]
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
        tile_avx2(kc, a, b, c, ldc, alpha, beta)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(kc: usize, mut a: *const f32, mut b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
    const MR: usize = Avx2::MR;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for _ in 0..kc {
        let b0 = _mm256_load_ps(b);
        let b1 = _mm256_load_ps(b.add(8));
        for i in 0..MR {
            let ai = _mm256_broadcast_ss(&*a.add(i));
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a = a.add(MR);
        b = b.add(16);
    }
    let va = _mm256_set1_ps(alpha);
    let vb = _mm256_set1_ps(beta);
    for i in 0..MR {
        let cp = c.add(i * ldc);
        for h in 0..2 {
            let p = cp.add(8 * h);
            let v = if beta == 0.0 {
                _mm256_mul_ps(acc[i][h], va)
            } else {
                _mm256_fmadd_ps(_mm256_loadu_ps(p), vb, _mm256_mul_ps(acc[i][h], va))
            };
            _mm256_storeu_ps(p, v);
        }
    }
}
