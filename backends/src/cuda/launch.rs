//! Kernel launches: argument packs, grid sizes, the strided [`Walk`] passed by value, and the
//! device-side error flag.

use super::compile::KernelSource;
use super::device::{driver_err, DeviceState};
use super::storage::CudaStorage;
use crate::{DType, Error, Layout, Result};
use std::ffi::c_void;
use std::sync::Arc;

/// Dimensions a [`Walk`] can hold after coalescing (`MAX_DIMS` in `prelude.cuh`).
pub(crate) const MAX_DIMS: usize = 10;
/// Operands a [`Walk`] can hold (`MAX_OPS` in `prelude.cuh`).
pub(crate) const MAX_OPS: usize = 3;
/// Threads per block of the elementwise kernels.
pub(crate) const THREADS: u32 = 256;

/// Up to three views of one shape, coalesced, in the layout of `struct Walk` in `prelude.cuh`:
/// passed to kernels by value, so no shape or stride array is ever copied to the device.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk {
    ndim: i64,
    shape: [i64; MAX_DIMS],
    strides: [[i64; MAX_DIMS]; MAX_OPS],
    offset: [i64; MAX_OPS],
    contiguous: i64,
}

impl Walk {
    /// The walk over `layouts` (which share a shape), coalesced like the CPU backend's rows.
    pub(crate) fn new<const K: usize>(op: &'static str, layouts: [&Layout; K]) -> Result<Walk> {
        assert!(K <= MAX_OPS, "a Walk holds at most {MAX_OPS} operands");
        let (shape, strides) = crate::planning::strides::coalesce(layouts);
        if shape.len() > MAX_DIMS {
            return Err(Error::invalid(
                op,
                format!(
                    "views {layouts:?} need {} dimensions after merging; CUDA kernels take at most {MAX_DIMS}",
                    shape.len()
                ),
            ));
        }
        let mut w = Walk {
            ndim: shape.len() as i64,
            shape: [1; MAX_DIMS],
            strides: [[0; MAX_DIMS]; MAX_OPS],
            offset: [0; MAX_OPS],
            contiguous: layouts.iter().all(|l| l.is_contiguous()) as i64,
        };
        for (d, &s) in shape.iter().enumerate() {
            w.shape[d] = s as i64;
        }
        for k in 0..K {
            w.offset[k] = layouts[k].offset() as i64;
            for (d, &s) in strides[k].iter().enumerate() {
                w.strides[k][d] = s as i64;
            }
        }
        Ok(w)
    }
}

/// A kernel's arguments, each boxed so its address is stable until the launch.
#[derive(Default)]
pub(crate) struct Args {
    held: Vec<Box<dyn std::any::Any>>,
    ptrs: Vec<*mut c_void>,
}

impl Args {
    /// An empty argument list.
    pub(crate) fn new() -> Self {
        Args::default()
    }

    /// Appends a plain value (a scalar, a device address, or a `#[repr(C)]` struct).
    pub(crate) fn push<T: Copy + 'static>(mut self, v: T) -> Self {
        let b = Box::new(v);
        self.ptrs.push(&*b as *const T as *mut c_void);
        self.held.push(b);
        self
    }

    /// Appends the device address of element `offset` of a buffer.
    pub(crate) fn buf(self, s: &CudaStorage) -> Self {
        self.push(s.ptr())
    }

    /// Appends an `i64`.
    pub(crate) fn int(self, v: usize) -> Self {
        self.push(v as i64)
    }
}

/// A launch configuration: `(grid, block, dynamic shared memory bytes)`.
pub(crate) type Grid = ((u32, u32, u32), (u32, u32, u32), u32);

/// A 1-D grid of [`THREADS`]-thread blocks covering `n` elements with a grid-stride loop.
pub(crate) fn grid_for(n: usize) -> Grid {
    let blocks = n.div_ceil(THREADS as usize).clamp(1, 1 << 16) as u32;
    ((blocks, 1, 1), (THREADS, 1, 1), 0)
}

/// Launches kernel `name` of `src` on the device's stream.
pub(crate) fn launch(dev: &DeviceState, src: &KernelSource, name: &str, grid: Grid, mut args: Args) -> Result<()> {
    let f = dev.function(src, name)?;
    dev.bind()?;
    // SAFETY: each kernel's Rust launcher passes arguments matching the kernel's C signature; the
    // boxed values live in `args` until the call returns (the driver copies them at launch).
    unsafe {
        cudarc::driver::result::launch_kernel(
            f.cu_function(),
            grid.0,
            grid.1,
            grid.2,
            dev.stream.cu_stream(),
            &mut args.ptrs,
        )
    }
    .map_err(|e| Error::Backend(format!("launching {name} ({}.cu): {e}", src.name)))
}

/// The kernel name `prefix_dtype` (`unary_f32`, ...).
pub(crate) fn kname(prefix: &str, dtype: DType) -> String {
    format!("{prefix}_{}", dtype.name())
}

/// A one-word device flag in which kernels record the lowest failing element position.
pub(crate) struct ErrorFlag(CudaStorage);

impl ErrorFlag {
    /// A fresh flag (all ones: nothing failed).
    pub(crate) fn new(dev: &Arc<DeviceState>) -> Result<Self> {
        let s = CudaStorage::alloc(dev, DType::I64, 1)?;
        // SAFETY: the buffer holds 8 bytes.
        unsafe { cudarc::driver::result::memset_d8_async(s.ptr(), 0xff, 8, dev.stream.cu_stream()) }
            .map_err(driver_err("clearing an error flag"))?;
        Ok(ErrorFlag(s))
    }

    /// The flag's device address, for a kernel argument.
    pub(crate) fn ptr(&self) -> u64 {
        self.0.ptr()
    }

    /// Waits for the kernels and returns the first failing position, if any.
    pub(crate) fn first_failure(&self) -> Result<Option<usize>> {
        let v = self.0.download_range(0, 1)?.as_slice::<i64>().expect("i64 flag")[0];
        Ok((v != -1).then_some(v as usize))
    }
}
