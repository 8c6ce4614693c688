//! 2-D convolution on the CPU: forward, input gradient and weight gradient, for f32 and f64
//! (and i8 -> i32 forward for quantized inference), as one family of algorithms behind one
//! planner.
//!
//! Each entry point checks its operands, makes them dense, asks the planner ([`plan`]) which
//! algorithm computes the pass, and runs it — the only place that calls into the algorithms:
//!
//! - [`im2col`]: im2col + GEMM, the general algorithm (every geometry and element type);
//! - [`winograd`]: 3x3 stride 1, F(2x2) as 16 GEMMs, and in f32 under AVX-512 F(2x2) and
//!   F(4x4) with tiles across the vector lanes over one pass engine;
//! - [`direct`]: direct 3x3 kernels in f32 under AVX-512, stride 1 and stride 2;
//! - [`depthwise`]: depthwise plane loops, and the AVX-512 3x3 kernels.
//!
//! The algorithms share the helpers of [`common`] and import neither each other's entry points
//! nor the planner. [`with_algorithm`] forces one algorithm (tests, benchmarks), and the
//! profiler names the algorithm of each call through [`algorithm`].

mod common;
mod depthwise;
#[cfg(target_arch = "x86_64")]
mod direct;
mod im2col;
mod plan;
#[cfg(test)]
mod tests;
mod winograd;

pub use plan::{with_algorithm, Algorithm, Isa};

use crate::cpu::gemm::GemmElement;
use crate::cpu::strided::check_extent;
use crate::cpu::strided::contiguous_slice as dense;
use crate::ops::{Conv2dParams, ConvPass};
use crate::planning::conv::{geom_backward_data, geom_backward_weight, Geom};
use crate::{CpuStorage, DType, Error, Layout, Result};
use common::{overwritten, written_in_full};

/// The algorithm that computes `pass` of the convolution of an input of shape `x` with a weight
/// of shape `w` in `dtype` (the forward shapes, whatever the pass): what the profiler shows.
/// An error where the shapes do not convolve, the dtype has no convolution, or a forced
/// algorithm ([`with_algorithm`]) cannot compute the pass.
pub fn algorithm(pass: ConvPass, dtype: DType, x: &[usize], w: &[usize], p: &Conv2dParams) -> Result<Algorithm> {
    let op = pass.op_name();
    let isa = Isa::of(dtype).ok_or(Error::UnsupportedDType { op, dtype })?;
    plan::plan(op, &Geom::new(x, w, p)?, pass, isa)
}

/// The planned algorithm for `pass` of `g` with operands of `dtype`.
fn planned(pass: ConvPass, g: &Geom, dtype: DType) -> Result<Algorithm> {
    let op = pass.op_name();
    plan::plan(op, g, pass, Isa::of(dtype).ok_or(Error::UnsupportedDType { op, dtype })?)
}

fn check_dtypes(op: &'static str, a: &CpuStorage, b: &CpuStorage) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    Ok(())
}

/// `x` `[N, C, H, W]` convolved with `w` `[O, C/groups, kH, kW]`: `[N, O, oH, oW]`.
pub(crate) fn conv2d(x: &CpuStorage, lx: &Layout, w: &CpuStorage, lw: &Layout, p: &Conv2dParams) -> Result<CpuStorage> {
    const OP: &str = "conv2d";
    check_extent(OP, x, lx)?;
    check_extent(OP, w, lw)?;
    check_dtypes(OP, x, w)?;
    let g = Geom::new(lx.shape(), lw.shape(), p)?;
    let pass = ConvPass::Forward;
    match (x, w) {
        (CpuStorage::F32(x), CpuStorage::F32(w)) => {
            Ok(CpuStorage::F32(forward(planned(pass, &g, DType::F32)?, x, lx, w, lw, &g)))
        }
        (CpuStorage::F64(x), CpuStorage::F64(w)) => {
            Ok(CpuStorage::F64(forward(planned(pass, &g, DType::F64)?, x, lx, w, lw, &g)))
        }
        (CpuStorage::I8(x), CpuStorage::I8(w)) => {
            Ok(CpuStorage::I32(forward_i8(planned(pass, &g, DType::I8)?, x, lx, w, lw, &g)))
        }
        _ => Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    }
}

