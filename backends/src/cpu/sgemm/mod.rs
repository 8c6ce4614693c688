//! Lamina's own f32 GEMM for x86-64: cache-blocked packing and micro-kernels for AVX-512 or
//! AVX2 + FMA, chosen at run time ([`Isa::detect`]). Machines with neither use
//! `matrixmultiply` (see `cpu::gemm`).
//!
//! Loop nest (Goto/BLIS style, one thread): for each block of `NC` columns and `KC` steps of
//! `k`, `B` is packed once (`KC x NC`, sized for the L2 cache); for each block of `MC` rows `A`
//! is packed; then every `MR`-row panel of `A` (kept in L1) sweeps all `NR`-column panels of `B`.
//! Packing buffers are per thread and reused, so a call allocates nothing after the first.

pub(crate) mod bf16;
mod kernels;
#[cfg(test)]
mod naive_check;
mod pack;

use kernels::{Avx2, Avx512, MicroKernel};
use std::cell::RefCell;
use std::sync::OnceLock;

/// Steps of `k` per packed block.
const KC: usize = 256;
/// Rows of `A` per packed block (a multiple of both kernels' `MR`).
const MC: usize = 144;
/// Columns of `B` per packed block at most (a multiple of both kernels' `NR`); see [`col_block`].
const NC: usize = 1024;
/// Floats of packed `B` per block at most (768 KiB: within the 1 MiB L2 of the AVX-512 cores
/// this targets, with room for `A`'s panel).
const B_BLOCK: usize = 192 * 1024;

/// The instruction set a micro-kernel needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F: the `8 x 32` kernel.
    Avx512,
    /// AVX2 + FMA: the `6 x 16` kernel.
    Avx2,
}

impl Isa {
    /// The best kernel this CPU runs, if any (detected once).
    pub(crate) fn detect() -> Option<Isa> {
        static ISA: OnceLock<Option<Isa>> = OnceLock::new();
        *ISA.get_or_init(|| {
            if is_x86_feature_detected!("avx512f") {
                Some(Isa::Avx512)
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                Some(Isa::Avx2)
            } else {
                None
            }
        })
    }

    /// Whether this CPU can run the kernel for `self`.
    #[cfg(test)]
    fn supported(self) -> bool {
        match self {
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        }
    }
}

thread_local! {
    /// This thread's packing buffers for `A` and `B`.
    static PACK: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A 64-byte aligned pointer to at least `len` words of `buf` (grown as needed; words of 4
/// bytes).
fn aligned<W: Copy + Default>(buf: &mut Vec<W>, len: usize) -> *mut W {
    if buf.len() < len + 16 {
        buf.resize(len + 16, W::default());
    }
    let p = buf.as_mut_ptr();
    // SAFETY: the offset is below 16 floats, inside the buffer.
    unsafe { p.add(p.align_offset(64)) }
}

/// A read-only strided matrix: element `(i, j)` at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operand {
    /// Element `(0, 0)`.
    pub ptr: *const f32,
    /// Row stride in elements.
    pub rs: isize,
    /// Column stride in elements.
    pub cs: isize,
}

impl Operand {
    /// Pointer to element `(i, j)`.
    ///
    /// # Safety
    /// The element must lie inside the matrix's allocation.
    unsafe fn at(self, i: usize, j: usize) -> *const f32 {
        self.ptr.offset(i as isize * self.rs + j as isize * self.cs)
    }
}

/// `C = alpha * A B + beta * C + bias` with the kernel for `isa`; `C` is row-major with row
/// stride `ldc`; `bias` is null (no bias) or `n` floats added to every row of `C` (a linear
/// layer's bias, added as each row panel of `C` is started rather than in a pass of its own).
/// With `beta == 0` the old `C` is never read: it may hold NaN or be uninitialized.
///
/// # Safety
/// The CPU must support `isa`; `a` (`m x k`) and `b` (`k x n`) must be readable, and `bias`
/// when not null; `c` must address `m` rows of `n` writable floats that alias none of them.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
) {
    match isa {
        Isa::Avx512 => blocked::<Avx512>(m, k, n, alpha, a, b, beta, bias, c, ldc, in_place::<Avx512>(a, k, n)),
        Isa::Avx2 => blocked::<Avx2>(m, k, n, alpha, a, b, beta, bias, c, ldc, in_place::<Avx2>(a, k, n)),
    }
}

