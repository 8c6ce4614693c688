//! Iteration over strided views: the machinery every CPU kernel uses to read any layout.
//!
//! Layouts are first *coalesced* (size-1 dimensions dropped, adjacent dimensions that are
//! contiguous in every operand merged), then walked as rows of the innermost dimension, so a
//! kernel's inner loop is a plain strided (usually unit-stride) loop.

use crate::planning::strides::coalesce;
use crate::{CpuStorage, Error, Layout, Result};
use std::mem::MaybeUninit;

/// Checks that a view stays inside its buffer (a broken layout is a caller bug, reported as an error).
pub(crate) fn check_extent(op: &'static str, s: &CpuStorage, l: &Layout) -> Result<()> {
    if l.storage_extent() > s.len() {
        return Err(Error::invalid(op, format!("view {:?} reaches past a buffer of {} elements", l, s.len())));
    }
    Ok(())
}

/// Elements below which a kernel stays on the calling thread.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

/// A walk over the rows of `K` layouts that share one shape, in row-major order.
#[derive(Clone, Debug)]
pub(crate) struct Rows<const K: usize> {
    shape: Vec<usize>,
    strides: [Vec<usize>; K],
    offsets: [usize; K],
}

impl<const K: usize> Rows<K> {
    /// Coalesces the layouts (which must share a shape) into a row walk.
    pub(crate) fn new(layouts: [&Layout; K]) -> Self {
        let (shape, strides) = coalesce(layouts);
        Rows { shape, strides, offsets: std::array::from_fn(|k| layouts[k].offset()) }
    }

    /// Length of the innermost dimension (a full row).
    pub(crate) fn row_len(&self) -> usize {
        *self.shape.last().unwrap()
    }

    /// Stride of the innermost dimension in each operand.
    pub(crate) fn inner_strides(&self) -> [usize; K] {
        std::array::from_fn(|k| *self.strides[k].last().unwrap())
    }

    /// Calls `f(offsets, len, pos)` for each (partial) row covering linear elements
    /// `start..start+count`: `offsets` are the storage positions of the row's first element in
    /// each operand, `len` its length, `pos` the linear index of its first element.
    pub(crate) fn for_each(&self, start: usize, count: usize, mut f: impl FnMut([usize; K], usize, usize)) {
        if count == 0 {
            return;
        }
        let nd = self.shape.len();
        let row = self.row_len();
        // Decompose `start` into a multi-index.
        let mut idx = vec![0usize; nd];
        let mut rem = start;
        for d in (0..nd).rev() {
            idx[d] = rem % self.shape[d];
            rem /= self.shape[d];
        }
        let mut offs: [usize; K] =
            std::array::from_fn(|k| self.offsets[k] + (0..nd).map(|d| idx[d] * self.strides[k][d]).sum::<usize>());
        let end = start + count;
        let mut pos = start;
        while pos < end {
            let len = (row - idx[nd - 1]).min(end - pos);
            f(offs, len, pos);
            pos += len;
            if pos >= end {
                break;
            }
            // Advance to the start of the next row.
            for k in 0..K {
                offs[k] -= idx[nd - 1] * self.strides[k][nd - 1];
            }
            idx[nd - 1] = 0;
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                for k in 0..K {
                    offs[k] += self.strides[k][d];
                }
                if idx[d] < self.shape[d] {
                    break;
                }
                for k in 0..K {
                    offs[k] -= self.shape[d] * self.strides[k][d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// Fills `out` (contiguous, `rows.numel()` long) in parallel chunks: `f(out_chunk, start)` gets
/// the chunk and the linear index of its first element.
pub(crate) fn par_fill<U: Send>(out: &mut [U], f: impl Fn(&mut [U], usize) + Sync) {
    use rayon::prelude::*;
    let n = out.len();
    if n < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        f(out, 0);
        return;
    }
    let chunk = n.div_ceil(rayon::current_num_threads() * 4).max(4096);
    out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(c, i * chunk));
}

/// A new vector of `n` elements built in parallel chunks as by [`par_fill`], but not
/// zero-filled first: a kernel that writes every element of its output saves a pass over
/// memory.
///
/// # Safety
/// `f(chunk, start)` must initialize every element of `chunk` (with `MaybeUninit::write`).
pub(crate) unsafe fn par_build<U: Send>(n: usize, f: impl Fn(&mut [MaybeUninit<U>], usize) + Sync) -> Vec<U> {
    // SAFETY: `par_fill` hands every element to `f` in exactly one chunk; the caller's `f`
    // initializes each of them.
    unsafe { build(n, |out| par_fill(out, f)) }
}

/// A new vector of `n` elements initialized by `fill`, not zero-filled first.
///
/// # Safety
/// `fill` must initialize every element of the slice it is given.
pub(crate) unsafe fn build<U>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<U>])) -> Vec<U> {
    let mut v: Vec<U> = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the caller's `fill` initialized the first `n` elements.
    unsafe { v.set_len(n) };
    v
}

