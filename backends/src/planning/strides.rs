//! Strided walks over several views of one shape: dimensions merged where every operand's
//! strides allow it.

use crate::Layout;

/// Coalesces `K` layouts that share a shape: size-1 dimensions are dropped and adjacent
/// dimensions that are contiguous in every operand merged. Returns the merged shape (at least one
/// dimension) and each operand's strides over it; offsets are unchanged.
pub(crate) fn coalesce<const K: usize>(layouts: [&Layout; K]) -> (Vec<usize>, [Vec<usize>; K]) {
    let shape0 = layouts[0].shape();
    debug_assert!(layouts.iter().all(|l| l.shape() == shape0));
    let mut shape: Vec<usize> = Vec::with_capacity(shape0.len());
    let mut strides: [Vec<usize>; K] = std::array::from_fn(|_| Vec::with_capacity(shape0.len()));
    for d in 0..shape0.len() {
        let size = shape0[d];
        if size == 1 {
            continue;
        }
        let mergeable = !shape.is_empty()
            && (0..K).all(|k| {
                let last = *strides[k].last().unwrap();
                last == layouts[k].strides()[d] * size
            });
        if mergeable {
            *shape.last_mut().unwrap() *= size;
            for k in 0..K {
                *strides[k].last_mut().unwrap() = layouts[k].strides()[d];
            }
        } else {
            shape.push(size);
            for k in 0..K {
                strides[k].push(layouts[k].strides()[d]);
            }
        }
    }
    if shape.is_empty() {
        shape.push(1);
        for s in strides.iter_mut() {
            s.push(1);
        }
    }
    (shape, strides)
}
