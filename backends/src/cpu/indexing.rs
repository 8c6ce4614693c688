//! Gather, scatter-add and index-select with PyTorch's semantics, over strided views.
//!
//! Index tensors may be `i64`, `i32` or `u32`; they are first read into a contiguous `i64`
//! buffer and checked against the addressed dimension (negative or too-large indices are
//! [`Error::IndexOutOfRange`]). Gather and index-select then share one kernel: the data view is
//! re-strided to the output's shape with stride 0 along `axis`, so one walk over the output yields
//! the base position of each element, to which `index * stride(axis)` is added.

use super::elementwise::{map1, with_slice};
use super::scalar::Arith;
use super::strided::check_extent;
use super::strided::{par_fill, Rows};
use crate::ops::BinaryOp;
use crate::planning::indexing::{base_view, check_axis, check_scatter_add, index_select_views};
use crate::{CpuStorage, Element, Error, Layout, Result};
use rayon::prelude::*;

/// The indices of a view as a contiguous `i64` buffer, each checked to lie in `0..size`.
fn read_indices(op: &'static str, idx: &CpuStorage, li: &Layout, size: usize) -> Result<Vec<i64>> {
    check_extent(op, idx, li)?;
    let v: Vec<i64> = match idx {
        CpuStorage::I64(v) => map1(v, li, |x| x),
        CpuStorage::I32(v) => map1(v, li, |x| x as i64),
        CpuStorage::U32(v) => map1(v, li, |x| x as i64),
        _ => return Err(Error::UnsupportedDType { op, dtype: idx.dtype() }),
    };
    if let Some(&bad) = v.iter().find(|&&i| i < 0 || i as u64 >= size as u64) {
        return Err(Error::IndexOutOfRange { op, index: bad, size });
    }
    Ok(v)
}

/// `out[p] = x[base(p) + idx[ip] * axis_stride]` over the output walk of `xv` and `il`.
fn gather_kernel<T: Copy + Default + Send + Sync>(
    x: &[T],
    xv: &Layout,
    axis_stride: usize,
    idx: &[i64],
    il: &Layout,
) -> Vec<T> {
    let mut out = vec![T::default(); xv.numel()];
    if out.is_empty() {
        return out;
    }
    let rows = Rows::new([xv, il]);
    let [sx, si] = rows.inner_strides();
    par_fill(&mut out, |chunk, start| {
        rows.for_each(start, chunk.len(), |[ox, oi], len, pos| {
            let dst = &mut chunk[pos - start..pos - start + len];
            for (j, d) in dst.iter_mut().enumerate() {
                *d = x[ox + j * sx + idx[oi + j * si] as usize * axis_stride];
            }
        })
    });
    out
}

/// `torch.gather(x, axis, idx)`: `idx` has as many dimensions as `x` and, outside `axis`, sizes
/// at most `x`'s; the result has `idx`'s shape.
pub(crate) fn gather(x: &CpuStorage, lx: &Layout, axis: usize, idx: &CpuStorage, li: &Layout) -> Result<CpuStorage> {
    const OP: &str = "gather";
    check_extent(OP, x, lx)?;
    check_axis(OP, lx, axis)?;
    if li.ndim() != lx.ndim() || (0..lx.ndim()).any(|d| d != axis && li.shape()[d] > lx.shape()[d]) {
        return Err(Error::shape(OP, lx.shape(), li.shape()));
    }
    let iv = read_indices(OP, idx, li, lx.shape()[axis])?;
    let xv = base_view(lx, li.shape(), axis)?;
    let il = Layout::contiguous(li.shape());
    Ok(with_slice!(x, v, T => T::into_cpu(gather_kernel(v, &xv, lx.strides()[axis], &iv, &il))))
}

/// `torch.index_select(x, axis, idx)`: `idx` is 1-D (or a scalar); the result is `x`'s shape
/// with dimension `axis` replaced by the number of indices.
pub(crate) fn index_select(
    x: &CpuStorage,
    lx: &Layout,
    axis: usize,
    idx: &CpuStorage,
    li: &Layout,
) -> Result<CpuStorage> {
    const OP: &str = "index_select";
    check_extent(OP, x, lx)?;
    let (xv, il) = index_select_views(lx, axis, li)?;
    let iv = read_indices(OP, idx, li, lx.shape()[axis])?;
    Ok(with_slice!(x, v, T => T::into_cpu(gather_kernel(v, &xv, lx.strides()[axis], &iv, &il))))
}