/// `C = beta * C + bias` over `rows x n` (`beta == 0` writes without reading `C`; a null
/// `bias` adds nothing): what a product starts from when its first block of `k` is to be
/// accumulated onto `C`, or the whole result when there is nothing to multiply.
///
/// # Safety
/// `c` must address `rows` rows of `n` writable floats with row stride `ldc`; `bias`, when not
/// null, `n` readable floats.
unsafe fn start_c(rows: usize, n: usize, beta: f32, bias: *const f32, c: *mut f32, ldc: usize) {
    for i in 0..rows {
        let row = c.add(i * ldc);
        match (bias.is_null(), beta == 0.0) {
            (true, true) => std::ptr::write_bytes(row, 0, n),
            (false, true) => std::ptr::copy_nonoverlapping(bias, row, n),
            (true, false) => (0..n).for_each(|j| *row.add(j) *= beta),
            (false, false) => (0..n).for_each(|j| *row.add(j) = beta * *row.add(j) + *bias.add(j)),
        }
    }
}

/// Products at most this many columns wide read `A` in place when one of its strides is 1
/// (with a kernel that can, [`Panels::DIRECT_A`]): each packed value of `A` would serve at most
/// `n / NR` tiles, too few to repay writing and reading it again (a transformer's `x Wᵀ` with 192
/// outputs, its input gradients, its weight gradients `gᵀ x` read as column-major `A`).
const DIRECT_A_COLS: usize = 256;
/// ... and at least this deep: over fewer steps of `k` the in-place tile's fixed costs (masked
/// stores, strided row offsets) outweigh the packing saved (the Winograd engines' products
/// over 16-64 channels ran 7-17 % slower in place, over 128 channels up to 10 %).
const DIRECT_A_MIN_K: usize = 192;

/// Whether the loop nest of kernel `K` reads `a` in place for an `m x k` by `k x n` product (see
/// [`DIRECT_A_COLS`]): the one place this is chosen.
fn in_place<K: Panels>(a: Operand, k: usize, n: usize) -> bool {
    K::DIRECT_A && n <= DIRECT_A_COLS && k >= DIRECT_A_MIN_K && (a.rs == 1 || a.cs == 1)
}

/// [`Panels::direct`] for kernels that only read packed panels: packs the `rows x kc` panel of
/// `A` on the stack and runs [`Panels::tile`] or [`Panels::edge`].
///
/// # Safety
/// As [`Panels::direct`].
#[allow(clippy::too_many_arguments)]
unsafe fn direct_by_packing<K: Panels>(
    kc: usize,
    a: *const f32,
    (rs, cs): (isize, isize),
    b: *const K::Word,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    alpha: f32,
    beta: f32,
) {
    // Room for 8 rows of a block of `k` of every kernel (8 x 256 floats, 8 x 256 bf16 pairs).
    let mut panel = [K::Word::default(); 8 * KC];
    let kw = kc.div_ceil(K::STEPS);
    assert!(K::MR <= 8 && kc <= K::KC && K::MR * kw <= panel.len(), "a panel of {} x {kc} on the stack", K::MR);
    K::pack_a(rows, kc, a, rs, cs, panel.as_mut_ptr());
    if rows == K::MR && cols == K::NR {
        K::tile(kw, panel.as_ptr(), b, c, ldc, alpha, beta)
    } else {
        K::edge(kw, panel.as_ptr(), b, c, ldc, (rows, cols), alpha, beta)
    }
}

/// Columns of `B` per packed block for `n` columns and `kc` steps of `k`: as many as fit
/// [`B_BLOCK`] (and [`NC`]), in blocks of about equal width (multiples of `nr`), so that `n` just
/// above a block is not split into a full block and a sliver (576 columns: one block, not
/// 512 + 64, which would pack `A` twice for a thin second pass).
fn col_block(n: usize, kc: usize, nr: usize) -> usize {
    let most = (B_BLOCK / kc.max(1)).min(NC) / nr * nr;
    let most = most.max(nr);
    n.div_ceil(n.div_ceil(most)).next_multiple_of(nr)
}

