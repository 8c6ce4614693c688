//! Top-k and sort (placeholder until the sorting kernels land).

use crate::{CpuStorage, Error, Layout, Result};

pub(crate) fn topk(
    _x: &CpuStorage,
    _l: &Layout,
    _k: usize,
    _axis: usize,
    _largest: bool,
) -> Result<(CpuStorage, CpuStorage)> {
    Err(Error::Backend("topk: not implemented yet".into()))
}

pub(crate) fn sort(_x: &CpuStorage, _l: &Layout, _axis: usize, _descending: bool) -> Result<(CpuStorage, CpuStorage)> {
    Err(Error::Backend("sort: not implemented yet".into()))
}
