//! Shapes, strides and offsets: views over storage without copying.
//!
//! A [`Layout`] maps a multi-index `i` to the storage position `offset + Σ i_k * strides[k]`.
//! Transpose, permute, narrow, broadcast/expand, unsqueeze and (where possible) reshape only
//! change the layout. Strides are in elements; a broadcast dimension has stride 0.

use crate::{Error, Result};

/// The row-major (C order) strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// The NumPy broadcast of two shapes, or an error naming `op` and both shapes.
///
/// ```
/// use backends::broadcast_shapes;
/// assert_eq!(broadcast_shapes("add", &[3, 1, 5], &[4, 1]).unwrap(), vec![3, 4, 5]);
/// assert!(broadcast_shapes("add", &[3], &[4]).is_err());
/// ```
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(op, a, b));
        };
    }
    Ok(out)
}

/// A view: shape, strides (in elements) and starting offset into a storage buffer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// The contiguous row-major layout of `shape` at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout { shape: shape.to_vec(), strides: contiguous_strides(shape), offset: 0 }
    }

    /// A layout from its parts (checked: lengths must agree).
    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Result<Self> {
        if shape.len() != strides.len() {
            return Err(Error::shape("Layout::new", &shape, &strides));
        }
        Ok(Layout { shape, strides, offset })
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The strides, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// The position of element `[0, 0, ...]` in storage.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// One past the largest storage position this view touches (0 when empty).
    pub fn storage_extent(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset + self.shape.iter().zip(&self.strides).map(|(&d, &s)| (d - 1) * s).sum::<usize>() + 1
    }

    /// Whether elements are laid out row-major without gaps (size-1 dims are ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc *= d;
        }
        true
    }

    /// The storage range `offset..offset+numel` when the view is contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous().then(|| self.offset..self.offset + self.numel())
    }

    fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if axis >= self.ndim() {
            return Err(Error::AxisOutOfRange { op, axis, ndim: self.ndim() });
        }
        Ok(())
    }

    /// Reorders dimensions: output dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Self> {
        let n = self.ndim();
        let mut seen = vec![false; n];
        if perm.len() != n || perm.iter().any(|&p| p >= n || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::invalid("permute", format!("{perm:?} is not a permutation of {n} dimensions")));
        }
        Ok(Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }

    /// The sub-range `start..start+len` of dimension `axis`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Self> {
        self.check_axis("narrow", axis)?;
        if start + len > self.shape[axis] {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} exceeds dimension {axis} of size {} (shape {:?})",
                    start + len,
                    self.shape[axis],
                    self.shape
                ),
            ));
        }
        let mut l = self.clone();
        l.offset += start * self.strides[axis];
        l.shape[axis] = len;
        Ok(l)
    }

    /// Every `step`-th element of dimension `axis` from `start` (a strided slice).
    pub fn slice_step(&self, axis: usize, start: usize, end: usize, step: usize) -> Result<Self> {
        self.check_axis("slice", axis)?;
        if step == 0 || start > end || end > self.shape[axis] {
            return Err(Error::invalid(
                "slice",
                format!(
                    "slice {start}..{end} step {step} is invalid for dimension {axis} of size {}",
                    self.shape[axis]
                ),
            ));
        }
        let mut l = self.clone();
        l.offset += start * self.strides[axis];
        l.shape[axis] = (end - start).div_ceil(step);
        l.strides[axis] *= step;
        Ok(l)
    }

    /// Removes dimension `axis` by fixing its index.
    pub fn select(&self, axis: usize, index: usize) -> Result<Self> {
        self.check_axis("select", axis)?;
        if index >= self.shape[axis] {
            return Err(Error::IndexOutOfRange { op: "select", index: index as i64, size: self.shape[axis] });
        }
        let mut l = self.clone();
        l.offset += index * self.strides[axis];
        l.shape.remove(axis);
        l.strides.remove(axis);
        Ok(l)
    }

    /// Inserts a dimension of size 1 at `axis` (`0..=ndim`).
    pub fn unsqueeze(&self, axis: usize) -> Result<Self> {
        if axis > self.ndim() {
            return Err(Error::AxisOutOfRange { op: "unsqueeze", axis, ndim: self.ndim() });
        }
        let mut l = self.clone();
        let stride = if axis < self.ndim() { self.strides[axis] * self.shape[axis] } else { 1 };
        l.shape.insert(axis, 1);
        l.strides.insert(axis, stride);
        Ok(l)
    }

    /// Removes dimension `axis`, which must have size 1.
    pub fn squeeze(&self, axis: usize) -> Result<Self> {
        self.check_axis("squeeze", axis)?;
        if self.shape[axis] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!("dimension {axis} of {:?} has size {}, not 1", self.shape, self.shape[axis]),
            ));
        }
        let mut l = self.clone();
        l.shape.remove(axis);
        l.strides.remove(axis);
        Ok(l)
    }

    /// Broadcasts (expands) to `shape` by NumPy rules, with stride 0 on broadcast dimensions.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Self> {
        if shape.len() < self.ndim() {
            return Err(Error::shape("broadcast_to", &self.shape, shape));
        }
        let lead = shape.len() - self.ndim();
        let mut strides = vec![0; shape.len()];
        for i in 0..self.ndim() {
            let (d, t) = (self.shape[i], shape[lead + i]);
            strides[lead + i] = if d == t {
                self.strides[i]
            } else if d == 1 {
                0
            } else {
                return Err(Error::shape("broadcast_to", &self.shape, shape));
            };
        }
        Ok(Layout { shape: shape.to_vec(), strides, offset: self.offset })
    }

    /// A view with a new shape over the same elements, when the strides allow it without a copy.
    ///
    /// Returns `Ok(None)` when a copy is needed (the caller makes the data contiguous first) and an
    /// error when the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Option<Self>> {
        if shape.iter().product::<usize>() != self.numel() {
            return Err(Error::shape("reshape", &self.shape, shape));
        }
        if self.is_contiguous() {
            return Ok(Some(Layout { shape: shape.to_vec(), strides: contiguous_strides(shape), offset: self.offset }));
        }
        // General case (as in PyTorch's `view`): group old dims into contiguous chunks and split
        // each chunk over the new dims that cover it.
        let old: Vec<(usize, usize)> =
            self.shape.iter().copied().zip(self.strides.iter().copied()).filter(|&(d, _)| d != 1).collect();
        let mut new_strides = vec![0usize; shape.len()];
        let mut oi = 0;
        let mut ni = 0;
        while ni < shape.len() {
            if shape[ni] == 1 {
                new_strides[ni] = 1;
                ni += 1;
                continue;
            }
            if oi >= old.len() {
                return Ok(None);
            }
            // Take a chunk of old dims that are mutually contiguous.
            let mut chunk_size = old[oi].0;
            let mut chunk_end = oi;
            while chunk_end + 1 < old.len() && old[chunk_end].1 == old[chunk_end + 1].0 * old[chunk_end + 1].1 {
                chunk_end += 1;
                chunk_size *= old[chunk_end].0;
            }
            let inner_stride = old[chunk_end].1;
            // New dims must multiply to exactly a prefix-product boundary of the chunk.
            let start = ni;
            let mut prod = 1;
            while ni < shape.len() && prod < chunk_size {
                prod *= shape[ni];
                ni += 1;
            }
            if prod != chunk_size {
                return Ok(None);
            }
            let mut acc = inner_stride;
            for k in (start..ni).rev() {
                new_strides[k] = acc;
                acc *= shape[k];
            }
            oi = chunk_end + 1;
        }
        Ok(Some(Layout { shape: shape.to_vec(), strides: new_strides, offset: self.offset }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity_and_views() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert!(l.is_contiguous());
        assert_eq!(l.strides(), &[12, 4, 1]);
        let t = l.transpose(1, 2).unwrap();
        assert!(!t.is_contiguous());
        assert_eq!(t.shape(), &[2, 4, 3]);
        let n = l.narrow(2, 1, 2).unwrap();
        assert_eq!(n.offset(), 1);
        assert_eq!(n.storage_extent(), 1 + 12 + 2 * 4 + 1 + 1);
        assert!(l.narrow(2, 3, 2).is_err());
        let b = Layout::contiguous(&[3, 1]).broadcast_to(&[2, 3, 5]).unwrap();
        assert_eq!(b.strides(), &[0, 1, 0]);
        assert!(Layout::contiguous(&[3]).broadcast_to(&[4]).is_err());
    }

    #[test]
    fn reshape_views_and_copies() {
        let l = Layout::contiguous(&[2, 3, 4]);
        let p = l.permute(&[1, 0, 2]).unwrap(); // [3,2,4], strides [4,12,1]
                                                // merging the last two dims is impossible without a copy, splitting the last one is fine
        assert_eq!(p.reshape(&[3, 8]).unwrap(), None);
        let s = p.reshape(&[3, 2, 2, 2]).unwrap().unwrap();
        assert_eq!(s.strides(), &[4, 12, 2, 1]);
        assert!(l.reshape(&[5, 5]).is_err());
        let u = l.unsqueeze(3).unwrap();
        assert_eq!(u.shape(), &[2, 3, 4, 1]);
        assert_eq!(u.squeeze(3).unwrap(), l);
    }

    #[test]
    fn broadcast_shape_rules() {
        assert_eq!(broadcast_shapes("x", &[], &[2, 3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shapes("x", &[1, 3], &[2, 1]).unwrap(), vec![2, 3]);
        let e = broadcast_shapes("add", &[2, 3], &[4, 3]).unwrap_err();
        assert_eq!(e.to_string(), "add: shape mismatch between [2, 3] and [4, 3]");
    }
}
