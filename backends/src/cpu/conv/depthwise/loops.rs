//! Depthwise convolution (`groups == C_in == C_out`) by shift-and-add loops over each channel
//! plane, no GEMM: any kernel size, stride, padding and dilation, f32 and f64, and the forward
//! pass of `i8` operands into `i32` sums (quantized inference), where the GEMM path would run
//! one 1-row integer GEMM per channel.

use crate::cpu::conv::common::valid_range;
use crate::cpu::gemm::GemmElement;
use crate::planning::conv::Geom;
use rayon::prelude::*;

/// Walks the taps of a depthwise filter over one plane: for each filter value `wv` and each
/// output row `r` it touches, calls `f(wv, r, start, lo, hi)` where output columns `lo..hi` of
/// row `r` meet input elements `start, start + sW, ...` of the input plane.
fn for_each_tap_row<T: Copy>(k: &[T], g: &Geom, mut f: impl FnMut(T, usize, usize, usize, usize)) {
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let wv = k[ki * g.kw + kj];
            let off = (kj * g.dw) as isize - g.pw as isize;
            let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
            if lo >= hi {
                continue;
            }
            for r in 0..g.oh {
                let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                if ih < 0 || ih as usize >= g.h {
                    continue;
                }
                let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                f(wv, r, start, lo, hi);
            }
        }
    }
}

/// Depthwise forward for one `[oH, oW]` output plane from its `[H, W]` input plane and
/// `[kH, kW]` filter.
fn depthwise_plane<T: GemmElement>(x: &[T], k: &[T], g: &Geom, y: &mut [T]) {
    for_each_tap_row(k, g, |wv, r, start, lo, hi| {
        let yr = &mut y[r * g.ow..(r + 1) * g.ow];
        if g.sw == 1 {
            for (d, s) in yr[lo..hi].iter_mut().zip(&x[start..start + hi - lo]) {
                *d += wv * *s;
            }
        } else {
            for (d, s) in yr[lo..hi].iter_mut().zip(x[start..].iter().step_by(g.sw)) {
                *d += wv * *s;
            }
        }
    });
}

/// Scratch of one thread's [`depthwise_plane_i8`] calls: the zero-padded input plane widened
/// to `i32`, and the flat sums of a stride-1 plane.
#[derive(Default)]
struct I8Scratch {
    padded: Vec<i32>,
    flat: Vec<i32>,
}

/// [`depthwise_plane`] for `i8` operands, products widened to `i32` (exact: at most
/// `kH·kW·128²` per output). The plane is copied once, zero-padded and widened, so every tap
/// reads in bounds; at stride 1 each tap is then one multiply-add over the whole flattened plane
/// (`flat[i] += w · padded[i + offset]`, the rows at the padded width, the columns past `oW`
/// dropped at the end), so the loop runs the full vector width however narrow the maps get
/// (CIFAR's 4x4 and 8x8 planes), instead of one short row at a time with a scalar remainder.
/// Other strides walk the output rows. Built for baseline x86-64 this runs 4 lanes wide with
/// the 32-bit multiply emulated, so [`depthwise_plane_i8`] calls a copy built with AVX-512
/// where the CPU has it.
#[inline(always)]
fn depthwise_plane_i8_generic(x: &[i8], k: &[i8], g: &Geom, y: &mut [i32], scratch: &mut I8Scratch) {
    let (hp, wp) = (g.h + 2 * g.ph, g.w + 2 * g.pw);
    let padded = &mut scratch.padded;
    padded.clear();
    padded.resize(hp * wp, 0);
    for (r, row) in x.chunks_exact(g.w).enumerate() {
        let dst = &mut padded[(r + g.ph) * wp + g.pw..][..g.w];
        for (d, &v) in dst.iter_mut().zip(row) {
            *d = i32::from(v);
        }
    }
    if g.sh == 1 && g.sw == 1 {
        let len = (g.oh - 1) * wp + g.ow;
        let flat = &mut scratch.flat;
        flat.clear();
        flat.resize(len, 0);
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let wv = i32::from(k[ki * g.kw + kj]);
                let src = &padded[ki * g.dh * wp + kj * g.dw..][..len];
                for (a, &v) in flat.iter_mut().zip(src) {
                    *a += wv * v;
                }
            }
        }
        for (r, yr) in y.chunks_exact_mut(g.ow).enumerate() {
            yr.copy_from_slice(&flat[r * wp..r * wp + g.ow]);
        }
    } else {
        for (r, yr) in y.chunks_exact_mut(g.ow).enumerate() {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let wv = i32::from(k[ki * g.kw + kj]);
                    let src = &padded[(r * g.sh + ki * g.dh) * wp + kj * g.dw..];
                    for (c, a) in yr.iter_mut().enumerate() {
                        *a += wv * src[c * g.sw];
                    }
                }
            }
        }
    }
}

/// See [`depthwise_plane_i8_generic`].
fn depthwise_plane_i8(x: &[i8], k: &[i8], g: &Geom, y: &mut [i32], scratch: &mut I8Scratch) {
    /// # Safety
    /// The CPU must have AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    unsafe fn built(x: &[i8], k: &[i8], g: &Geom, y: &mut [i32], scratch: &mut I8Scratch) {
        depthwise_plane_i8_generic(x, k, g, y, scratch)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::isa::use_avx512() {
        // SAFETY: the CPU has AVX-512F (checked above).
        return unsafe { built(x, k, g, y, scratch) };
    }
    depthwise_plane_i8_generic(x, k, g, y, scratch)
}

