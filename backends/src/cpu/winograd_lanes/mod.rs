//! Winograd F(2x2, 3x3) with tiles across the vector lanes, in f32 under AVX-512: all three
//! passes of the narrow 3x3 layers (CIFAR ResNets' 16-64 channels), where the GEMM form of
//! Winograd (`winograd`) spends more on its transforms and packing than the 2.25x fewer
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
//! products over chunks of tile vectors ([`weight`], [`passes::weight_pass`]); `Gᵀ (·) G` maps
//! the sums back to 3x3. Images (groups) and chunks of their tile rows are spread over the
//! threads. The split of the work and the products are shared with the F(4x4, 3x3) path
//! (`winograd4`) through [`passes`].

#[cfg(target_arch = "x86_64")]
mod kernels;
#[cfg(target_arch = "x86_64")]
pub(in crate::cpu) mod passes;
#[cfg(target_arch = "x86_64")]
mod weight;
#[cfg(target_arch = "x86_64")]
pub(in crate::cpu) use weight::transpose16;

use super::conv::Geom;

/// Whether this path computes this f32 convolution (forward and weight gradient): the CPU
/// has AVX-512 (F and VL), the kernel is 3x3 with stride 1, no dilation and one group, with
/// at most 256 x 256 channels and at least 8 on the input side. Setting
/// `LAMINA_NO_WINOGRAD_LANES` (read once) turns it off, so benchmarks can compare the paths
/// in one build.
pub(super) fn applies(g: &Geom) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if crate::cpu::switched_off(&OFF, "LAMINA_NO_WINOGRAD_LANES") || !crate::cpu::use_avx512_vl() {
        return false;
    }
    let shape = g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.g == 1;
    // Each tile vector streams all 16 C·O transformed filter taps: past 256x256 channels
    // (4 MiB) they no longer stay in the caches and the GEMM form wins.
    shape && g.c * g.o <= 256 * 256 && g.c >= 8
}

/// Whether this path computes this convolution's input gradient (the flipped pass: padding
/// at most 2, at least 8 output channels).
pub(super) fn applies_backward_data(g: &Geom) -> bool {
    let shape = g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.g == 1;
    let flipped = Geom { c: g.o, o: g.c, ..*g };
    shape && g.ph <= 2 && g.pw <= 2 && applies(&flipped)
}

/// How tiles map to lanes: `per` lanes per image (the tile row's tiles, rounded up to a power
/// of two; 16 when a tile row spans vectors), `slots = 16 / per` images per vector, and
/// `vectors` vectors per tile row.
#[derive(Clone, Copy, Debug)]
pub(in crate::cpu) struct Lanes {
    pub(in crate::cpu) per: usize,
    pub(in crate::cpu) slots: usize,
    pub(in crate::cpu) vectors: usize,
}

impl Lanes {
    pub(in crate::cpu) fn new(tiles: usize) -> Lanes {
        if tiles >= 16 {
            Lanes { per: 16, slots: 1, vectors: tiles.div_ceil(16) }
        } else {
            let per = tiles.next_power_of_two();
            Lanes { per, slots: 16 / per, vectors: 1 }
        }
    }
}

/// One pass: source planes `[n, cin, h, w]` read with padding (`ph`, `pw`), destination
/// planes `[n, cout, oh, ow]` with `oh = h + 2 ph - 2`, cut into `m x m` tiles (`th` tile rows),
/// `m` 2 here and 4 in `winograd4`.
#[derive(Clone, Copy, Debug)]
pub(in crate::cpu) struct Pass {
    pub(in crate::cpu) n: usize,
    pub(in crate::cpu) cin: usize,
    pub(in crate::cpu) h: usize,
    pub(in crate::cpu) w: usize,
    pub(in crate::cpu) cout: usize,
    pub(in crate::cpu) ph: usize,
    pub(in crate::cpu) pw: usize,
    pub(in crate::cpu) oh: usize,
    pub(in crate::cpu) ow: usize,
    pub(in crate::cpu) th: usize,
    pub(in crate::cpu) lanes: Lanes,
}

impl Pass {
    /// The pass of `n` images of `cin` planes of `(h, w)` with padding `(ph, pw)` into `cout`
    /// planes, in `m x m` tiles.
    pub(in crate::cpu) fn new(
        n: usize,
        cin: usize,
        (h, w): (usize, usize),
        cout: usize,
        (ph, pw): (usize, usize),
        m: usize,
    ) -> Pass {
        let (oh, ow) = (h + 2 * ph - 2, w + 2 * pw - 2);
        Pass { n, cin, h, w, cout, ph, pw, oh, ow, th: oh.div_ceil(m), lanes: Lanes::new(ow.div_ceil(m)) }
    }
}

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

#[cfg(target_arch = "x86_64")]
pub(super) use imp::{backward_data, backward_weight, forward};

