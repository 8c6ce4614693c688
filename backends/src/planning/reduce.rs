//! The split of a reduction's axes into kept and reduced ones.

use crate::{Error, Layout, Result};

/// Splits a layout into (kept dims first, reduced dims last) and returns the permuted view, the
/// number of outputs, the size of each reduced block and the output shape.
pub(crate) fn split_axes(
    op: &'static str,
    l: &Layout,
    axes: &[usize],
    keepdim: bool,
) -> Result<(Layout, usize, usize, Vec<usize>)> {
    let nd = l.ndim();
    let mut reduced = vec![false; nd];
    for &a in axes {
        if a >= nd {
            return Err(Error::AxisOutOfRange { op, axis: a, ndim: nd });
        }
        if std::mem::replace(&mut reduced[a], true) {
            return Err(Error::invalid(op, format!("axis {a} appears twice in {axes:?}")));
        }
    }
    let kept: Vec<usize> = (0..nd).filter(|&d| !reduced[d]).collect();
    let red: Vec<usize> = (0..nd).filter(|&d| reduced[d]).collect();
    let perm: Vec<usize> = kept.iter().chain(&red).copied().collect();
    let pl = l.permute(&perm)?;
    let n_out: usize = kept.iter().map(|&d| l.shape()[d]).product();
    let block: usize = red.iter().map(|&d| l.shape()[d]).product();
    let out_shape: Vec<usize> = if keepdim {
        (0..nd).map(|d| if reduced[d] { 1 } else { l.shape()[d] }).collect()
    } else {
        kept.iter().map(|&d| l.shape()[d]).collect()
    };
    Ok((pl, n_out, block, out_shape))
}
