//! The shapes of a lane-tiled Winograd pass: how tiles map to vector lanes ([`Lanes`]), the
//! pass itself ([`Pass`]), where a tile vector's outputs go and its output gradient comes from
//! ([`Dest`], [`GradSrc`]), and the kernels of one tile size ([`Tiling`]).

use std::arch::x86_64::*;

/// How tiles map to lanes: `per` lanes per image (the tile row's tiles, rounded up to a power
/// of two; 16 when a tile row spans vectors), `slots = 16 / per` images per vector, and
/// `vectors` vectors per tile row.
#[derive(Clone, Copy, Debug)]
pub(in crate::cpu::conv) struct Lanes {
    pub(in crate::cpu::conv) per: usize,
    pub(in crate::cpu::conv) slots: usize,
    pub(in crate::cpu::conv) vectors: usize,
}

impl Lanes {
    pub(in crate::cpu::conv) fn new(tiles: usize) -> Lanes {
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
/// `m` 2 for F(2x2) and 4 for F(4x4).
#[derive(Clone, Copy, Debug)]
pub(in crate::cpu::conv) struct Pass {
    pub(in crate::cpu::conv) n: usize,
    pub(in crate::cpu::conv) cin: usize,
    pub(in crate::cpu::conv) h: usize,
    pub(in crate::cpu::conv) w: usize,
    pub(in crate::cpu::conv) cout: usize,
    pub(in crate::cpu::conv) ph: usize,
    pub(in crate::cpu::conv) pw: usize,
    pub(in crate::cpu::conv) oh: usize,
    pub(in crate::cpu::conv) ow: usize,
    pub(in crate::cpu::conv) th: usize,
    pub(in crate::cpu::conv) lanes: Lanes,
}

impl Pass {
    /// The pass of `n` images of `cin` planes of `(h, w)` with padding `(ph, pw)` into `cout`
    /// planes, in `m x m` tiles.
    pub(in crate::cpu::conv) fn new(
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

/// Where one tile vector's outputs go: destination planes of the group's first image, the
/// images present, and the tile vector's place.
pub(in crate::cpu::conv) struct Dest {
    /// Channel 0 of the group's first image.
    pub y: *mut f32,
    /// Floats between images.
    pub image: usize,
    /// Images of the group present (the rest of the lanes are not stored).
    pub images: usize,
    /// Tile row.
    pub tr: usize,
    /// Tile vector within the tile row.
    pub v: usize,
}

/// Where the output gradient of one tile vector comes from.
pub(in crate::cpu::conv) struct GradSrc {
    /// Channel 0 of the group's first image.
    pub gy: *const f32,
    /// Floats between images.
    pub image: usize,
    /// Images of the group present (the rest of the lanes read as zero).
    pub images: usize,
    /// Tile row.
    pub tr: usize,
    /// Tile vector within the tile row.
    pub v: usize,
}

/// The AVX-512 kernels of one tile size `m` (input tiles `m + 2` square, `(m + 2)²`
/// positions `ξ`). Each is `unsafe`: the CPU must have AVX-512F and VL, and the pointers must
/// address what the kernel's own documentation says.
pub(in crate::cpu::conv) struct Tiling {
    /// The output tile's side `m`.
    pub tile: usize,
    /// The column-transformed source rows of an image group: `(x, floats per image, images,
    /// pass, padded rows q0..q1, prep)`, `m + 2` vectors per channel, row and tile vector.
    pub prepare: unsafe fn(*const f32, usize, usize, &Pass, (usize, usize), *mut __m512),
    /// `U[c][ξ]` of one tile vector from the prepared rows: `(pass, prep at the tile row's
    /// first row, prep's channel stride, tile vector, u)`.
    pub source_tiles: unsafe fn(&Pass, *const __m512, usize, usize, *mut __m512),
    /// One tile vector through the whole data pass: `(pass, prep, prep's channel stride,
    /// transformed filters, u scratch, m scratch, destination)`.
    pub tile_vector: unsafe fn(&Pass, *const __m512, usize, *const f32, *mut __m512, *mut __m512, &Dest),
    /// The transformed output gradient of one tile vector, transposed so that output
    /// channels lie along the lanes: `(pass, source, scratch, vt)`.
    pub grad_tiles: unsafe fn(&Pass, &GradSrc, *mut __m512, *mut f32),
}

impl Tiling {
    /// Vectors per prepared row and tile vector.
    pub(super) fn row_vectors(&self) -> usize {
        self.tile + 2
    }

    /// Positions `ξ` of a transformed tile.
    pub(in crate::cpu::conv) fn positions(&self) -> usize {
        (self.tile + 2) * (self.tile + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
