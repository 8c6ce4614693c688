//! The filter transforms of Winograd F(2x2, 3x3), `G g Gᵀ` and its adjoint `Gᵀ (·) G`, shared
//! by the GEMM form ([`super::gemm`]) and the lane-tiled form ([`super::f2`]).
//!
//! Both run over blocks of filters spread over rayon's threads. A wide layer has many filters
//! (512 x 512 channels: 2.4 M weights, 16 MiB transformed), and the transform sits in front of
//! every pass: one thread walking them column by column, with the flipped filters of the input
//! gradient read one cache line per filter, took 6-7 ms at 512² on Sapphire Rapids, a third of
//! the forward pass's GEMM time. Each task now takes `ROWS` rows of filters and walks them row
//! by row, `COLS` filters at a time: the reads of `w` and the writes of each tap's row run in
//! sequence (the flipped filters' lines, one per filter, serve the next row from L1), and the
//! transform itself is vectorized across filters. At 512², 2 threads: 1.4 ms (flipped 2.8 ms,
//! the gradient transform 1.4 ms).

use crate::cpu::gemm::{GemmElement, SendPtr};
use rayon::prelude::*;

/// Rows of filters per parallel task.
const ROWS: usize = 16;
/// Columns of filters transformed together (one row of each transformed tap at a time).
const COLS: usize = 64;

/// `G g Gᵀ` of every 3x3 filter of `w` (`[rows, cols, 3, 3]`, or `[cols, rows, 3, 3]` flipped
/// when `flip`), as `[16][rows][cols]`.
pub(in crate::cpu::conv) fn filter_transform<T: GemmElement>(w: &[T], rows: usize, cols: usize, flip: bool) -> Vec<T> {
    assert_eq!(w.len(), 9 * rows * cols, "winograd filter transform: weight size");
    let plane = rows * cols;
    let mut u: Vec<T> = Vec::with_capacity(16 * plane);
    let up = SendPtr(u.as_mut_ptr());
    (0..rows.div_ceil(ROWS)).into_par_iter().for_each(|blk| {
        let (r0, r1) = (blk * ROWS, ((blk + 1) * ROWS).min(rows));
        let mut g = [[T::zero(); COLS]; 9];
        let mut out = [[T::zero(); COLS]; 16];
        for r in r0..r1 {
            for c0 in (0..cols).step_by(COLS) {
                let n = COLS.min(cols - c0);
                for j in 0..n {
                    let c = c0 + j;
                    if flip {
                        let f = &w[(c * rows + r) * 9..][..9];
                        for (t, gt) in g.iter_mut().enumerate() {
                            gt[j] = f[8 - t];
                        }
                    } else {
                        let f = &w[(r * cols + c) * 9..][..9];
                        for (t, gt) in g.iter_mut().enumerate() {
                            gt[j] = f[t];
                        }
                    }
                }
                transform_block(&g, &mut out);
                for (xi, o) in out.iter().enumerate() {
                    // SAFETY: `u` has room for `16 * plane` elements; this task alone writes the
                    // rows `r0..r1` of every tap.
                    unsafe { std::ptr::copy_nonoverlapping(o.as_ptr(), up.get().add(xi * plane + r * cols + c0), n) };
                }
            }
        }
    });
    // SAFETY: the blocks cover every row and column of every tap, each written above.
    unsafe { u.set_len(16 * plane) };
    u
}

/// `G g Gᵀ` of [`COLS`] filters side by side: `g[t][j]` is tap `t` of filter `j`, `out[ξ][j]`
/// its transformed tap `ξ`. Each row of the formula is one loop over whole rows of filters, so
/// the compiler vectorizes across them (columns past the block's filters carry stale values,
/// never copied out).
#[inline(always)]
fn transform_block<T: GemmElement>(g: &[[T; COLS]; 9], out: &mut [[T; COLS]; 16]) {
    let half = T::from_f32(0.5);
    // t = G g (4x3): row i, column k in t[3 i + k].
    let mut t = [[T::zero(); COLS]; 12];
    for k in 0..3 {
        for j in 0..COLS {
            let (g0, g1, g2) = (g[k][j], g[3 + k][j], g[6 + k][j]);
            t[k][j] = g0;
            t[3 + k][j] = (g0 + g1 + g2) * half;
            t[6 + k][j] = (g0 - g1 + g2) * half;
            t[9 + k][j] = g2;
        }
    }
    // t Gᵀ (4x4).
    for i in 0..4 {
        for j in 0..COLS {
            let (a, b, c) = (t[3 * i][j], t[3 * i + 1][j], t[3 * i + 2][j]);
            out[4 * i][j] = a;
            out[4 * i + 1][j] = (a + b + c) * half;
            out[4 * i + 2][j] = (a - b + c) * half;
            out[4 * i + 3][j] = c;
        }
    }
}

/// Filters per parallel task of [`filter_grad_transform`] (a multiple of [`COLS`]).
const GRAD_CHUNK: usize = 16 * COLS;