/// Depthwise input gradient of one plane: scatters `gy` (`[oH, oW]`) through the `[kH, kW]`
/// filter into `dx` (`[H, W]`).
fn depthwise_plane_backward<T: GemmElement>(gy: &[T], k: &[T], g: &Geom, dx: &mut [T]) {
    for_each_tap_row(k, g, |wv, r, start, lo, hi| {
        let gr = &gy[r * g.ow..(r + 1) * g.ow];
        if g.sw == 1 {
            for (d, s) in dx[start..start + hi - lo].iter_mut().zip(&gr[lo..hi]) {
                *d += wv * *s;
            }
        } else {
            for (d, s) in dx[start..].iter_mut().step_by(g.sw).zip(&gr[lo..hi]) {
                *d += wv * *s;
            }
        }
    });
}

/// `Σ a[i] * b[i * stride]` with several independent accumulators (so it vectorizes).
#[inline]
fn dot_strided<T: GemmElement>(a: &[T], b: &[T], stride: usize) -> T {
    if stride == 1 {
        let b = &b[..a.len()];
        let mut lanes = [T::zero(); 16];
        let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for l in 0..16 {
                lanes[l] += x[l] * y[l];
            }
        }
        let mut s = lanes.iter().fold(T::zero(), |s, &v| s + v);
        for (x, y) in ar.iter().zip(br) {
            s += *x * *y;
        }
        s
    } else {
        a.iter().zip(b.iter().step_by(stride)).fold(T::zero(), |s, (x, y)| s + *x * *y)
    }
}

/// Depthwise weight gradient of one channel: `xs` are its `[H, W]` planes and `gys` its
/// `[oH, oW]` planes over the images; `dk` is its `[kH, kW]` filter gradient.
fn depthwise_weight_channel<T: GemmElement>(x: &[T], gy: &[T], g: &Geom, c: usize, dk: &mut [T]) {
    let (hwi, hwo) = (g.in_plane(), g.out_plane());
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let off = (kj * g.dw) as isize - g.pw as isize;
            let (lo, hi) = valid_range(g.ow, g.sw, off, g.w);
            let mut s = T::zero();
            if lo < hi {
                for n in 0..g.n {
                    let p = n * g.c + c;
                    let (xp, gp) = (&x[p * hwi..(p + 1) * hwi], &gy[p * hwo..(p + 1) * hwo]);
                    for (r, gr) in gp.chunks_exact(g.ow).enumerate() {
                        let ih = (r * g.sh + ki * g.dh) as isize - g.ph as isize;
                        if ih < 0 || ih as usize >= g.h {
                            continue;
                        }
                        let start = ih as usize * g.w + (lo as isize * g.sw as isize + off) as usize;
                        s += dot_strided(&gr[lo..hi], &xp[start..], g.sw);
                    }
                }
            }
            dk[ki * g.kw + kj] = s;
        }
    }
}

/// The forward convolution of dense `x` and `w` into the zeroed `y`.
pub(in crate::cpu::conv) fn forward<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [T]) {
    let (hwi, hwo, kk) = (g.in_plane(), g.out_plane(), g.kk());
    y.par_chunks_mut(hwo).with_min_len(8).enumerate().for_each(|(p, yp)| {
        let c = p % g.c;
        depthwise_plane(&x[p * hwi..(p + 1) * hwi], &w[c * kk..(c + 1) * kk], g, yp);
    });
}

/// The forward pass of dense `i8` `x` and `w` into the zeroed `i32` `y`.
pub(in crate::cpu::conv) fn forward_i8(x: &[i8], w: &[i8], g: &Geom, y: &mut [i32]) {
    let (hwi, hwo, kk) = (g.in_plane(), g.out_plane(), g.kk());
    y.par_chunks_mut(hwo).with_min_len(8).enumerate().for_each_init(I8Scratch::default, |scratch, (p, yp)| {
        let c = p % g.c;
        depthwise_plane_i8(&x[p * hwi..(p + 1) * hwi], &w[c * kk..(c + 1) * kk], g, yp, scratch);
    });
}

/// The input gradient of dense `gy` and `w` into the zeroed `dx`.
pub(in crate::cpu::conv) fn backward_data<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [T]) {
    let (hwi, hwo, kk) = (g.in_plane(), g.out_plane(), g.kk());
    dx.par_chunks_mut(hwi).with_min_len(8).enumerate().for_each(|(p, dxp)| {
        let c = p % g.c;
        depthwise_plane_backward(&gy[p * hwo..(p + 1) * hwo], &w[c * kk..(c + 1) * kk], g, dxp);
    });
}

/// The weight gradient (`[C, 1, kH, kW]`) of dense `x` and `gy`: channels in parallel, images
/// in order.
pub(in crate::cpu::conv) fn backward_weight<T: GemmElement>(x: &[T], gy: &[T], g: &Geom) -> Vec<T> {
    let mut dw = vec![T::zero(); g.w_shape().iter().product()];
    dw.par_chunks_mut(g.kk()).enumerate().for_each(|(c, dk)| depthwise_weight_channel(x, gy, g, c, dk));
    dw
}
