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
//! tile transforms are in [`tiles`].

mod tiles;

use super::conv::{accumulate_in_runs, scratch, Geom};
use super::gemm::{gemm, GemmElement, MatRef, SendPtr};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tiles::{grad_transform, input_transform, output_transform};

/// Elements of transformed data (input and output side together) per chunk of tile rows.
const CHUNK_ELEMS: usize = 1 << 17;
/// Fewest tiles per chunk (the `n` of its GEMMs), whatever the cache budget says: wide layers
/// on small images would otherwise get GEMMs a few tiles wide.
const MIN_CHUNK_TILES: usize = 128;

/// Whether the Winograd path computes this convolution (forward and backward weight).
/// Setting the environment variable `LAMINA_NO_WINOGRAD` (read once) turns the path off, so
/// benchmarks can compare it with the im2col kernels in one build.
pub(super) fn applies(g: &Geom) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if crate::cpu::switched_off(&OFF, "LAMINA_NO_WINOGRAD") {
        return false;
    }
    let shape = g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.g == 1;
    // Narrow layers are cheaper through im2col: the transforms cost per channel what the GEMM saves.
    shape && g.c >= 8 && g.o >= 8
}

/// Whether the Winograd path computes this convolution's input gradient (its padding must
/// fit the flipped forward pass).
pub(super) fn applies_backward_data(g: &Geom) -> bool {
    applies(g) && g.ph <= 2 && g.pw <= 2
}

/// The tile grid of one pass: "source" planes `[N, cin, h, w]` read with padding (`ph`, `pw`)
/// and "destination" planes `[N, cout, oh, ow]`, `oh = h + 2 ph - 2`, cut into 2x2 tiles.
#[derive(Clone, Copy, Debug)]
struct Grid {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    oh: usize,
    ow: usize,
    ph: usize,
    pw: usize,
    /// Tile rows per image.
    th: usize,
    /// Tiles per tile row.
    tw: usize,
}

impl Grid {
    fn new(n: usize, cin: usize, (h, w): (usize, usize), cout: usize, (ph, pw): (usize, usize)) -> Grid {
        let (oh, ow) = (h + 2 * ph - 2, w + 2 * pw - 2);
        Grid { n, cin, h, w, cout, oh, ow, ph, pw, th: oh.div_ceil(2), tw: ow.div_ceil(2) }
    }
    /// Tile rows of the whole batch.
    fn tile_rows(&self) -> usize {
        self.n * self.th
    }
    /// Tile rows per chunk: what fits the cache budget, but at least [`MIN_CHUNK_TILES`] tiles.
    fn rows_per_chunk(&self) -> usize {
        let fit = CHUNK_ELEMS / (16 * self.tw * (self.cin + self.cout));
        fit.max(MIN_CHUNK_TILES.div_ceil(self.tw)).clamp(1, self.tile_rows())
    }
    /// Ranges of tile rows, one per chunk.
    fn chunks(&self) -> impl IndexedParallelIterator<Item = (usize, usize)> {
        let (rows, total) = (self.rows_per_chunk(), self.tile_rows());
        (0..total.div_ceil(rows)).into_par_iter().map(move |i| (i * rows, ((i + 1) * rows).min(total)))
    }
}

/// `G g Gᵀ` of every 3x3 filter of `w` (`[rows, cols, 3, 3]`, or `[cols, rows, 3, 3]` flipped
/// when `flip`), as `[16][rows][cols]`.
pub(super) fn filter_transform<T: GemmElement>(w: &[T], rows: usize, cols: usize, flip: bool) -> Vec<T> {
    let half = T::from_f32(0.5);
    let mut u = vec![T::zero(); 16 * rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let g: [T; 9] = if flip {
                let f = &w[(c * rows + r) * 9..][..9];
                std::array::from_fn(|i| f[8 - i])
            } else {
                w[(r * cols + c) * 9..][..9].try_into().expect("3x3 filter")
            };
            // t = G g (4x3), then t Gᵀ (4x4).
            let mut t = [[T::zero(); 3]; 4];
            for j in 0..3 {
                let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                t[0][j] = g0;
                t[1][j] = (g0 + g1 + g2) * half;
                t[2][j] = (g0 - g1 + g2) * half;
                t[3][j] = g2;
            }
            for (i, ti) in t.iter().enumerate() {
                let vals = [ti[0], (ti[0] + ti[1] + ti[2]) * half, (ti[0] - ti[1] + ti[2]) * half, ti[2]];
                for (j, v) in vals.into_iter().enumerate() {
                    u[(4 * i + j) * rows * cols + r * cols + c] = v;
                }
            }
        }
    }
    u
}

