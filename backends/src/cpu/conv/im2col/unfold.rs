//! im2col and col2im: a band of output rows of some channels unfolded into the column matrix
//! of a GEMM, and the adjoint scatter-add of such columns into an input gradient. In f32 on
//! AVX-512 CPUs with a row stride of 1 or 2 the masked-load kernels of [`super::avx512`] run
//! instead (bit-identical).

use super::avx512;
use crate::cpu::conv::common::valid_range;
use crate::cpu::gemm::GemmElement;
use crate::planning::conv::Geom;

/// `dst[i] = src[i * stride]` for every `i` of `dst`; stride 1 and 2 (every stride-2
/// convolution) get loops the compiler vectorizes, instead of `step_by`'s scalar one.
#[inline]
fn copy_strided<T: Copy>(dst: &mut [T], src: &[T], stride: usize) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let src = &src[..(n - 1) * stride + 1];
    match stride {
        1 => dst.copy_from_slice(src),
        2 => {
            // Pairs, so the loop is an interleaved load the compiler vectorizes; the last
            // element may have no partner.
            for (d, pair) in dst[..n - 1].iter_mut().zip(src.chunks_exact(2)) {
                *d = pair[0];
            }
            dst[n - 1] = src[2 * (n - 1)];
        }
        _ => {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[i * stride];
            }
        }
    }
}

/// `dst[i * stride] += src[i]` for every `i` of `src` (the adjoint of [`copy_strided`]).
#[inline]
fn add_strided<T: GemmElement>(dst: &mut [T], src: &[T], stride: usize) {
    let n = src.len();
    if n == 0 {
        return;
    }
    let dst = &mut dst[..(n - 1) * stride + 1];
    match stride {
        1 => {
            for (d, v) in dst.iter_mut().zip(src) {
                *d += *v;
            }
        }
        2 => {
            for (pair, v) in dst.chunks_exact_mut(2).zip(&src[..n - 1]) {
                pair[0] += *v;
            }
            dst[2 * (n - 1)] += src[n - 1];
        }
        _ => {
            for (i, v) in src.iter().enumerate() {
                dst[i * stride] += *v;
            }
        }
    }
}

/// Unfolds output rows `r0..r1` of channels `c0..c1` of one image into `col`
/// (`[(c1-c0) * kH * kW, (r1-r0) * oW]`, row-major); padding reads as `zero`.
#[allow(clippy::too_many_arguments)]
pub(in crate::cpu::conv) fn im2col<T: Copy>(
    x: &[T],
    g: &Geom,
    c0: usize,
    c1: usize,
    r0: usize,
    r1: usize,
    col: &mut [T],
    zero: T,
) {
    let ncols = (r1 - r0) * g.ow;
    let plane = g.in_plane();
    let mut rows = col.chunks_exact_mut(ncols);
    for c in c0..c1 {
        let xp = &x[c * plane..(c + 1) * plane];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let dst = rows.next().expect("im2col: column buffer too small");
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
                for (r, d) in (r0..r1).zip(dst.chunks_exact_mut(g.ow)) {
                    let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                    if ih < 0 || ih as usize >= g.h {
                        d.fill(zero);
                        continue;
                    }
                    d[..lo].fill(zero);
                    d[hi..].fill(zero);
                    if lo < hi {
                        let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                        copy_strided(&mut d[lo..hi], &xp[start..], g.sw);
                    }
                }
            }
        }
    }
}

/// Adds the columns `col` (as [`im2col`] lays them out) back into channels `c0..c1` of an image
/// gradient `dx`.
pub(in crate::cpu::conv) fn col2im<T: GemmElement>(
    col: &[T],
    g: &Geom,
    c0: usize,
    c1: usize,
    r0: usize,
    r1: usize,
    dx: &mut [T],
) {
    let ncols = (r1 - r0) * g.ow;
    let plane = g.in_plane();
    let mut rows = col.chunks_exact(ncols);
    for c in c0..c1 {
        let xp = &mut dx[c * plane..(c + 1) * plane];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let src = rows.next().expect("col2im: column buffer too small");
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
                if lo >= hi {
                    continue;
                }
                for (r, s) in (r0..r1).zip(src.chunks_exact(g.ow)) {
                    let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                    if ih < 0 || ih as usize >= g.h {
                        continue;
                    }
                    let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                    add_strided(&mut xp[start..], &s[lo..hi], g.sw);
                }
            }
        }
    }
}

