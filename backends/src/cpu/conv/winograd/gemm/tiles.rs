//! The tile transforms of Winograd F(2x2, 3x3), a tile row at a time: input tiles `Bᵀ d B`,
//! gradient tiles `A dY Aᵀ` and output tiles `Aᵀ m A`.
//!
//! The rows a chunk needs are first staged into a zero-bordered buffer (so padding costs no
//! branches), then each tile row is cut into blocks of 16, 8, 4, 2 and 1 tiles whose widths are
//! compile-time constants: the transforms are element-wise over fixed-size arrays, which the
//! compiler vectorizes, and every copy has a known length.

use super::grid::Grid;
use crate::cpu::conv::common::scratch;
use crate::cpu::gemm::{GemmElement, SendPtr};
use crate::cpu::isa::use_avx512;

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

#[inline(always)]
fn add<T: GemmElement, const L: usize>(a: [T; L], b: [T; L]) -> [T; L] {
    let mut r = a;
    for l in 0..L {
        r[l] = a[l] + b[l];
    }
    r
}

#[inline(always)]
fn sub<T: GemmElement, const L: usize>(a: [T; L], b: [T; L]) -> [T; L] {
    let mut r = a;
    for l in 0..L {
        r[l] = a[l] - b[l];
    }
    r
}

#[inline(always)]
fn neg<T: GemmElement, const L: usize>(a: [T; L]) -> [T; L] {
    let mut r = a;
    for l in 0..L {
        r[l] = -a[l];
    }
    r
}

/// `[seg[off], seg[off + 2], ..., seg[off + 2 (L - 1)]]`: one column of `L` tiles that start
/// two columns apart.
#[inline(always)]
fn every_other<T: GemmElement, const L: usize>(seg: &[T], off: usize) -> [T; L] {
    let s = &seg[off..off + 2 * L - 1];
    let mut r = [T::zero(); L];
    for l in 0..L {
        r[l] = s[2 * l];
    }
    r
}

/// Stores `o` at `dst[at..at + L]`.
#[inline(always)]
fn put<T: GemmElement, const L: usize>(dst: &mut [T], at: usize, o: &[T; L]) {
    dst[at..at + L].copy_from_slice(o);
}

/// Each image's run of tile rows `t0..t1` inside the chunk of tile rows `r0..r1`, as
/// `(img, t0, t1, k0)` with `k0` the position of tile row `t0` within the chunk.
#[inline(always)]
fn segments(gr: &Grid, (r0, r1): (usize, usize)) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let th = gr.th;
    let mut r = r0;
    std::iter::from_fn(move || {
        (r < r1).then(|| {
            let img = r / th;
            let end = r1.min((img + 1) * th);
            let seg = (img, r % th, r % th + (end - r), r - r0);
            r = end;
            seg
        })
    })
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

/// `d B` of one row of `L` input tiles (`row` starts at the first tile's first column).
#[inline(always)]
fn row_b<T: GemmElement, const L: usize>(row: &[T]) -> [[T; L]; 4] {
    let row = &row[..2 * L + 2];
    let d: [[T; L]; 4] = [every_other(row, 0), every_other(row, 1), every_other(row, 2), every_other(row, 3)];
    [sub(d[0], d[2]), add(d[1], d[2]), sub(d[2], d[1]), sub(d[1], d[3])]
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
        // r[i][j] = (d B)[i][j] for the L tiles, d[i][j] being row i, column j of a tile.
        let rows = &self.rows[2 * b0..];
        let rl = self.rl;
        let r = [row_b::<T, L>(rows), row_b(&rows[rl..]), row_b(&rows[2 * rl..]), row_b(&rows[3 * rl..])];
        // Bᵀ r.
        let at = self.at + b0;
        for j in 0..4 {
            put(self.v, at + j * self.stride, &sub(r[0][j], r[2][j]));
            put(self.v, at + (4 + j) * self.stride, &add(r[1][j], r[2][j]));
            put(self.v, at + (8 + j) * self.stride, &sub(r[2][j], r[1][j]));
            put(self.v, at + (12 + j) * self.stride, &sub(r[1][j], r[3][j]));
        }
    }
}

#[inline(always)]
fn input_transform_impl<T: GemmElement>(x: &[T], gr: &Grid, chunk: (usize, usize), v: &mut [T], stage: &mut Vec<T>) {
    let tc = (chunk.1 - chunk.0) * gr.tw;
    let (rl, plane) = (2 * gr.tw + 2, gr.h * gr.w);
    for (img, t0, t1, k0) in segments(gr, chunk) {
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
    }
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
        let (r0, r1) = (&self.rows[2 * b0..][..2 * L], &self.rows[self.rl + 2 * b0..][..2 * L]);
        let (g00, g01): ([T; L], [T; L]) = (every_other(r0, 0), every_other(r0, 1));
        let (g10, g11): ([T; L], [T; L]) = (every_other(r1, 0), every_other(r1, 1));
        // c = A g (4x2), then c Aᵀ (4x4).
        let c = [[g00, g01], [add(g00, g10), add(g01, g11)], [sub(g00, g10), sub(g01, g11)], [neg(g10), neg(g11)]];
        let at = self.at + b0;
        for (i, [p, q]) in c.into_iter().enumerate() {
            put(self.m, at + 4 * i * self.stride, &p);
            put(self.m, at + (4 * i + 1) * self.stride, &add(p, q));
            put(self.m, at + (4 * i + 2) * self.stride, &sub(p, q));
            put(self.m, at + (4 * i + 3) * self.stride, &neg(q));
        }
    }
}