/// `Gᵀ du G` of every transformed filter gradient in `du` (`[16][rows][cols]`), as
/// `[rows, cols, 3, 3]`.
pub(super) fn filter_grad_transform<T: GemmElement>(du: &[T], rows: usize, cols: usize) -> Vec<T> {
    let half = T::from_f32(0.5);
    let plane = rows * cols;
    let mut w = vec![T::zero(); 9 * plane];
    for rc in 0..plane {
        let x: [T; 16] = std::array::from_fn(|xi| du[xi * plane + rc]);
        // t = Gᵀ x (3x4), then t G (3x3).
        let mut t = [[T::zero(); 4]; 3];
        for j in 0..4 {
            let (x0, x1, x2, x3) = (x[j], x[4 + j], x[8 + j], x[12 + j]);
            t[0][j] = x0 + (x1 + x2) * half;
            t[1][j] = (x1 - x2) * half;
            t[2][j] = (x1 + x2) * half + x3;
        }
        for (i, ti) in t.iter().enumerate() {
            let f = &mut w[rc * 9 + 3 * i..][..3];
            f[0] = ti[0] + (ti[1] + ti[2]) * half;
            f[1] = (ti[1] - ti[2]) * half;
            f[2] = (ti[1] + ti[2]) * half + ti[3];
        }
    }
    w
}

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
pub(super) fn forward<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [MaybeUninit<T>]) {
    let gr = Grid::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw));
    debug_assert_eq!((gr.oh, gr.ow), (g.oh, g.ow));
    let u = filter_transform(w, g.o, g.c, false);
    data_pass(x, &u, &gr, y);
}

/// Input gradient (`gy` `[N, O, oH, oW]`, `w` `[O, C, 3, 3]`, dense) into `dx`
/// (`[N, C, H, W]`, every element written).
pub(super) fn backward_data<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [MaybeUninit<T>]) {
    let gr = Grid::new(g.n, g.o, (g.oh, g.ow), g.c, (2 - g.ph, 2 - g.pw));
    debug_assert_eq!((gr.oh, gr.ow), (g.h, g.w));
    let u = filter_transform(w, g.c, g.o, true);
    data_pass(gy, &u, &gr, dx);
}

/// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, O, oH, oW]`, dense) as `[O, C, 3, 3]`.
///
/// The chunks are split into one contiguous run per thread, each with its own accumulator,
/// summed in order: a fixed summation order for a given thread count.
pub(super) fn backward_weight<T: GemmElement>(x: &[T], gy: &[T], g: &Geom) -> Vec<T> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{check_conv_passes, ConvPasses};
    use crate::ops::Conv2dParams;

    /// All three passes through Winograd against the direct (im2col) kernels.
    fn check<T: GemmElement>(n: usize, c: usize, (h, w): (usize, usize), o: usize, pad: (usize, usize), tol: f64) {
        let p = Conv2dParams { padding: pad, ..Default::default() };
        let g = Geom::new(&[n, c, h, w], &[o, c, 3, 3], &p).unwrap();
        assert!(applies_backward_data(&g));
        let passes = ConvPasses {
            forward: &|x: &[T], w: &[T], g: &Geom, y: &mut [MaybeUninit<T>]| forward(x, w, g, y),
            backward_data: Some(&|gy: &[T], w: &[T], g: &Geom, dx: &mut [MaybeUninit<T>]| backward_data(gy, w, g, dx)),
            backward_weight: Some(&|x: &[T], gy: &[T], g: &Geom| backward_weight(x, gy, g)),
        };
        check_conv_passes(&g, passes, tol, tol);
    }

    /// Batch, input channels, (height, width), output channels, padding.
    type Case = (usize, usize, (usize, usize), usize, (usize, usize));

    const SHAPES: [Case; 7] = [
        (2, 8, (7, 5), 9, (1, 1)),
        (1, 9, (3, 3), 8, (0, 0)),
        (3, 8, (10, 13), 12, (1, 0)),
        (2, 11, (6, 4), 8, (2, 2)),
        (1, 8, (1, 1), 8, (1, 1)),
        (2, 16, (9, 40), 10, (0, 2)),
        (5, 10, (8, 8), 17, (1, 1)),
    ];

    #[test]
    fn matches_direct_f64_on_odd_shapes() {
        for (n, c, hw, o, pad) in SHAPES {
            check::<f64>(n, c, hw, o, pad, 1e-12);
        }
    }

    #[test]
    fn matches_direct_f32_on_odd_shapes() {
        for (n, c, hw, o, pad) in SHAPES {
            check::<f32>(n, c, hw, o, pad, 2e-5);
        }
    }

    #[test]
    fn many_chunks_and_threads() {
        // Enough tile rows for several chunks per thread (so the per-thread accumulators of the
        // weight gradient are summed), in pools of 1 and 3 threads.
        crate::cpu::testing::in_pools_of_1_and_3(|| check::<f64>(6, 64, (20, 34), 40, (1, 1), 1e-12));
    }

    #[test]
    fn applies_only_to_its_shape() {
        let geom =
            |c: usize, o: usize, k: usize, p: Conv2dParams| Geom::new(&[1, c, 8, 8], &[o, c / p.groups, k, k], &p);
        let plain = Conv2dParams { padding: (1, 1), ..Default::default() };
        assert!(applies(&geom(8, 8, 3, plain).unwrap()));
        assert!(!applies(&geom(4, 8, 3, plain).unwrap()));
        assert!(!applies(&geom(8, 8, 1, plain).unwrap()));
        assert!(!applies(&geom(8, 8, 3, Conv2dParams { stride: (2, 2), ..plain }).unwrap()));
        assert!(!applies(&geom(8, 8, 3, Conv2dParams { dilation: (2, 2), ..plain }).unwrap()));
        assert!(!applies(&geom(16, 16, 3, Conv2dParams { groups: 2, ..plain }).unwrap()));
        let wide = geom(8, 8, 3, Conv2dParams { padding: (3, 1), ..plain }).unwrap();
        assert!(applies(&wide) && !applies_backward_data(&wide));
    }
}