/// [`im2col`] for the float types, through the AVX-512 kernels where they apply (f32, stride 1
/// or 2).
#[allow(clippy::too_many_arguments)]
pub(super) fn unfold<T: GemmElement>(x: &[T], g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, col: &mut [T]) {
    if avx512::applies(g) {
        if let (Some(x), Some(col)) = (T::as_f32(x), T::as_f32_mut(col)) {
            return avx512::im2col(x, g, c0, c1, r0, r1, col);
        }
    }
    im2col(x, g, c0, c1, r0, r1, col, T::zero())
}

/// [`col2im`], through the AVX-512 kernel where it applies (f32, stride 1 or 2).
pub(super) fn fold<T: GemmElement>(col: &[T], g: &Geom, c0: usize, c1: usize, r0: usize, r1: usize, dx: &mut [T]) {
    if avx512::applies(g) {
        if let (Some(col), Some(dx)) = (T::as_f32(col), T::as_f32_mut(dx)) {
            return avx512::col2im(col, g, c0, c1, r0, r1, dx);
        }
    }
    col2im(col, g, c0, c1, r0, r1, dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::values;
    use crate::ops::Conv2dParams;

    /// Both kernels against the plain loops, bit for bit, on one geometry: a row band in the
    /// middle of the image and a channel range that does not start at 0. False where the
    /// geometry does not apply.
    fn check(
        c: usize,
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
        dil: (usize, usize),
    ) -> bool {
        let p = Conv2dParams { stride, padding: pad, dilation: dil, groups: 1 };
        let Ok(g) = Geom::new(&[1, c, h, w], &[1, c, kh, kw], &p) else {
            return false; // the kernel does not fit this width
        };
        if !avx512::applies(&g) {
            return false;
        }
        let (c0, c1) = (c / 3, c);
        let (r0, r1) = (g.oh / 4, g.oh - g.oh / 5);
        let len = (c1 - c0) * g.kk() * (r1 - r0) * g.ow;
        let x = values::<f32>(c * h * w, 7);
        let mut want = vec![f32::NAN; len];
        im2col(&x, &g, c0, c1, r0, r1, &mut want, 0.0);
        let mut got = vec![f32::NAN; len];
        avx512::im2col(&x, &g, c0, c1, r0, r1, &mut got);
        let shape = (c, h, w, kh, kw, stride, pad, dil);
        assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "im2col {shape:?}");

        let col = values::<f32>(len, 8);
        let mut want = values::<f32>(c * h * w, 9);
        let mut got = want.clone();
        col2im(&col, &g, c0, c1, r0, r1, &mut want);
        avx512::col2im(&col, &g, c0, c1, r0, r1, &mut got);
        assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "col2im {shape:?}");
        true
    }

    #[test]
    fn matches_the_plain_loops_bit_for_bit() {
        if !crate::cpu::isa::use_avx512_vl() {
            return;
        }
        let mut checked = 0;
        for w in [1, 2, 5, 8, 15, 16, 17, 31, 32, 33, 47] {
            for stride in [1, 2] {
                for pad in [0, 1, 2, 4] {
                    checked += check(4, (7, w), (3, 3), (stride, stride), (pad, pad), (1, 1)) as usize;
                }
                checked += check(3, (6, w), (1, 5), (1, stride), (0, 2), (1, 1)) as usize;
                checked += check(3, (9, w), (3, 3), (2, stride), (2, 2), (2, 2)) as usize;
                checked += check(2, (5, w), (2, 4), (1, stride), (1, 3), (1, 2)) as usize;
            }
        }
        assert!(checked > 100, "only {checked} geometries checked");
    }

    #[test]
    fn valid_ranges() {
        // off = -1, stride 1, 5 outputs over 5 inputs: position 0 reads -1.
        assert_eq!(valid_range(5, 1, -1, 5), (1, 5));
        assert_eq!(valid_range(5, 1, 1, 5), (0, 4));
        assert_eq!(valid_range(3, 2, -1, 5), (1, 3));
        assert_eq!(valid_range(3, 2, 10, 5), (0, 0));
        let (lo, hi) = valid_range(3, 1, -10, 5);
        assert!(lo >= hi);
    }
}
