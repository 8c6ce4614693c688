//! The one place the CPU backend multiplies matrices, so the GEMM can be swapped.
//!
//! [`gemm`] is the single entry point: f32 runs Lamina's own blocked kernels (`cpu::sgemm`,
//! AVX-512 or AVX2 + FMA chosen at run time; bf16 operands on AVX512_BF16 when
//! [`super::set_matmul_precision`] asks for them) where the CPU has them, everything else (f64, other
//! CPUs) runs `matrixmultiply` (single-threaded); [`gemm_par`] splits one product over rayon's threads by output panels. A
//! kernel that is already inside a parallel loop calls [`gemm`], never [`gemm_par`]: one level
//! of parallelism.

use rayon::prelude::*;

/// A float type `matrixmultiply` can multiply.
pub(crate) trait GemmElement: crate::FloatElement {
    /// `C = alpha * A B + beta * C + bias` with arbitrary (row, column) strides in elements;
    /// `bias` is null or `n` values added to every row of `C`.
    ///
    /// # Safety
    /// The pointers must address valid `m x k`, `k x n` and `m x n` matrices with these strides
    /// (and `n` values at `bias` when it is not null), and `c` must not alias the others.
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        bias: *const Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    /// The slice as `f32` when `Self` is `f32` (for the f32-only vector kernels), else `None`.
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }

    /// The slice as mutable `f32` when `Self` is `f32`, else `None`.
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }

    /// `f32` values as `Self` (the vector itself when `Self` is `f32`).
    fn from_f32_vec(v: Vec<f32>) -> Vec<Self> {
        v.into_iter().map(Self::from_f32).collect()
    }
}

impl GemmElement for f32 {
    #[inline]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        bias: *const f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if csc == 1 {
            use super::sgemm::{sgemm, Operand};
            let (oa, ob) = (Operand { ptr: a, rs: rsa, cs: csa }, Operand { ptr: b, rs: rsb, cs: csb });
            // Bf16 is only ever set where the CPU has the instructions (`set_matmul_precision`).
            if super::matmul_precision() == super::MatmulPrecision::Bf16 {
                return super::sgemm::bf16::gemm_bf16(m, k, n, alpha, oa, ob, beta, bias, c, rsc as usize);
            }
            if let Some(isa) = super::sgemm::Isa::detect() {
                return sgemm(isa, m, k, n, alpha, oa, ob, beta, bias, c, rsc as usize);
            }
        }
        let beta = start_with_bias(m, n, beta, bias, c, rsc, csc);
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }

    fn as_f32(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }

    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }

    fn from_f32_vec(v: Vec<f32>) -> Vec<f32> {
        v
    }
}

impl GemmElement for f64 {
    #[inline]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        bias: *const f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        let beta = start_with_bias(m, n, beta, bias, c, rsc, csc);
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

/// For the GEMMs without a bias epilogue (`matrixmultiply`): with a bias, sets
/// `C = beta * C + bias` (not reading `C` when `beta == 0`) and returns the `beta` (1) that
/// accumulates the product onto it; without, returns `beta` unchanged.
///
/// # Safety
/// As [`GemmElement::raw_gemm`]'s `c` and `bias`.
#[allow(clippy::too_many_arguments)]
unsafe fn start_with_bias<T: crate::FloatElement>(
    m: usize,
    n: usize,
    beta: T,
    bias: *const T,
    c: *mut T,
    rsc: isize,
    csc: isize,
) -> T {
    if bias.is_null() {
        return beta;
    }
    for i in 0..m {
        for j in 0..n {
            let d = c.offset(i as isize * rsc + j as isize * csc);
            let b = *bias.add(j);
            d.write(if beta == T::zero() { b } else { beta * d.read() + b });
        }
    }
    T::one()
}

/// A strided matrix operand: slice, starting offset, row stride and column stride (elements).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major matrix with `cols` columns starting at `offset`.
    #[allow(dead_code)]
    pub fn row_major(data: &'a [T], offset: usize, cols: usize) -> Self {
        MatRef { data, offset, rs: cols, cs: 1 }
    }

