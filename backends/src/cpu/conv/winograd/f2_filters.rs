//! The filter transforms of Winograd F(2x2, 3x3), `G g Gᵀ` and its adjoint `Gᵀ (·) G`, shared
//! by the GEMM form ([`super::gemm`]) and the lane-tiled form ([`super::f2`]).

use crate::cpu::gemm::GemmElement;

/// `G g Gᵀ` of every 3x3 filter of `w` (`[rows, cols, 3, 3]`, or `[cols, rows, 3, 3]` flipped
/// when `flip`), as `[16][rows][cols]`.
pub(in crate::cpu::conv) fn filter_transform<T: GemmElement>(w: &[T], rows: usize, cols: usize, flip: bool) -> Vec<T> {
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
pub(in crate::cpu::conv) fn filter_grad_transform<T: GemmElement>(du: &[T], rows: usize, cols: usize) -> Vec<T> {
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
