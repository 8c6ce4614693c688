//! Device buffers: untyped GPU memory of one dtype, allocated from the stream-ordered pool.

use super::device::{driver_err, DeviceState};
use crate::{map_cpu, CpuStorage, DType, Device, Error, Layout, Result};
use cudarc::driver::{result, sys};
use std::sync::Arc;

/// A flat GPU buffer of one dtype: the CUDA backend's storage.
///
/// The memory comes from the device's stream-ordered pool and goes back to it (on the device's
/// stream) when the buffer is dropped.
pub struct CudaStorage {
    ptr: sys::CUdeviceptr,
    len: usize,
    dtype: DType,
    pub(crate) dev: Arc<DeviceState>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaStorage(cuda:{}, {} x {})", self.dev.ordinal, self.len, self.dtype)
    }
}

impl Drop for CudaStorage {
    fn drop(&mut self) {
        if self.ptr == 0 {
            return;
        }
        // Errors on free cannot be reported from a destructor; the driver records them.
        let _ = self.dev.bind();
        // SAFETY: `ptr` was allocated by `alloc` below on this device and is freed once.
        unsafe {
            let _ = if self.dev.async_alloc {
                result::free_async(self.ptr, self.dev.stream.cu_stream())
            } else {
                self.dev.synchronize().ok();
                result::free_sync(self.ptr)
            };
        }
    }
}

impl CudaStorage {
    /// An uninitialized buffer of `len` elements (no allocation when empty).
    pub(crate) fn alloc(dev: &Arc<DeviceState>, dtype: DType, len: usize) -> Result<Self> {
        let bytes = len
            .checked_mul(dtype.size_in_bytes())
            .ok_or_else(|| Error::invalid("cuda alloc", format!("{len} elements of {dtype} overflow")))?;
        let mut ptr = 0;
        if bytes > 0 {
            dev.bind()?;
            // SAFETY: the context is current; the pointer is owned by the returned value.
            ptr = unsafe {
                if dev.async_alloc {
                    result::malloc_async(dev.stream.cu_stream(), bytes)
                } else {
                    result::malloc_sync(bytes)
                }
            }
            .map_err(|e| Error::Backend(format!("cuda:{}: allocating {bytes} bytes: {e}", dev.ordinal)))?;
        }
        Ok(CudaStorage { ptr, len, dtype, dev: dev.clone() })
    }

    /// A buffer of `len` zero bytes (zero for every dtype).
    pub(crate) fn zeros(dev: &Arc<DeviceState>, dtype: DType, len: usize) -> Result<Self> {
        let s = Self::alloc(dev, dtype, len)?;
        if s.ptr != 0 {
            // SAFETY: the buffer holds exactly this many bytes.
            unsafe { result::memset_d8_async(s.ptr, 0, s.bytes(), dev.stream.cu_stream()) }
                .map_err(driver_err("zeroing a buffer"))?;
        }
        Ok(s)
    }

    /// Uploads a host buffer.
    pub(crate) fn upload(dev: &Arc<DeviceState>, data: &CpuStorage) -> Result<Self> {
        let s = Self::alloc(dev, data.dtype(), data.len())?;
        if s.ptr != 0 {
            let stream = dev.stream.cu_stream();
            // SAFETY: the buffer has the host data's size; the copy completes before returning
            // (the stream is synchronized), so the host slice outlives it.
            map_cpu!(data, v => unsafe { result::memcpy_htod_async(s.ptr, &v[..], stream) })
                .map_err(driver_err("copying to the device"))?;
            dev.synchronize()?;
        }
        Ok(s)
    }

    /// Downloads elements `start..start + n` of the buffer.
    pub(crate) fn download_range(&self, start: usize, n: usize) -> Result<CpuStorage> {
        if start + n > self.len {
            return Err(Error::invalid(
                "to_host",
                format!("range {start}..{} reaches past a buffer of {} elements", start + n, self.len),
            ));
        }
        let mut out = CpuStorage::zeros(self.dtype, n);
        if n > 0 {
            self.dev.bind()?;
            let src = self.ptr_at(start);
            let stream = self.dev.stream.cu_stream();
            // SAFETY: `out` holds `n` elements of the buffer's dtype and the range is in bounds;
            // the stream is synchronized before `out` is used.
            map_cpu!(&mut out, v => unsafe { result::memcpy_dtoh_async(&mut v[..], src, stream) })
                .map_err(driver_err("copying to the host"))?;
            self.dev.synchronize()?;
        }
        Ok(out)
    }

    /// The device this buffer lives on.
    pub fn device(&self) -> Device {
        Device::Cuda(self.dev.ordinal)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the buffer in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.len * self.dtype.size_in_bytes()
    }

    /// The device address of the first element.
    pub(crate) fn ptr(&self) -> u64 {
        self.ptr
    }

    /// The device address of element `i`.
    pub(crate) fn ptr_at(&self, i: usize) -> u64 {
        self.ptr + (i * self.dtype.size_in_bytes()) as u64
    }

    /// Checks that a view of this buffer stays inside it and that the buffer lives on `dev`.
    pub(crate) fn check_view(&self, op: &'static str, dev: &DeviceState, l: &Layout) -> Result<()> {
        if self.dev.ordinal != dev.ordinal {
            return Err(Error::DeviceMismatch { op, lhs: Device::Cuda(dev.ordinal), rhs: self.device() });
        }
        if l.storage_extent() > self.len {
            return Err(Error::invalid(op, format!("view {:?} reaches past a buffer of {} elements", l, self.len)));
        }
        Ok(())
    }
}