    /// Checks that an `rows x cols` matrix fits the slice.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// Panics unless `a` (`m x k`) and `b` (`k x n`) fit their slices and an `m x n` output with row
/// stride `ldc` fits `c_len` elements (an internal invariant: callers size them).
fn check_operands<T>((m, k, n): (usize, usize, usize), a: &MatRef<'_, T>, b: &MatRef<'_, T>, c_len: usize, ldc: usize) {
    assert!(
        a.fits(m, k) && b.fits(k, n) && (m == 0 || n == 0 || (m - 1) * ldc + n <= c_len),
        "gemm operands out of bounds"
    );
}

/// `C = alpha * A B + beta * C` on the calling thread. `c` is row-major `m x n` with row stride
/// `ldc` (elements). Panics only on an internal invariant violation (operands not fitting).
pub(crate) fn gemm<T: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    check_operands((m, k, n), &a, &b, c.len(), ldc);
    // SAFETY: bounds checked above; `c` is a unique borrow, so it aliases neither input.
    unsafe { gemm_unchecked(m, k, n, alpha, a, b, beta, RowBias::NONE, c.as_mut_ptr(), ldc) }
}

/// `C = alpha * A B` on the calling thread, written through a raw pointer: for outputs that are
/// strided blocks of a buffer other threads write other blocks of (`C` is never read).
///
/// # Safety
/// `c` must address `m` rows of `n` writable elements with row stride `ldc` that nothing else
/// reads or writes during the call. Panics if `a` or `b` do not fit their slices.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_to_ptr<T: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: *mut T,
    ldc: usize,
) {
    assert!(a.fits(m, k) && b.fits(k, n), "gemm operands out of bounds");
    gemm_unchecked(m, k, n, alpha, a, b, T::zero(), RowBias::NONE, c, ldc)
}

/// [`gemm`] writing through a raw output pointer, with an optional bias row added to every row
/// of `C` (see [`RowBias`]).
///
/// # Safety
/// `a` and `b` must fit (`m x k`, `k x n`), and the bias (`n` values) when there is one; `c`
/// must address `m` rows of `n` writable elements with row stride `ldc` that nothing else
/// reads or writes during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_unchecked<T: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    bias: RowBias<T>,
    c: *mut T,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    T::raw_gemm(
        m,
        k,
        n,
        alpha,
        a.data.as_ptr().add(a.offset),
        a.rs as isize,
        a.cs as isize,
        b.data.as_ptr().add(b.offset),
        b.rs as isize,
        b.cs as isize,
        beta,
        bias.0,
        c,
        ldc as isize,
        1,
    )
}

/// A row of `n` values added to every row of a product's output (a linear layer's bias), or
/// none (a null pointer). Internal to the unchecked GEMM entries, whose callers keep the row
/// alive and sized.
#[derive(Clone, Copy)]
pub(crate) struct RowBias<T>(*const T);
// SAFETY: only read, by the panels of one call, while the caller keeps the row alive.
unsafe impl<T> Send for RowBias<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for RowBias<T> {}

impl<T> RowBias<T> {
    /// No bias.
    const NONE: RowBias<T> = RowBias(std::ptr::null());

    /// The bias from column `j` on (for a panel of columns starting there).
    ///
    /// # Safety
    /// `j` must lie within the row when there is one.
    unsafe fn past_columns(self, j: usize) -> RowBias<T> {
        if self.0.is_null() {
            self
        } else {
            RowBias(self.0.add(j))
        }
    }
}

/// Work (multiply-adds) below which a product is not worth splitting across threads.
const PAR_MIN_WORK: usize = 1 << 20;

/// Like [`gemm`] but split over rayon's threads by panels of rows (or of columns when there
/// are more columns than rows), each panel an independent single-threaded [`gemm`].
pub(crate) fn gemm_par<T: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    check_operands((m, k, n), &a, &b, c.len(), ldc);
    // SAFETY: bounds checked above; `c` is a unique borrow, so it aliases neither input.
    unsafe { gemm_par_unchecked(m, k, n, alpha, a, b, beta, RowBias::NONE, c.as_mut_ptr(), ldc) }
}

