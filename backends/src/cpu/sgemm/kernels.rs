//! The f32 micro-kernels: an `MR x NR` tile of `C` from packed panels of `A` (`MR` values per
//! step of `k`) and `B` (`NR` values per step), accumulated in vector registers.
//!
//! AVX-512 (`8 x 32`, 16 accumulators) and AVX2 + FMA (`6 x 16`, 12 accumulators). Eight rows
//! divide the channel counts convolutions use (16, 32, 64, ...), so their `C_out x pixels` GEMMs
//! waste no lanes on the row edge.

use std::arch::x86_64::*;

/// The largest `MR * NR` of the kernels (size of the edge-tile scratch).
const MAX_TILE: usize = 256;

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

    /// [`MicroKernel::tile`] for the `rows x cols` corner of a tile cut by the edge of `C`
    /// (`rows <= MR`, `cols <= NR`): the same update, written only inside the corner. The
    /// default runs the full tile into a scratch tile and copies the corner out.
    ///
    /// # Safety
    /// As [`MicroKernel::tile`], with `c` addressing `rows` rows of `cols` writable floats.
    #[allow(clippy::too_many_arguments)]
    unsafe fn edge(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        (rows, cols): (usize, usize),
        alpha: f32,
        beta: f32,
    ) {
        let mut tmp = [0f32; MAX_TILE];
        Self::tile(kc, a, b, tmp.as_mut_ptr(), Self::NR, alpha, 0.0);
        for i in 0..rows {
            let trow = &tmp[i * Self::NR..i * Self::NR + cols];
            for (j, t) in trow.iter().enumerate() {
                // Through the raw pointer: with beta == 0, C may be uninitialized and is only written.
                let d = c.add(i * ldc + j);
                d.write(if beta == 0.0 { *t } else { *t + beta * d.read() });
            }
        }
    }

    /// Whether [`MicroKernel::direct`] reads `A` in place (rather than packing it first), so
    /// that the loop nest may skip packing `A` (see `in_place`).
    const DIRECT_A: bool = false;

    /// The `rows x cols` corner of a tile (a full tile when `rows == MR`, `cols == NR`) with
    /// `A` read where it lies: element `(i, p)` at `a + i * rs + p * cs`, `kc <= KC` steps. The
    /// default packs the panel on the stack and runs the packed tile
    /// ([`super::direct_by_packing`]).
    ///
    /// # Safety
    /// As [`MicroKernel::edge`], with `a` addressing `rows x kc` values with these strides.
    #[allow(clippy::too_many_arguments)]
    unsafe fn direct(
        kc: usize,
        a: *const f32,
        strides: (isize, isize),
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    ) where
        Self: Sized,
    {
        super::direct_by_packing::<Self>(kc, a, strides, b, c, ldc, corner, alpha, beta)
    }
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

    /// Only the rows present and the 16-column halves with columns present are computed (a
    /// 65 x 65 attention product has a 1-row and a 1-column edge: 2 and 8 FMAs per step
    /// instead of 16), and the corner is stored with masks.
    #[inline]
    unsafe fn edge(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        (rows, cols): (usize, usize),
        alpha: f32,
        beta: f32,
    ) {
        strided_avx512(kc, a, (1, Self::MR as isize), b, c, ldc, (rows, cols), alpha, beta)
    }

    const DIRECT_A: bool = true;

    /// [`strided_avx512`] with `A`'s own strides.
    #[inline]
    unsafe fn direct(
        kc: usize,
        a: *const f32,
        strides: (isize, isize),
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    ) {
        strided_avx512(kc, a, strides, b, c, ldc, corner, alpha, beta)
    }
}

/// The `rows x cols` corner of an AVX-512 tile with `A`'s element `(i, p)` at
/// `a + i * rs + p * cs` (a packed panel has `(1, MR)`): [`edge_avx512`] for the rows present
/// and the 16-column halves with columns present.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn strided_avx512(
    kc: usize,
    a: *const f32,
    strides: (isize, isize),
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    alpha: f32,
    beta: f32,
) {
    macro_rules! by_shape {
        ($($r:literal),*) => {
            match (rows, cols > 16) {
                $(($r, false) => edge_avx512::<$r, 1>(kc, a, strides, b, c, ldc, cols, alpha, beta),
                  ($r, true) => edge_avx512::<$r, 2>(kc, a, strides, b, c, ldc, cols, alpha, beta),)*
                _ => unreachable!("corner of {rows} x {cols} in an 8 x 32 tile"),
            }
        };
    }
    by_shape!(1, 2, 3, 4, 5, 6, 7, 8)
}

/// [`tile_avx512`] for the first `R` rows and `H` 16-column halves of a tile, storing the
/// first `cols` columns (`16 (H - 1) < cols <= 16 H`) with masks; `A`'s element `(i, p)` at
/// `a + i * rs + p * cs` (the row offsets stay in registers, one pointer steps through `k`).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn edge_avx512<const R: usize, const H: usize>(
    kc: usize,
    mut a: *const f32,
    (rs, cs): (isize, isize),
    mut b: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    alpha: f32,
    beta: f32,
) {
    let rows: [isize; R] = std::array::from_fn(|i| i as isize * rs);
    let mut acc = [[_mm512_setzero_ps(); H]; R];
    for _ in 0..kc {
        let bv: [__m512; H] = std::array::from_fn(|h| _mm512_load_ps(b.add(16 * h)));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm512_set1_ps(*a.offset(rows[i]));
            for (h, v) in row.iter_mut().enumerate() {
                *v = _mm512_fmadd_ps(ai, bv[h], *v);
            }
        }
        a = a.offset(cs);
        b = b.add(Avx512::NR);
    }
    let va = _mm512_set1_ps(alpha);
    let vb = _mm512_set1_ps(beta);
    let masks: [__mmask16; H] = std::array::from_fn(|h| crate::cpu::mask16::below(cols - 16 * h));
    for (i, row) in acc.iter().enumerate() {
        for (h, &v) in row.iter().enumerate() {
            let p = c.add(i * ldc + 16 * h);
            let v = if beta == 0.0 {
                _mm512_mul_ps(v, va)
            } else {
                _mm512_fmadd_ps(_mm512_maskz_loadu_ps(masks[h], p), vb, _mm512_mul_ps(v, va))
            };
            _mm512_mask_storeu_ps(p, masks[h], v);
        }
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
