//! Batched matrix multiplication through cuBLAS (`gemmStridedBatched`, full FP32/FP64
//! precision), for `matmul` and the GEMMs inside conv2d; `i8` operands go to the int8 kernel.
//!
//! cuBLAS is column-major, so the row-major product `C = A B` runs as `C^T = B^T A^T`: a row-major
//! matrix is its transpose in column-major order, and no data moves. An operand whose view is
//! row-major or column-major (any leading dimension) with a uniform batch stride (0 for a
//! broadcast batch) is passed as it is; any other view is copied contiguous first.

use super::backend::CudaBackend;
use super::copy::dense;
use super::device::DeviceState;
use super::storage::CudaStorage;
use crate::planning::matmul::matmul_dims;
use crate::{DType, Error, Layout, Result};
use cudarc::cublas::{result as blas, sys::cublasOperation_t as Op};

/// One batched operand as cuBLAS takes it, described in row-major terms: element `(b, i, j)` is at
/// `ptr + (b * batch_stride + i * ld + j)` when not `transposed`, `ptr + (b * batch_stride + j * ld
/// + i)` when `transposed`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat {
    /// Device address of element `(0, 0, 0)`.
    pub(crate) ptr: u64,
    /// Elements between consecutive batch entries (0: the same matrix for every entry).
    pub(crate) batch_stride: usize,
    /// Whether the matrix is stored column-major.
    pub(crate) transposed: bool,
    /// The leading dimension (row stride, or column stride when transposed).
    pub(crate) ld: usize,
}

impl Mat {
    /// A contiguous row-major `[rows, cols]` matrix at `ptr`, `batch_stride` apart.
    pub(crate) fn row_major(ptr: u64, cols: usize, batch_stride: usize) -> Mat {
        Mat { ptr, batch_stride, transposed: false, ld: cols.max(1) }
    }

    /// The operand for a `[..., rows, cols]` view, or `None` when it needs a copy.
    fn of_view(s: &CudaStorage, l: &Layout) -> Option<Mat> {
        let nd = l.ndim();
        let (r, c) = (l.shape()[nd - 2], l.shape()[nd - 1]);
        let (rs, cs) = (l.strides()[nd - 2], l.strides()[nd - 1]);
        let batch_stride = uniform_batch_stride(l)?;
        let (transposed, ld) = if c <= 1 || cs == 1 {
            (false, if r <= 1 { c.max(1) } else { rs })
        } else if r <= 1 || rs == 1 {
            (true, if c <= 1 { r.max(1) } else { cs })
        } else {
            return None;
        };
        let min_ld = if transposed { r.max(1) } else { c.max(1) };
        (ld >= min_ld && ld <= i32::MAX as usize).then(|| Mat {
            ptr: s.ptr_at(l.offset()),
            batch_stride,
            transposed,
            ld,
        })
    }
}

/// The stride between consecutive entries of the batch dims (all but the last two), when the
/// batch dims merge into one; 0 when there is a single entry.
fn uniform_batch_stride(l: &Layout) -> Option<usize> {
    let nd = l.ndim();
    let dims: Vec<(usize, usize)> =
        (0..nd - 2).map(|d| (l.shape()[d], l.strides()[d])).filter(|&(size, _)| size != 1).collect();
    for pair in dims.windows(2) {
        if pair[0].1 != pair[1].0 * pair[1].1 {
            return None;
        }
    }
    Some(dims.last().map_or(0, |&(_, s)| s))
}

