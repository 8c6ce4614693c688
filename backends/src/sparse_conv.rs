//! Convolutions with a sparse weight: the composites of the three sparse convolution ops of
//! [`Fused`](crate::Fused) (`sparse_conv2d`, `sparse_conv2d_backward_data`,
//! `sparse_conv2d_backward_weight`) for backends without a kernel of their own: densify the
//! weight and run the dense primitive.
//!
//! A sparse weight is its [`SparsePattern`] (host data: which coordinates of
//! `[O, C/groups, kH, kW]` are stored, row by row) plus a device buffer of the stored values,
//! `[nnz]` in the pattern's order. A linear layer is the 1x1 case. The CPU backend runs its
//! own kernels (`cpu/sparse_conv/`); the CUDA backend runs these composites.

use crate::ops::{Conv2dParams, SparsePattern};
use crate::{Backend, CpuStorage, DType, Error, Layout, Result};

/// `values` (host `f64` copies) placed on the pattern in a zero dense weight, as a host buffer
/// of `dtype` (an error naming `op` for a dtype without convolutions).
fn densify_host(op: &'static str, pattern: &SparsePattern, values: &[f64], dtype: DType) -> Result<CpuStorage> {
    let mut dense = vec![0.0f64; pattern.shape.iter().product()];
    for (i, v) in pattern.flat_indices().into_iter().zip(values) {
        dense[i] = *v;
    }
    floats(op, dense, dtype)
}

/// Host `f64` values as a buffer of the float `dtype`, or an error naming `op`.
fn floats(op: &'static str, v: Vec<f64>, dtype: DType) -> Result<CpuStorage> {
    match dtype {
        DType::F32 => Ok(CpuStorage::F32(v.into_iter().map(|v| v as f32).collect())),
        DType::F64 => Ok(CpuStorage::F64(v)),
        other => Err(Error::UnsupportedDType { op, dtype: other }),
    }
}

/// Both operands have one dtype, or an error naming `op`.
fn same_dtype<B: Backend + ?Sized>(b: &B, op: &'static str, a: &B::Storage, c: &B::Storage) -> Result<()> {
    let (lhs, rhs) = (b.dtype(a), b.dtype(c));
    if lhs != rhs {
        return Err(Error::DTypeMismatch { op, lhs, rhs });
    }
    Ok(())
}

/// The dense weight `[O, C/groups, kH, kW]` of the stored `values` on `pattern`, on `b`.
fn densify<B: Backend + ?Sized>(
    b: &B,
    op: &'static str,
    values: &B::Storage,
    lv: &Layout,
    pattern: &SparsePattern,
) -> Result<B::Storage> {
    pattern.validate(op)?;
    pattern.check_values(op, lv)?;
    let host = b.to_host(values, lv)?;
    b.from_host(&densify_host(op, pattern, &host.to_f64_vec(), host.dtype())?)
}

/// [`Fused::sparse_conv2d`](crate::Fused::sparse_conv2d) for any backend: the dense weight,
/// then [`Backend::conv2d`].
pub fn conv2d_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    values: &B::Storage,
    lv: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
) -> Result<B::Storage> {
    const OP: &str = "sparse_conv2d";
    same_dtype(b, OP, x, values)?;
    let w = densify(b, OP, values, lv, pattern)?;
    b.conv2d(x, lx, &w, &pattern.dense_layout(), p)
}

/// [`Fused::sparse_conv2d_backward_data`](crate::Fused::sparse_conv2d_backward_data) for any
/// backend: the dense weight, then [`Backend::conv2d_backward_data`].
#[allow(clippy::too_many_arguments)]
pub fn backward_data_composite<B: Backend + ?Sized>(
    b: &B,
    gy: &B::Storage,
    lgy: &Layout,
    values: &B::Storage,
    lv: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<B::Storage> {
    const OP: &str = "sparse_conv2d_backward_data";
    same_dtype(b, OP, gy, values)?;
    let w = densify(b, OP, values, lv, pattern)?;
    b.conv2d_backward_data(gy, lgy, &w, &pattern.dense_layout(), p, input_hw)
}

/// [`Fused::sparse_conv2d_backward_weight`](crate::Fused::sparse_conv2d_backward_weight) for
/// any backend: the dense weight gradient ([`Backend::conv2d_backward_weight`]), then its
/// entries on the pattern.
pub fn backward_weight_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    gy: &B::Storage,
    lgy: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
) -> Result<B::Storage> {
    const OP: &str = "sparse_conv2d_backward_weight";
    same_dtype(b, OP, x, gy)?;
    pattern.validate(OP)?;
    // The dense gradient takes its shape from `x` and `gy`: they must agree with the pattern's.
    let ys = p.output_shape(lx.shape(), &pattern.shape)?;
    if lgy.shape() != ys {
        return Err(Error::shape(OP, &ys, lgy.shape()));
    }
    let dense = b.conv2d_backward_weight(x, lx, gy, lgy, p, (pattern.shape[2], pattern.shape[3]))?;
    let host = b.to_host(&dense, &pattern.dense_layout())?;
    let all = host.to_f64_vec();
    let picked: Vec<f64> = pattern.flat_indices().into_iter().map(|i| all[i]).collect();
    b.from_host(&floats(OP, picked, host.dtype())?)
}
