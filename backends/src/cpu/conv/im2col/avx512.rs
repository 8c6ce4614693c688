//! im2col and col2im for f32 under AVX-512, stride 1 or 2 along rows.
//!
//! The plain loops of [`super::unfold`] fill the padding, then copy each row segment; on the
//! short rows of small planes (8 or 16 outputs, ResNet-20's stride-2 layers) the per-segment
//! work costs more than the copy. Here each 16-column piece of a row is one masked load (two and
//! a `vpermt2ps` keeping the even lanes, for stride 2): lanes whose source column falls in the
//! padding are masked to zero and never read. col2im is the adjoint: each piece is added to its
//! source columns with one masked load-add-store (stride 2 first spreads the 16 values to the
//! even lanes of two vectors). Both visit rows and taps in the plain loops' order, so their
//! results are bit-identical to them (tested in [`super::unfold`]).

use crate::planning::conv::Geom;

/// Whether these kernels run: an AVX-512 (F and VL) CPU and a row stride of 1 or 2.
pub(super) fn applies(g: &Geom) -> bool {
    crate::cpu::isa::use_avx512_vl() && g.sw <= 2
}

#[cfg(target_arch = "x86_64")]
pub(super) use imp::{col2im, im2col};

/// Never reached off x86-64 ([`applies`] is false there).
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn im2col(_: &[f32], _: &Geom, _: usize, _: usize, _: usize, _: usize, _: &mut [f32]) {
    unreachable!("im2col avx512::applies is false off x86-64")
}