/// Adds `src` into a contiguous copy `out` of `base` (shape `bshape`) at the positions `idx`
/// names along `axis`. Parallel over the first dimension when it is not `axis` (the rows of
/// dimension 0 are then disjoint output slices); sequential otherwise.
fn scatter_add_kernel<T: Arith>(
    out: &mut [T],
    bshape: &[usize],
    axis: usize,
    idx: &[i64],
    ishape: &[usize],
    src: &[T],
    ls: &Layout,
) {
    let nd = bshape.len();
    let ostrides = crate::contiguous_strides(bshape);
    let istrides = crate::contiguous_strides(ishape);
    let n_idx: usize = ishape.iter().product();
    if n_idx == 0 {
        return;
    }
    // Processes index positions `lo..hi` (linear in `ishape`); `out` starts at `out_base`.
    let run = |out: &mut [T], out_base: usize, lo: usize, hi: usize| {
        let mut mi = vec![0usize; nd];
        for p in lo..hi {
            let mut rem = p;
            for d in (0..nd).rev() {
                mi[d] = rem % ishape[d];
                rem /= ishape[d];
            }
            let mut o = 0;
            let mut s = ls.offset();
            for d in 0..nd {
                let i = if d == axis { idx[p] as usize } else { mi[d] };
                o += i * ostrides[d];
                s += mi[d] * ls.strides()[d];
            }
            let slot = &mut out[o - out_base];
            *slot = T::binary(BinaryOp::Add, *slot, src[s]).unwrap_or_default();
        }
    };
    if axis != 0 && ishape[0] > 1 && n_idx >= super::strided::PAR_THRESHOLD {
        let per_out = ostrides[0];
        let per_idx = istrides[0];
        out.par_chunks_mut(per_out).take(ishape[0]).enumerate().for_each(|(i, chunk)| {
            run(chunk, i * per_out, i * per_idx, (i + 1) * per_idx);
        });
    } else {
        run(out, 0, 0, n_idx);
    }
}

/// `torch.scatter_add(base, axis, idx, src)`: `idx` has as many dimensions as `base`, sizes at
/// most `src`'s everywhere and at most `base`'s outside `axis`; the result has `base`'s shape.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_add(
    base: &CpuStorage,
    lb: &Layout,
    axis: usize,
    idx: &CpuStorage,
    li: &Layout,
    src: &CpuStorage,
    ls: &Layout,
) -> Result<CpuStorage> {
    const OP: &str = "scatter_add";
    check_extent(OP, base, lb)?;
    check_extent(OP, src, ls)?;
    check_scatter_add(lb, axis, li, ls, base.dtype(), src.dtype())?;
    let iv = read_indices(OP, idx, li, lb.shape()[axis])?;
    with_slice!(base, bv, T => {
        let sv = T::cpu_slice(src).expect("dtype checked");
        let mut out = vec![T::default(); lb.numel()];
        super::strided::gather_view(bv, lb, &mut out);
        scatter_add_kernel::<T>(&mut out, lb.shape(), axis, &iv, li.shape(), sv, ls);
        Ok(T::into_cpu(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_rows_and_errors() {
        let x = CpuStorage::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let lx = Layout::contiguous(&[2, 3]);
        let idx = CpuStorage::I64(vec![2, 0, 1, 1]);
        let li = Layout::contiguous(&[2, 2]);
        let g = gather(&x, &lx, 1, &idx, &li).unwrap();
        assert_eq!(g, CpuStorage::F32(vec![3.0, 1.0, 5.0, 5.0]));
        let bad = CpuStorage::I64(vec![3, 0, 1, 1]);
        assert_eq!(
            gather(&x, &lx, 1, &bad, &li).unwrap_err(),
            Error::IndexOutOfRange { op: "gather", index: 3, size: 3 }
        );
        let wrong = CpuStorage::F32(vec![0.0; 4]);
        assert!(matches!(gather(&x, &lx, 1, &wrong, &li), Err(Error::UnsupportedDType { .. })));
    }

    #[test]
    fn scatter_add_accumulates_duplicates() {
        let base = CpuStorage::I32(vec![0; 3]);
        let idx = CpuStorage::U32(vec![1, 1, 0, 2]);
        let src = CpuStorage::I32(vec![1, 2, 3, 4]);
        let l4 = Layout::contiguous(&[4]);
        let r = scatter_add(&base, &Layout::contiguous(&[3]), 0, &idx, &l4, &src, &l4).unwrap();
        assert_eq!(r, CpuStorage::I32(vec![3, 3, 4]));
    }
}
