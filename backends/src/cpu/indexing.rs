//! Gather, scatter-add and index-select (placeholder until the indexing kernels land).

use crate::{CpuStorage, Error, Layout, Result};

fn todo(op: &str) -> Error {
    Error::Backend(format!("{op}: not implemented yet"))
}

pub(crate) fn gather(
    _x: &CpuStorage,
    _lx: &Layout,
    _axis: usize,
    _idx: &CpuStorage,
    _li: &Layout,
) -> Result<CpuStorage> {
    Err(todo("gather"))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_add(
    _base: &CpuStorage,
    _lb: &Layout,
    _axis: usize,
    _idx: &CpuStorage,
    _li: &Layout,
    _src: &CpuStorage,
    _ls: &Layout,
) -> Result<CpuStorage> {
    Err(todo("scatter_add"))
}

pub(crate) fn index_select(
    _x: &CpuStorage,
    _lx: &Layout,
    _axis: usize,
    _idx: &CpuStorage,
    _li: &Layout,
) -> Result<CpuStorage> {
    Err(todo("index_select"))
}
