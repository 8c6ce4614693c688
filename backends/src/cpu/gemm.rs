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
    /// `C = alpha * A B + beta * C` with arbitrary (row, column) strides in elements.
    ///
    /// # Safety
    /// The pointers must address valid `m x k`, `k x n` and `m x n` matrices with these strides,
    /// and `c` must not alias `a` or `b`.
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
                return super::sgemm::bf16::gemm_bf16(m, k, n, alpha, oa, ob, beta, c, rsc as usize);
            }
            if let Some(isa) = super::sgemm::Isa::detect() {
                return sgemm(isa, m, k, n, alpha, oa, ob, beta, c, rsc as usize);
            }
        }
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
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
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
    unsafe { gemm_unchecked(m, k, n, alpha, a, b, beta, c.as_mut_ptr(), ldc) }
}

/// [`gemm`] writing through a raw output pointer.
///
/// # Safety
/// `a` and `b` must fit (`m x k`, `k x n`); `c` must address `m` rows of `n` writable elements
/// with row stride `ldc` that nothing else reads or writes during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_unchecked<T: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
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
        c,
        ldc as isize,
        1,
    )
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
    unsafe { gemm_par_unchecked(m, k, n, alpha, a, b, beta, c.as_mut_ptr(), ldc) }
}

/// [`gemm_par`] writing through a raw output pointer.
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
    c: *mut T,
    ldc: usize,
) {
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < PAR_MIN_WORK {
        return gemm_unchecked(m, k, n, alpha, a, b, beta, c, ldc);
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
            unsafe { gemm_unchecked(panel.min(m - r0), k, n, alpha, ap, b, beta, cptr.get().add(r0 * ldc), ldc) };
        });
    } else {
        // Column panels: every thread writes a disjoint set of columns of the same rows.
        let panel = n.div_ceil(threads).next_multiple_of(16).min(n);
        (0..n.div_ceil(panel)).into_par_iter().for_each(|i| {
            let c0 = i * panel;
            let bp = MatRef { offset: b.offset + c0 * b.cs, ..b };
            // SAFETY: the panels write disjoint column ranges of `c` (the caller's contract).
            unsafe { gemm_unchecked(m, k, panel.min(n - c0), alpha, a, bp, beta, cptr.get().add(c0), ldc) };
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
                unsafe { gemm_unchecked(m, k, n, one, a, b, zero, c.get().add(i * m * n), n) };
            });
        } else {
            for i in 0..batch {
                let (a, b) = mats(i);
                // SAFETY: as above, one product at a time.
                unsafe { gemm_par_unchecked(m, k, n, one, a, b, zero, c.get().add(i * m * n), n) };
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
