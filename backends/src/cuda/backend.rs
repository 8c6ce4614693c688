//! The CUDA backend value: a handle on one GPU's shared state, and the checks every op runs on
//! its operands.

use super::device::{self, DeviceState};
use super::storage::CudaStorage;
use crate::{Layout, Result};
use std::sync::Arc;

/// The CUDA backend for one GPU.
#[derive(Clone, Debug)]
pub struct CudaBackend {
    pub(super) dev: Arc<DeviceState>,
}

impl CudaBackend {
    /// The backend of GPU `ordinal`, opening the device on first use; an
    /// [`Error::DeviceUnavailable`](crate::Error::DeviceUnavailable) without a driver or such a GPU.
    pub fn new(ordinal: usize) -> Result<Self> {
        Ok(CudaBackend { dev: device::device(ordinal)? })
    }

    /// The backend owning a buffer.
    pub fn for_storage(s: &CudaStorage) -> Result<Self> {
        Ok(CudaBackend { dev: s.dev.clone() })
    }

    /// The architecture kernels are compiled for (`sm_90` on an H100).
    pub fn arch(&self) -> &str {
        &self.dev.arch
    }

    /// Waits until every queued operation on this GPU has finished (for timing).
    pub fn synchronize(&self) -> Result<()> {
        self.dev.synchronize()
    }

    /// Checks that a view lies inside its buffer and that the buffer lives on this GPU.
    pub(super) fn view(&self, op: &'static str, s: &CudaStorage, l: &Layout) -> Result<()> {
        s.check_view(op, &self.dev, l)
    }
}
