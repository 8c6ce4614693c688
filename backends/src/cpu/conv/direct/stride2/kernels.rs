//! The AVX-512 pieces of the stride-2 3x3 convolution: the tap planes of one source plane, and
//! the forward and weight-gradient register tiles over flattened output positions.

use crate::cpu::mask16::{below, inside};
use std::arch::x86_64::*;

/// Output channels per forward tile (the packed weights are grouped by this many).
pub(super) const OC: usize = 4;
/// Vectors of 16 output positions per forward tile.
pub(super) const V: usize = 4;
/// Output channels per weight-gradient tile.
pub(super) const GRAD_OC: usize = 3;

/// The geometry of the tap planes of one source plane: `6` planes (row phase `a` in 0..2 times
/// column variant `cv` in 0..3) of `oh + 1` rows of exactly `ow` floats,
/// `T[a][cv][i][j] = x[2 i + a - ph][2 (j + β) + b - pw]` (zero outside the source) with
/// `(b, β)` = `(0, 0)`, `(1, 0)`, `(0, 1)` for `cv` = 0, 1, 2, each plane `len` floats long
/// (the rows, then slack that the tiles may read past the last output position).
#[derive(Clone, Copy, Debug)]
pub(super) struct Taps {
    pub h: usize,
    pub w: usize,
    pub ph: usize,
    pub pw: usize,
    pub oh: usize,
    pub ow: usize,
    /// Floats per tap plane.
    pub len: usize,
}

impl Taps {
    /// The planes of a source `h x w` read with padding `(ph, pw)` into `oh x ow` outputs.
    pub(super) fn new((h, w): (usize, usize), (ph, pw): (usize, usize), (oh, ow): (usize, usize)) -> Taps {
        // A tile reads up to 16 V positions past the rounded-up plane and one row further.
        let len = (oh * ow).next_multiple_of(16 * V) + ow + 16;
        Taps { h, w, ph, pw, oh, ow, len }
    }

    /// Floats of the 6 planes of one source channel.
    pub(super) fn per_channel(&self) -> usize {
        6 * self.len
    }

    /// Where tap `3 kh + kw` reads, relative to a channel's planes and the output position: its
    /// plane (`a = kh % 2`, column variant of `kw`) and the row shift `kh / 2`.
    pub(super) fn offsets(&self) -> [usize; 9] {
        std::array::from_fn(|t| {
            let (kh, kw) = (t / 3, t % 3);
            let cv = [0, 1, 2][kw];
            ((kh % 2) * 3 + cv) * self.len + (kh / 2) * self.ow
        })
    }
}

/// Writes the 6 tap planes of the source plane `x` (`h x w`, dense) into `t` (`6 len` floats;
/// the slack after each plane's rows is left as it is). Each source row is read once, as 32
/// columns and one more per 16 output columns: its even columns give the `(0, 0)` variant, its
/// odd ones `(1, 0)`, and the even ones shifted by one output column `(0, 1)`.
///
/// # Safety
/// AVX-512F and VL; `x` readable for `h w` floats, `t` writable for `6 len`.
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn tap_planes(x: *const f32, g: &Taps, t: *mut f32) {
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let even = _mm512_add_epi32(lane, lane);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for j0 in (0..g.ow).step_by(16) {
        // Source columns of output columns j0.. (variant (0, 0)); the masks hold for every row.
        let s = (2 * j0) as isize - g.pw as isize;
        let (m0, m1, m2) = (inside(s, g.w), inside(s + 16, g.w), inside(s + 32, g.w) & 1);
        let store = below(g.ow - j0);
        for a in 0..2 {
            let planes = t.add(a * 3 * g.len + j0);
            for i in 0..=g.oh {
                let u = (2 * i + a) as isize - g.ph as isize;
                let (e, o, e1) = if (0..g.h as isize).contains(&u) {
                    let row = x.offset(u * g.w as isize);
                    let lo = _mm512_maskz_loadu_ps(m0, row.wrapping_offset(s));
                    let hi = _mm512_maskz_loadu_ps(m1, row.wrapping_offset(s + 16));
                    let next = _mm512_maskz_loadu_ps(m2, row.wrapping_offset(s + 32));
                    let e = _mm512_permutex2var_ps(lo, even, hi);
                    let o = _mm512_permutex2var_ps(lo, odd, hi);
                    // Lanes 1..16 of `e`, then column s + 32.
                    let e1 = _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(
                        _mm512_castps_si512(next),
                        _mm512_castps_si512(e),
                    ));
                    (e, o, e1)
                } else {
                    (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps())
                };
                let at = i * g.ow;
                _mm512_mask_storeu_ps(planes.add(at), store, e);
                _mm512_mask_storeu_ps(planes.add(g.len + at), store, o);
                _mm512_mask_storeu_ps(planes.add(2 * g.len + at), store, e1);
            }
        }
    }
}

