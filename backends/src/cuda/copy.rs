//! Data movement on the GPU: contiguous copies of views, dtype casts, fills, concatenation and
//! padding (kernels in `copy.cu`).

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::device::{driver_err, DeviceState};
use super::launch::{grid_for, launch, Args, Walk};
use super::storage::CudaStorage;
use crate::{CpuStorage, DType, Error, Layout, Result};
use std::sync::Arc;

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "copy", src: include_str!("copy.cu") };

/// The byte-size-generic kernel name for a dtype (`copy_4`, `fill_8`, ...).
fn sized(prefix: &str, dtype: DType) -> String {
    format!("{prefix}_{}", dtype.size_in_bytes())
}

/// Copies view `ls` of `src` into view `ld` of `dst` (same shape and dtype).
pub(crate) fn copy_into(src: &CudaStorage, ls: &Layout, dst: &CudaStorage, ld: &Layout) -> Result<()> {
    let n = ls.numel();
    if n == 0 {
        return Ok(());
    }
    let dev = &src.dev;
    if let (Some(rs), Some(rd)) = (ls.contiguous_range(), ld.contiguous_range()) {
        dev.bind()?;
        // SAFETY: both ranges lie inside their buffers (views are checked by the callers).
        return unsafe {
            cudarc::driver::result::memcpy_dtod_async(
                dst.ptr_at(rd.start),
                src.ptr_at(rs.start),
                n * src.dtype().size_in_bytes(),
                dev.stream.cu_stream(),
            )
        }
        .map_err(driver_err("copying on the device"));
    }
    let w = Walk::new("copy", [ls, ld])?;
    launch(dev, &SRC, &sized("copy", src.dtype()), grid_for(n), Args::new().buf(src).buf(dst).int(n).push(w))
}

/// The elements of a view as a new contiguous buffer.
pub(crate) fn dense(s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let out = CudaStorage::alloc(&s.dev, s.dtype(), l.numel())?;
    copy_into(s, l, &out, &Layout::contiguous(l.shape()))?;
    Ok(out)
}

/// The `contiguous` op: checks the view, then [`dense`].
pub(crate) fn contiguous(backend: &CudaBackend, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    backend.view("contiguous", s, l)?;
    dense(s, l)
}

/// Fills `n` elements of `dst` from its start with `value` converted to its dtype.
pub(crate) fn fill(dst: &CudaStorage, n: usize, value: f64) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let one = CpuStorage::full(dst.dtype(), 1, value);
    let args = Args::new().buf(dst).int(n);
    let args = match one {
        CpuStorage::U8(v) => args.push(v[0]),
        CpuStorage::I8(v) => args.push(v[0] as u8),
        CpuStorage::F32(v) => args.push(v[0].to_bits()),
        CpuStorage::I32(v) => args.push(v[0] as u32),
        CpuStorage::U32(v) => args.push(v[0]),
        CpuStorage::F64(v) => args.push(v[0].to_bits()),
        CpuStorage::I64(v) => args.push(v[0] as u64),
    };
    launch(&dst.dev, &SRC, &sized("fill", dst.dtype()), grid_for(n), args)
}

/// A buffer of `n` copies of `value`.
pub(crate) fn full(dev: &Arc<DeviceState>, dtype: DType, n: usize, value: f64) -> Result<CudaStorage> {
    let out = CudaStorage::alloc(dev, dtype, n)?;
    fill(&out, n, value)?;
    Ok(out)
}

/// A view converted to `dtype` (Rust `as` semantics, saturating for integer targets).
pub(crate) fn cast(backend: &CudaBackend, s: &CudaStorage, l: &Layout, dtype: DType) -> Result<CudaStorage> {
    backend.view("cast", s, l)?;
    if s.dtype() == dtype {
        return dense(s, l);
    }
    let n = l.numel();
    let out = CudaStorage::alloc(&s.dev, dtype, n)?;
    if n > 0 {
        let w = Walk::new("cast", [l, &Layout::contiguous(l.shape())])?;
        let name = format!("cast_{}_{}", s.dtype().name(), dtype.name());
        launch(&s.dev, &SRC, &name, grid_for(n), Args::new().buf(s).buf(&out).int(n).push(w))?;
    }
    Ok(out)
}

/// Downloads a view, contiguous.
pub(crate) fn to_host(s: &CudaStorage, l: &Layout) -> Result<CpuStorage> {
    match l.contiguous_range() {
        Some(r) => s.download_range(r.start, r.len()),
        None => dense(s, l)?.download_range(0, l.numel()),
    }
}

/// Concatenates views along `axis` (checks as the CPU backend).
pub(crate) fn concat(parts: &[(&CudaStorage, &Layout)], axis: usize) -> Result<CudaStorage> {
    let out_shape =
        crate::planning::concat::concat_shape(&parts.iter().map(|&(s, l)| (s.dtype(), l)).collect::<Vec<_>>(), axis)?;
    let first = parts[0].0;
    for &(s, l) in parts {
        s.check_view("concat", &first.dev, l)?;
    }
    let out_layout = Layout::contiguous(&out_shape);
    let out = CudaStorage::alloc(&first.dev, first.dtype(), out_layout.numel())?;
    let mut start = 0;
    for &(s, l) in parts {
        let len = l.shape()[axis];
        copy_into(s, l, &out, &out_layout.narrow(axis, start, len)?)?;
        start += len;
    }
    Ok(out)
}

/// Pads every dimension with `(before, after)` elements of `value`.
pub(crate) fn pad(
    backend: &CudaBackend,
    s: &CudaStorage,
    l: &Layout,
    pads: &[(usize, usize)],
    value: f64,
) -> Result<CudaStorage> {
    backend.view("pad", s, l)?;
    if pads.len() != l.ndim() {
        return Err(Error::invalid(
            "pad",
            format!("{} (before, after) pairs given for a {}-D tensor {:?}", pads.len(), l.ndim(), l.shape()),
        ));
    }
    let out_shape: Vec<usize> = l.shape().iter().zip(pads).map(|(&d, &(a, b))| d + a + b).collect();
    let out_layout = Layout::contiguous(&out_shape);
    let out = full(&s.dev, s.dtype(), out_layout.numel(), value)?;
    let mut inner = out_layout;
    for (d, &(a, _)) in pads.iter().enumerate() {
        inner = inner.narrow(d, a, l.shape()[d])?;
    }
    copy_into(s, l, &out, &inner)?;
    Ok(out)
}
