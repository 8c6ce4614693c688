//! Pooling kernels (placeholder until the pooling kernels land).

use crate::ops::Pool2dParams;
use crate::{CpuStorage, Error, Layout, Result};

fn todo(op: &str) -> Error {
    Error::Backend(format!("{op}: not implemented yet"))
}

pub(crate) fn max_pool2d(_x: &CpuStorage, _l: &Layout, _p: &Pool2dParams) -> Result<(CpuStorage, CpuStorage)> {
    Err(todo("max_pool2d"))
}

pub(crate) fn max_pool2d_backward(
    _gy: &CpuStorage,
    _lgy: &Layout,
    _idx: &CpuStorage,
    _li: &Layout,
    _input_shape: &[usize],
) -> Result<CpuStorage> {
    Err(todo("max_pool2d_backward"))
}

pub(crate) fn avg_pool2d(_x: &CpuStorage, _l: &Layout, _p: &Pool2dParams) -> Result<CpuStorage> {
    Err(todo("avg_pool2d"))
}

pub(crate) fn avg_pool2d_backward(
    _gy: &CpuStorage,
    _lgy: &Layout,
    _p: &Pool2dParams,
    _input_shape: &[usize],
) -> Result<CpuStorage> {
    Err(todo("avg_pool2d_backward"))
}

pub(crate) fn adaptive_avg_pool2d(_x: &CpuStorage, _l: &Layout, _out_hw: (usize, usize)) -> Result<CpuStorage> {
    Err(todo("adaptive_avg_pool2d"))
}

pub(crate) fn adaptive_avg_pool2d_backward(
    _gy: &CpuStorage,
    _lgy: &Layout,
    _input_shape: &[usize],
) -> Result<CpuStorage> {
    Err(todo("adaptive_avg_pool2d_backward"))
}
