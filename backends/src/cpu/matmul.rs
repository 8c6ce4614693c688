//! Batched matrix multiplication over strided views.

use super::gemm::{batched_products, GemmElement, MatRef};
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
