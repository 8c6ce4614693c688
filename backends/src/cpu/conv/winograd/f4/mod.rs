//! Winograd F(4x4, 3x3) with tiles across the vector lanes, in f32 under AVX-512: all three
//! passes of 3x3 stride-1 layers of up to 128 x 128 channels (64 x 64 for the weight gradient)
//! on planes of at least 12x12.
//!
//! The layout and the order of work are those of the F(2x2, 3x3) path ([`super::f2`]), with
//! 6x6 input tiles and 4x4 output tiles: each vector lane holds one tile (16 consecutive tiles of
//! a tile row, or on narrow planes the tile rows of `16 / per` images side by side); the source
//! rows of an image group get `Bᵀ` along the row once ([`kernels::prepare`]), then per vector of
//! tiles `Bᵀ` down the rows gives `U[c][ξ]` for the 36 positions, `M[o][ξ] = Σ_c U[c][ξ]
//! Ŵ[ξ][c][o]` runs as broadcast-weight FMAs in 16 accumulators, and `Y = Aᵀ M A` is stored
//! ([`kernels::tile_vector`]). The products are 36 per 16 outputs of a channel pair, against 16
//! per 4 for F(2x2) and 9 per output directly: 1.78x fewer than F(2x2), 4x fewer than direct.
//! The transforms use the points `0, ±1, ±2` (Lavin and Gray's `Bᵀ`, [`G`] and `Aᵀ`).
//!
//! The input gradient is the same pass over `dY` with the filters flipped and their channels
//! swapped, padding `2 - p`; the weight gradient transforms `x` the same way and `dY` by
//! `A (·) Aᵀ`, transposed so that output channels lie along the lanes, and sums the products over
//! chunks of tile vectors ([`weight`]); `Gᵀ (·) G` maps the sums back to 3x3.

mod kernels;
mod weight;

use super::lanes::engine::{data_pass, weight_pass};
use super::lanes::pass::{Pass, Tiling};
use crate::planning::conv::Geom;
use kernels::{prepare, source_tiles, tile_vector};
use std::mem::MaybeUninit;
use weight::grad_tiles;

/// The input transform `Bᵀ` (6x6); the kernels hard-code it (tested against this).
#[cfg(test)]
const BT: [[f64; 6]; 6] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// The filter transform `G` (6x3).
const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// The output transform `Aᵀ` (4x6); the kernels hard-code it (tested against this).
#[cfg(test)]
const AT: [[f64; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// The transformed filters `Ŵ = G g Gᵀ` of a pass from `rows` source channels to `cols`
/// destination channels, as `[36][rows][cols rounded up to 16]` (zero in the padding; `ξ = 6 i
/// + k`), from `w` as `[cols, rows, 3, 3]`, or for the flipped pass of the input gradient from
/// `w` as `[rows, cols, 3, 3]` turned by 180°. Computed in f64, rounded once.
fn filters(w: &[f32], rows: usize, cols: usize, flip: bool) -> Vec<f32> {
    let cp = cols.next_multiple_of(16);
    let mut out = vec![0.0; 36 * rows * cp];
    for r in 0..rows {
        for c in 0..cols {
            let g: [f64; 9] = if flip {
                let f = &w[(r * cols + c) * 9..][..9];
                std::array::from_fn(|i| f64::from(f[8 - i]))
            } else {
                let f = &w[(c * rows + r) * 9..][..9];
                std::array::from_fn(|i| f64::from(f[i]))
            };
            for i in 0..6 {
                for k in 0..6 {
                    let mut v = 0.0;
                    for a in 0..3 {
                        for b in 0..3 {
                            v += G[i][a] * G[k][b] * g[3 * a + b];
                        }
                    }
                    out[((6 * i + k) * rows + r) * cp + c] = v as f32;
                }
            }
        }
    }
    out
}

/// `Gᵀ dŴ G` of the transformed weight gradient `d` (`[36][cin][coutp]`) into `dw`
/// (`[cout, cin, 3, 3]`), in f64.
fn filter_grads(d: &[f32], cin: usize, cout: usize, dw: &mut [f32]) {
    let coutp = cout.next_multiple_of(16);
    for o in 0..cout {
        for c in 0..cin {
            let x: [f64; 36] = std::array::from_fn(|xi| f64::from(d[(xi * cin + c) * coutp + o]));
            for a in 0..3 {
                for b in 0..3 {
                    let mut v = 0.0;
                    for i in 0..6 {
                        for k in 0..6 {
                            v += G[i][a] * G[k][b] * x[6 * i + k];
                        }
                    }
                    dw[(o * cin + c) * 9 + 3 * a + b] = v as f32;
                }
            }
        }
    }
}

/// The F(4x4, 3x3) kernels.
const F4: Tiling = Tiling { tile: 4, prepare, source_tiles, tile_vector, grad_tiles };

/// Forward convolution (`x` `[N, C, H, W]`, `w` `[O, C, 3, 3]`, dense) into `y`
/// (`[N, O, oH, oW]`, every element written).
pub(in crate::cpu::conv) fn forward(x: &[f32], w: &[f32], g: &Geom, y: &mut [MaybeUninit<f32>]) {
    let p = Pass::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw), 4);
    debug_assert_eq!((p.oh, p.ow), (g.oh, g.ow));
    data_pass(&F4, x, &filters(w, g.c, g.o, false), &p, y);
}