/// `Gᵀ du G` of every transformed filter gradient in `du` (`[16][rows][cols]`), as
/// `[rows, cols, 3, 3]`.
pub(in crate::cpu::conv) fn filter_grad_transform<T: GemmElement>(du: &[T], rows: usize, cols: usize) -> Vec<T> {
    let plane = rows * cols;
    assert_eq!(du.len(), 16 * plane, "winograd filter gradient transform: size");
    // Every element is written below: no zero fill first.
    let mut w: Vec<T> = Vec::with_capacity(9 * plane);
    w.spare_capacity_mut()[..9 * plane].par_chunks_mut(9 * GRAD_CHUNK).enumerate().for_each(|(ci, wc)| {
        let mut x = [[T::zero(); COLS]; 16];
        let mut out = [[T::zero(); COLS]; 9];
        for (bi, wb) in wc.chunks_mut(9 * COLS).enumerate() {
            let (rc0, n) = (ci * GRAD_CHUNK + bi * COLS, wb.len() / 9);
            for (xi, row) in x.iter_mut().enumerate() {
                row[..n].copy_from_slice(&du[xi * plane + rc0..][..n]);
            }
            grad_transform_block(&x, &mut out);
            for (j, f) in wb.chunks_exact_mut(9).enumerate() {
                for (t, v) in f.iter_mut().enumerate() {
                    v.write(out[t][j]);
                }
            }
        }
    });
    // SAFETY: the chunks above cover all `9 * plane` elements, each written once.
    unsafe { w.set_len(9 * plane) };
    w
}

/// `Gᵀ x G` of [`COLS`] transformed filter gradients side by side: `x[ξ][j]` is tap `ξ` of
/// gradient `j`, `out[t][j]` tap `t` of its 3x3 filter gradient (one vectorizable loop per row
/// of the formula, as in [`transform_block`]).
#[inline(always)]
fn grad_transform_block<T: GemmElement>(x: &[[T; COLS]; 16], out: &mut [[T; COLS]; 9]) {
    let half = T::from_f32(0.5);
    // t = Gᵀ x (3x4): row i, column j in t[4 i + j].
    let mut t = [[T::zero(); COLS]; 12];
    for j in 0..4 {
        for l in 0..COLS {
            let (x0, x1, x2, x3) = (x[j][l], x[4 + j][l], x[8 + j][l], x[12 + j][l]);
            t[j][l] = x0 + (x1 + x2) * half;
            t[4 + j][l] = (x1 - x2) * half;
            t[8 + j][l] = (x1 + x2) * half + x3;
        }
    }
    // t G (3x3).
    for i in 0..3 {
        for l in 0..COLS {
            let (a, b, c, d) = (t[4 * i][l], t[4 * i + 1][l], t[4 * i + 2][l], t[4 * i + 3][l]);
            out[3 * i][l] = a + (b + c) * half;
            out[3 * i + 1][l] = (b - c) * half;
            out[3 * i + 2][l] = (b + c) * half + d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `G` of F(2x2, 3x3).
    const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

    fn weights(len: usize) -> Vec<f64> {
        (0..len).map(|i| ((i * 7919 % 1013) as f64 - 506.0) / 97.0).collect()
    }

    /// `G g Gᵀ` by the matrix formula, one filter at a time.
    fn reference(w: &[f64], rows: usize, cols: usize, flip: bool) -> Vec<f64> {
        let mut u = vec![0.0; 16 * rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                let g = |a: usize, b: usize| {
                    if flip {
                        w[(c * rows + r) * 9 + 8 - (3 * a + b)]
                    } else {
                        w[(r * cols + c) * 9 + 3 * a + b]
                    }
                };
                for i in 0..4 {
                    for j in 0..4 {
                        let mut s = 0.0;
                        for a in 0..3 {
                            for b in 0..3 {
                                s += G[i][a] * g(a, b) * G[j][b];
                            }
                        }
                        u[(4 * i + j) * rows * cols + r * cols + c] = s;
                    }
                }
            }
        }
        u
    }

    #[test]
    fn filter_transform_matches_the_matrix_formula_across_block_edges() {
        // Sizes below, at and past the blocks (16 rows, 64 columns), flipped or not.
        for (rows, cols) in [(1, 1), (3, 5), (16, 64), (17, 65), (40, 130)] {
            let w = weights(9 * rows * cols);
            for flip in [false, true] {
                let got = filter_transform(&w, rows, cols, flip);
                let want = reference(&w, rows, cols, flip);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() < 1e-12, "{rows}x{cols} flip {flip} [{i}]: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn filter_grad_transform_is_the_adjoint_of_the_filter_transform() {
        // <G g Gᵀ, du> = <g, Gᵀ du G> for every g and du.
        for (rows, cols) in [(1, 1), (7, 3), (33, 70)] {
            let plane = rows * cols;
            let w = weights(9 * plane);
            let du: Vec<f64> = weights(16 * plane + 5)[5..].to_vec();
            let u = filter_transform(&w, rows, cols, false);
            let dw = filter_grad_transform(&du, rows, cols);
            let lhs: f64 = u.iter().zip(&du).map(|(a, b)| a * b).sum();
            let rhs: f64 = w.iter().zip(&dw).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9 * lhs.abs().max(1.0), "{rows}x{cols}: {lhs} vs {rhs}");
        }
    }
}