/// `C[b] = A[b] B[b] + beta C[b]` for `b < batch`, with `A` `m x k`, `B` `k x n` and `C` row-major
/// `m x n` (leading dimension `ldc`, batch stride `c_stride`), in `dtype` (f32 or f64).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    dev: &DeviceState,
    dtype: DType,
    (m, n, k, batch): (usize, usize, usize, usize),
    a: Mat,
    b: Mat,
    c: u64,
    ldc: usize,
    c_stride: usize,
    beta: f64,
) -> Result<()> {
    if m == 0 || n == 0 || batch == 0 {
        return Ok(());
    }
    let too_big = |v: usize| v > i32::MAX as usize;
    if [m, n, k, batch, a.ld, b.ld, ldc].into_iter().any(too_big) {
        return Err(Error::invalid(
            "matmul",
            format!("sizes m={m} n={n} k={k} batch={batch} exceed cuBLAS's int range"),
        ));
    }
    let op = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
    // Column-major C^T (n x m) = B^T (n x k) A^T (k x m).
    let (opb, opa) = (op(b.transposed), op(a.transposed));
    let (mi, ni, ki, bi) = (n as i32, m as i32, k.max(1) as i32, batch as i32);
    let (lda, ldb, ldc) = (b.ld as i32, a.ld as i32, ldc as i32);
    let (sa, sb, sc) = (b.batch_stride as i64, a.batch_stride as i64, c_stride as i64);
    dev.bind()?;
    dev.with_blas(|h| {
        let h = *h.handle();
        // SAFETY: pointers address buffers that hold every element the shapes, leading dimensions
        // and batch strides reach (checked by the callers); alpha and beta live on the host stack.
        let r = unsafe {
            match dtype {
                DType::F32 => {
                    let (alpha, beta) = (1.0f32, beta as f32);
                    blas::sgemm_strided_batched(
                        h,
                        opb,
                        opa,
                        mi,
                        ni,
                        ki,
                        &alpha,
                        b.ptr as *const f32,
                        lda,
                        sa,
                        a.ptr as *const f32,
                        ldb,
                        sb,
                        &beta,
                        c as *mut f32,
                        ldc,
                        sc,
                        bi,
                    )
                }
                DType::F64 => {
                    let (alpha, beta) = (1.0f64, beta);
                    blas::dgemm_strided_batched(
                        h,
                        opb,
                        opa,
                        mi,
                        ni,
                        ki,
                        &alpha,
                        b.ptr as *const f64,
                        lda,
                        sa,
                        a.ptr as *const f64,
                        ldb,
                        sb,
                        &beta,
                        c as *mut f64,
                        ldc,
                        sc,
                        bi,
                    )
                }
                _ => return Err(Error::UnsupportedDType { op: "matmul", dtype }),
            }
        };
        r.map_err(|e| Error::Backend(format!("cuBLAS gemm ({m}x{k} by {k}x{n}, batch {batch}): {e:?}")))
    })
}

/// The batched product of two views, `[..., M, K] x [..., K, N] -> [..., M, N]`.
pub(crate) fn matmul(
    backend: &CudaBackend,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    backend.view("matmul", a, la)?;
    backend.view("matmul", b, lb)?;
    match (a.dtype(), b.dtype()) {
        (DType::F32, DType::F32) | (DType::F64, DType::F64) => {}
        (DType::I8, DType::I8) => return super::int8::matmul_i8(a, la, b, lb),
        (x, y) if x != y => return Err(Error::DTypeMismatch { op: "matmul", lhs: x, rhs: y }),
        (x, _) => return Err(Error::UnsupportedDType { op: "matmul", dtype: x }),
    }
    let (batch, m, k, n, out_shape) = matmul_dims(la, lb)?;
    let out = CudaStorage::zeros(&a.dev, a.dtype(), out_shape.iter().product())?;
    if m * n == 0 || k == 0 || batch == 0 {
        return Ok(out);
    }
    // Operands cuBLAS cannot take as they are are copied contiguous (kept alive until the GEMM).
    let (ca, cb);
    let ma = match Mat::of_view(a, la) {
        Some(mat) => mat,
        None => {
            ca = dense(a, la)?;
            Mat::row_major(ca.ptr(), k, m * k)
        }
    };
    let mb = match Mat::of_view(b, lb) {
        Some(mat) => mat,
        None => {
            cb = dense(b, lb)?;
            Mat::row_major(cb.ptr(), n, k * n)
        }
    };
    gemm(&a.dev, a.dtype(), (m, n, k, batch), ma, mb, out.ptr(), n, m * n, 0.0)?;
    Ok(out)
}
