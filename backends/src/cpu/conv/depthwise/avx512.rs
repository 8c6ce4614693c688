//! Depthwise 3x3 convolution (`groups == C_in == C_out`, stride 1 or 2, no dilation) in f32
//! under AVX-512: the MobileNet layers.
//!
//! Each vector holds 16 adjacent output columns of one row, and each of the 9 taps is one
//! masked load of the source row: lanes whose source column falls in the padding are masked
//! to zero (a masked-out lane is never read), so no bordered copy is made. With stride 2 a tap
//! loads the 32 source columns under the vector and keeps every other one
//! (`vpermt2ps`).
//!
//! - Backward data with stride 1 is the same pass over `dY` with the filter flipped, padding
//!   `2 - p`; with stride 2 each tap loads the `dY` row under the vector and spreads it to the
//!   lanes of its parity (`vpermps`).
//! - Backward weight sums `dY ⊙ shift(x, kh, kw)` over a channel's planes in 9 vector
//!   accumulators, then their lane sums (channels in parallel, images in order: a fixed
//!   summation order).

use crate::cpu::gemm::SendPtr;
use crate::cpu::mask16::{below, inside};
use crate::planning::conv::Geom;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// One plane pass: source `h x w` read with padding (`ph`, `pw`) and stride `s`,
/// destination `oh x ow`.
#[derive(Clone, Copy)]
struct Plane {
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    s: usize,
    oh: usize,
    ow: usize,
}

/// Where the 3 column taps of one output vector read a source row: start column and the
/// masks of the source columns inside `0..w` (two 16-column halves for stride 2).
#[derive(Clone, Copy)]
struct ColumnTaps {
    start: [isize; 3],
    lo: [__mmask16; 3],
    hi: [__mmask16; 3],
}

impl ColumnTaps {
    /// The taps of output columns `j0..j0 + 16`: source columns `(j0 + l) s + kw - pw`.
    #[inline(always)]
    fn new(p: &Plane, j0: usize) -> ColumnTaps {
        let start: [isize; 3] = std::array::from_fn(|kw| (j0 * p.s + kw) as isize - p.pw as isize);
        ColumnTaps {
            start,
            lo: std::array::from_fn(|kw| inside(start[kw], p.w)),
            hi: std::array::from_fn(|kw| inside(start[kw] + 16, p.w)),
        }
    }

    /// Tap `kw` of `row`: zero where the source column is outside the row.
    ///
    /// # Safety
    /// AVX-512F and VL; `row` addresses `w` readable floats.
    #[inline(always)]
    unsafe fn load(&self, row: *const f32, s: usize, kw: usize) -> __m512 {
        let a = _mm512_maskz_loadu_ps(self.lo[kw], row.wrapping_offset(self.start[kw]));
        if s == 1 {
            return a;
        }
        let b = _mm512_maskz_loadu_ps(self.hi[kw], row.wrapping_offset(self.start[kw] + 16));
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        _mm512_permutex2var_ps(a, even, b)
    }
}

/// The source row of output row `r`, tap row `kh`, if inside the plane.
#[inline(always)]
fn source_row(p: &Plane, r: usize, kh: usize) -> Option<usize> {
    (r * p.s + kh).checked_sub(p.ph).filter(|&ih| ih < p.h)
}

/// `y = Σ_t k[t] · shift_t(x)` for one plane (every output element written).
///
/// # Safety
/// AVX-512F and VL; `x` addresses `h * w` readable floats, `y` `oh * ow` writable ones.
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn plane_forward(x: *const f32, k: &[f32; 9], p: &Plane, y: *mut f32) {
    let kv: [__m512; 9] = std::array::from_fn(|t| _mm512_set1_ps(k[t]));
    for j0 in (0..p.ow).step_by(16) {
        let (taps, out) = (ColumnTaps::new(p, j0), below(p.ow - j0));
        for r in 0..p.oh {
            let mut acc = _mm512_setzero_ps();
            for kh in 0..3 {
                if let Some(ih) = source_row(p, r, kh) {
                    let row = x.add(ih * p.w);
                    for kw in 0..3 {
                        acc = _mm512_fmadd_ps(kv[3 * kh + kw], taps.load(row, p.s, kw), acc);
                    }
                }
            }
            _mm512_mask_storeu_ps(y.add(r * p.ow + j0), out, acc);
        }
    }
}