/// One forward tile: `OC` output channels x `16 V` flattened output positions from `pos` on,
/// `y[k][p] = Σ_c Σ_t w[c][t][k] · taps[c][offs[t] + p]`, stored for the channels `k < chans`
/// and the positions below `plane`.
///
/// # Safety
/// AVX-512F and VL. `taps` addresses `cin` channels' planes `chan` floats apart, readable at
/// `offs[t] + pos .. + 16 V` for every tap; `w` holds `cin 9 OC` floats; `dst` addresses
/// `chans` planes of `plane` floats, `plane` apart.
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn forward_tile(
    taps: *const f32,
    chan: usize,
    offs: &[usize; 9],
    cin: usize,
    w: *const f32,
    dst: *mut f32,
    plane: usize,
    chans: usize,
    pos: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; OC];
    for c in 0..cin {
        let base = taps.add(c * chan + pos);
        let wc = w.add(c * 9 * OC);
        for (t, &off) in offs.iter().enumerate() {
            let wt = wc.add(t * OC);
            let wv: [__m512; OC] = std::array::from_fn(|k| _mm512_set1_ps(*wt.add(k)));
            for v in 0..V {
                let xv = _mm512_loadu_ps(base.add(off + 16 * v));
                for k in 0..OC {
                    acc[k][v] = _mm512_fmadd_ps(wv[k], xv, acc[k][v]);
                }
            }
        }
    }
    for (k, acc_k) in acc.iter().enumerate().take(chans) {
        for (v, &a) in acc_k.iter().enumerate() {
            let p = pos + 16 * v;
            if p >= plane {
                break;
            }
            _mm512_mask_storeu_ps(dst.add(k * plane + p), below(plane - p), a);
        }
    }
}

/// One weight-gradient tile: for `N` output channels (`N <= GRAD_OC`) and one input channel,
/// `Σ_images Σ_p gy[k][p] · taps[offs[t] + p]` over `images` images and the `plane` output
/// positions, added into `out[k out_k + t]`.
///
/// # Safety
/// AVX-512F and VL. For image `i`, `gy + i gy_image` addresses `N` planes of `plane` floats,
/// `plane` apart; `taps + i tap_image` addresses the channel's planes, readable at
/// `offs[t] + p .. + 16` for `p < plane` rounded up to 16; `out` is writable at the `9 N`
/// places named.
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn weight_tile<const N: usize>(
    gy: *const f32,
    gy_image: usize,
    taps: *const f32,
    tap_image: usize,
    offs: &[usize; 9],
    images: usize,
    plane: usize,
    out: *mut f32,
    out_k: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 9]; N];
    for i in 0..images {
        let (gi, ti) = (gy.add(i * gy_image), taps.add(i * tap_image));
        for p in (0..plane).step_by(16) {
            let mask = below(plane - p);
            let g: [__m512; N] = std::array::from_fn(|k| _mm512_maskz_loadu_ps(mask, gi.add(k * plane + p)));
            for (t, &off) in offs.iter().enumerate() {
                let xv = _mm512_loadu_ps(ti.add(off + p));
                for k in 0..N {
                    acc[k][t] = _mm512_fmadd_ps(g[k], xv, acc[k][t]);
                }
            }
        }
    }
    for (k, acc_k) in acc.iter().enumerate() {
        for (t, &a) in acc_k.iter().enumerate() {
            *out.add(k * out_k + t) += _mm512_reduce_add_ps(a);
        }
    }
}
