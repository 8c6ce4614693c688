//! Real 2-D FFT (placeholder until the FFT kernels land).

use crate::{CpuStorage, Error, Layout, Result};

pub(crate) fn rfft2(_x: &CpuStorage, _l: &Layout) -> Result<(CpuStorage, CpuStorage)> {
    Err(Error::Backend("rfft2: not implemented yet".into()))
}

pub(crate) fn irfft2(
    _re: &CpuStorage,
    _lre: &Layout,
    _im: &CpuStorage,
    _lim: &Layout,
    _out_hw: (usize, usize),
) -> Result<CpuStorage> {
    Err(Error::Backend("irfft2: not implemented yet".into()))
}