/// Copies a view into `out` (contiguous).
pub(crate) fn gather_view<T: Copy + Send + Sync>(src: &[T], l: &Layout, out: &mut [T]) {
    if let Some(r) = l.contiguous_range() {
        out.copy_from_slice(&src[r]);
        return;
    }
    let rows = Rows::new([l]);
    let [st] = rows.inner_strides();
    par_fill(out, |chunk, start| {
        rows.for_each(start, chunk.len(), |[o], len, pos| {
            let dst = &mut chunk[pos - start..pos - start + len];
            if st == 1 {
                dst.copy_from_slice(&src[o..o + len]);
            } else {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = src[o + j * st];
                }
            }
        })
    });
}

/// The contiguous elements of a view: borrowed when already contiguous, copied otherwise (an
/// empty view never touches its buffer, whatever its offset).
pub(crate) fn contiguous_slice<'a, T: Copy + Send + Sync>(src: &'a [T], l: &Layout) -> std::borrow::Cow<'a, [T]> {
    if l.numel() == 0 {
        return std::borrow::Cow::Borrowed(&[]);
    }
    match l.contiguous_range() {
        Some(r) => std::borrow::Cow::Borrowed(&src[r]),
        None => {
            let mut out = vec![src[l.offset()]; l.numel()];
            gather_view(src, l, &mut out);
            std::borrow::Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_offsets(l: &Layout) -> Vec<usize> {
        let mut out = vec![];
        let n = l.numel();
        for lin in 0..n {
            let mut rem = lin;
            let mut off = l.offset();
            for d in (0..l.ndim()).rev() {
                off += (rem % l.shape()[d]) * l.strides()[d];
                rem /= l.shape()[d];
            }
            out.push(off);
        }
        out
    }

    #[test]
    fn rows_visit_every_offset_in_order() {
        let base = Layout::contiguous(&[3, 4, 5, 2]);
        let views = [
            base.clone(),
            base.permute(&[2, 0, 3, 1]).unwrap(),
            base.narrow(1, 1, 2).unwrap().transpose(0, 3).unwrap(),
            Layout::contiguous(&[4, 1, 2]).broadcast_to(&[3, 4, 5, 2]).unwrap(),
            base.slice_step(2, 1, 5, 3).unwrap(),
        ];
        for v in views {
            let want = naive_offsets(&v);
            let rows = Rows::new([&v]);
            let [st] = rows.inner_strides();
            for (start, count) in [(0, want.len()), (7, 13), (1, want.len() - 1), (5, 0)] {
                let mut got = vec![];
                rows.for_each(start, count, |[o], len, pos| {
                    assert_eq!(pos, start + got.len());
                    got.extend((0..len).map(|j| o + j * st));
                });
                assert_eq!(got, want[start..start + count], "view {v:?} start {start}");
            }
        }
    }
}
