//! The output shape of a concatenation.

use crate::{DType, Error, Layout, Result};

/// Checks the operands of a concatenation (at least one, one dtype, equal sizes outside `axis`)
/// and returns the output shape.
pub(crate) fn concat_shape(parts: &[(DType, &Layout)], axis: usize) -> Result<Vec<usize>> {
    let op = "concat";
    let Some(&(dtype0, l0)) = parts.first() else {
        return Err(Error::invalid(op, "needs at least one tensor"));
    };
    if axis >= l0.ndim() {
        return Err(Error::AxisOutOfRange { op, axis, ndim: l0.ndim() });
    }
    let mut out_shape = l0.shape().to_vec();
    out_shape[axis] = 0;
    for &(dtype, l) in parts {
        if dtype != dtype0 {
            return Err(Error::DTypeMismatch { op, lhs: dtype0, rhs: dtype });
        }
        let same_rest = l.ndim() == l0.ndim() && (0..l0.ndim()).all(|d| d == axis || l.shape()[d] == l0.shape()[d]);
        if !same_rest {
            return Err(Error::shape(op, l0.shape(), l.shape()));
        }
        out_shape[axis] += l.shape()[axis];
    }
    Ok(out_shape)
}
