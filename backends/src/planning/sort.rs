//! The plan of a sort or top-k along one axis: the axis permuted last, rows and their length.

use crate::{Error, Layout, Result};

/// A sort or top-k along `axis`, planned once for every backend.
pub(crate) struct SortPlan {
    /// The input viewed with `axis` moved last.
    pub(crate) pl: Layout,
    /// The permutation that moved it (`axis` last).
    pub(crate) perm: Vec<usize>,
    /// Number of rows (the product of the other dims).
    pub(crate) rows: usize,
    /// Row length (the size of `axis`).
    pub(crate) len: usize,
    /// Values kept per row: `k` when given (checked against `len`), else the whole row.
    pub(crate) k: usize,
}

/// Checks `axis` and `k` and plans the rows of a sort or top-k; errors name `op`.
pub(crate) fn sort_plan(op: &'static str, l: &Layout, axis: usize, k: Option<usize>) -> Result<SortPlan> {
    if axis >= l.ndim() {
        return Err(Error::AxisOutOfRange { op, axis, ndim: l.ndim() });
    }
    let perm: Vec<usize> = (0..l.ndim()).filter(|&d| d != axis).chain([axis]).collect();
    let pl = l.permute(&perm)?;
    let len = l.shape()[axis];
    let rows = pl.shape()[..pl.ndim() - 1].iter().product();
    let k = match k {
        Some(k) if k > len => {
            return Err(Error::invalid(
                op,
                format!("k = {k} is larger than dimension {axis} of size {len} (shape {:?})", l.shape()),
            ))
        }
        Some(k) => k,
        None => len,
    };
    Ok(SortPlan { pl, perm, rows, len, k })
}
