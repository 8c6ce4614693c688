//! Sort and top-k along any axis on the GPU (`sort.cu`): each row (the axis moved last) is padded
//! to a power of two and sorted by a bitonic network under the CPU backend's total order, so
//! values and indices agree with it exactly; top-k keeps the first `k` of each sorted row.

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::launch::{grid_for, kname, launch, Args, Walk};
use super::storage::CudaStorage;
use crate::planning::sort::{sort_plan, SortPlan};
use crate::{DType, Layout, Result};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "sort", src: include_str!("sort.cu") };

fn sort_impl(
    op: &'static str,
    x: &CudaStorage,
    l: &Layout,
    k: Option<usize>,
    axis: usize,
    descending: bool,
) -> Result<(CudaStorage, CudaStorage)> {
    let SortPlan { pl, perm, rows, len, k } = sort_plan(op, l, axis, k)?;
    let mut out_shape = l.shape().to_vec();
    out_shape[axis] = k;
    let n_out: usize = out_shape.iter().product();
    let vals = CudaStorage::alloc(&x.dev, x.dtype(), n_out)?;
    let idxs = CudaStorage::alloc(&x.dev, DType::I64, n_out)?;
    if n_out == 0 {
        return Ok((vals, idxs));
    }
    let dt = x.dtype();
    let p2 = len.next_power_of_two();
    let total = rows * p2;
    let keys = CudaStorage::alloc(&x.dev, dt, total)?;
    let work = CudaStorage::alloc(&x.dev, DType::I64, total)?;
    let w = Walk::new(op, [&pl])?;
    let args = Args::new().buf(x).buf(&keys).buf(&work).int(rows).int(len).int(p2).push(w);
    launch(&x.dev, &SRC, &kname("sort_init", dt), grid_for(total), args)?;
    let mut kk = 2;
    while kk <= p2 {
        let mut j = kk / 2;
        while j > 0 {
            let args = Args::new().buf(&keys).buf(&work).int(rows).int(p2).int(kk).int(j).int(len);
            launch(&x.dev, &SRC, &kname("sort_step", dt), grid_for(total), args.push(descending as i32))?;
            j /= 2;
        }
        kk *= 2;
    }
    // The outputs in the original dimension order, addressed in the permuted (axis-last) order.
    let out_view = Layout::contiguous(&out_shape).permute(&perm)?;
    let w = Walk::new(op, [&out_view])?;
    let args = Args::new().buf(&keys).buf(&work).buf(&vals).buf(&idxs).int(rows).int(p2).int(k).push(w);
    launch(&x.dev, &SRC, &kname("sort_take", dt), grid_for(rows * k), args)?;
    Ok((vals, idxs))
}

/// The `k` largest (or smallest) values along `axis`, sorted, and their `i64` indices.
pub(crate) fn topk(
    backend: &CudaBackend,
    x: &CudaStorage,
    l: &Layout,
    k: usize,
    axis: usize,
    largest: bool,
) -> Result<(CudaStorage, CudaStorage)> {
    backend.view("topk", x, l)?;
    sort_impl("topk", x, l, Some(k), axis, largest)
}

/// Sort along `axis`: values and `i64` argsort indices.
pub(crate) fn sort(
    backend: &CudaBackend,
    x: &CudaStorage,
    l: &Layout,
    axis: usize,
    descending: bool,
) -> Result<(CudaStorage, CudaStorage)> {
    backend.view("sort", x, l)?;
    sort_impl("sort", x, l, None, axis, descending)
}
