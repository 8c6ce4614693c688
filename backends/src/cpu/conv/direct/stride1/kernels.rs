//! The AVX-512 register tiles of the direct 3x3 convolution. Every vector holds 16 adjacent
//! output columns of one row; sources are zero-bordered planes, so no tap needs a branch.

use std::arch::x86_64::*;

/// Output channels per forward tile (the packed weights are grouped by this many).
pub(super) const OC: usize = 4;
/// Output rows per forward tile.
pub(super) const ROWS: usize = 4;
/// Output channels per weight-gradient tile.
pub(super) const GRAD_OC: usize = 3;

/// One forward tile: `OC` output channels x `ROWS` rows x 16 columns,
/// `y[k][r][j] = Σ_c Σ_(kh, kw) w[c][3 kh + kw][k] · src[c][r + kh][j + kw]`, stored under
/// `mask` for the channels `k < chans` and rows `r < rows`.
///
/// # Safety
/// The CPU must have AVX-512F and VL. `src` addresses `cin` planes `plane` apart with rows `stride`
/// apart, each readable for `ROWS + 2` rows of 18 floats from `src`; `w` holds `cin * 9 * OC`
/// floats; `dst` addresses `chans` planes `out_plane` apart with rows `out_stride` apart,
/// writable for `rows` rows under `mask`.
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn forward_tile(
    src: *const f32,
    plane: usize,
    stride: usize,
    cin: usize,
    w: *const f32,
    dst: *mut f32,
    out_plane: usize,
    out_stride: usize,
    chans: usize,
    rows: usize,
    mask: __mmask16,
) {
    let mut acc = [[_mm512_setzero_ps(); ROWS]; OC];
    for c in 0..cin {
        let s = src.add(c * plane);
        let wc = w.add(c * 9 * OC);
        for kh in 0..3 {
            for kw in 0..3 {
                let wt = wc.add((3 * kh + kw) * OC);
                let wv: [__m512; OC] = std::array::from_fn(|k| _mm512_set1_ps(*wt.add(k)));
                for r in 0..ROWS {
                    let xv = _mm512_loadu_ps(s.add((r + kh) * stride + kw));
                    for k in 0..OC {
                        acc[k][r] = _mm512_fmadd_ps(wv[k], xv, acc[k][r]);
                    }
                }
            }
        }
    }
    for (k, acc_k) in acc.iter().enumerate().take(chans) {
        for (r, &v) in acc_k.iter().enumerate().take(rows) {
            _mm512_mask_storeu_ps(dst.add(k * out_plane + r * out_stride), mask, v);
        }
    }
}

/// One weight-gradient tile: for `N` output channels (`N <= GRAD_OC`) and one input channel,
/// `Σ_images Σ_r Σ_j gy[k][r][j] · src[r + kh][j + kw]` over `images` images, `rows` rows
/// and `vectors` column vectors (the last under `tail`), added into `out[k * out_k + 3 kh + kw]`.
///
/// # Safety
/// The CPU must have AVX-512F and VL. For image `i`, `gy + i * gy_image` addresses `N` planes
/// `gy_plane` apart with rows `gy_stride` apart, readable for `rows` rows of `16 * vectors`
/// columns (the last vector under `tail`); `src + i * src_image` addresses a plane with rows
/// `stride` apart, readable for `rows + 2` rows of `16 * vectors + 2` floats; `out` is
/// writable at the `N * 9` places named.
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn weight_tile<const N: usize>(
    gy: *const f32,
    gy_image: usize,
    gy_plane: usize,
    gy_stride: usize,
    src: *const f32,
    src_image: usize,
    stride: usize,
    images: usize,
    rows: usize,
    vectors: usize,
    tail: __mmask16,
    out: *mut f32,
    out_k: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 9]; N];
    for i in 0..images {
        let (gi, si) = (gy.add(i * gy_image), src.add(i * src_image));
        for r in 0..rows {
            let (gr, sr) = (gi.add(r * gy_stride), si.add(r * stride));
            for v in 0..vectors - 1 {
                weight_step::<N>(&mut acc, gr.add(16 * v), gy_plane, sr.add(16 * v), stride, 0xffff);
            }
            let v = vectors - 1;
            weight_step::<N>(&mut acc, gr.add(16 * v), gy_plane, sr.add(16 * v), stride, tail);
        }
    }
    for k in 0..N {
        for t in 0..9 {
            *out.add(k * out_k + t) += _mm512_reduce_add_ps(acc[k][t]);
        }
    }
}

/// One column vector of one row of [`weight_tile`]: `acc[k][3 kh + kw] += gy[k] · src[kh][kw]`.
#[inline(always)]
unsafe fn weight_step<const N: usize>(
    acc: &mut [[__m512; 9]; N],
    gy: *const f32,
    gy_plane: usize,
    src: *const f32,
    stride: usize,
    mask: __mmask16,
) {
    let g: [__m512; N] = std::array::from_fn(|k| _mm512_maskz_loadu_ps(mask, gy.add(k * gy_plane)));
    for kh in 0..3 {
        for kw in 0..3 {
            let xv = _mm512_loadu_ps(src.add(kh * stride + kw));
            for k in 0..N {
                acc[k][3 * kh + kw] = _mm512_fmadd_ps(g[k], xv, acc[k][3 * kh + kw]);
            }
        }
    }
}
