//! The CPU backend: host memory, rayon threads, `matrixmultiply` GEMM, `rustfft`.
//!
//! Each kernel family lives in its own file, with a function per op of the same name and
//! arguments as the op's method; [`CpuBackend`] wires them to the [`Backend`] contract and its
//! [`Fused`] extension (the forwarding is generated from the op lists of `backend.rs`). Threads
//! follow rayon's global pool (`RAYON_NUM_THREADS`), with one level of parallelism: a kernel
//! parallelizes either its outer loop or its GEMM, never both.

#[macro_use]
mod multiversion;
mod attention;
mod channel;
pub mod conv;
mod copy;
mod elementwise;
mod fast_math;
mod fft;
mod gemm;
pub(crate) mod indexing;
mod int8;
#[cfg(target_arch = "x86_64")]
mod int8_vnni;
mod isa;
#[cfg(target_arch = "x86_64")]
mod mask16;
mod matmul;
pub mod memory;
mod pool;
mod precision;
mod quantize;
mod random;
mod reduce;
mod row_norm;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod sgemm;
mod softmax;
#[cfg(target_arch = "x86_64")]
mod softmax_avx512;
mod sort;
mod sparse_conv;
mod strided;
#[cfg(target_arch = "x86_64")]
mod ternary_avx512;
#[cfg(test)]
mod testing;

pub use precision::{bf16_slower_reason, has_bf16, matmul_precision, set_matmul_precision, MatmulPrecision};

use crate::backend::{core_ops, forward_ops, fused_ops};
use crate::ops::{
    ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, Distribution, Pool2dParams, ReduceOp, SparsePattern, UnaryOp,
};
use crate::{Backend, CpuStorage, DType, Device, Fused, Layout, Result};

// The kernel function of each op of the contract, by the op's name (`forward_ops!` calls them).
use attention::{packed_attention, packed_attention_backward};
use channel::{channel_fma, channel_fma_gated, channel_fma_relu, channel_stats, channel_sums, channel_sums_gated};
use conv::{conv2d, conv2d_backward_data, conv2d_backward_weight};
use copy::{cast, contiguous, pad};
use elementwise::{binary, binary_scalar, compare_op as compare, compare_scalar, unary, where_cond};
use fft::{irfft2, rfft2};
use indexing::{gather, index_select, scatter_add};
use int8::ternary_conv1x1;
use matmul::{matmul, matmul_bias};
use pool::{adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward};
use pool::{max_pool2d, max_pool2d_backward};
use quantize::{lsq_quantize, lsq_quantize_backward, quantize_i8, requantize};
use reduce::{arg_reduce, reduce};
use row_norm::{layer_norm, layer_norm_backward};
use softmax::softmax;
use sort::{sort, topk};
use sparse_conv::{sparse_conv2d, sparse_conv2d_backward_data, sparse_conv2d_backward_weight};

/// The CPU backend (stateless; threads come from rayon's global pool).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    type Storage = CpuStorage;

    fn device(&self) -> Device {
        Device::Cpu
    }

    fn from_host(&self, data: &CpuStorage) -> Result<CpuStorage> {
        Ok(data.clone())
    }

    fn to_host(&self, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
        copy::contiguous(s, l)
    }

    fn full(&self, dtype: DType, n: usize, value: f64) -> Result<CpuStorage> {
        Ok(CpuStorage::full(dtype, n, value))
    }

    fn dtype(&self, s: &CpuStorage) -> DType {
        s.dtype()
    }

    fn concat(&self, parts: &[(&CpuStorage, &Layout)], axis: usize) -> Result<CpuStorage> {
        copy::concat(parts, axis)
    }

    fn random(&self, dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Result<CpuStorage> {
        random::random(dtype, n, dist, seed, offset)
    }

    core_ops!(forward_ops! { plain } CpuStorage);
}

impl Fused for CpuBackend {
    fused_ops!(forward_ops! { plain } CpuStorage);
}

/// The softmax backward: the fused kernel on contiguous f32/f64 rows along the last axis, the
/// composite elsewhere.
fn softmax_backward(
    y: &CpuStorage,
    ly: &Layout,
    g: &CpuStorage,
    lg: &Layout,
    axis: usize,
    log: bool,
) -> Result<CpuStorage> {
    match softmax::softmax_backward(y, ly, g, lg, axis, log)? {
        Some(fused) => Ok(fused),
        None => crate::softmax_grad::softmax_backward_composite(&CpuBackend, y, ly, g, lg, axis, log),
    }
}
