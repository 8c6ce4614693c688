//! Gather, scatter-add and index-select on the GPU (`indexing.cu`), with PyTorch's semantics and
//! the CPU backend's checks. Indices (`i64`, `i32` or `u32`) are first converted to a contiguous
//! `i64` buffer and range-checked on the device; the first bad one (in row-major order) is the
//! error's index.

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::copy::dense;
use super::launch::{grid_for, kname, launch, Args, ErrorFlag, Walk};
use super::storage::CudaStorage;
use crate::planning::indexing::{base_view, check_axis, check_scatter_add, index_select_views};
use crate::{DType, Error, Layout, Result};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "indexing", src: include_str!("indexing.cu") };

/// The indices of a view as a contiguous `i64` buffer, each checked to lie in `0..size`.
fn read_indices(op: &'static str, idx: &CudaStorage, li: &Layout, size: usize) -> Result<CudaStorage> {
    if !idx.dtype().is_index() {
        return Err(Error::UnsupportedDType { op, dtype: idx.dtype() });
    }
    let n = li.numel();
    let out = CudaStorage::alloc(&idx.dev, DType::I64, n)?;
    if n == 0 {
        return Ok(out);
    }
    let flag = ErrorFlag::new(&idx.dev)?;
    let w = Walk::new(op, [li])?;
    let args = Args::new().buf(idx).buf(&out).int(n).push(w).int(size).push(flag.ptr());
    launch(&idx.dev, &SRC, &kname("index_check", idx.dtype()), grid_for(n), args)?;
    if let Some(pos) = flag.first_failure()? {
        let index = out.download_range(pos, 1)?.as_slice::<i64>().expect("i64 indices")[0];
        return Err(Error::IndexOutOfRange { op, index, size });
    }
    Ok(out)
}

/// `out[p] = x[base(p) + idx[ip] * stride(axis)]` over the output shape of `xv`.
fn gather_kernel(
    x: &CudaStorage,
    xv: &Layout,
    axis_stride: usize,
    idx: &CudaStorage,
    il: &Layout,
) -> Result<CudaStorage> {
    let n = xv.numel();
    let out = CudaStorage::alloc(&x.dev, x.dtype(), n)?;
    if n > 0 {
        let w = Walk::new("gather", [xv, il])?;
        let name = format!("gather_{}", x.dtype().size_in_bytes());
        let args = Args::new().buf(x).buf(idx).buf(&out).int(n).push(w).int(axis_stride);
        launch(&x.dev, &SRC, &name, grid_for(n), args)?;
    }
    Ok(out)
}

/// `torch.gather(x, axis, idx)`.
pub(crate) fn gather(
    backend: &CudaBackend,
    x: &CudaStorage,
    lx: &Layout,
    axis: usize,
    idx: &CudaStorage,
    li: &Layout,
) -> Result<CudaStorage> {
    backend.view("gather", x, lx)?;
    backend.view("gather", idx, li)?;
    const OP: &str = "gather";
    check_axis(OP, lx, axis)?;
    if li.ndim() != lx.ndim() || (0..lx.ndim()).any(|d| d != axis && li.shape()[d] > lx.shape()[d]) {
        return Err(Error::shape(OP, lx.shape(), li.shape()));
    }
    let iv = read_indices(OP, idx, li, lx.shape()[axis])?;
    let xv = base_view(lx, li.shape(), axis)?;
    gather_kernel(x, &xv, lx.strides()[axis], &iv, &Layout::contiguous(li.shape()))
}

/// `torch.index_select(x, axis, idx)` with a 1-D (or scalar) index.
pub(crate) fn index_select(
    backend: &CudaBackend,
    x: &CudaStorage,
    lx: &Layout,
    axis: usize,
    idx: &CudaStorage,
    li: &Layout,
) -> Result<CudaStorage> {
    backend.view("index_select", x, lx)?;
    backend.view("index_select", idx, li)?;
    const OP: &str = "index_select";
    let (xv, il) = index_select_views(lx, axis, li)?;
    let iv = read_indices(OP, idx, li, lx.shape()[axis])?;
    gather_kernel(x, &xv, lx.strides()[axis], &iv, &il)
}

/// `torch.scatter_add(base, axis, idx, src)` into a contiguous copy of `base`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_add(
    backend: &CudaBackend,
    base: &CudaStorage,
    lb: &Layout,
    axis: usize,
    idx: &CudaStorage,
    li: &Layout,
    src: &CudaStorage,
    ls: &Layout,
) -> Result<CudaStorage> {
    backend.view("scatter_add", base, lb)?;
    backend.view("scatter_add", idx, li)?;
    backend.view("scatter_add", src, ls)?;
    const OP: &str = "scatter_add";
    check_scatter_add(lb, axis, li, ls, base.dtype(), src.dtype())?;
    let iv = read_indices(OP, idx, li, lb.shape()[axis])?;
    let out = dense(base, lb)?;
    let n = li.numel();
    if n > 0 {
        let ov = base_view(&Layout::contiguous(lb.shape()), li.shape(), axis)?;
        let sv = Layout::new(li.shape().to_vec(), ls.strides().to_vec(), ls.offset())?;
        let w = Walk::new(OP, [&ov, &sv])?;
        let axis_stride = crate::contiguous_strides(lb.shape())[axis];
        let args = Args::new().buf(&out).buf(&iv).buf(src).int(n).push(w).int(axis_stride);
        launch(&base.dev, &SRC, &kname("scatter_add", base.dtype()), grid_for(n), args)?;
    }
    Ok(out)
}
