//! Convolution kernels (placeholder until the conv kernels land).

use crate::ops::Conv2dParams;
use crate::{CpuStorage, Error, Layout, Result};

pub(crate) fn conv2d(
    _x: &CpuStorage,
    _lx: &Layout,
    _w: &CpuStorage,
    _lw: &Layout,
    _p: &Conv2dParams,
) -> Result<CpuStorage> {
    Err(Error::Backend("conv2d: not implemented yet".into()))
}

pub(crate) fn conv2d_backward_data(
    _gy: &CpuStorage,
    _lgy: &Layout,
    _w: &CpuStorage,
    _lw: &Layout,
    _p: &Conv2dParams,
    _input_hw: (usize, usize),
) -> Result<CpuStorage> {
    Err(Error::Backend("conv2d_backward_data: not implemented yet".into()))
}

pub(crate) fn conv2d_backward_weight(
    _x: &CpuStorage,
    _lx: &Layout,
    _gy: &CpuStorage,
    _lgy: &Layout,
    _p: &Conv2dParams,
    _kernel_hw: (usize, usize),
) -> Result<CpuStorage> {
    Err(Error::Backend("conv2d_backward_weight: not implemented yet".into()))
}
