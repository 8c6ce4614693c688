//! The tile transforms of Winograd F(2x2, 3x3), a tile row at a time: input tiles `Bᵀ d B`,
//! gradient tiles `A dY Aᵀ` and output tiles `Aᵀ m A`.
//!
//! The rows a chunk needs are first staged into a zero-bordered buffer (so padding costs no
//! branches), then each tile row is cut into blocks of 16, 8, 4, 2 and 1 tiles whose widths are
//! compile-time constants: the transforms are element-wise over fixed-size arrays, which the
//! compiler vectorizes, and every copy has a known length.

use super::Grid;
use crate::cpu::conv::scratch;
use crate::cpu::gemm::{GemmElement, SendPtr};

/// A transform over a block of `L` consecutive tiles of one tile row starting at tile `b0`.
trait Block {
    fn run<const L: usize>(&mut self, b0: usize);
}

/// Covers a tile row of `tw` tiles with blocks of 16 tiles, then at most one block each of 8,
/// 4, 2 and 1.
#[inline(always)]
fn for_each_block(tw: usize, f: &mut impl Block) {
    let mut b0 = 0;
    while tw - b0 >= 16 {
        f.run::<16>(b0);
        b0 += 16;
    }
    if tw - b0 >= 8 {
        f.run::<8>(b0);
        b0 += 8;
    }
    if tw - b0 >= 4 {
        f.run::<4>(b0);
        b0 += 4;
    }
    if tw - b0 >= 2 {
        f.run::<2>(b0);
        b0 += 2;
    }
    if tw - b0 >= 1 {
        f.run::<1>(b0);
    }
}

/// `K` outputs for each of `L` tiles: `f(l, out)` fills the `K` outputs of tile `l`; the
/// result holds them output-major (`[k][l]`), ready for contiguous stores. The buffer is local
/// (so the compiler knows no store aliases the inputs) and never zero-filled; `f` must write
/// all `K` outputs.
#[inline(always)]
fn lanes<T: GemmElement, const L: usize, const K: usize>(mut f: impl FnMut(usize, &mut [T; K])) -> [[T; L]; K] {
    let mut res = std::mem::MaybeUninit::<[[T; L]; K]>::uninit();
    let p = res.as_mut_ptr() as *mut T;
    for l in 0..L {
        let mut out = [T::zero(); K];
        f(l, &mut out);
        for (k, v) in out.into_iter().enumerate() {
            // SAFETY: k < K and l < L index inside `res`.
            unsafe { *p.add(k * L + l) = v };
        }
    }
    // SAFETY: every element was written above.
    unsafe { res.assume_init() }
}

/// Stores output `k` of a block (`[k][l]`) at `dst[at + k * stride..][..L]`.
#[inline(always)]
fn scatter<T: Copy, const L: usize, const K: usize>(out: &[[T; L]; K], dst: &mut [T], at: usize, stride: usize) {
    for (k, o) in out.iter().enumerate() {
        dst[at + k * stride..][..L].copy_from_slice(o);
    }
}

/// Calls `f(img, t0, t1, k0)` for each image's run of tile rows `t0..t1` inside the chunk of
/// tile rows `r0..r1`; `k0` is the position of tile row `t0` within the chunk.
fn for_each_segment(gr: &Grid, (r0, r1): (usize, usize), mut f: impl FnMut(usize, usize, usize, usize)) {
    let mut r = r0;
    while r < r1 {
        let img = r / gr.th;
        let end = r1.min((img + 1) * gr.th);
        f(img, r % gr.th, r % gr.th + (end - r), r - r0);
        r = end;
    }
}

/// Copies rows `first..` of `plane` (`h x w`) into the rows of `stage` (each `rl` wide, data at
/// columns `pad..pad + w`); rows outside the plane become zero. The columns around the data
/// are left as they are (zero).
fn stage_rows<T: GemmElement>(
    plane: &[T],
    (h, w): (usize, usize),
    first: isize,
    pad: usize,
    rl: usize,
    stage: &mut [T],
) {
    for (k, dst) in stage.chunks_exact_mut(rl).enumerate() {
        let dst = &mut dst[pad..pad + w];
        let r = first + k as isize;
        if r >= 0 && (r as usize) < h {
            dst.copy_from_slice(&plane[r as usize * w..][..w]);
        } else {
            dst.fill(T::zero());
        }
    }
}

