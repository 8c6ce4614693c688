//! The tile grid of a Winograd F(2x2, 3x3) pass and its split into chunks of tile rows.

use rayon::prelude::*;

/// Elements of transformed data (input and output side together) per chunk of tile rows.
const CHUNK_ELEMS: usize = 1 << 17;
/// Fewest tiles per chunk (the `n` of its GEMMs), whatever the cache budget says: wide layers
/// on small images would otherwise get GEMMs a few tiles wide.
const MIN_CHUNK_TILES: usize = 128;

/// The tile grid of one pass: "source" planes `[N, cin, h, w]` read with padding (`ph`, `pw`)
/// and "destination" planes `[N, cout, oh, ow]`, `oh = h + 2 ph - 2`, cut into 2x2 tiles.
#[derive(Clone, Copy, Debug)]
pub(super) struct Grid {
    pub(super) n: usize,
    pub(super) cin: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) cout: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    /// Tile rows per image.
    pub(super) th: usize,
    /// Tiles per tile row.
    pub(super) tw: usize,
}

impl Grid {
    pub(super) fn new(n: usize, cin: usize, (h, w): (usize, usize), cout: usize, (ph, pw): (usize, usize)) -> Grid {
        let (oh, ow) = (h + 2 * ph - 2, w + 2 * pw - 2);
        Grid { n, cin, h, w, cout, oh, ow, ph, pw, th: oh.div_ceil(2), tw: ow.div_ceil(2) }
    }
    /// Tile rows of the whole batch.
    pub(super) fn tile_rows(&self) -> usize {
        self.n * self.th
    }
    /// Tile rows per chunk: what fits the cache budget, but at least [`MIN_CHUNK_TILES`] tiles.
    pub(super) fn rows_per_chunk(&self) -> usize {
        let fit = CHUNK_ELEMS / (16 * self.tw * (self.cin + self.cout));
        fit.max(MIN_CHUNK_TILES.div_ceil(self.tw)).clamp(1, self.tile_rows())
    }
    /// Ranges of tile rows, one per chunk.
    pub(super) fn chunks(&self) -> impl IndexedParallelIterator<Item = (usize, usize)> {
        let (rows, total) = (self.rows_per_chunk(), self.tile_rows());
        (0..total.div_ceil(rows)).into_par_iter().map(move |i| (i * rows, ((i + 1) * rows).min(total)))
    }
}
