//! Helpers shared by the convolution algorithms: scratch buffers, per-thread accumulators
//! summed in a fixed order, the valid output range of a tap, and the allocation of outputs
//! that a kernel writes in full. No algorithm imports another one or the planner; they all
//! import this.

use crate::cpu::gemm::GemmElement;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The output positions `lo..hi` (of `out_len`) whose input position `i * stride + off` falls
/// inside `0..in_len`.
#[inline]
pub(super) fn valid_range(out_len: usize, stride: usize, off: isize, in_len: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if off >= 0 { 0 } else { ((-off + s - 1) / s) as usize };
    let end = in_len as isize - off;
    let hi = if end <= 0 { 0 } else { (((end + s - 1) / s) as usize).min(out_len) };
    (lo.min(hi), hi)
}

/// The first `len` elements of a reusable scratch buffer (grown, never shrunk, so tiles of
/// different sizes do not refill it).
pub(super) fn scratch<T: Copy + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    &mut buf[..len]
}

/// Splits `0..count` into one contiguous run per thread, calls `f(run, acc)` for each run with
/// its own zeroed accumulator of `len` elements, and returns the accumulators summed in run
/// order: a fixed summation order for a given thread count (no races, no atomics).
pub(super) fn accumulate_in_runs<T: GemmElement>(
    count: usize,
    len: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync,
) -> Vec<T> {
    let parts = rayon::current_num_threads().clamp(1, count.max(1));
    let per = count.div_ceil(parts).max(1);
    let accs: Vec<Vec<T>> = (0..count.div_ceil(per).max(1))
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![T::zero(); len];
            f(part * per..((part + 1) * per).min(count), &mut acc);
            acc
        })
        .collect();
    let mut accs = accs.into_iter();
    let mut sum = accs.next().expect("at least one run");
    for a in accs {
        for (d, v) in sum.iter_mut().zip(&a) {
            *d += *v;
        }
    }
    sum
}

/// A `len`-element output that `kernel` writes in full. In unit tests it starts as NaN, so an
/// element a kernel skips shows up as NaN rather than as whatever the allocator left there.
///
/// # Safety
/// `kernel` must write every element.
pub(super) unsafe fn written_in_full<T: GemmElement>(len: usize, kernel: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    #[cfg(test)]
    {
        let mut out = vec![T::from_f64(f64::NAN); len];
        // SAFETY: `MaybeUninit<T>` has `T`'s layout, and every element is initialized.
        kernel(unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), len) });
        out
    }
    #[cfg(not(test))]
    // SAFETY: the caller's kernel writes every element.
    unsafe {
        crate::cpu::strided::build(len, kernel)
    }
}

/// A `len`-element buffer for a kernel that overwrites every element of a slice: zeros, or in
/// unit tests NaN (see [`written_in_full`]).
pub(super) fn overwritten<T: GemmElement>(len: usize) -> Vec<T> {
    vec![if cfg!(test) { T::from_f64(f64::NAN) } else { T::zero() }; len]
}