struct InputBlock<'a, T> {
    /// The tile row's 4 staged input rows, `rl` apart.
    rows: &'a [T],
    rl: usize,
    v: &'a mut [T],
    /// Position of the tile row's first tile for ξ = 0; ξ adds `stride`.
    at: usize,
    stride: usize,
}

impl<T: GemmElement> Block for InputBlock<'_, T> {
    #[inline(always)]
    fn run<const L: usize>(&mut self, b0: usize) {
        let rl = self.rl;
        let seg = &self.rows[2 * b0..3 * rl + 2 * b0 + 2 * L + 2];
        let out = lanes::<T, L, 16>(|l, out| {
            // d[i][j]: row i, column j of tile b0 + l.
            let d: [[T; 4]; 4] = std::array::from_fn(|i| std::array::from_fn(|j| seg[i * rl + 2 * l + j]));
            // r = d B, then Bᵀ r.
            let r = d.map(|d| [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]);
            for j in 0..4 {
                out[j] = r[0][j] - r[2][j];
                out[4 + j] = r[1][j] + r[2][j];
                out[8 + j] = r[2][j] - r[1][j];
                out[12 + j] = r[1][j] - r[3][j];
            }
        });
        scatter(&out, self.v, self.at + b0, self.stride);
    }
}

/// `Bᵀ d B` of the source tiles of the chunk's tile rows, into `v` (`[16][cin][tiles]`).
pub(super) fn input_transform<T: GemmElement>(
    x: &[T],
    gr: &Grid,
    chunk: (usize, usize),
    v: &mut [T],
    stage: &mut Vec<T>,
) {
    let tc = (chunk.1 - chunk.0) * gr.tw;
    let (rl, plane) = (2 * gr.tw + 2, gr.h * gr.w);
    for_each_segment(gr, chunk, |img, t0, t1, k0| {
        let st = scratch(stage, (2 * (t1 - t0) + 2) * rl);
        st.fill(T::zero());
        for c in 0..gr.cin {
            let xp = &x[(img * gr.cin + c) * plane..][..plane];
            stage_rows(xp, (gr.h, gr.w), (2 * t0) as isize - gr.ph as isize, gr.pw, rl, st);
            for tr in 0..t1 - t0 {
                let rows = &st[2 * tr * rl..][..4 * rl];
                let at = c * tc + (k0 + tr) * gr.tw;
                for_each_block(gr.tw, &mut InputBlock { rows, rl, v: &mut *v, at, stride: gr.cin * tc });
            }
        }
    });
}

struct GradBlock<'a, T> {
    /// The tile row's 2 staged gradient rows, `rl` apart.
    rows: &'a [T],
    rl: usize,
    m: &'a mut [T],
    at: usize,
    stride: usize,
}

impl<T: GemmElement> Block for GradBlock<'_, T> {
    #[inline(always)]
    fn run<const L: usize>(&mut self, b0: usize) {
        let rl = self.rl;
        let seg = &self.rows[2 * b0..rl + 2 * b0 + 2 * L];
        let out = lanes::<T, L, 16>(|l, out| {
            let (g00, g01, g10, g11) = (seg[2 * l], seg[2 * l + 1], seg[rl + 2 * l], seg[rl + 2 * l + 1]);
            // c = A g (4x2), then c Aᵀ (4x4).
            let c = [[g00, g01], [g00 + g10, g01 + g11], [g00 - g10, g01 - g11], [-g10, -g11]];
            for (i, [p, q]) in c.into_iter().enumerate() {
                out[4 * i] = p;
                out[4 * i + 1] = p + q;
                out[4 * i + 2] = p - q;
                out[4 * i + 3] = -q;
            }
        });
        scatter(&out, self.m, self.at + b0, self.stride);
    }
}

