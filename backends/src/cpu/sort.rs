//! Top-k and stable sort along any axis, for every numeric dtype.
//!
//! The axis is permuted last and the view copied into contiguous rows; each row is sorted as
//! `(value, index)` pairs in parallel, and the result is permuted back. Ordering is PyTorch's:
//! NaN compares larger than every number (last ascending, first descending) and NaNs are equal
//! to each other; ties (including `-0.0 == 0.0`) keep the lower index first in both directions.

use super::elementwise::with_slice;
use super::strided::{contiguous_slice, gather_view};
use crate::planning::sort::{sort_plan, SortPlan};
use crate::{CpuStorage, Element, Layout, Result};
use rayon::prelude::*;
use std::cmp::Ordering;

/// Total order on values with NaN above everything and all NaNs equal.
#[inline(always)]
fn cmp_nan_last<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        None => {
            #[allow(clippy::eq_op)]
            let (an, bn) = (a != a, b != b);
            match (an, bn) {
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => Ordering::Equal,
            }
        }
    }
}

/// Copies a buffer laid out as the permuted shape (axis last, `k` long) back to the original
/// dimension order.
fn unpermute<T: Copy + Default + Send + Sync>(buf: Vec<T>, pshape: &[usize], perm: &[usize]) -> Vec<T> {
    let axis = perm[perm.len() - 1];
    if axis == perm.len() - 1 {
        return buf;
    }
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    let l = Layout::contiguous(pshape).permute(&inv).expect("inverse permutation");
    let mut out = vec![T::default(); buf.len()];
    gather_view(&buf, &l, &mut out);
    out
}

/// Sorts each row of `x` (contiguous rows of `len`) and keeps the first `k` of each:
/// `select` picks the `k` best by partial selection before sorting them.
fn sort_rows<T: Element>(
    x: &[T],
    rows: usize,
    len: usize,
    k: usize,
    descending: bool,
    select: bool,
) -> (Vec<T>, Vec<i64>) {
    let mut vals = vec![T::default(); rows * k];
    let mut idxs = vec![0i64; rows * k];
    if rows * k == 0 {
        return (vals, idxs);
    }
    // Value order in the requested direction, then lower index first: a total order, so the
    // result does not depend on the algorithm's stability.
    let cmp = move |a: &(T, i64), b: &(T, i64)| {
        let o = if descending { cmp_nan_last(&b.0, &a.0) } else { cmp_nan_last(&a.0, &b.0) };
        o.then(a.1.cmp(&b.1))
    };
    let work = |r: usize, vc: &mut [T], ic: &mut [i64], pairs: &mut Vec<(T, i64)>| {
        pairs.clear();
        pairs.extend(x[r * len..(r + 1) * len].iter().enumerate().map(|(i, &v)| (v, i as i64)));
        if select && k < len {
            pairs.select_nth_unstable_by(k - 1, cmp);
            pairs.truncate(k);
        }
        pairs.sort_unstable_by(cmp);
        for (j, &(v, i)) in pairs.iter().take(k).enumerate() {
            vc[j] = v;
            ic[j] = i;
        }
    };
    if rows * len < super::strided::PAR_THRESHOLD || rows == 1 {
        let mut pairs = Vec::with_capacity(len);
        for (r, (vc, ic)) in vals.chunks_mut(k).zip(idxs.chunks_mut(k)).enumerate() {
            work(r, vc, ic, &mut pairs);
        }
    } else {
        vals.par_chunks_mut(k)
            .zip(idxs.par_chunks_mut(k))
            .enumerate()
            .for_each_init(|| Vec::with_capacity(len), |pairs, (r, (vc, ic))| work(r, vc, ic, pairs));
    }
    (vals, idxs)
}

fn sort_impl(
    op: &'static str,
    x: &CpuStorage,
    l: &Layout,
    k: Option<usize>,
    axis: usize,
    descending: bool,
) -> Result<(CpuStorage, CpuStorage)> {
    super::strided::check_extent(op, x, l)?;
    let SortPlan { pl, perm, rows, len, k } = sort_plan(op, l, axis, k)?;
    let mut pshape = pl.shape().to_vec();
    *pshape.last_mut().unwrap() = k;
    with_slice!(x, v, T => {
        let data = contiguous_slice(v, &pl);
        let (vals, idxs) = sort_rows::<T>(&data, rows, len, k, descending, k < len);
        Ok((T::into_cpu(unpermute(vals, &pshape, &perm)), CpuStorage::I64(unpermute(idxs, &pshape, &perm))))
    })
}

/// The `k` largest (or smallest) values along `axis`, sorted, and their `i64` indices.
pub(crate) fn topk(
    x: &CpuStorage,
    l: &Layout,
    k: usize,
    axis: usize,
    largest: bool,
) -> Result<(CpuStorage, CpuStorage)> {
    sort_impl("topk", x, l, Some(k), axis, largest)
}

/// Stable sort along `axis`: values and `i64` argsort indices.
pub(crate) fn sort(x: &CpuStorage, l: &Layout, axis: usize, descending: bool) -> Result<(CpuStorage, CpuStorage)> {
    sort_impl("sort", x, l, None, axis, descending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_is_largest_and_ties_keep_order() {
        let x = CpuStorage::F32(vec![1.0, f32::NAN, -0.0, 0.0, 1.0]);
        let l = Layout::contiguous(&[5]);
        let (v, i) = sort(&x, &l, 0, false).unwrap();
        let v = v.as_slice::<f32>().unwrap().to_vec();
        assert_eq!(&v[..4], &[-0.0, 0.0, 1.0, 1.0]);
        assert!(v[4].is_nan());
        assert_eq!(i, CpuStorage::I64(vec![2, 3, 0, 4, 1]));
        let (_, i) = sort(&x, &l, 0, true).unwrap();
        assert_eq!(i, CpuStorage::I64(vec![1, 0, 4, 2, 3]));
        let (_, i) = topk(&x, &l, 2, 0, false).unwrap();
        assert_eq!(i, CpuStorage::I64(vec![2, 3]));
        assert!(topk(&x, &l, 6, 0, true).is_err());
    }

    #[test]
    fn sorts_along_a_middle_axis() {
        let x = CpuStorage::I32(vec![3, 1, 2, 0, 5, 4]);
        let l = Layout::contiguous(&[1, 3, 2]);
        let (v, i) = sort(&x, &l, 1, false).unwrap();
        assert_eq!(v, CpuStorage::I32(vec![2, 0, 3, 1, 5, 4]));
        assert_eq!(i, CpuStorage::I64(vec![1, 1, 0, 0, 2, 2]));
    }
}