#[inline(always)]
fn grad_transform_impl<T: GemmElement>(gy: &[T], gr: &Grid, chunk: (usize, usize), m: &mut [T], stage: &mut Vec<T>) {
    let tc = (chunk.1 - chunk.0) * gr.tw;
    let (rl, plane) = (2 * gr.tw, gr.oh * gr.ow);
    for (img, t0, t1, k0) in segments(gr, chunk) {
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
    }
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
        let ld = |xi: usize| -> [T; L] {
            let at = self.at + xi * self.stride + b0;
            self.m[at..at + L].try_into().expect("block of L tiles")
        };
        let mm = [
            ld(0),
            ld(1),
            ld(2),
            ld(3),
            ld(4),
            ld(5),
            ld(6),
            ld(7),
            ld(8),
            ld(9),
            ld(10),
            ld(11),
            ld(12),
            ld(13),
            ld(14),
            ld(15),
        ];
        // s = Aᵀ m (2x4), then s A (2x2); out[2a + b] is output row a, column b of each tile.
        let col0 = |j: usize| add(add(mm[j], mm[4 + j]), mm[8 + j]);
        let col1 = |j: usize| sub(sub(mm[4 + j], mm[8 + j]), mm[12 + j]);
        let (s0, s1) = ([col0(0), col0(1), col0(2), col0(3)], [col1(0), col1(1), col1(2), col1(3)]);
        let out = [
            add(add(s0[0], s0[1]), s0[2]),
            sub(sub(s0[1], s0[2]), s0[3]),
            add(add(s1[0], s1[1]), s1[2]),
            sub(sub(s1[1], s1[2]), s1[3]),
        ];
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
#[inline(always)]
unsafe fn output_transform_impl<T: GemmElement>(m: &[T], gr: &Grid, chunk: (usize, usize), y: SendPtr<T>) {
    let tc = (chunk.1 - chunk.0) * gr.tw;
    for (img, t0, t1, k0) in segments(gr, chunk) {
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
    }
}

/// Defines `$name`, which runs `$imp` (an `#[inline(always)]` function) compiled with AVX-512
/// enabled when the CPU has it, so the fixed-size lane loops become 512-bit vector code, and
/// as built otherwise.
macro_rules! multiversion {
    ($(#[$doc:meta])* $vis:vis [$($unsafe:tt)?] fn $name:ident / $avx:ident => $imp:ident ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        $vis $($unsafe)? fn $name<T: GemmElement>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if use_avx512() {
                // SAFETY: the CPU has AVX-512F (checked); the caller upholds `$imp`'s contract.
                return unsafe { $avx($($arg),*) };
            }
            #[allow(unused_unsafe)]
            // SAFETY: the caller upholds `$imp`'s contract.
            unsafe { $imp($($arg),*) }
        }

        /// # Safety
        /// The CPU must have AVX-512F, and the caller must uphold the transform's contract.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn $avx<T: GemmElement>($($arg: $ty),*) {
            #[allow(unused_unsafe)]
            unsafe { $imp($($arg),*) }
        }
    };
}

multiversion!(
    /// `Bᵀ d B` of the source tiles of the chunk's tile rows, into `v` (`[16][cin][tiles]`).
    pub(super) [] fn input_transform / input_transform_avx512 => input_transform_impl(
        x: &[T], gr: &Grid, chunk: (usize, usize), v: &mut [T], stage: &mut Vec<T>
    )
);

multiversion!(
    /// `A dY Aᵀ` of the 2x2 gradient tiles of the chunk's tile rows of the destination planes
    /// `gy`, into `m` (`[16][cout][tiles]`).
    pub(super) [] fn grad_transform / grad_transform_avx512 => grad_transform_impl(
        gy: &[T], gr: &Grid, chunk: (usize, usize), m: &mut [T], stage: &mut Vec<T>
    )
);

multiversion!(
    /// `Aᵀ m A` of the products `m` (`[16][cout][tiles]`) of the chunk's tile rows, written
    /// into the destination planes at `y`.
    ///
    /// # Safety
    /// As for `output_transform_impl`.
    pub(super) [unsafe] fn output_transform / output_transform_avx512 => output_transform_impl(
        m: &[T], gr: &Grid, chunk: (usize, usize), y: SendPtr<T>
    )
);