/// `A dY Aᵀ` of the 2x2 gradient tiles of the chunk's tile rows of the destination planes
/// `gy`, into `m` (`[16][cout][tiles]`).
pub(super) fn grad_transform<T: GemmElement>(
    gy: &[T],
    gr: &Grid,
    chunk: (usize, usize),
    m: &mut [T],
    stage: &mut Vec<T>,
) {
    let tc = (chunk.1 - chunk.0) * gr.tw;
    let (rl, plane) = (2 * gr.tw, gr.oh * gr.ow);
    for_each_segment(gr, chunk, |img, t0, t1, k0| {
        let st = scratch(stage, 2 * (t1 - t0) * rl);
        st.fill(T::zero());
        for o in 0..gr.cout {
            let gp = &gy[(img * gr.cout + o) * plane..][..plane];
            stage_rows(gp, (gr.oh, gr.ow), (2 * t0) as isize, 0, rl, st);
            for tr in 0..t1 - t0 {
                let rows = &st[2 * tr * rl..][..2 * rl];
                let at = o * tc + (k0 + tr) * gr.tw;
                for_each_block(gr.tw, &mut GradBlock { rows, rl, m: &mut *m, at, stride: gr.cout * tc });
            }
        }
    });
}

struct OutputBlock<'a, T> {
    m: &'a [T],
    at: usize,
    stride: usize,
    /// The tile row's first output row; the second follows `ow` later.
    y: *mut T,
    ow: usize,
    /// Whether the tile row's second output row exists.
    two_rows: bool,
}

impl<T: GemmElement> Block for OutputBlock<'_, T> {
    #[inline(always)]
    fn run<const L: usize>(&mut self, b0: usize) {
        let mm: [[T; L]; 16] = std::array::from_fn(|xi| {
            let at = self.at + xi * self.stride + b0;
            self.m[at..at + L].try_into().expect("block of L tiles")
        });
        // s = Aᵀ m (2x4), then s A (2x2); out[2a + b] is output row a, column b of each tile.
        let out = lanes::<T, L, 4>(|l, out| {
            let m = |xi: usize| mm[xi][l];
            let s0: [T; 4] = std::array::from_fn(|j| m(j) + m(4 + j) + m(8 + j));
            let s1: [T; 4] = std::array::from_fn(|j| m(4 + j) - m(8 + j) - m(12 + j));
            out[0] = s0[0] + s0[1] + s0[2];
            out[1] = s0[1] - s0[2] - s0[3];
            out[2] = s1[0] + s1[1] + s1[2];
            out[3] = s1[1] - s1[2] - s1[3];
        });
        let full = 2 * (b0 + L) <= self.ow;
        for a in 0..1 + self.two_rows as usize {
            let (e, o) = (&out[2 * a], &out[2 * a + 1]);
            // SAFETY: the row has `ow` elements; columns past it are skipped.
            unsafe {
                let row = self.y.add(a * self.ow + 2 * b0);
                if full {
                    for l in 0..L {
                        *row.add(2 * l) = e[l];
                        *row.add(2 * l + 1) = o[l];
                    }
                } else {
                    for l in 0..L {
                        let col = 2 * (b0 + l);
                        if col < self.ow {
                            *row.add(2 * l) = e[l];
                        }
                        if col + 1 < self.ow {
                            *row.add(2 * l + 1) = o[l];
                        }
                    }
                }
            }
        }
    }
}

/// `Aᵀ m A` of the products `m` (`[16][cout][tiles]`) of the chunk's tile rows, written into
/// the destination planes at `y`.
///
/// # Safety
/// `y` must address the `[N, cout, oh, ow]` destination; no other thread may touch the output
/// rows of these tile rows during the call.
pub(super) unsafe fn output_transform<T: GemmElement>(m: &[T], gr: &Grid, chunk: (usize, usize), y: SendPtr<T>) {
    let tc = (chunk.1 - chunk.0) * gr.tw;
    for_each_segment(gr, chunk, |img, t0, t1, k0| {
        for o in 0..gr.cout {
            let plane = y.get().add((img * gr.cout + o) * gr.oh * gr.ow);
            for tr in 0..t1 - t0 {
                let orow = 2 * (t0 + tr);
                let mut block = OutputBlock {
                    m,
                    at: o * tc + (k0 + tr) * gr.tw,
                    stride: gr.cout * tc,
                    y: plane.add(orow * gr.ow),
                    ow: gr.ow,
                    two_rows: orow + 1 < gr.oh,
                };
                for_each_block(gr.tw, &mut block);
            }
        }
    });
}