/// Never reached off x86-64 ([`applies`] is false there).
#[cfg(not(target_arch = "x86_64"))]
pub(super) use super::direct3x3::{backward_data, backward_weight, forward};

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::kernels::{prepare, source_tiles, tile_vector};
    use super::passes::{data_pass, weight_pass, Tiling};
    use super::weight::grad_tiles;
    use super::{filters, Geom, Pass};
    use crate::cpu::winograd::{filter_grad_transform, filter_transform};
    use std::mem::MaybeUninit;

    /// The F(2x2, 3x3) kernels.
    const F2: Tiling = Tiling { tile: 2, prepare, source_tiles, tile_vector, grad_tiles };

    /// Forward convolution (`x` `[N, C, H, W]`, `w` `[O, C, 3, 3]`, dense) into `y`
    /// (`[N, O, oH, oW]`, every element written).
    pub(in crate::cpu) fn forward(x: &[f32], w: &[f32], g: &Geom, y: &mut [MaybeUninit<f32>]) {
        let p = Pass::new(g.n, g.c, (g.h, g.w), g.o, (g.ph, g.pw), 2);
        debug_assert_eq!((p.oh, p.ow), (g.oh, g.ow));
        data_pass(&F2, x, &filters(&filter_transform(w, g.o, g.c, false), g.o, g.c), &p, y);
    }

    /// Weight gradient (`x` `[N, C, H, W]`, `gy` `[N, O, oH, oW]`, dense) into `dw`
    /// (`[O, C, 3, 3]`, every element written).
    pub(in crate::cpu) fn backward_weight(x: &[f32], gy: &[f32], g: &Geom, dw: &mut [f32]) {
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
    pub(in crate::cpu) fn backward_data(gy: &[f32], w: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
        let p = Pass::new(g.n, g.o, (g.oh, g.ow), g.c, (2 - g.ph, 2 - g.pw), 2);
        debug_assert_eq!((p.oh, p.ow), (g.h, g.w));
        data_pass(&F2, gy, &filters(&filter_transform(w, g.c, g.o, true), g.c, g.o), &p, dx);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::cpu::testing::{check_3x3_cases, check_3x3_path, Case3x3};
    use crate::ops::Conv2dParams;

    /// Batch, input channels, (height, width), output channels, padding: planes whose tile
    /// rows fill 1, 2, 4, 8, 16 and more lanes (odd widths and heights, partial groups of
    /// images), channel counts off 16, every padding the passes accept.
    const SHAPES: [Case3x3; 13] = [
        (3, 8, (7, 5), 5, (1, 1)),
        (2, 9, (3, 3), 1, (0, 0)),
        (5, 8, (10, 13), 6, (1, 0)),
        (2, 12, (6, 4), 17, (2, 2)),
        (3, 8, (1, 1), 8, (1, 1)),
        (2, 16, (9, 40), 10, (0, 2)),
        (5, 16, (32, 32), 16, (1, 1)),
        (3, 32, (16, 16), 32, (1, 1)),
        (6, 64, (8, 8), 64, (1, 1)),
        (2, 17, (15, 15), 33, (1, 1)),
        (1, 8, (5, 70), 9, (2, 1)),
        (9, 10, (4, 4), 12, (1, 1)),
        (2, 130, (6, 7), 140, (1, 1)),
    ];

    /// Tile rows split over the threads (one image group).
    const POOLED: [Case3x3; 2] = [(1, 16, (20, 34), 12, (1, 1)), (2, 8, (11, 9), 24, (1, 1))];

    #[test]
    fn matches_im2col_on_odd_shapes_and_thread_counts() {
        check_3x3_cases("winograd_lanes", &SHAPES, &POOLED, |(n, c, hw, o, pad)| {
            check_3x3_path(n, c, hw, o, pad, &forward, &backward_data, &backward_weight)
        });
    }

    #[test]
    fn lanes_hold_whole_tile_rows_or_16_tiles() {
        let l = Lanes::new(16);
        assert_eq!((l.per, l.slots, l.vectors), (16, 1, 1));
        let l = Lanes::new(17);
        assert_eq!((l.per, l.slots, l.vectors), (16, 1, 2));
        let l = Lanes::new(8);
        assert_eq!((l.per, l.slots, l.vectors), (8, 2, 1));
        let l = Lanes::new(3);
        assert_eq!((l.per, l.slots, l.vectors), (4, 4, 1));
        let l = Lanes::new(1);
        assert_eq!((l.per, l.slots, l.vectors), (1, 16, 1));
    }

    #[test]
    fn applies_only_to_3x3_stride_1_up_to_256_channels() {
        let geom =
            |c: usize, o: usize, p: Conv2dParams| Geom::new(&[1, c, 8, 8], &[o, c / p.groups, 3, 3], &p).unwrap();
        let plain = Conv2dParams { padding: (1, 1), ..Default::default() };
        let avx = crate::cpu::use_avx512_vl();
        assert_eq!(applies(&geom(16, 16, plain)), avx);
        assert_eq!(applies(&geom(64, 64, plain)), avx);
        assert_eq!(applies(&geom(256, 256, plain)), avx);
        assert!(!applies(&geom(512, 256, plain)));
        assert!(!applies(&geom(3, 16, plain)));
        assert!(!applies(&geom(16, 16, Conv2dParams { stride: (2, 2), ..plain })));
        assert!(!applies(&geom(16, 16, Conv2dParams { dilation: (2, 2), ..plain })));
        assert!(!applies(&geom(16, 16, Conv2dParams { groups: 2, ..plain })));
        assert!(!applies_backward_data(&geom(16, 3, plain)));
    }
}
