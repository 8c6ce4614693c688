//! Reductions over axes, arg-reductions and softmax on the GPU (kernels in `reduce.cu`).
//!
//! The axes are split as in the CPU backend (`planning::reduce::split_axes`): the view is permuted so the reduced
//! dimensions come last, and one thread block reduces each output. Float sums accumulate in f64.

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::launch::{kname, launch, Args, Grid, Walk};
use super::storage::CudaStorage;
use crate::ops::{ArgReduceOp, ReduceOp};
use crate::planning::reduce::split_axes;
use crate::{DType, Error, Layout, Result};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "reduce", src: include_str!("reduce.cu") };

/// Threads per block (`RTHREADS` in `reduce.cu`).
const RTHREADS: u32 = 256;

/// One block per output (grid-stride beyond 65535 outputs).
fn grid(n_out: usize) -> Grid {
    ((n_out.clamp(1, 65_535) as u32, 1, 1), (RTHREADS, 1, 1), 0)
}

/// Reduces a view over `axes`.
pub(crate) fn reduce(
    backend: &CudaBackend,
    op: ReduceOp,
    s: &CudaStorage,
    l: &Layout,
    axes: &[usize],
    keepdim: bool,
) -> Result<CudaStorage> {
    backend.view("reduce", s, l)?;
    let name = op.name();
    let dtype = s.dtype();
    let (pl, n_out, block, _) = split_axes(name, l, axes, keepdim)?;
    if matches!(op, ReduceOp::Mean | ReduceOp::Var { .. }) && !dtype.is_float() {
        return Err(Error::UnsupportedDType { op: name, dtype });
    }
    if block == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) && n_out > 0 {
        return Err(Error::invalid(name, format!("cannot reduce an empty dimension of {:?}", l.shape())));
    }
    let out = CudaStorage::alloc(&s.dev, dtype, n_out)?;
    if n_out == 0 {
        return Ok(out);
    }
    let w = Walk::new(name, [&pl])?;
    let args = Args::new().buf(s).buf(&out).int(n_out).int(block).push(w);
    let (kernel, args) = match op {
        ReduceOp::Max | ReduceOp::Min => ("reduce_extreme", args.push((op == ReduceOp::Max) as i32)),
        ReduceOp::Sum if !dtype.is_float() => ("reduce_sum", args),
        ReduceOp::Sum => ("reduce_float", args.push(0i32).push(0i64)),
        ReduceOp::Mean => ("reduce_float", args.push(1i32).push(0i64)),
        ReduceOp::Var { correction } => ("reduce_float", args.push(2i32).push(correction as i64)),
    };
    if block == 0 {
        // Nothing to read: sums are 0, means and variances 0/0.
        let v = if op == ReduceOp::Sum { 0.0 } else { f64::NAN };
        super::copy::fill(&out, n_out, v)?;
        return Ok(out);
    }
    launch(&s.dev, &SRC, &kname(kernel, dtype), grid(n_out), args)?;
    Ok(out)
}

/// The `i64` index of the max/min along `axis` (first NaN, else first extreme).
pub(crate) fn arg_reduce(
    backend: &CudaBackend,
    op: ArgReduceOp,
    s: &CudaStorage,
    l: &Layout,
    axis: usize,
    keepdim: bool,
) -> Result<CudaStorage> {
    backend.view(if op == ArgReduceOp::ArgMax { "argmax" } else { "argmin" }, s, l)?;
    let name = op.name();
    let (pl, n_out, block, _) = split_axes(name, l, &[axis], keepdim)?;
    if block == 0 {
        return Err(Error::invalid(name, format!("cannot reduce an empty dimension of {:?}", l.shape())));
    }
    let out = CudaStorage::alloc(&s.dev, DType::I64, n_out)?;
    if n_out > 0 {
        let w = Walk::new(name, [&pl])?;
        let args = Args::new().buf(s).buf(&out).int(n_out).int(block).push(w);
        let args = args.push((op == ArgReduceOp::ArgMax) as i32);
        launch(&s.dev, &SRC, &kname("arg_reduce", s.dtype()), grid(n_out), args)?;
    }
    Ok(out)
}

/// Softmax or log-softmax along `axis`.
pub(crate) fn softmax(
    backend: &CudaBackend,
    s: &CudaStorage,
    l: &Layout,
    axis: usize,
    log: bool,
) -> Result<CudaStorage> {
    backend.view("softmax", s, l)?;
    if !s.dtype().is_float() {
        return Err(Error::UnsupportedDType { op: "softmax", dtype: s.dtype() });
    }
    let (pl, rows, len, _) = split_axes("softmax", l, &[axis], true)?;
    let out = CudaStorage::alloc(&s.dev, s.dtype(), l.numel())?;
    if l.numel() == 0 {
        return Ok(out);
    }
    // The output, addressed in the same permuted order (axis last) as the input view.
    let perm: Vec<usize> = (0..l.ndim()).filter(|&d| d != axis).chain([axis]).collect();
    let out_view = Layout::contiguous(l.shape()).permute(&perm)?;
    let w = Walk::new("softmax", [&pl, &out_view])?;
    let args = Args::new().buf(s).buf(&out).int(rows).int(len).push(w).push(log as i32);
    launch(&s.dev, &SRC, &kname("softmax", s.dtype()), grid(rows), args)?;
    Ok(out)
}