/// The input gradient of [`conv2d`]: `gy` `[N, O, oH, oW]` through `w` to `[N, C, H, W]`,
/// `(H, W) = input_hw`.
pub(crate) fn conv2d_backward_data(
    gy: &CpuStorage,
    lgy: &Layout,
    w: &CpuStorage,
    lw: &Layout,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<CpuStorage> {
    const OP: &str = "conv2d_backward_data";
    check_extent(OP, gy, lgy)?;
    check_extent(OP, w, lw)?;
    check_dtypes(OP, gy, w)?;
    let g = geom_backward_data(lgy.shape(), lw.shape(), p, input_hw)?;
    let pass = ConvPass::BackwardData;
    match (gy, w) {
        (CpuStorage::F32(gy), CpuStorage::F32(w)) => {
            Ok(CpuStorage::F32(backward_data(planned(pass, &g, DType::F32)?, gy, lgy, w, lw, &g)))
        }
        (CpuStorage::F64(gy), CpuStorage::F64(w)) => {
            Ok(CpuStorage::F64(backward_data(planned(pass, &g, DType::F64)?, gy, lgy, w, lw, &g)))
        }
        _ => Err(Error::UnsupportedDType { op: OP, dtype: gy.dtype() }),
    }
}

/// The weight gradient of [`conv2d`]: `x` `[N, C, H, W]` and `gy` `[N, O, oH, oW]` to
/// `[O, C/groups, kH, kW]`, `(kH, kW) = kernel_hw`.
pub(crate) fn conv2d_backward_weight(
    x: &CpuStorage,
    lx: &Layout,
    gy: &CpuStorage,
    lgy: &Layout,
    p: &Conv2dParams,
    kernel_hw: (usize, usize),
) -> Result<CpuStorage> {
    const OP: &str = "conv2d_backward_weight";
    check_extent(OP, x, lx)?;
    check_extent(OP, gy, lgy)?;
    check_dtypes(OP, x, gy)?;
    let g = geom_backward_weight(lx.shape(), lgy.shape(), p, kernel_hw)?;
    let pass = ConvPass::BackwardWeight;
    match (x, gy) {
        (CpuStorage::F32(x), CpuStorage::F32(gy)) => {
            Ok(CpuStorage::F32(backward_weight(planned(pass, &g, DType::F32)?, x, lx, gy, lgy, &g)))
        }
        (CpuStorage::F64(x), CpuStorage::F64(gy)) => {
            Ok(CpuStorage::F64(backward_weight(planned(pass, &g, DType::F64)?, x, lx, gy, lgy, &g)))
        }
        _ => Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    }
}

/// The f32 view of an operand of an AVX-512 algorithm (the planner picks those for f32 only).
#[cfg(target_arch = "x86_64")]
fn f32s<T: GemmElement>(v: &[T]) -> &[f32] {
    T::as_f32(v).expect("the planner picks the AVX-512 kernels for f32 only")
}

/// An f32 output of `len` elements that an AVX-512 `kernel` writes in full, as `T`.
#[cfg(target_arch = "x86_64")]
fn f32_output<T: GemmElement>(len: usize, kernel: impl FnOnce(&mut [std::mem::MaybeUninit<f32>])) -> Vec<T> {
    // SAFETY: every AVX-512 data pass writes every element of its output.
    T::from_f32_vec(unsafe { written_in_full(len, kernel) })
}

/// A zeroed output of `len` elements that `kernel` accumulates into.
fn zeroed_output<T: GemmElement>(len: usize, kernel: impl FnOnce(&mut [T])) -> Vec<T> {
    let mut out = vec![T::zero(); len];
    kernel(&mut out);
    out
}

/// The forward pass of `x` and `w` by `algorithm`.
fn forward<T: GemmElement>(algorithm: Algorithm, x: &[T], lx: &Layout, w: &[T], lw: &Layout, g: &Geom) -> Vec<T> {
    let len = g.y_shape().iter().product();
    if len == 0 || g.ckk() == 0 {
        return vec![T::zero(); len];
    }
    let (x, w) = (dense(x, lx), dense(w, lw));
    let (x, w) = (&x[..], &w[..]);
    match algorithm {
        #[cfg(target_arch = "x86_64")]
        Algorithm::WinogradF4 => f32_output(len, |y| winograd::f4::forward(f32s(x), f32s(w), g, y)),
        #[cfg(target_arch = "x86_64")]
        Algorithm::WinogradF2 => f32_output(len, |y| winograd::f2::forward(f32s(x), f32s(w), g, y)),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Direct3x3 => f32_output(len, |y| direct::stride1::forward(f32s(x), f32s(w), g, y)),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Direct3x3Stride2 => f32_output(len, |y| direct::stride2::forward(f32s(x), f32s(w), g, y)),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Depthwise3x3 => f32_output(len, |y| depthwise::avx512::forward(f32s(x), f32s(w), g, y)),
        // SAFETY: the Winograd pass writes every output element.
        Algorithm::WinogradGemm => unsafe { written_in_full(len, |y| winograd::gemm::forward(x, w, g, y)) },
        Algorithm::Depthwise => zeroed_output(len, |y| depthwise::loops::forward(x, w, g, y)),
        Algorithm::Im2col => zeroed_output(len, |y| im2col::gemm::forward(x, w, g, y)),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("the planner picks the AVX-512 kernels on x86-64 only"),
    }
}

/// The quantized forward pass (im2col + integer GEMM, the one algorithm for i8).
fn forward_i8(algorithm: Algorithm, x: &[i8], lx: &Layout, w: &[i8], lw: &Layout, g: &Geom) -> Vec<i32> {
    let mut y = vec![0i32; g.y_shape().iter().product()];
    if y.is_empty() || g.ckk() == 0 {
        return y;
    }
    let (x, w) = (dense(x, lx), dense(w, lw));
    match algorithm {
        Algorithm::Depthwise => depthwise::loops::forward_i8(&x, &w, g, &mut y),
        _ => im2col::gemm::forward_i8(&x, &w, g, &mut y),
    }
    y
}

/// The input gradient of `gy` and `w` by `algorithm`.
fn backward_data<T: GemmElement>(
    algorithm: Algorithm,
    gy: &[T],
    lgy: &Layout,
    w: &[T],
    lw: &Layout,
    g: &Geom,
) -> Vec<T> {
    let len = g.x_shape().iter().product();
    if len == 0 || g.o == 0 || g.kk() == 0 {
        return vec![T::zero(); len];
    }
    let (gy, w) = (dense(gy, lgy), dense(w, lw));
    let (gy, w) = (&gy[..], &w[..]);
    match algorithm {
        #[cfg(target_arch = "x86_64")]
        Algorithm::WinogradF4 => f32_output(len, |dx| winograd::f4::backward_data(f32s(gy), f32s(w), g, dx)),
        #[cfg(target_arch = "x86_64")]
        Algorithm::WinogradF2 => f32_output(len, |dx| winograd::f2::backward_data(f32s(gy), f32s(w), g, dx)),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Direct3x3 => f32_output(len, |dx| direct::stride1::backward_data(f32s(gy), f32s(w), g, dx)),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Depthwise3x3 => f32_output(len, |dx| depthwise::avx512::backward_data(f32s(gy), f32s(w), g, dx)),
        // SAFETY: the Winograd pass writes every element of the input gradient.
        Algorithm::WinogradGemm => unsafe { written_in_full(len, |dx| winograd::gemm::backward_data(gy, w, g, dx)) },
        Algorithm::Depthwise => zeroed_output(len, |dx| depthwise::loops::backward_data(gy, w, g, dx)),
        Algorithm::Im2col => zeroed_output(len, |dx| im2col::gemm::backward_data(gy, w, g, dx)),
        _ => unreachable!("the planner gives {} no input gradient", algorithm.name()),
    }
}

/// The weight gradient of `x` and `gy` by `algorithm`.
fn backward_weight<T: GemmElement>(
    algorithm: Algorithm,
    x: &[T],
    lx: &Layout,
    gy: &[T],
    lgy: &Layout,
    g: &Geom,
) -> Vec<T> {
    let wlen: usize = g.w_shape().iter().product();
    if wlen == 0 || g.n == 0 {
        return vec![T::zero(); wlen];
    }
    let (x, gy) = (dense(x, lx), dense(gy, lgy));
    let (x, gy) = (&x[..], &gy[..]);
    // An f32 weight gradient that an AVX-512 kernel writes in full, as `T`.
    #[cfg(target_arch = "x86_64")]
    let avx512 = |kernel: fn(&[f32], &[f32], &Geom, &mut [f32])| {
        let mut dw = overwritten::<T>(wlen);
        kernel(f32s(x), f32s(gy), g, T::as_f32_mut(&mut dw).expect("T is f32"));
        dw
    };
    match algorithm {
        #[cfg(target_arch = "x86_64")]
        Algorithm::WinogradF4 => avx512(winograd::f4::backward_weight),
        #[cfg(target_arch = "x86_64")]
        Algorithm::WinogradF2 => avx512(winograd::f2::backward_weight),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Direct3x3 => avx512(direct::stride1::backward_weight),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Direct3x3Stride2 => avx512(direct::stride2::backward_weight),
        #[cfg(target_arch = "x86_64")]
        Algorithm::Depthwise3x3 => avx512(depthwise::avx512::backward_weight),
        Algorithm::WinogradGemm => winograd::gemm::backward_weight(x, gy, g),
        Algorithm::Depthwise => depthwise::loops::backward_weight(x, gy, g),
        Algorithm::Im2col => im2col::gemm::backward_weight(x, gy, g),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("the planner picks the AVX-512 kernels on x86-64 only"),
    }
}