/// Never reached off x86-64 ([`applies`] is false there).
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn col2im(_: &[f32], _: &Geom, _: usize, _: usize, _: usize, _: usize, _: &mut [f32]) {
    unreachable!("im2col avx512::applies is false off x86-64")
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use crate::cpu::mask16::{below, inside};
    use crate::planning::conv::Geom;
    use std::arch::x86_64::*;

    /// The source row of output row `r`, kernel row `ki`, if inside the plane.
    #[inline(always)]
    fn source_row(g: &Geom, r: usize, ki: usize) -> Option<usize> {
        (r * g.sh + ki * g.dh).checked_sub(g.ph).filter(|&ih| ih < g.h)
    }

    /// Unfolds output rows `r0..r1` of channels `c0..c1` of one image `x` into `col`, laid out
    /// as the plain `im2col` of `unfold.rs` lays it out.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::cpu::conv) fn im2col(
        x: &[f32],
        g: &Geom,
        c0: usize,
        c1: usize,
        r0: usize,
        r1: usize,
        col: &mut [f32],
    ) {
        let ncols = (r1 - r0) * g.ow;
        assert!(super::applies(g), "im2col_avx512: needs AVX-512 and stride 1 or 2");
        assert!(x.len() >= c1 * g.in_plane(), "im2col_avx512: image too small");
        assert!(col.len() >= (c1 - c0) * g.kk() * ncols, "im2col_avx512: column buffer too small");
        // SAFETY: AVX-512F and VL are present (asserted); the bounds were checked above.
        unsafe { im2col_unchecked(x.as_ptr(), g, c0, c1, r0, r1, col.as_mut_ptr()) }
    }

    /// # Safety
    /// AVX-512F and VL; `x` holds channels `0..c1` of one image, `col` `(c1 - c0) * kh * kw`
    /// rows of `(r1 - r0) * ow` floats.
    #[target_feature(enable = "avx512f,avx512vl")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn im2col_unchecked(x: *const f32, g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, col: *mut f32) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let mut dst = col;
        for c in c0..c1 {
            let plane = x.add(c * g.in_plane());
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let off = (kj * g.dw) as isize - g.pw as isize;
                    for r in r0..r1 {
                        let Some(ih) = source_row(g, r, ki) else {
                            for j0 in (0..g.ow).step_by(16) {
                                _mm512_mask_storeu_ps(dst.add(j0), below(g.ow - j0), _mm512_setzero_ps());
                            }
                            dst = dst.add(g.ow);
                            continue;
                        };
                        let row = plane.add(ih * g.w);
                        for j0 in (0..g.ow).step_by(16) {
                            let start = (j0 * g.sw) as isize + off;
                            let a = _mm512_maskz_loadu_ps(inside(start, g.w), row.wrapping_offset(start));
                            let v = if g.sw == 1 {
                                a
                            } else {
                                let b = _mm512_maskz_loadu_ps(inside(start + 16, g.w), row.wrapping_offset(start + 16));
                                _mm512_permutex2var_ps(a, even, b)
                            };
                            _mm512_mask_storeu_ps(dst.add(j0), below(g.ow - j0), v);
                        }
                        dst = dst.add(g.ow);
                    }
                }
            }
        }
    }

    /// Adds the columns `col` (as [`im2col`] lays them out) back into channels `c0..c1` of
    /// one image gradient `dx`.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::cpu::conv) fn col2im(
        col: &[f32],
        g: &Geom,
        c0: usize,
        c1: usize,
        r0: usize,
        r1: usize,
        dx: &mut [f32],
    ) {
        let ncols = (r1 - r0) * g.ow;
        assert!(super::applies(g), "col2im_avx512: needs AVX-512 and stride 1 or 2");
        assert!(dx.len() >= c1 * g.in_plane(), "col2im_avx512: image too small");
        assert!(col.len() >= (c1 - c0) * g.kk() * ncols, "col2im_avx512: column buffer too small");
        // SAFETY: AVX-512F and VL are present (asserted); the bounds were checked above.
        unsafe { col2im_unchecked(col.as_ptr(), g, c0, c1, r0, r1, dx.as_mut_ptr()) }
    }

    /// # Safety
    /// As [`im2col_unchecked`], with `dx` in place of `x` and `col` read.
    #[target_feature(enable = "avx512f,avx512vl")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn col2im_unchecked(col: *const f32, g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, dx: *mut f32) {
        // Value `l` of a piece goes to lane `2l` (of the first vector, `l < 8`, or of the
        // second, `l >= 8`).
        let spread_a = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        let spread_b = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        const EVEN: __mmask16 = 0x5555;
        let mut src = col;
        for c in c0..c1 {
            let plane = dx.add(c * g.in_plane());
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let off = (kj * g.dw) as isize - g.pw as isize;
                    for r in r0..r1 {
                        let Some(ih) = source_row(g, r, ki) else {
                            src = src.add(g.ow);
                            continue;
                        };
                        let row = plane.add(ih * g.w);
                        for j0 in (0..g.ow).step_by(16) {
                            let n = g.ow - j0;
                            let v = _mm512_maskz_loadu_ps(below(n), src.add(j0));
                            let start = (j0 * g.sw) as isize + off;
                            if g.sw == 1 {
                                let m = inside(start, g.w) & below(n);
                                add_masked(row.wrapping_offset(start), m, v);
                            } else {
                                let ma = inside(start, g.w) & EVEN & below(2 * n);
                                add_masked(row.wrapping_offset(start), ma, _mm512_permutexvar_ps(spread_a, v));
                                if n > 8 {
                                    let mb = inside(start + 16, g.w) & EVEN & below(2 * n - 16);
                                    add_masked(row.wrapping_offset(start + 16), mb, _mm512_permutexvar_ps(spread_b, v));
                                }
                            }
                        }
                        src = src.add(g.ow);
                    }
                }
            }
        }
    }

    /// `p[l] += v[l]` for the lanes of `m` (no other lane is read or written).
    ///
    /// # Safety
    /// AVX-512F; the lanes of `m` address writable floats.
    #[inline(always)]
    unsafe fn add_masked(p: *mut f32, m: __mmask16, v: __m512) {
        let cur = _mm512_maskz_loadu_ps(m, p);
        _mm512_mask_storeu_ps(p, m, _mm512_add_ps(cur, v));
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::Conv2dParams;
    use crate::planning::conv::Geom;

    #[test]
    fn applies_to_row_strides_1_and_2() {
        let p = |s| Conv2dParams { stride: (1, s), padding: (1, 1), dilation: (1, 1), groups: 1 };
        let g = |s| Geom::new(&[1, 2, 8, 8], &[1, 2, 3, 3], &p(s)).unwrap();
        assert_eq!(super::applies(&g(1)), crate::cpu::isa::use_avx512_vl());
        assert_eq!(super::applies(&g(2)), crate::cpu::isa::use_avx512_vl());
        assert!(!super::applies(&g(3)));
    }
}
