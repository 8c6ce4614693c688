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
mod pool;
mod random;
mod reduce;
mod sort;
mod storage;

pub use compile::{cache_dir, compile, nvrtc_is_available, KernelSource, KERNEL_SOURCES, PRELUDE};
pub use device::{cuda_device_count, cuda_is_available};
pub use storage::CudaStorage;

use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, Distribution, Pool2dParams, ReduceOp, UnaryOp};
use crate::{Backend, CpuStorage, DType, Device, Fused, Layout, Result};
use device::DeviceState;
use std::sync::Arc;

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

/// The CUDA backend for one GPU.
#[derive(Clone, Debug)]
pub struct CudaBackend {
    dev: Arc<DeviceState>,
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
    fn view(&self, op: &'static str, s: &CudaStorage, l: &Layout) -> Result<()> {
        s.check_view(op, &self.dev, l)
    }
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

    fn contiguous(&self, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
        self.view("contiguous", s, l)?;
        copy::contiguous(s, l)
    }

    fn cast(&self, s: &CudaStorage, l: &Layout, dtype: DType) -> Result<CudaStorage> {
        self.view("cast", s, l)?;
        copy::cast(s, l, dtype)
    }

    fn unary(&self, op: UnaryOp, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
        self.view(op.name(), s, l)?;
        elementwise::unary(op, s, l)
    }

    fn binary(&self, op: BinaryOp, a: &CudaStorage, la: &Layout, b: &CudaStorage, lb: &Layout) -> Result<CudaStorage> {
        self.view(op.name(), a, la)?;
        self.view(op.name(), b, lb)?;
        elementwise::binary(op, a, la, b, lb)
    }

    fn binary_scalar(
        &self,
        op: BinaryOp,
        a: &CudaStorage,
        la: &Layout,
        scalar: f64,
        scalar_first: bool,
    ) -> Result<CudaStorage> {
        self.view(op.name(), a, la)?;
        elementwise::binary_scalar(op, a, la, scalar, scalar_first)
    }

    fn compare(&self, op: CmpOp, a: &CudaStorage, la: &Layout, b: &CudaStorage, lb: &Layout) -> Result<CudaStorage> {
        self.view("compare", a, la)?;
        self.view("compare", b, lb)?;
        elementwise::compare(op, a, la, b, lb)
    }

    fn compare_scalar(&self, op: CmpOp, a: &CudaStorage, la: &Layout, scalar: f64) -> Result<CudaStorage> {
        self.view("compare", a, la)?;
        elementwise::compare_scalar(op, a, la, scalar)
    }

    fn where_cond(
        &self,
        cond: &CudaStorage,
        lc: &Layout,
        a: &CudaStorage,
        la: &Layout,
        b: &CudaStorage,
        lb: &Layout,
    ) -> Result<CudaStorage> {
        self.view("where", cond, lc)?;
        self.view("where", a, la)?;
        self.view("where", b, lb)?;
        elementwise::where_cond(cond, lc, a, la, b, lb)
    }