/// `acc[t] += Σ gy ⊙ shift_t(x)` over one plane, lane-wise.
///
/// # Safety
/// AVX-512F and VL; `x` addresses `h * w` readable floats, `gy` `oh * ow`.
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn plane_weight(x: *const f32, gy: *const f32, p: &Plane, acc: &mut [__m512; 9]) {
    for j0 in (0..p.ow).step_by(16) {
        let (taps, out) = (ColumnTaps::new(p, j0), below(p.ow - j0));
        for r in 0..p.oh {
            let g = _mm512_maskz_loadu_ps(out, gy.add(r * p.ow + j0));
            for kh in 0..3 {
                if let Some(ih) = source_row(p, r, kh) {
                    let row = x.add(ih * p.w);
                    for kw in 0..3 {
                        acc[3 * kh + kw] = _mm512_fmadd_ps(g, taps.load(row, p.s, kw), acc[3 * kh + kw]);
                    }
                }
            }
        }
    }
}

/// Input gradient of one plane with stride 2 (`p` is the forward pass: `dx` is `h x w`,
/// `gy` `oh x ow`): `dx[i][j] = Σ k[kh][kw] · gy[(i + ph - kh) / 2][(j + pw - kw) / 2]` over
/// the taps where both divisions are exact and land inside `gy` (every element written).
///
/// # Safety
/// AVX-512F and VL; `gy` addresses `oh * ow` readable floats, `dx` `h * w` writable ones.
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn plane_backward_s2(gy: *const f32, k: &[f32; 9], p: &Plane, dx: *mut f32) {
    let kv: [__m512; 9] = std::array::from_fn(|t| _mm512_set1_ps(k[t]));
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for j0 in (0..p.w).step_by(16) {
        // Tap kw reaches lane l from gy column (b + l) / 2, b = j0 + pw - kw, when b + l is
        // even: load gy from column floor(b / 2) and spread it with a permutation.
        let b: [isize; 3] = std::array::from_fn(|kw| (j0 + p.pw) as isize - kw as isize);
        let base: [isize; 3] = std::array::from_fn(|kw| b[kw].div_euclid(2));
        let load: [__mmask16; 3] = std::array::from_fn(|kw| inside(base[kw], p.ow));
        let odd: [bool; 3] = std::array::from_fn(|kw| b[kw].rem_euclid(2) == 1);
        let spread: [__m512i; 3] = std::array::from_fn(|kw| {
            _mm512_srli_epi32::<1>(_mm512_add_epi32(lanes, _mm512_set1_epi32(odd[kw] as i32)))
        });
        let parity: [__mmask16; 3] = std::array::from_fn(|kw| if odd[kw] { 0xaaaa } else { 0x5555 });
        let out = below(p.w - j0);
        for i in 0..p.h {
            let mut acc = _mm512_setzero_ps();
            for kh in 0..3 {
                let t = (i + p.ph) as isize - kh as isize;
                if t < 0 || t % 2 != 0 || (t / 2) as usize >= p.oh {
                    continue;
                }
                let row = gy.add((t / 2) as usize * p.ow);
                for kw in 0..3 {
                    let g = _mm512_maskz_loadu_ps(load[kw], row.wrapping_offset(base[kw]));
                    let g = _mm512_maskz_permutexvar_ps(parity[kw], spread[kw], g);
                    acc = _mm512_fmadd_ps(kv[3 * kh + kw], g, acc);
                }
            }
            _mm512_mask_storeu_ps(dx.add(i * p.w + j0), out, acc);
        }
    }
}

/// Lane sums of the accumulators.
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn reduce(acc: &[__m512; 9], out: &mut [f32]) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = _mm512_reduce_add_ps(a);
    }
}

