//! Winograd F(2x2, 3x3) convolution: 3x3 kernels, stride 1, no dilation, one group — the
//! ResNet/VGG layers — forward and both backward passes, for f32 and f64.
//!
//! A 4x4 input tile `d` and a 3x3 filter `g` give a 2x2 output tile
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`: 16 products instead of 36. Over all channels the 16
//! element-wise products become 16 GEMMs, `M[ξ] = U[ξ] V[ξ]` with `U[ξ]` the transformed filters
//! (`C_out x C_in`) and `V[ξ]` the transformed input tiles (`C_in x tiles`), so the GEMM work is
//! 2.25x smaller than the direct (im2col) product.
//!
//! - Backward data is the same forward pass over `dY` with the filters flipped and their
//!   channels swapped, padding `2 - p`.
//! - Backward weight follows from `Y = Aᵀ (U ⊙ V) A`: `∂L/∂U[ξ] = Σ_tiles (A dY Aᵀ)[ξ] Vᵀ[ξ]` (16
//!   GEMMs over the tiles) and `∂L/∂g = Gᵀ (∂L/∂U) G`.
//!
//! Work is split into chunks of whole tile rows (sized so a chunk's transformed data stays in
//! the L2 cache) spread over rayon's threads; each chunk runs its 16 GEMMs single-threaded. The
//! tile transforms are in [`tiles`], the grid and its chunks in [`grid`].

mod grid;
mod tiles;

use super::f2_filters::{filter_grad_transform, filter_transform};
use crate::cpu::conv::common::{accumulate_in_runs, scratch};
use crate::cpu::gemm::{gemm, GemmElement, MatRef, SendPtr};
use crate::planning::conv::Geom;
use grid::Grid;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tiles::{grad_transform, input_transform, output_transform};

/// One forward-style pass: source planes `x` through transformed filters `u`
/// (`[16][cout][cin]`) into the destination planes `y`.
fn data_pass<T: GemmElement>(x: &[T], u: &[T], gr: &Grid, y: &mut [MaybeUninit<T>]) {
    assert_eq!(y.len(), gr.n * gr.cout * gr.oh * gr.ow, "winograd: destination size");
    let yp = SendPtr(y.as_mut_ptr().cast::<T>());
    let (cin, cout) = (gr.cin, gr.cout);
    gr.chunks().for_each_init(
        || (Vec::new(), Vec::new(), Vec::new()),
        |(v, m, rows), (r0, r1)| {
            let tc = (r1 - r0) * gr.tw;
            let v = scratch(v, 16 * cin * tc);
            input_transform(x, gr, (r0, r1), v, rows);
            let m = scratch(m, 16 * cout * tc);
            for xi in 0..16 {
                let a = MatRef { data: u, offset: xi * cout * cin, rs: cin, cs: 1 };
                let b = MatRef { data: &v[..], offset: xi * cin * tc, rs: tc, cs: 1 };
                gemm(cout, cin, tc, T::one(), a, b, T::zero(), &mut m[xi * cout * tc..(xi + 1) * cout * tc], tc);
            }
            // SAFETY: `yp` is `y`, sized above; chunks cover disjoint tile rows, hence disjoint
            // output rows.
            unsafe { output_transform(m, gr, (r0, r1), yp) };
        },
    );
}

/// Forward convolution (`x` `[N, C, H, W]`, `w` `[O, C, 3, 3]`, dense) into `y`
/// (`[N, O, oH, oW]`, every element written).
pub(in crate::cpu::conv) fn forward<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [MaybeUninit<T>]) {
    let gr = Grid::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw));
    debug_assert_eq!((gr.oh, gr.ow), (g.oh, g.ow));
    let u = filter_transform(w, g.o, g.c, false);
    data_pass(x, &u, &gr, y);
}

/// Input gradient (`gy` `[N, O, oH, oW]`, `w` `[O, C, 3, 3]`, dense) into `dx`
/// (`[N, C, H, W]`, every element written).
pub(in crate::cpu::conv) fn backward_data<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [MaybeUninit<T>]) {
    let gr = Grid::new(g.n, g.o, (g.oh, g.ow), g.c, (2 - g.ph, 2 - g.pw));
    debug_assert_eq!((gr.oh, gr.ow), (g.h, g.w));
    let u = filter_transform(w, g.c, g.o, true);
    data_pass(gy, &u, &gr, dx);
}

/// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, O, oH, oW]`, dense) as `[O, C, 3, 3]`.
///
/// The chunks are split into one contiguous run per thread, each with its own accumulator,
/// summed in order: a fixed summation order for a given thread count.
pub(in crate::cpu::conv) fn backward_weight<T: GemmElement>(x: &[T], gy: &[T], g: &Geom) -> Vec<T> {
    let gr = Grid::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw));
    let (c, o) = (g.c, g.o);
    let (rows, total) = (gr.rows_per_chunk(), gr.tile_rows());
    let du = accumulate_in_runs(total.div_ceil(rows), 16 * o * c, |chunks, acc| {
        let (mut v, mut m, mut stage) = (Vec::new(), Vec::new(), Vec::new());
        for ci in chunks {
            let (r0, r1) = (ci * rows, ((ci + 1) * rows).min(total));
            let tc = (r1 - r0) * gr.tw;
            let v = scratch(&mut v, 16 * c * tc);
            input_transform(x, &gr, (r0, r1), v, &mut stage);
            let m = scratch(&mut m, 16 * o * tc);
            grad_transform(gy, &gr, (r0, r1), m, &mut stage);
            for (xi, accx) in acc.chunks_exact_mut(o * c).enumerate() {
                let a = MatRef { data: &m[..], offset: xi * o * tc, rs: tc, cs: 1 };
                let b = MatRef { data: &v[..], offset: xi * c * tc, rs: 1, cs: tc };
                gemm(o, tc, c, T::one(), a, b, T::one(), accx, c);
            }
        }
    });
    filter_grad_transform(&du, o, c)
}
