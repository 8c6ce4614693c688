//! Winograd F(2x2, 3x3) with tiles across the vector lanes, in f32 under AVX-512: all three
//! passes of the narrow 3x3 layers (CIFAR ResNets' 16-64 channels), where the GEMM form of
//! Winograd ([`super::gemm`]) spends more on its transforms and packing than the 2.25x fewer
//! products save.
//!
//! Each lane of a vector holds one 2x2 output tile: 16 consecutive tiles of a tile row, or on
//! narrow planes the whole tile row of `16 / per` images side by side. For one vector of tiles
//! the pass runs entirely in registers and the L1/L2 caches:
//!
//! 1. The source rows of a group of images are prepared once: each padded row's 4 tap columns
//!    per tile are loaded (masked loads; even/odd columns split with `vpermt2ps`) and put
//!    through `Bᵀ` along the row ([`kernels::prepare`]).
//! 2. Per tile vector, `Bᵀ` down the 4 rows gives `U[c][ξ]` for every source channel `c` and
//!    the 16 positions `ξ`; then `M[o][ξ] = Σ_c U[c][ξ] Ŵ[ξ][c][o]` in 16 accumulators of
//!    broadcast-weight FMAs, and `Y = Aᵀ M A` is stored, interleaving each tile's 2 columns
//!    ([`kernels::tile_vector`]).
//!
//! The FMAs are 16 per 4 outputs of a channel pair instead of the direct kernel's 36. The
//! input gradient is the same pass over `dY` with the filters flipped and their channels
//! swapped, padding `2 - p`. The weight gradient transforms `x` the same way and `dY` by
//! `A (·) Aᵀ`, transposes the latter so output channels lie along the lanes, and sums the
//! products over chunks of tile vectors ([`weight`], `lanes::engine::weight_pass`); `Gᵀ (·) G`
//! maps the sums back to 3x3. Images (groups) and chunks of their tile rows are spread over the
//! threads. The split of the work and the products are shared with the F(4x4, 3x3) path
//! ([`super::f4`]) through the pass engine ([`super::lanes`]).

mod kernels;
mod weight;

use super::f2_filters::{filter_grad_transform, filter_transform};
use super::lanes::engine::{data_pass, weight_pass};
use super::lanes::pass::{Pass, Tiling};
use crate::planning::conv::Geom;
use kernels::{prepare, source_tiles, tile_vector};
use std::mem::MaybeUninit;
use weight::grad_tiles;

/// The transformed filters `Ŵ = G g Gᵀ` as `[16][cols][rows rounded up to 16]` (zero in the
/// padding), from `w` as the GEMM Winograd lays them out (`[16][rows][cols]`).
fn filters(u: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let rp = rows.next_multiple_of(16);
    let mut out = vec![0.0; 16 * cols * rp];
    for xi in 0..16 {
        for r in 0..rows {
            for c in 0..cols {
                out[(xi * cols + c) * rp + r] = u[(xi * rows + r) * cols + c];
            }
        }
    }
    out
}

/// The F(2x2, 3x3) kernels.
const F2: Tiling = Tiling { tile: 2, prepare, source_tiles, tile_vector, grad_tiles };

/// Forward convolution (`x` `[N, C, H, W]`, `w` `[O, C, 3, 3]`, dense) into `y`
/// (`[N, O, oH, oW]`, every element written).
pub(in crate::cpu::conv) fn forward(x: &[f32], w: &[f32], g: &Geom, y: &mut [MaybeUninit<f32>]) {
    let p = Pass::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw), 2);
    debug_assert_eq!((p.oh, p.ow), (g.oh, g.ow));
    data_pass(&F2, x, &filters(&filter_transform(w, g.o, g.c, false), g.o, g.c), &p, y);
}

/// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, O, oH, oW]`, dense) into `dw`
/// (`[O, C, 3, 3]`, every element written).
pub(in crate::cpu::conv) fn backward_weight(x: &[f32], gy: &[f32], g: &Geom, dw: &mut [f32]) {
    let p = Pass::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw), 2);
    assert_eq!(dw.len(), p.cout * p.cin * 9, "winograd_lanes: weight gradient size");
    let d = weight_pass(&F2, x, gy, &p);
    // [ξ][c][o] (o padded) to [ξ][o][c], then Gᵀ (·) G.
    let coutp = p.cout.next_multiple_of(16);
    let mut du = vec![0.0f32; 16 * p.cout * p.cin];
    for xi in 0..16 {
        for c in 0..p.cin {
            for o in 0..p.cout {
                du[(xi * p.cout + o) * p.cin + c] = d[(xi * p.cin + c) * coutp + o];
            }
        }
    }
    dw.copy_from_slice(&filter_grad_transform(&du, p.cout, p.cin));
}

/// Input gradient (`gy` `[N, O, oH, oW]`, `w` `[O, C, 3, 3]`, dense) into `dx`
/// (`[N, C, H, W]`, every element written).
pub(in crate::cpu::conv) fn backward_data(gy: &[f32], w: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
    let p = Pass::new(g.n, g.o, (g.oh, g.ow), g.c, (2 - g.ph, 2 - g.pw), 2);
    debug_assert_eq!((p.oh, p.ow), (g.h, g.w));
    data_pass(&F2, gy, &filters(&filter_transform(w, g.c, g.o, true), g.c, g.o), &p, dx);
}