/// Every plane of `src` (`[n * c]` planes of `h x w`) through its channel's filter
/// (`filters(c)`) into `dst` (every element written).
fn planes(src: &[f32], filters: impl Fn(usize) -> [f32; 9] + Sync, c: usize, p: Plane, dst: &mut [MaybeUninit<f32>]) {
    let (hwi, hwo) = (p.h * p.w, p.oh * p.ow);
    assert_eq!(src.len() / hwi.max(1), dst.len() / hwo.max(1), "depthwise3x3: plane counts");
    assert!(crate::cpu::isa::use_avx512_vl(), "depthwise3x3: the CPU lacks AVX-512F/VL");
    let out = SendPtr(dst.as_mut_ptr().cast::<f32>());
    (0..dst.len() / hwo.max(1)).into_par_iter().with_min_len(8).for_each(|i| {
        let out = &out;
        // SAFETY: AVX-512F and VL are present (asserted); plane `i` of `src` has `h * w`
        // floats and plane `i` of `dst` `oh * ow`, written by this task alone.
        unsafe { plane_forward(src.as_ptr().add(i * hwi), &filters(i % c), &p, out.0.add(i * hwo)) };
    });
}

/// Forward (`x` `[N, C, H, W]`, `w` `[C, 1, 3, 3]`, dense) into `y` (every element written).
pub(in crate::cpu::conv) fn forward(x: &[f32], w: &[f32], g: &Geom, y: &mut [MaybeUninit<f32>]) {
    let p = Plane { h: g.h, w: g.w, ph: g.ph, pw: g.pw, s: g.sh, oh: g.oh, ow: g.ow };
    planes(x, |c| w[c * 9..c * 9 + 9].try_into().expect("3x3 filter"), g.c, p, y);
}

/// Input gradient (`gy` `[N, C, oH, oW]`, `w` `[C, 1, 3, 3]`, dense) into `dx` (every
/// element written): stride 1 as the flipped forward pass, stride 2 by spreading `dY`.
pub(in crate::cpu::conv) fn backward_data(gy: &[f32], w: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
    if g.sh == 1 {
        let p = Plane { h: g.oh, w: g.ow, ph: 2 - g.ph, pw: 2 - g.pw, s: 1, oh: g.h, ow: g.w };
        return planes(gy, |c| std::array::from_fn(|t| w[c * 9 + 8 - t]), g.c, p, dx);
    }
    assert_eq!(g.sh, 2, "depthwise3x3: stride 1 or 2");
    let p = Plane { h: g.h, w: g.w, ph: g.ph, pw: g.pw, s: 2, oh: g.oh, ow: g.ow };
    let (hwi, hwo) = (g.h * g.w, g.oh * g.ow);
    assert!(gy.len() == g.n * g.c * hwo && dx.len() == g.n * g.c * hwi, "depthwise3x3: operand sizes");
    assert!(crate::cpu::isa::use_avx512_vl(), "depthwise3x3: the CPU lacks AVX-512F/VL");
    let out = SendPtr(dx.as_mut_ptr().cast::<f32>());
    (0..g.n * g.c).into_par_iter().with_min_len(8).for_each(|i| {
        let (out, c) = (&out, i % g.c);
        let k: [f32; 9] = w[c * 9..c * 9 + 9].try_into().expect("3x3 filter");
        // SAFETY: AVX-512F and VL are present (asserted); plane `i` of `gy` has `oh * ow`
        // floats and plane `i` of `dx` `h * w`, written by this task alone.
        unsafe { plane_backward_s2(gy.as_ptr().add(i * hwo), &k, &p, out.0.add(i * hwi)) };
    });
}

/// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, C, oH, oW]`, dense) into `dw`
/// (`[C, 1, 3, 3]`, every element written).
pub(in crate::cpu::conv) fn backward_weight(x: &[f32], gy: &[f32], g: &Geom, dw: &mut [f32]) {
    let p = Plane { h: g.h, w: g.w, ph: g.ph, pw: g.pw, s: g.sh, oh: g.oh, ow: g.ow };
    let (hwi, hwo) = (g.h * g.w, g.oh * g.ow);
    assert!(x.len() == g.n * g.c * hwi && gy.len() == g.n * g.c * hwo, "depthwise3x3: operand sizes");
    assert!(crate::cpu::isa::use_avx512_vl(), "depthwise3x3: the CPU lacks AVX-512F/VL");
    dw.par_chunks_mut(9).enumerate().for_each(|(c, dk)| {
        // SAFETY: AVX-512F and VL are present (asserted); every plane `n * C + c` of `x`
        // and `gy` is in bounds.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); 9];
            for n in 0..g.n {
                let i = n * g.c + c;
                plane_weight(x.as_ptr().add(i * hwi), gy.as_ptr().add(i * hwo), &p, &mut acc);
            }
            reduce(&acc, dk);
        }
    });
}