    fn reduce(&self, op: ReduceOp, s: &CudaStorage, l: &Layout, axes: &[usize], keepdim: bool) -> Result<CudaStorage> {
        self.view("reduce", s, l)?;
        reduce::reduce(op, s, l, axes, keepdim)
    }

    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        s: &CudaStorage,
        l: &Layout,
        axis: usize,
        keepdim: bool,
    ) -> Result<CudaStorage> {
        self.view(if op == ArgReduceOp::ArgMax { "argmax" } else { "argmin" }, s, l)?;
        reduce::arg_reduce(op, s, l, axis, keepdim)
    }

    fn softmax(&self, s: &CudaStorage, l: &Layout, axis: usize, log: bool) -> Result<CudaStorage> {
        self.view("softmax", s, l)?;
        reduce::softmax(s, l, axis, log)
    }

    fn matmul(&self, a: &CudaStorage, la: &Layout, b: &CudaStorage, lb: &Layout) -> Result<CudaStorage> {
        self.view("matmul", a, la)?;
        self.view("matmul", b, lb)?;
        matmul::matmul(a, la, b, lb)
    }

    fn conv2d(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        self.view("conv2d", x, lx)?;
        self.view("conv2d", w, lw)?;
        conv::conv2d(x, lx, w, lw, p)
    }

    fn conv2d_backward_data(
        &self,
        gy: &CudaStorage,
        lgy: &Layout,
        w: &CudaStorage,
        lw: &Layout,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<CudaStorage> {
        self.view("conv2d_backward_data", gy, lgy)?;
        self.view("conv2d_backward_data", w, lw)?;
        conv::conv2d_backward_data(gy, lgy, w, lw, p, input_hw)
    }

    fn conv2d_backward_weight(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        gy: &CudaStorage,
        lgy: &Layout,
        p: &Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<CudaStorage> {
        self.view("conv2d_backward_weight", x, lx)?;
        self.view("conv2d_backward_weight", gy, lgy)?;
        conv::conv2d_backward_weight(x, lx, gy, lgy, p, kernel_hw)
    }

    fn max_pool2d(&self, x: &CudaStorage, l: &Layout, p: &Pool2dParams) -> Result<(CudaStorage, CudaStorage)> {
        self.view("max_pool2d", x, l)?;
        pool::max_pool2d(x, l, p)
    }

    fn max_pool2d_backward(
        &self,
        gy: &CudaStorage,
        lgy: &Layout,
        indices: &CudaStorage,
        li: &Layout,
        input_shape: &[usize],
    ) -> Result<CudaStorage> {
        self.view("max_pool2d_backward", gy, lgy)?;
        self.view("max_pool2d_backward", indices, li)?;
        pool::max_pool2d_backward(gy, lgy, indices, li, input_shape)
    }

    fn avg_pool2d(&self, x: &CudaStorage, l: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
        self.view("avg_pool2d", x, l)?;
        pool::avg_pool2d(x, l, p)
    }

    fn avg_pool2d_backward(
        &self,
        gy: &CudaStorage,
        lgy: &Layout,
        p: &Pool2dParams,
        input_shape: &[usize],
    ) -> Result<CudaStorage> {
        self.view("avg_pool2d_backward", gy, lgy)?;
        pool::avg_pool2d_backward(gy, lgy, p, input_shape)
    }

    fn adaptive_avg_pool2d(&self, x: &CudaStorage, l: &Layout, out_hw: (usize, usize)) -> Result<CudaStorage> {
        self.view("adaptive_avg_pool2d", x, l)?;
        pool::adaptive_avg_pool2d(x, l, out_hw)
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        gy: &CudaStorage,
        lgy: &Layout,
        input_shape: &[usize],
    ) -> Result<CudaStorage> {
        self.view("adaptive_avg_pool2d_backward", gy, lgy)?;
        pool::adaptive_avg_pool2d_backward(gy, lgy, input_shape)
    }

    fn gather(&self, x: &CudaStorage, lx: &Layout, axis: usize, idx: &CudaStorage, li: &Layout) -> Result<CudaStorage> {
        self.view("gather", x, lx)?;
        self.view("gather", idx, li)?;
        indexing::gather(x, lx, axis, idx, li)
    }

    fn scatter_add(
        &self,
        base: &CudaStorage,
        lb: &Layout,
        axis: usize,
        idx: &CudaStorage,
        li: &Layout,
        src: &CudaStorage,
        ls: &Layout,
    ) -> Result<CudaStorage> {
        self.view("scatter_add", base, lb)?;
        self.view("scatter_add", idx, li)?;
        self.view("scatter_add", src, ls)?;
        indexing::scatter_add(base, lb, axis, idx, li, src, ls)
    }

    fn index_select(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        axis: usize,
        idx: &CudaStorage,
        li: &Layout,
    ) -> Result<CudaStorage> {
        self.view("index_select", x, lx)?;
        self.view("index_select", idx, li)?;
        indexing::index_select(x, lx, axis, idx, li)
    }

    fn topk(
        &self,
        x: &CudaStorage,
        l: &Layout,
        k: usize,
        axis: usize,
        largest: bool,
    ) -> Result<(CudaStorage, CudaStorage)> {
        self.view("topk", x, l)?;
        sort::topk(x, l, k, axis, largest)
    }

    fn sort(&self, x: &CudaStorage, l: &Layout, axis: usize, descending: bool) -> Result<(CudaStorage, CudaStorage)> {
        self.view("sort", x, l)?;
        sort::sort(x, l, axis, descending)
    }

    fn concat(&self, parts: &[(&CudaStorage, &Layout)], axis: usize) -> Result<CudaStorage> {
        if let Some(&(s, l)) = parts.first() {
            self.view("concat", s, l)?;
        }
        copy::concat(parts, axis)
    }

    fn pad(&self, x: &CudaStorage, l: &Layout, pads: &[(usize, usize)], value: f64) -> Result<CudaStorage> {
        self.view("pad", x, l)?;
        copy::pad(x, l, pads, value)
    }

    fn random(&self, dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Result<CudaStorage> {
        random::random(&self.dev, dtype, n, dist, seed, offset)
    }

    fn rfft2(&self, x: &CudaStorage, l: &Layout) -> Result<(CudaStorage, CudaStorage)> {
        self.view("rfft2", x, l)?;
        fft::rfft2(x, l)
    }

    fn irfft2(
        &self,
        re: &CudaStorage,
        lre: &Layout,
        im: &CudaStorage,
        lim: &Layout,
        out_hw: (usize, usize),
    ) -> Result<CudaStorage> {
        self.view("irfft2", re, lre)?;
        self.view("irfft2", im, lim)?;
        fft::irfft2(re, lre, im, lim, out_hw)
    }

    fn ternary_conv1x1(&self, x: &CudaStorage, lx: &Layout, w: &CudaStorage, lw: &Layout) -> Result<CudaStorage> {
        self.view("ternary_conv1x1", x, lx)?;
        self.view("ternary_conv1x1", w, lw)?;
        int8::ternary_conv1x1(x, lx, w, lw)
    }
}

/// The composites of every fused op (no fused CUDA kernels yet).
impl Fused for CudaBackend {}