/// A micro-kernel with its packed-panel format: what the loop nest ([`blocked`]) needs. The
/// f32 kernels ([`MicroKernel`]) pack one float per step of `k`; the bf16 kernel
/// ([`bf16::Bf16`]) one word per pair of steps.
pub(super) trait Panels {
    /// One packed value.
    type Word: Copy + Default + 'static;
    /// Rows of the tile.
    const MR: usize;
    /// Columns of the tile.
    const NR: usize;
    /// Steps of `k` per packed block.
    const KC: usize;
    /// Steps of `k` per packed word.
    const STEPS: usize;

    /// Packs `mc x kc` of `A` into `MR`-row panels.
    ///
    /// # Safety
    /// `a` must address the block with these strides; `dst` must hold the panels.
    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, dst: *mut Self::Word);

    /// Packs `kc x nc` of `B` into `NR`-column panels.
    ///
    /// # Safety
    /// `b` must address the block with these strides; `dst` must hold the panels.
    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, dst: *mut Self::Word);

    /// The full tile from `kw` packed words of `k` per row and column (see
    /// [`MicroKernel::tile`]).
    ///
    /// # Safety
    /// As [`MicroKernel::tile`].
    unsafe fn tile(
        kw: usize,
        a: *const Self::Word,
        b: *const Self::Word,
        c: *mut f32,
        ldc: usize,
        alpha: f32,
        beta: f32,
    );

    /// The tile cut by the edge of `C` (see [`MicroKernel::edge`]).
    ///
    /// # Safety
    /// As [`MicroKernel::edge`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn edge(
        kw: usize,
        a: *const Self::Word,
        b: *const Self::Word,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    );

    /// Whether [`Panels::direct`] reads `A` in place, so the loop nest may skip packing it.
    const DIRECT_A: bool;

    /// The `rows x cols` corner of a tile (full tiles included) over `kc` steps of `k` (at most
    /// [`Panels::KC`]) from packed `B`, with `A` read where it lies (element `(i, p)` at
    /// `a + i * rs + p * cs`): see [`MicroKernel::direct`].
    ///
    /// # Safety
    /// As [`MicroKernel::direct`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn direct(
        kc: usize,
        a: *const f32,
        strides: (isize, isize),
        b: *const Self::Word,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    );

    /// Runs `f` on this thread's packing buffers for `A` and `B`.
    fn with_buffers<R>(f: impl FnOnce(&mut Vec<Self::Word>, &mut Vec<Self::Word>) -> R) -> R;
}

impl<K: MicroKernel> Panels for K {
    type Word = f32;
    const MR: usize = K::MR;
    const NR: usize = K::NR;
    const KC: usize = KC;
    const STEPS: usize = 1;

    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, dst: *mut f32) {
        pack::pack_a(K::MR, mc, kc, a, rs, cs, dst)
    }

    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, dst: *mut f32) {
        pack::pack_b(K::NR, kc, nc, b, rs, cs, dst)
    }

    unsafe fn tile(kw: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, alpha: f32, beta: f32) {
        <K as MicroKernel>::tile(kw, a, b, c, ldc, alpha, beta)
    }

    unsafe fn edge(
        kw: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    ) {
        <K as MicroKernel>::edge(kw, a, b, c, ldc, corner, alpha, beta)
    }

    const DIRECT_A: bool = K::DIRECT_A;

    unsafe fn direct(
        kc: usize,
        a: *const f32,
        strides: (isize, isize),
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        corner: (usize, usize),
        alpha: f32,
        beta: f32,
    ) {
        <K as MicroKernel>::direct(kc, a, strides, b, c, ldc, corner, alpha, beta)
    }

    fn with_buffers<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
        PACK.with(|bufs| {
            let (a, b) = &mut *bufs.borrow_mut();
            f(a, b)
        })
    }
}

