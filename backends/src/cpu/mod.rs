//! The CPU backend: host memory, rayon threads, `matrixmultiply` GEMM, `rustfft`.
//!
//! Each kernel family lives in its own file; [`CpuBackend`] wires them to the [`Backend`]
//! contract. Threads follow rayon's global pool (`RAYON_NUM_THREADS`), with one level of
//! parallelism: a kernel parallelizes either its outer loop or its GEMM, never both.

#[macro_use]
mod multiversion;
mod channel;
pub mod conv;
mod copy;
mod elementwise;
mod fast_math;
mod fft;
mod gemm;
pub(crate) mod indexing;
mod int8;
mod isa;
#[cfg(target_arch = "x86_64")]
mod mask16;
mod matmul;
pub mod memory;
mod pool;
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
mod strided;
#[cfg(test)]
mod testing;

use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, Distribution, Pool2dParams, ReduceOp, UnaryOp};
use crate::{Backend, CpuStorage, DType, Device, Layout, Result};

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

    fn contiguous(&self, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
        copy::contiguous(s, l)
    }

    fn cast(&self, s: &CpuStorage, l: &Layout, dtype: DType) -> Result<CpuStorage> {
        copy::cast(s, l, dtype)
    }

    fn unary(&self, op: UnaryOp, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
        copy::check_extent(op.name(), s, l)?;
        elementwise::unary(op, s, l)
    }

    fn binary(&self, op: BinaryOp, a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
        copy::check_extent(op.name(), a, la)?;
        copy::check_extent(op.name(), b, lb)?;
        elementwise::binary(op, a, la, b, lb)
    }

    fn binary_scalar(
        &self,
        op: BinaryOp,
        a: &CpuStorage,
        la: &Layout,
        scalar: f64,
        scalar_first: bool,
    ) -> Result<CpuStorage> {
        copy::check_extent(op.name(), a, la)?;
        elementwise::binary_scalar(op, a, la, scalar, scalar_first)
    }

    fn compare(&self, op: CmpOp, a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
        copy::check_extent("compare", a, la)?;
        copy::check_extent("compare", b, lb)?;
        elementwise::compare_op(op, a, la, b, lb)
    }

    fn compare_scalar(&self, op: CmpOp, a: &CpuStorage, la: &Layout, scalar: f64) -> Result<CpuStorage> {
        copy::check_extent("compare", a, la)?;
        elementwise::compare_scalar(op, a, la, scalar)
    }

    fn where_cond(
        &self,
        cond: &CpuStorage,
        lc: &Layout,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> Result<CpuStorage> {
        copy::check_extent("where", cond, lc)?;
        copy::check_extent("where", a, la)?;
        copy::check_extent("where", b, lb)?;
        elementwise::where_cond(cond, lc, a, la, b, lb)
    }

    fn reduce(&self, op: ReduceOp, s: &CpuStorage, l: &Layout, axes: &[usize], keepdim: bool) -> Result<CpuStorage> {
        reduce::reduce(op, s, l, axes, keepdim)
    }

    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        s: &CpuStorage,
        l: &Layout,
        axis: usize,
        keepdim: bool,
    ) -> Result<CpuStorage> {
        reduce::arg_reduce(op, s, l, axis, keepdim)
    }

    fn softmax(&self, s: &CpuStorage, l: &Layout, axis: usize, log: bool) -> Result<CpuStorage> {
        softmax::softmax(s, l, axis, log)
    }

    fn softmax_backward(
        &self,
        y: &CpuStorage,
        ly: &Layout,
        g: &CpuStorage,
        lg: &Layout,
        axis: usize,
        log: bool,
    ) -> Result<CpuStorage> {
        match softmax::softmax_backward(y, ly, g, lg, axis, log)? {
            Some(fused) => Ok(fused),
            None => crate::softmax_grad::softmax_backward_composite(self, y, ly, g, lg, axis, log),
        }
    }

    fn layer_norm(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        d: usize,
        weight: Option<&CpuStorage>,
        bias: Option<&CpuStorage>,
        eps: f64,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        row_norm::layer_norm(x, lx, d, weight, bias, eps)
    }

    fn layer_norm_backward(
        &self,
        g: &CpuStorage,
        lg: &Layout,
        x: &CpuStorage,
        lx: &Layout,
        d: usize,
        mean: &CpuStorage,
        rstd: &CpuStorage,
        weight: Option<&CpuStorage>,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        row_norm::layer_norm_backward(g, lg, x, lx, d, mean, rstd, weight)
    }

    fn channel_stats(&self, x: &CpuStorage, l: &Layout) -> Result<(CpuStorage, CpuStorage)> {
        channel::channel_stats(x, l)
    }

    fn channel_sums(
        &self,
        g: &CpuStorage,
        lg: &Layout,
        x: &CpuStorage,
        lx: &Layout,
        mean: &CpuStorage,
    ) -> Result<(CpuStorage, CpuStorage)> {
        channel::channel_sums(g, lg, x, lx, mean)
    }

    fn channel_fma(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        scale: &CpuStorage,
        shift: &CpuStorage,
        extra: Option<(&CpuStorage, &Layout, &CpuStorage)>,
    ) -> Result<CpuStorage> {
        channel::channel_fma(x, lx, scale, shift, extra)
    }

    fn channel_fma_relu(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        scale: &CpuStorage,
        shift: &CpuStorage,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> Result<CpuStorage> {
        channel::channel_fma_relu(x, lx, scale, shift, residual)
    }

    fn channel_sums_gated(
        &self,
        g: &CpuStorage,
        lg: &Layout,
        x: &CpuStorage,
        lx: &Layout,
        mean: &CpuStorage,
        gate: (&CpuStorage, &CpuStorage),
    ) -> Result<(CpuStorage, CpuStorage)> {
        channel::channel_sums_gated(g, lg, x, lx, mean, gate)
    }

    fn channel_fma_gated(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        scale: &CpuStorage,
        shift: &CpuStorage,
        term: (&CpuStorage, &Layout, &CpuStorage),
        gate: (&CpuStorage, &CpuStorage),
    ) -> Result<CpuStorage> {
        channel::channel_fma_gated(x, lx, scale, shift, term, gate)
    }

    fn matmul(&self, a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
        matmul::matmul(a, la, b, lb)
    }

    fn conv2d(&self, x: &CpuStorage, lx: &Layout, w: &CpuStorage, lw: &Layout, p: &Conv2dParams) -> Result<CpuStorage> {
        conv::conv2d(x, lx, w, lw, p)
    }

    fn conv2d_backward_data(
        &self,
        gy: &CpuStorage,
        lgy: &Layout,
        w: &CpuStorage,
        lw: &Layout,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<CpuStorage> {
        conv::conv2d_backward_data(gy, lgy, w, lw, p, input_hw)
    }

    fn conv2d_backward_weight(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        gy: &CpuStorage,
        lgy: &Layout,
        p: &Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<CpuStorage> {
        conv::conv2d_backward_weight(x, lx, gy, lgy, p, kernel_hw)
    }

    fn max_pool2d(&self, x: &CpuStorage, l: &Layout, p: &Pool2dParams) -> Result<(CpuStorage, CpuStorage)> {
        pool::max_pool2d(x, l, p)
    }

    fn max_pool2d_backward(
        &self,
        gy: &CpuStorage,
        lgy: &Layout,
        indices: &CpuStorage,
        li: &Layout,
        input_shape: &[usize],
    ) -> Result<CpuStorage> {
        pool::max_pool2d_backward(gy, lgy, indices, li, input_shape)
    }

    fn avg_pool2d(&self, x: &CpuStorage, l: &Layout, p: &Pool2dParams) -> Result<CpuStorage> {
        pool::avg_pool2d(x, l, p)
    }

    fn avg_pool2d_backward(
        &self,
        gy: &CpuStorage,
        lgy: &Layout,
        p: &Pool2dParams,
        input_shape: &[usize],
    ) -> Result<CpuStorage> {
        pool::avg_pool2d_backward(gy, lgy, p, input_shape)
    }

    fn adaptive_avg_pool2d(&self, x: &CpuStorage, l: &Layout, out_hw: (usize, usize)) -> Result<CpuStorage> {
        pool::adaptive_avg_pool2d(x, l, out_hw)
    }

    fn adaptive_avg_pool2d_backward(&self, gy: &CpuStorage, lgy: &Layout, input_shape: &[usize]) -> Result<CpuStorage> {
        pool::adaptive_avg_pool2d_backward(gy, lgy, input_shape)
    }

    fn gather(&self, x: &CpuStorage, lx: &Layout, axis: usize, idx: &CpuStorage, li: &Layout) -> Result<CpuStorage> {
        indexing::gather(x, lx, axis, idx, li)
    }

    fn scatter_add(
        &self,
        base: &CpuStorage,
        lb: &Layout,
        axis: usize,
        idx: &CpuStorage,
        li: &Layout,
        src: &CpuStorage,
        ls: &Layout,
    ) -> Result<CpuStorage> {
        indexing::scatter_add(base, lb, axis, idx, li, src, ls)
    }

    fn index_select(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        axis: usize,
        idx: &CpuStorage,
        li: &Layout,
    ) -> Result<CpuStorage> {
        indexing::index_select(x, lx, axis, idx, li)
    }

    fn topk(
        &self,
        x: &CpuStorage,
        l: &Layout,
        k: usize,
        axis: usize,
        largest: bool,
    ) -> Result<(CpuStorage, CpuStorage)> {
        sort::topk(x, l, k, axis, largest)
    }

    fn sort(&self, x: &CpuStorage, l: &Layout, axis: usize, descending: bool) -> Result<(CpuStorage, CpuStorage)> {
        sort::sort(x, l, axis, descending)
    }

    fn concat(&self, parts: &[(&CpuStorage, &Layout)], axis: usize) -> Result<CpuStorage> {
        copy::concat(parts, axis)
    }

    fn pad(&self, x: &CpuStorage, l: &Layout, pads: &[(usize, usize)], value: f64) -> Result<CpuStorage> {
        copy::pad(x, l, pads, value)
    }

    fn random(&self, dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Result<CpuStorage> {
        random::random(dtype, n, dist, seed, offset)
    }

    fn rfft2(&self, x: &CpuStorage, l: &Layout) -> Result<(CpuStorage, CpuStorage)> {
        fft::rfft2(x, l)
    }

    fn irfft2(
        &self,
        re: &CpuStorage,
        lre: &Layout,
        im: &CpuStorage,
        lim: &Layout,
        out_hw: (usize, usize),
    ) -> Result<CpuStorage> {
        fft::irfft2(re, lre, im, lim, out_hw)
    }

    fn ternary_conv1x1(&self, x: &CpuStorage, lx: &Layout, w: &CpuStorage, lw: &Layout) -> Result<CpuStorage> {
        int8::ternary_conv1x1(x, lx, w, lw)
    }
}
