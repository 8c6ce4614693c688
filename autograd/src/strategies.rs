//! `proptest` strategies for tensors: shapes, broadcastable shape pairs, values and
//! non-contiguous views — exported so users can property-test their own ops.
//!
//! ```
//! use autograd::strategies::{f64_tensor, shape};
//! use proptest::prelude::*;
//! proptest!(|(t in shape(3, 5).prop_flat_map(|s| f64_tensor(s, -1.0, 1.0)))| {
//!     prop_assert_eq!(t.to_f64_vec().unwrap().len(), t.numel());
//! });
//! ```

use crate::Tensor;
use backends::{CpuStorage, Layout, Storage};
use proptest::prelude::*;

/// Shapes with 1..=`max_dims` dimensions of sizes 1..=`max_size`.
pub fn shape(max_dims: usize, max_size: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1..=max_size, 1..=max_dims)
}

/// Pairs of shapes that broadcast together: the second is the first with some dimensions set to
/// 1 and some leading dimensions dropped (in random order of operands).
pub fn broadcast_pair(max_dims: usize, max_size: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape(max_dims, max_size).prop_flat_map(|s| {
        let n = s.len();
        (Just(s), proptest::collection::vec(any::<bool>(), n), 0..n, any::<bool>()).prop_map(|(s, ones, drop, swap)| {
            let t: Vec<usize> = s.iter().zip(&ones).map(|(&d, &o)| if o { 1 } else { d }).skip(drop).collect();
            if swap {
                (t, s)
            } else {
                (s, t)
            }
        })
    })
}

/// How a generated tensor is laid out over its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewKind {
    /// Row-major, no gaps.
    Contiguous,
    /// All dimensions reversed over a transposed buffer.
    Permuted,
    /// Cut out of a larger buffer (nonzero offset, gaps).
    Narrowed,
    /// Every second element of the last dimension.
    Stepped,
}

/// Any view kind.
pub fn view_kind() -> impl Strategy<Value = ViewKind> {
    prop_oneof![Just(ViewKind::Contiguous), Just(ViewKind::Permuted), Just(ViewKind::Narrowed), Just(ViewKind::Stepped)]
}

/// An f64 CPU tensor of `shape` laid out as `kind`, with the given storage values.
pub fn make_view(shape: &[usize], kind: ViewKind, values: &[f64]) -> Tensor {
    let nd = shape.len();
    let (layout, len) = match kind {
        ViewKind::Contiguous => (Layout::contiguous(shape), shape.iter().product()),
        ViewKind::Permuted => {
            let rev: Vec<usize> = shape.iter().rev().copied().collect();
            let perm: Vec<usize> = (0..nd).rev().collect();
            (Layout::contiguous(&rev).permute(&perm).unwrap(), shape.iter().product())
        }
        ViewKind::Narrowed => {
            let big: Vec<usize> = shape.iter().map(|&d| d + 1).collect();
            let mut l = Layout::contiguous(&big);
            for (d, &s) in shape.iter().enumerate() {
                l = l.narrow(d, 1, s).unwrap();
            }
            (l, big.iter().product())
        }
        ViewKind::Stepped => {
            let mut big = shape.to_vec();
            if nd > 0 {
                big[nd - 1] *= 2;
            }
            let l = if nd > 0 {
                Layout::contiguous(&big).slice_step(nd - 1, 0, big[nd - 1], 2).unwrap()
            } else {
                Layout::contiguous(&big)
            };
            (l, big.iter().product())
        }
    };
    let data: Vec<f64> = (0..len).map(|i| values[i % values.len().max(1)]).collect();
    Tensor::from_storage(Storage::from_cpu(CpuStorage::F64(data)), layout)
}

/// An f64 tensor of `shape` with values in `[lo, hi)`, in any view kind.
pub fn f64_tensor(shape: Vec<usize>, lo: f64, hi: f64) -> impl Strategy<Value = Tensor> {
    let n: usize = shape.iter().product::<usize>() * 2 + 2;
    (view_kind(), proptest::collection::vec(lo..hi, n..=n)).prop_map(move |(k, v)| make_view(&shape, k, &v))
}

/// An f64 tensor of `shape` whose values stay at least `gap` away from every point in `avoid`
/// (for ops with kinks: relu at 0, clamp at its bounds).
pub fn f64_tensor_avoiding(
    shape: Vec<usize>,
    lo: f64,
    hi: f64,
    avoid: Vec<f64>,
    gap: f64,
) -> impl Strategy<Value = Tensor> {
    f64_tensor(shape, lo, hi).prop_map(move |t| {
        let v: Vec<f64> = t
            .storage()
            .to_host(&Layout::contiguous(&[t.storage().len()]))
            .unwrap()
            .to_f64_vec()
            .into_iter()
            .map(|x| {
                let mut x = x;
                for &a in &avoid {
                    if (x - a).abs() < gap {
                        x = a + if x >= a { gap } else { -gap };
                    }
                }
                x
            })
            .collect();
        Tensor::from_storage(Storage::from_cpu(CpuStorage::F64(v)), t.layout().clone())
    })
}

/// An f64 tensor of `shape`, in any view kind, whose storage holds pairwise-distinct values in
/// `[-1, 1)` spaced at least `1/len` apart (a random permutation): for ops whose derivative is
/// undefined at ties (max pooling, `topk`, `sort`, `max`). [`f64_tensor`] may repeat values
/// when a view's buffer is larger than its element count.
pub fn f64_tensor_distinct(shape: Vec<usize>) -> impl Strategy<Value = Tensor> {
    let n: usize = shape.iter().map(|d| d + 1).product::<usize>() * 2;
    (view_kind(), Just((0..n).collect::<Vec<usize>>()).prop_shuffle()).prop_map(move |(k, perm)| {
        let v: Vec<f64> = perm.iter().map(|&i| i as f64 / n as f64 * 2.0 - 1.0).collect();
        make_view(&shape, k, &v)
    })
}