/// `A B + bias` (a linear layer's forward: the `n`-value `bias` row added to every row) into a
/// new row-major `m x n` buffer, written without zero-filling it first and split over rayon's
/// threads as [`gemm_par`]. The bias is added where each panel of the output is started, in
/// cache, not in a pass of its own. Panics only on an internal invariant violation (operands
/// not fitting).
pub(crate) fn product_with_bias<T: GemmElement>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: &[T],
) -> Vec<T> {
    check_operands((m, k, n), &a, &b, m * n, n);
    assert!(bias.len() == n, "gemm bias of {} values for {n} columns", bias.len());
    let bias = RowBias(bias.as_ptr());
    let fill = |out: &mut [std::mem::MaybeUninit<T>]| {
        // SAFETY: bounds checked above; `out` is a fresh buffer of `m x n`, aliasing neither
        // input nor the bias, and with beta = 0 every element is written, never read.
        unsafe { gemm_par_unchecked(m, k, n, T::one(), a, b, T::zero(), bias, out.as_mut_ptr().cast::<T>(), n) }
    };
    // SAFETY: the product writes every element of the `m x n` output (a bias-only start when
    // `k == 0`).
    unsafe { super::strided::build(m * n, fill) }
}

/// [`gemm_par`] writing through a raw output pointer, with an optional bias row.
///
/// # Safety
/// As [`gemm_unchecked`]; with `beta == 0` the output may be uninitialized (it is only written).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_par_unchecked<T: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    bias: RowBias<T>,
    c: *mut T,
    ldc: usize,
) {
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < PAR_MIN_WORK {
        return gemm_unchecked(m, k, n, alpha, a, b, beta, bias, c, ldc);
    }
    let cptr = SendPtr(c);
    // Each panel packs the whole of the operand it does not split: row panels repeat B
    // (`k x n`) on every thread, column panels repeat A (`m x k`). Split the longer side, so the
    // smaller operand is the one repeated (a weight gradient `[C, B·T] x [B·T, D]` with
    // `D > C` would otherwise pack its large B once per thread).
    if m >= n || n < 32 * threads {
        // Row panels, multiples of the micro-kernel height.
        let panel = m.div_ceil(threads).next_multiple_of(8).min(m);
        (0..m.div_ceil(panel)).into_par_iter().for_each(|i| {
            let r0 = i * panel;
            let ap = MatRef { offset: a.offset + r0 * a.rs, ..a };
            // SAFETY: the panels write disjoint row ranges of `c` (the caller's contract).
            unsafe { gemm_unchecked(panel.min(m - r0), k, n, alpha, ap, b, beta, bias, cptr.get().add(r0 * ldc), ldc) };
        });
    } else {
        // Column panels: every thread writes a disjoint set of columns of the same rows.
        let panel = n.div_ceil(threads).next_multiple_of(16).min(n);
        (0..n.div_ceil(panel)).into_par_iter().for_each(|i| {
            let c0 = i * panel;
            let bp = MatRef { offset: b.offset + c0 * b.cs, ..b };
            // SAFETY: the panels write disjoint column ranges of `c` (the caller's contract); the
            // bias row, when there is one, holds `n > c0` values.
            unsafe {
                gemm_unchecked(
                    m,
                    k,
                    panel.min(n - c0),
                    alpha,
                    a,
                    bp,
                    beta,
                    bias.past_columns(c0),
                    cptr.get().add(c0),
                    ldc,
                )
            };
        });
    }
}