/// Input gradient (`gy` `[N, O, oH, oW]`, `w` `[O, C, 3, 3]`, dense) into `dx`
/// (`[N, C, H, W]`, every element written).
pub(in crate::cpu::conv) fn backward_data(gy: &[f32], w: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
    let p = Pass::new(g.n, g.o, (g.oh, g.ow), g.c, (2 - g.ph, 2 - g.pw), 4);
    debug_assert_eq!((p.oh, p.ow), (g.h, g.w));
    data_pass(&F4, gy, &filters(w, g.o, g.c, true), &p, dx);
}

/// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, O, oH, oW]`, dense) into `dw`
/// (`[O, C, 3, 3]`, every element written).
pub(in crate::cpu::conv) fn backward_weight(x: &[f32], gy: &[f32], g: &Geom, dw: &mut [f32]) {
    let p = Pass::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw), 4);
    assert_eq!(dw.len(), p.cout * p.cin * 9, "winograd4: weight gradient size");
    filter_grads(&weight_pass(&F4, x, gy, &p), p.cin, p.cout, dw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::arch::x86_64::*;

    /// `Aᵀ [(G g) ⊙ (Bᵀ d)]` is the correlation of 6 inputs with 3 taps: the transforms are
    /// Winograd's F(4, 3).
    #[test]
    fn transforms_compute_a_correlation() {
        let d = [0.3, -1.2, 2.5, 0.7, -0.4, 1.9];
        let g = [0.8, -0.5, 1.3];
        let u: Vec<f64> = BT.iter().map(|r| r.iter().zip(&d).map(|(a, b)| a * b).sum()).collect();
        let v: Vec<f64> = G.iter().map(|r| r.iter().zip(&g).map(|(a, b)| a * b).sum()).collect();
        for (i, row) in AT.iter().enumerate() {
            let y: f64 = row.iter().zip(u.iter().zip(&v)).map(|(a, (u, v))| a * u * v).sum();
            let want: f64 = (0..3).map(|k| d[i + k] * g[k]).sum();
            assert!((y - want).abs() < 1e-12, "output {i}: {y} vs {want}");
        }
    }

    /// The vector transforms (`bt`, `at`, `a`) against the matrices, lane by lane.
    #[test]
    fn vector_transforms_match_the_matrices() {
        if !crate::cpu::isa::use_avx512_vl() {
            return;
        }
        let vals = |n: usize, seed: usize| -> Vec<[f32; 16]> {
            (0..n).map(|i| std::array::from_fn(|l| ((i * 37 + l * 11 + seed) % 19) as f32 * 0.25 - 2.0)).collect()
        };
        // SAFETY: AVX-512F is present (checked above).
        unsafe {
            let load = |v: &[[f32; 16]]| -> Vec<__m512> { v.iter().map(|a| _mm512_loadu_ps(a.as_ptr())).collect() };
            let lanes = |v: __m512| -> [f32; 16] {
                let mut a = [0.0; 16];
                _mm512_storeu_ps(a.as_mut_ptr(), v);
                a
            };
            let check = |m: &[&[f64]], x: &[[f32; 16]], got: &[__m512]| {
                for (r, row) in m.iter().enumerate() {
                    let g = lanes(got[r]);
                    for l in 0..16 {
                        let want: f64 = row.iter().zip(x).map(|(a, v)| a * f64::from(v[l])).sum();
                        assert!((f64::from(g[l]) - want).abs() < 1e-4, "row {r} lane {l}: {} vs {want}", g[l]);
                    }
                }
            };
            let x6 = vals(6, 1);
            let v6 = load(&x6);
            let bt_rows: Vec<&[f64]> = BT.iter().map(|r| &r[..]).collect();
            check(&bt_rows, &x6, &kernels::bt(v6.clone().try_into().unwrap()));
            let at_rows: Vec<&[f64]> = AT.iter().map(|r| &r[..]).collect();
            check(&at_rows, &x6, &kernels::at(v6.try_into().unwrap()));
            let x4 = vals(4, 5);
            let a_rows: Vec<Vec<f64>> = (0..6).map(|i| (0..4).map(|r| AT[r][i]).collect()).collect();
            let a_rows: Vec<&[f64]> = a_rows.iter().map(|r| &r[..]).collect();
            check(&a_rows, &x4, &kernels::a(load(&x4).try_into().unwrap()));
        }
    }
}
