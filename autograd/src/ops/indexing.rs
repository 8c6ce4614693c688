//! Indexing and sorting: `index_select`, `gather`, `scatter_add`, `topk`, `sort`, `argsort`,
//! with their derivatives.
//!
//! `gather` and `scatter_add` are each other's adjoints (at a fixed index), so every backward
//! rule here is made of differentiable ops and double backward works. Index tensors (`i64` or
//! another integer dtype) never receive gradients.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::Layout;

fn check_axis(op: &'static str, t: &Tensor, axis: usize) -> Result<()> {
    if axis >= t.ndim() {
        return Err(Error::AxisOutOfRange { op, axis, ndim: t.ndim() });
    }
    Ok(())
}

fn check_index(op: &'static str, idx: &Tensor) -> Result<()> {
    if idx.dtype().is_float() {
        return Err(Error::invalid(op, format!("the index must have an integer dtype, got {}", idx.dtype())));
    }
    Ok(())
}

impl Tensor {
    /// Selects entries `idx` (1-D, integer) of dimension `axis` (as `torch.index_select`): the
    /// result has this tensor's shape with dimension `axis` of size `idx.len()`. Repeated
    /// indices are allowed; their gradients add up.
    ///
    /// ```
    /// use autograd::{DType, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
    /// let i = Tensor::from_vec(vec![2i64, 0], &[2]).unwrap();
    /// assert_eq!(x.index_select(0, &i).unwrap().to_vec::<f32>().unwrap(), vec![5.0, 6.0, 1.0, 2.0]);
    /// ```
    pub fn index_select(&self, axis: usize, idx: &Tensor) -> Result<Tensor> {
        let op = "index_select";
        check_axis(op, self, axis)?;
        check_index(op, idx)?;
        if idx.ndim() > 1 {
            return Err(Error::invalid(op, format!("the index must be 1-D, got shape {:?}", idx.shape())));
        }
        let idx = idx.reshape_to(&[idx.numel()])?;
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().index_select(self.layout(), axis, &idx.storage(), idx.layout())
        })?;
        let mut shape = self.shape().to_vec();
        shape[axis] = idx.numel();
        let y = Tensor::from_storage(s, Layout::contiguous(&shape));
        let in_shape = self.shape().to_vec();
        Ok(record_fn(y, op, &[self], move || {
            move |g: &Tensor| {
                // index_add: scatter g into zeros at the selected rows.
                let mut ishape = vec![1; g.ndim()];
                ishape[axis] = idx.numel();
                let full_idx = idx.reshape_to(&ishape)?.expand(g.shape())?;
                let zeros = Tensor::full_on(&in_shape, 0.0, g.dtype(), g.device())?;
                Ok(vec![Some(zeros.scatter_add(axis, &full_idx, g)?)])
            }
        }))
    }

    /// `out[.., i, ..] = self[.., idx[.., i, ..], ..]` along `axis` (as `torch.gather`): `idx`
    /// has the result's shape and, outside `axis`, at most this tensor's sizes.
    pub fn gather(&self, axis: usize, idx: &Tensor) -> Result<Tensor> {
        let op = "gather";
        check_axis(op, self, axis)?;
        check_index(op, idx)?;
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().gather(self.layout(), axis, &idx.storage(), idx.layout())
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(idx.shape()));
        let in_shape = self.shape().to_vec();
        let idx = idx.clone();
        Ok(record_fn(y, op, &[self], move || {
            move |g: &Tensor| {
                let zeros = Tensor::full_on(&in_shape, 0.0, g.dtype(), g.device())?;
                Ok(vec![Some(zeros.scatter_add(axis, &idx, g)?)])
            }
        }))
    }

    /// A copy of this tensor with `src` added at the positions `idx` names along `axis` (as
    /// `torch.scatter_add`; only `src`'s leading `idx.shape()` block is used). Differentiable in
    /// this tensor (gradient passes unchanged) and in `src` (gradient gathered at `idx`).
    pub fn scatter_add(&self, axis: usize, idx: &Tensor, src: &Tensor) -> Result<Tensor> {
        let op = "scatter_add";
        check_axis(op, self, axis)?;
        check_index(op, idx)?;
        if self.dtype() != src.dtype() {
            return Err(Error::DTypeMismatch { op, lhs: self.dtype(), rhs: src.dtype() });
        }
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().scatter_add(self.layout(), axis, &idx.storage(), idx.layout(), &src.storage(), src.layout())
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(self.shape()));
        let (idx, src_shape) = (idx.clone(), src.shape().to_vec());
        let need_src = src.requires_grad();
        Ok(record_fn(y, op, &[self, src], move || {
            move |g: &Tensor| {
                let g_src = if need_src {
                    let picked = g.gather(axis, &idx)?;
                    let pads: Vec<(usize, usize)> =
                        src_shape.iter().zip(idx.shape()).map(|(&s, &i)| (0, s - i)).collect();
                    Some(if picked.shape() == src_shape.as_slice() { picked } else { picked.pad(&pads, 0.0)? })
                } else {
                    None
                };
                Ok(vec![Some(g.clone()), g_src])
            }
        }))
    }

    /// The `k` largest (or smallest, `largest = false`) values along `axis`, sorted, and their
    /// `i64` indices (ties go to the lower index). The values are differentiable: the gradient
    /// goes back to the selected positions. At tied values the choice, and so the gradient, is
    /// the lower index.
    pub fn topk(&self, k: usize, axis: usize, largest: bool) -> Result<(Tensor, Tensor)> {
        let op = "topk";
        check_axis(op, self, axis)?;
        if k > self.shape()[axis] {
            return Err(Error::invalid(
                op,
                format!("k = {k} exceeds the size {} of axis {axis} of {:?}", self.shape()[axis], self.shape()),
            ));
        }
        let (v, i) =
            crate::profile::forward(op, self.device(), || self.storage().topk(self.layout(), k, axis, largest))?;
        let mut shape = self.shape().to_vec();
        shape[axis] = k;
        self.values_at_indices(op, v, i, &shape, axis)
    }

    /// Sorts along `axis` (stable): the sorted values (differentiable) and the `i64`
    /// permutation (argsort).
    pub fn sort(&self, axis: usize, descending: bool) -> Result<(Tensor, Tensor)> {
        let op = "sort";
        check_axis(op, self, axis)?;
        let (v, i) =
            crate::profile::forward(op, self.device(), || self.storage().sort(self.layout(), axis, descending))?;
        let shape = self.shape().to_vec();
        self.values_at_indices(op, v, i, &shape, axis)
    }

    /// The `i64` indices that sort this tensor along `axis` (stable; no gradient).
    pub fn argsort(&self, axis: usize, descending: bool) -> Result<Tensor> {
        Ok(crate::no_grad(|| self.sort(axis, descending))?.1)
    }

    /// Wraps the values and indices of a selection along `axis`; the values' gradient is
    /// scattered back to the indices.
    fn values_at_indices(
        &self,
        op: &'static str,
        v: backends::Storage,
        i: backends::Storage,
        shape: &[usize],
        axis: usize,
    ) -> Result<(Tensor, Tensor)> {
        let values = Tensor::from_storage(v, Layout::contiguous(shape));
        let idx = Tensor::from_storage(i, Layout::contiguous(shape));
        let saved = idx.clone();
        let in_shape = self.shape().to_vec();
        let values = record_fn(values, op, &[self], move || {
            move |g: &Tensor| {
                let zeros = Tensor::full_on(&in_shape, 0.0, g.dtype(), g.device())?;
                Ok(vec![Some(zeros.scatter_add(axis, &saved, g)?)])
            }
        });
        Ok((values, idx))
    }
}
