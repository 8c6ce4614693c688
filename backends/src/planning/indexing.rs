//! The checks and views of gather, scatter-add and index-select.

use crate::{DType, Error, Layout, Result};

/// An error naming `op` unless `axis` is a dimension of `l`.
pub(crate) fn check_axis(op: &'static str, l: &Layout, axis: usize) -> Result<()> {
    if axis >= l.ndim() {
        return Err(Error::AxisOutOfRange { op, axis, ndim: l.ndim() });
    }
    Ok(())
}

/// `x` re-strided to `shape` with stride 0 along `axis` (the caller adds `index * stride`).
pub(crate) fn base_view(lx: &Layout, shape: &[usize], axis: usize) -> Result<Layout> {
    let mut strides = lx.strides().to_vec();
    strides[axis] = 0;
    Layout::new(shape.to_vec(), strides, lx.offset())
}

/// The views `index_select` walks, shared by every backend: `x` re-strided to the output shape
/// with stride 0 along `axis`, and the 1-D index broadcast over every other dimension.
pub(crate) fn index_select_views(lx: &Layout, axis: usize, li: &Layout) -> Result<(Layout, Layout)> {
    const OP: &str = "index_select";
    check_axis(OP, lx, axis)?;
    if li.ndim() > 1 {
        return Err(Error::invalid(OP, format!("the index must be 1-D, got shape {:?}", li.shape())));
    }
    let mut shape = lx.shape().to_vec();
    shape[axis] = li.numel();
    let xv = base_view(lx, &shape, axis)?;
    let mut istrides = vec![0; shape.len()];
    istrides[axis] = 1;
    Ok((xv, Layout::new(shape, istrides, 0)?))
}

/// Checks the operands of a `scatter_add` (axis, dtypes, and `idx` fitting in `base` off the axis
/// and in `src` everywhere); shared by every backend.
pub(crate) fn check_scatter_add(
    lb: &Layout,
    axis: usize,
    li: &Layout,
    ls: &Layout,
    base: DType,
    src: DType,
) -> Result<()> {
    const OP: &str = "scatter_add";
    check_axis(OP, lb, axis)?;
    if base != src {
        return Err(Error::DTypeMismatch { op: OP, lhs: base, rhs: src });
    }
    let nd = lb.ndim();
    if li.ndim() != nd || (0..nd).any(|d| d != axis && li.shape()[d] > lb.shape()[d]) {
        return Err(Error::shape(OP, lb.shape(), li.shape()));
    }
    if ls.ndim() != nd || (0..nd).any(|d| li.shape()[d] > ls.shape()[d]) {
        return Err(Error::shape(OP, li.shape(), ls.shape()));
    }
    Ok(())
}
