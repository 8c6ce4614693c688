//! Batched matrix multiplication over strided views.

use super::gemm::{batched_products, product_with_bias, GemmElement, MatRef};
use crate::planning::matmul::matmul_dims;
use crate::{CpuStorage, Error, Layout, Result};
use rayon::prelude::*;

/// Storage offset of batch element `i` of a layout's leading dims.
pub(crate) fn batch_offset(l: &Layout, i: usize) -> usize {
    let nd = l.ndim();
    let mut rem = i;
    let mut off = l.offset();
    for d in (0..nd - 2).rev() {
        off += (rem % l.shape()[d]) * l.strides()[d];
        rem /= l.shape()[d];
    }
    off
}

/// Batch element `i` of a `[..., rows, cols]` view as a strided matrix.
pub(crate) fn batch_mat<'a, T>(data: &'a [T], l: &Layout, i: usize) -> MatRef<'a, T> {
    let nd = l.ndim();
    MatRef { data, offset: batch_offset(l, i), rs: l.strides()[nd - 2], cs: l.strides()[nd - 1] }
}

fn matmul_float<T: GemmElement>(a: &[T], la: &Layout, b: &[T], lb: &Layout) -> Result<Vec<T>> {
    let (batch, m, k, n, _) = matmul_dims(la, lb)?;
    Ok(batched_products(batch, (m, k, n), |i| (batch_mat(a, la, i), batch_mat(b, lb, i))))
}

pub(crate) fn matmul(a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
    super::strided::check_extent("matmul", a, la)?;
    super::strided::check_extent("matmul", b, lb)?;
    match (a, b) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => Ok(CpuStorage::F32(matmul_float(a, la, b, lb)?)),
        (CpuStorage::F64(a), CpuStorage::F64(b)) => Ok(CpuStorage::F64(matmul_float(a, la, b, lb)?)),
        (CpuStorage::I8(a), CpuStorage::I8(b)) => {
            let (_, m, k, n, out_shape) = matmul_dims(la, lb)?;
            let mut out = vec![0i32; out_shape.iter().product()];
            let mat = batch_mat;
            if m * n > 0 {
                out.par_chunks_mut(m * n).enumerate().for_each(|(i, c)| {
                    super::int8::gemm_i8(m, k, n, mat(a, la, i), mat(b, lb, i), c);
                });
            }
            Ok(CpuStorage::I32(out))
        }
        _ if a.dtype() != b.dtype() => Err(Error::DTypeMismatch { op: "matmul", lhs: a.dtype(), rhs: b.dtype() }),
        _ => Err(Error::UnsupportedDType { op: "matmul", dtype: a.dtype() }),
    }
}

/// The `[N]` bias view as a contiguous row (borrowed when it already is one).
fn bias_row<'a, T: Copy>(bias: &'a [T], l: &Layout) -> std::borrow::Cow<'a, [T]> {
    let (n, off) = (l.shape()[0], l.offset());
    match l.strides()[0] {
        1 => std::borrow::Cow::Borrowed(&bias[off..off + n]),
        s => std::borrow::Cow::Owned((0..n).map(|j| bias[off + j * s]).collect()),
    }
}

fn matmul_bias_float<T: GemmElement>(
    dims: (usize, usize, usize),
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    bias: &[T],
    lbias: &Layout,
) -> Vec<T> {
    product_with_bias(dims, batch_mat(a, la, 0), batch_mat(b, lb, 0), &bias_row(bias, lbias))
}

/// [`crate::Fused::matmul_bias`]: f32 and f64 through the GEMM with the bias added as each
/// panel of the output is started ([`product_with_bias`]); other dtypes through the composite,
/// whose errors name them.
pub(crate) fn matmul_bias(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
    bias: &CpuStorage,
    lbias: &Layout,
) -> Result<CpuStorage> {
    const OP: &str = "matmul_bias";
    let dims = crate::matmul_bias::check(la, lb, lbias)?;
    super::strided::check_extent(OP, a, la)?;
    super::strided::check_extent(OP, b, lb)?;
    super::strided::check_extent(OP, bias, lbias)?;
    match (a, b, bias) {
        (CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)) => {
            Ok(CpuStorage::F32(matmul_bias_float(dims, a, la, b, lb, c, lbias)))
        }
        (CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(c)) => {
            Ok(CpuStorage::F64(matmul_bias_float(dims, a, la, b, lb, c, lbias)))
        }
        _ => crate::matmul_bias::matmul_bias_composite(&super::CpuBackend, a, la, b, lb, bias, lbias),
    }
}