/// `batch` products `A_i B_i` (`m x k` times `k x n`, operands from `mats(i)`) into one new
/// row-major buffer of `batch` contiguous `m x n` results, written without zero-filling it
/// first: small products run one per thread, large ones one after the other, each split over
/// the threads.
pub(crate) fn batched_products<'a, T: GemmElement + 'a>(
    batch: usize,
    (m, k, n): (usize, usize, usize),
    mats: impl Fn(usize) -> (MatRef<'a, T>, MatRef<'a, T>) + Sync,
) -> Vec<T> {
    let total = batch * m * n;
    if total == 0 || k == 0 {
        return vec![T::zero(); total];
    }
    for i in 0..batch {
        let (a, b) = mats(i);
        assert!(a.fits(m, k) && b.fits(k, n), "gemm operands out of bounds");
    }
    let (one, zero) = (T::one(), T::zero());
    let products = |out: &mut [std::mem::MaybeUninit<T>]| {
        let c = SendPtr(out.as_mut_ptr().cast::<T>());
        if batch >= 2 * rayon::current_num_threads() && m * n * k < (1 << 22) {
            (0..batch).into_par_iter().for_each(|i| {
                let (a, b) = mats(i);
                // SAFETY: operands checked above; product i writes only its own m x n block,
                // and with beta = 0 the kernels never read the (uninitialized) output.
                unsafe { gemm_unchecked(m, k, n, one, a, b, zero, RowBias::NONE, c.get().add(i * m * n), n) };
            });
        } else {
            for i in 0..batch {
                let (a, b) = mats(i);
                // SAFETY: as above, one product at a time.
                unsafe { gemm_par_unchecked(m, k, n, one, a, b, zero, RowBias::NONE, c.get().add(i * m * n), n) };
            }
        }
    };
    // SAFETY: every element of the `total` is written by exactly one product.
    unsafe { super::strided::build(total, products) }
}

/// A raw pointer that may cross threads (the caller guarantees disjoint writes).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
// SAFETY: used only for disjoint writes coordinated by the caller.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the Send wrapper rather than the field).
    #[inline(always)]
    pub fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::values;

    /// The row-panel and column-panel splits on two threads give the single-threaded product
    /// (each panel is the same single-threaded GEMM, so the sums agree exactly), including a
    /// transposed `A` as in a weight gradient.
    #[test]
    fn split_products_match_one_thread() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        // (m, k, n): rows (m >= n), columns (n > m), and a narrow n that stays on rows.
        for (m, k, n, trans_a) in
            [(300, 70, 90, false), (40, 300, 200, true), (70, 500, 50, false), (9, 400, 333, true)]
        {
            let (a, b): (Vec<f32>, Vec<f32>) = (values(m * k, 1), values(k * n, 2));
            let am = if trans_a { MatRef { data: &a, offset: 0, rs: 1, cs: m } } else { MatRef::row_major(&a, 0, k) };
            let bm = MatRef::row_major(&b, 0, n);
            let mut one = vec![0f32; m * n];
            gemm(m, k, n, 1.0, am, bm, 0.0, &mut one, n);
            let mut two = vec![f32::NAN; m * n];
            pool.install(|| gemm_par(m, k, n, 1.0, am, bm, 0.0, &mut two, n));
            assert!(m * n * k >= PAR_MIN_WORK, "({m}, {k}, {n}) would not split");
            assert_eq!(one, two, "gemm_par ({m}, {k}, {n}, transposed A {trans_a})");
        }
    }

    /// Fresh products equal `gemm` into a zeroed buffer, on the path that runs many small
    /// products in parallel, on the one that splits each large product, and for empty sizes.
    #[test]
    fn batched_products_match_gemm() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for (batch, m, k, n) in [(9, 13, 7, 21), (2, 150, 90, 120), (3, 0, 4, 5), (2, 3, 0, 4)] {
            let (a, b): (Vec<f32>, Vec<f32>) = (values(batch * m * k + 1, 3), values(batch * k * n + 1, 4));
            let mats = |i: usize| (MatRef::row_major(&a, i * m * k, k), MatRef::row_major(&b, i * k * n, n));
            let got = pool.install(|| batched_products(batch, (m, k, n), mats));
            let mut want = vec![0f32; batch * m * n];
            for i in 0..batch {
                let (am, bm) = mats(i);
                gemm(m, k, n, 1.0, am, bm, 0.0, &mut want[i * m * n..(i + 1) * m * n], n);
            }
            assert_eq!(got, want, "batch {batch} of ({m}, {k}, {n})");
        }
    }
}
