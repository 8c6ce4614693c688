//! The CUDA backend (cargo feature `cuda`): `cudarc` 0.19 with the driver, NVRTC, cuBLAS and cuFFT
//! loaded dynamically at run time.
//!
//! # Design
//!
//! - One [`CudaBackend`] per GPU ordinal, sharing a per-process device state: the primary
//!   context, one stream on which everything is ordered, the driver's stream-ordered memory pool
//!   (kept warm: freed memory stays in the pool), a cuBLAS handle and a module cache.
//! - Kernels are CUDA C sources embedded in the crate (`*.cu` beside their Rust launcher), compiled
//!   at first use by NVRTC for the compute capability of the GPU present, and cached as PTX on
//!   disk (see [`compile`]). Nothing CUDA is needed at build time.
//! - Views reach kernels as a `Walk` (coalesced shape and per-operand strides and offsets) passed
//!   by value; kernels have a contiguous fast path and a strided path.
//! - Semantics follow the CPU backend exactly (same checks and error messages, same random
//!   streams); floating-point results agree to rounding. GEMM (and the GEMMs inside conv2d) run
//!   on cuBLAS in full FP32/FP64 precision (no TF32).
//!
//! # Without a GPU
//!
//! `cargo build --features cuda` and `cargo test --features cuda` work on a machine with no
//! driver and no toolkit: [`cuda_is_available`] returns false, opening `Device::Cuda(n)` is an
//! [`Error::DeviceUnavailable`](crate::Error::DeviceUnavailable)(crate::Error::DeviceUnavailable), and the CUDA tests print that
//! they were skipped. With only NVRTC present (`libnvrtc.so.13`, e.g. from the PyPI wheel
//! `nvidia-cuda-nvrtc`, on `LD_LIBRARY_PATH`), `tests/cuda_ptx.rs` compiles every kernel source for
//! `sm_80` and `sm_90`, so a kernel that does not compile fails CI even without a GPU.
//!
//! # Running the GPU checks on a GPU machine
//!
//! The test executables are built where the toolchain is and copied to the GPU machine:
//!
//! ```sh
//! bash backends/scripts/gpu_build.sh   # here: release builds of the CUDA tests and benchmark into .gpu/
//! bash .gpu/gpu_check.sh               # there (copy .gpu/ over): conformance, gradchecks, benchmark
//! ```
//!
//! `gpu_check.sh` runs the CUDA conformance suite (`tests/cuda_conformance.rs`: every check of the
//! CPU suite against the GPU), the autograd gradchecks on `Device::Cuda(0)`, and the GPU
//! benchmark (`benches/cuda.rs`, SGEMM 4096 and conv2d forward+backward) beside
//! `benches/torch_cuda.py` when PyTorch is installed. The executables link nothing CUDA at build
//! time: the GPU machine needs only its driver and the CUDA 13 libraries (NVRTC, cuBLAS, cuFFT)
//! on the library path.

mod backend;
mod compile;
mod conv;
mod copy;
mod device;
mod elementwise;
mod fft;
mod indexing;
mod int8;
mod launch;
mod matmul;
mod op_codes;
mod pool;
mod random;
mod reduce;
mod sort;
mod storage;

pub use backend::CudaBackend;
pub use compile::{cache_dir, compile, nvrtc_is_available, KernelSource, KERNEL_SOURCES, PRELUDE};
pub use device::{cuda_device_count, cuda_is_available};
pub use storage::CudaStorage;

use crate::backend::{core_ops, forward_ops};
use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, Distribution, Pool2dParams, ReduceOp, UnaryOp};
use crate::{Backend, CpuStorage, DType, Device, Fused, Layout, Result};

// The kernel function of each op of the contract, by the op's name (`forward_ops!`
// calls them with the backend first).
use conv::{conv2d, conv2d_backward_data, conv2d_backward_weight};
use copy::{cast, contiguous, pad};
use elementwise::{binary, binary_scalar, compare, compare_scalar, unary, where_cond};
use fft::{irfft2, rfft2};
use indexing::{gather, index_select, scatter_add};
use int8::ternary_conv1x1;
use matmul::matmul;
use pool::{adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward};
use pool::{max_pool2d, max_pool2d_backward};
use reduce::{arg_reduce, reduce, softmax};
use sort::{sort, topk};

/// The kernel family that computes `pass` of the convolution of an input of shape `x` with a
/// weight of shape `w` in `dtype` (see [`crate::Storage::conv2d_algorithm`]).
pub(crate) fn conv_algorithm(
    pass: crate::ops::ConvPass,
    dtype: DType,
    x: &[usize],
    w: &[usize],
    p: &Conv2dParams,
) -> Option<&'static str> {
    let g = crate::planning::conv::Geom::new(x, w, p).ok()?;
    Some(conv::algorithm(pass, dtype, &g))
}

impl Backend for CudaBackend {
    type Storage = CudaStorage;

    fn device(&self) -> Device {
        Device::Cuda(self.dev.ordinal)
    }

    fn from_host(&self, data: &CpuStorage) -> Result<CudaStorage> {
        CudaStorage::upload(&self.dev, data)
    }

    fn to_host(&self, s: &CudaStorage, l: &Layout) -> Result<CpuStorage> {
        self.view("to_host", s, l)?;
        copy::to_host(s, l)
    }

    fn full(&self, dtype: DType, n: usize, value: f64) -> Result<CudaStorage> {
        copy::full(&self.dev, dtype, n, value)
    }

    fn dtype(&self, s: &CudaStorage) -> DType {
        s.dtype()
    }

    fn concat(&self, parts: &[(&CudaStorage, &Layout)], axis: usize) -> Result<CudaStorage> {
        if let Some(&(s, l)) = parts.first() {
            self.view("concat", s, l)?;
        }
        copy::concat(parts, axis)
    }

    fn random(&self, dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Result<CudaStorage> {
        random::random(&self.dev, dtype, n, dist, seed, offset)
    }

    core_ops!(forward_ops! { with_backend } CudaStorage);
}

/// The composites of every fused op (no fused CUDA kernels yet).
impl Fused for CudaBackend {}