/// The blocked loop nest for one micro-kernel (see the module docs); `C` and `bias` as in
/// [`sgemm`] (with nothing to multiply, `C = beta * C + bias`). With a bias, each `MR`-row
/// panel of `C` is set to `beta * C + bias` just before its tiles of the first block of `k` run
/// (the panel is then in L1), and those tiles accumulate onto it. With `a_in_place` the tiles
/// read `A` where it lies ([`Panels::direct`]) instead of from packed panels (see [`in_place`]).
#[allow(clippy::too_many_arguments)]
unsafe fn blocked<K: Panels>(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    a_in_place: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        start_c(m, n, beta, bias, c, ldc);
        return;
    }
    let (mr, nr) = (K::MR, K::NR);
    // Packed words per row or column of a full block of `k`.
    let words = |kc: usize| kc.div_ceil(K::STEPS);
    K::with_buffers(|abuf, bbuf| {
        let ap = aligned(abuf, MC.min(m.next_multiple_of(mr)) * words(K::KC.min(k)));
        let ncb = col_block(n, words(K::KC.min(k)), nr);
        let bp = aligned(bbuf, ncb * words(K::KC.min(k)));
        for jc in (0..n).step_by(ncb) {
            let nc = ncb.min(n - jc);
            for pc in (0..k).step_by(K::KC) {
                let kc = K::KC.min(k - pc);
                let kw = words(kc);
                // The first block of `k` starts from `beta * C` (or from the bias row), the
                // others accumulate.
                let with_bias = pc == 0 && !bias.is_null();
                let beta_p = if pc == 0 && !with_bias { beta } else { 1.0 };
                K::pack_b(kc, nc, b.at(pc, jc), b.rs, b.cs, bp);
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    if !a_in_place {
                        K::pack_a(mc, kc, a.at(ic, pc), a.rs, a.cs, ap);
                    }
                    for ir in (0..mc).step_by(mr) {
                        let rows = mr.min(mc - ir);
                        if with_bias {
                            start_c(rows, nc, beta, bias.add(jc), c.add((ic + ir) * ldc + jc), ldc);
                        }
                        let apanel = ap.add(ir * kw);
                        for jr in (0..nc).step_by(nr) {
                            let cols = nr.min(nc - jr);
                            let bpanel = bp.add(jr * kw);
                            let ct = c.add((ic + ir) * ldc + jc + jr);
                            if a_in_place {
                                let ad = a.at(ic + ir, pc);
                                K::direct(kc, ad, (a.rs, a.cs), bpanel, ct, ldc, (rows, cols), alpha, beta_p);
                            } else if rows == mr && cols == nr {
                                K::tile(kw, apanel, bpanel, ct, ldc, alpha, beta_p);
                            } else {
                                K::edge(kw, apanel, bpanel, ct, ldc, (rows, cols), alpha, beta_p);
                            }
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::naive_check::{self, Case, Reference};
    use super::*;

    /// Runs one product with `isa` and checks it against a naive f64 loop (see
    /// [`naive_check::check`]).
    #[allow(clippy::too_many_arguments)]
    fn check(isa: Isa, m: usize, k: usize, n: usize, ta: bool, tb: bool, alpha: f32, beta: f32) {
        for bias in [false, true] {
            check_case(isa, Case { m, k, n, ta, tb, alpha, beta, bias });
        }
    }

    /// The case through [`sgemm`], then through the loop nest with `A` packed and with `A` read
    /// in place (each kernel's [`MicroKernel::direct`], whichever [`sgemm`] would choose).
    fn check_case(isa: Isa, case: Case) {
        let reference = Reference { round: |x| x, tol: |k, want, _| 1e-5 * (k as f64 + 1.0) * (1.0 + want.abs()) };
        let Case { m, k, n, alpha, beta, .. } = case;
        naive_check::check(case, &reference, &format!("{isa:?}"), |a, b, bias, c, ldc| {
            // SAFETY: the check's operands, bias and `C` are sized for `case`; `c` is a distinct
            // buffer.
            unsafe { sgemm(isa, m, k, n, alpha, a, b, beta, bias, c, ldc) }
        });
        for in_place in [false, true] {
            naive_check::check(case, &reference, &format!("{isa:?} A in place {in_place}"), |a, b, bias, c, ldc| {
                // SAFETY: as above.
                unsafe {
                    match isa {
                        Isa::Avx512 => blocked::<Avx512>(m, k, n, alpha, a, b, beta, bias, c, ldc, in_place),
                        Isa::Avx2 => blocked::<Avx2>(m, k, n, alpha, a, b, beta, bias, c, ldc, in_place),
                    }
                }
            });
        }
    }

    fn isas() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2].into_iter().filter(|i| i.supported()).collect()
    }

    /// Column blocks cover `n` in equal widths, multiples of `nr`, within the L2 budget: 576
    /// columns stay one block, wide products split evenly.
    #[test]
    fn column_blocks_are_even_and_fit() {
        assert_eq!(col_block(576, 192, 32), 576);
        assert_eq!(col_block(576, 256, 32), 576);
        assert_eq!(col_block(2048, 256, 32), 768 - 64);
        for n in [1usize, 31, 32, 513, 700, 1000, 2048, 5000] {
            for kc in [1usize, 7, 192, 256] {
                for nr in [16usize, 32] {
                    let b = col_block(n, kc, nr);
                    let blocks = n.div_ceil(b);
                    assert!(b.is_multiple_of(nr) && b <= NC.max(nr), "n {n} kc {kc} nr {nr}: {b}");
                    assert!(b * kc <= B_BLOCK.max(nr * kc), "n {n} kc {kc} nr {nr}: {b}");
                    // Even: rounding each block up to nr leaves the last one short by less than
                    // nr per block.
                    assert!(n - (blocks - 1) * b + blocks * nr > b, "n {n} kc {kc} nr {nr}: {b}");
                }
            }
        }
    }

    /// `A` is read in place exactly for thin, deep products with a unit stride in `A` (the
    /// shapes of a ViT's linear layers), never by the bf16 kernel.
    #[test]
    fn a_is_read_in_place_for_thin_deep_products() {
        let p = std::ptr::null();
        let (row_major, col_major, strided) = (
            Operand { ptr: p, rs: 192, cs: 1 },
            Operand { ptr: p, rs: 1, cs: 576 },
            Operand { ptr: p, rs: 2, cs: 400 },
        );
        assert!(in_place::<Avx512>(row_major, 192, 192) && in_place::<Avx512>(col_major, 8320, 192));
        assert!(!in_place::<Avx512>(strided, 192, 192), "no unit stride");
        assert!(!in_place::<Avx512>(row_major, 192, 576), "wide: packing repays itself");
        assert!(!in_place::<Avx512>(row_major, 64, 192), "shallow: the packed tile is cheaper");
        assert!(!in_place::<Avx2>(row_major, 192, 192) && !in_place::<bf16::Bf16>(row_major, 192, 192));
    }

    #[test]
    fn odd_shapes_match_naive() {
        for isa in isas() {
            for m in 1..=37 {
                for (k, n) in [(1, 1), (3, 37), (37, 5), (16, 32), (9, 33), (29, 17)] {
                    check(isa, m, k, n, false, false, 1.0, 0.0);
                }
            }
            for n in 1..=37 {
                for k in 1..=37 {
                    check(isa, 7, k, n, n % 2 == 0, k % 3 == 0, 1.0, 0.0);
                }
            }
        }
    }

    /// Every edge shape of the tiles (1-8 rows by 1-32 columns past full tiles, both halves
    /// of the AVX-512 tile), with alpha and beta, as in a 65 x 65 attention product.
    #[test]
    fn edge_tiles_match_naive() {
        for isa in isas() {
            for m in [1usize, 2, 5, 8, 9, 12, 15, 16, 65] {
                for n in [1usize, 3, 15, 16, 17, 31, 32, 33, 47, 63, 65] {
                    check(isa, m, 64, n, false, m % 2 == 1, 0.5, 0.0);
                    check(isa, m, 7, n, n % 2 == 1, false, 1.5, -0.25);
                }
            }
        }
    }

    #[test]
    fn transposed_operands_alpha_beta() {
        for isa in isas() {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25), (1.0, 1.0)] {
                    check(isa, 13, 11, 35, ta, tb, alpha, beta);
                    check(isa, 37, 29, 9, ta, tb, alpha, beta);
                }
            }
        }
    }

    #[test]
    fn blocks_larger_than_the_caches() {
        // Crosses KC, MC and NC with ragged edges in every dimension.
        for isa in isas() {
            check(isa, MC + 9, KC + 7, NC + 21, false, false, 1.0, 0.0);
            check(isa, MC + 9, 2 * KC + 1, 45, true, true, 0.5, 1.0);
        }
    }

    #[test]
    fn zero_k_or_alpha_scales_c() {
        for isa in isas() {
            check(isa, 5, 0, 7, false, false, 1.0, 0.0);
            check(isa, 5, 0, 7, false, false, 1.0, 0.5);
            check(isa, 5, 4, 7, false, false, 0.0, 2.0);
        }
    }
}
