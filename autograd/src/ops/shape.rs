//! Shape ops: views (reshape, permute, transpose, narrow, slice, expand, squeeze, unsqueeze) and
//! copies (contiguous, cat, stack, pad, repeat), dtype and device moves, with their derivatives.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::{DType, Device, Layout, Storage};

impl Tensor {
    /// Resolves a shape with at most one `-1` (as `isize`) against this tensor's element count.
    fn resolve_shape(&self, shape: &[isize]) -> Result<Vec<usize>> {
        let known: usize = shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
        let infer = shape.iter().filter(|&&d| d < 0).count();
        if infer > 1 || shape.iter().any(|&d| d < -1) {
            return Err(Error::invalid("reshape", format!("invalid shape {shape:?}")));
        }
        let fill = if infer == 1 {
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::invalid(
                    "reshape",
                    format!("shape {shape:?} does not fit {} elements of {:?}", self.numel(), self.shape()),
                ));
            }
            self.numel() / known
        } else {
            0
        };
        Ok(shape.iter().map(|&d| if d < 0 { fill } else { d as usize }).collect())
    }

    /// A tensor with the same elements and a new shape (a view when the strides allow, a copy
    /// otherwise); one dimension may be `-1`.
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        let shape = self.resolve_shape(shape)?;
        self.reshape_to(&shape)
    }

    /// [`Tensor::reshape`] with an explicit shape.
    pub fn reshape_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let y = match self.layout().reshape(shape)? {
            Some(l) => self.view_with(l),
            None => self.contiguous_raw()?.view_with(Layout::contiguous(shape)),
        };
        let in_shape = self.shape().to_vec();
        Ok(record_fn(y, "reshape", &[self], move || move |g: &Tensor| Ok(vec![Some(g.reshape_to(&in_shape)?)])))
    }

    /// Alias of [`Tensor::reshape`] (PyTorch's `view`).
    pub fn view(&self, shape: &[isize]) -> Result<Tensor> {
        self.reshape(shape)
    }

    /// Merges dimensions `start..=end` into one.
    pub fn flatten(&self, start: usize, end: usize) -> Result<Tensor> {
        if self.ndim() == 0 {
            return self.reshape_to(&[1]);
        }
        if start > end || end >= self.ndim() {
            return Err(Error::invalid(
                "flatten",
                format!("dims {start}..={end} are invalid for shape {:?}", self.shape()),
            ));
        }
        let s = self.shape();
        let mut shape = s[..start].to_vec();
        shape.push(s[start..=end].iter().product());
        shape.extend_from_slice(&s[end + 1..]);
        self.reshape_to(&shape)
    }

    fn view_op(
        &self,
        name: &'static str,
        layout: Layout,
        back: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Tensor {
        let y = self.view_with(layout);
        record_fn(y, name, &[self], move || move |g: &Tensor| Ok(vec![Some(back(g)?)]))
    }

    /// Reorders dimensions: output dim `i` is input dim `perm[i]` (a view).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let l = self.layout().permute(perm)?;
        let mut inv = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        Ok(self.view_op("permute", l, move |g| g.permute(&inv)))
    }

    /// Swaps two dimensions (a view).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        let l = self.layout().transpose(a, b)?;
        Ok(self.view_op("transpose", l, move |g| g.transpose(a, b)))
    }

    /// The transpose of a 2-D tensor.
    pub fn t(&self) -> Result<Tensor> {
        if self.ndim() != 2 {
            return Err(Error::invalid("t", format!("needs a 2-D tensor, got {:?}", self.shape())));
        }
        self.transpose(0, 1)
    }

    /// Elements `start..start+len` of dimension `axis` (a view).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        let l = self.layout().narrow(axis, start, len)?;
        let size = self.shape()[axis];
        let nd = self.ndim();
        Ok(self.view_op("narrow", l, move |g| {
            let mut pads = vec![(0, 0); nd];
            pads[axis] = (start, size - start - len);
            g.pad(&pads, 0.0)
        }))
    }

    /// Every `step`-th element of `start..end` along `axis` (a view, as `x[start:end:step]`).
    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Result<Tensor> {
        if step == 1 {
            return self.narrow(axis, start, end.saturating_sub(start));
        }
        let l = self.layout().slice_step(axis, start, end, step)?;
        let size = self.shape()[axis];
        Ok(self.view_op("slice", l, move |g| {
            // Interleave zeros: [.., n, ..] -> [.., n, step, ..] -> [.., n*step, ..], then place.
            let n = g.shape()[axis];
            let nd = g.ndim();
            let mut pads = vec![(0, 0); nd + 1];
            pads[axis + 1] = (0, step - 1);
            let spread = g.unsqueeze(axis + 1)?.pad(&pads, 0.0)?.flatten(axis, axis + 1)?;
            let used = (n * step).min(size - start);
            if start == 0 && used == size && used == n * step {
                return Ok(spread);
            }
            let spread = spread.narrow(axis, 0, used)?;
            let mut pads = vec![(0, 0); nd];
            pads[axis] = (start, size - start - used);
            spread.pad(&pads, 0.0)
        }))
    }

    /// Removes dimension `axis` by taking index `index` (a view).
    pub fn select(&self, axis: usize, index: usize) -> Result<Tensor> {
        self.narrow(axis, index, 1)?.squeeze(axis)
    }

    /// Inserts a dimension of size 1 at `axis` (a view).
    pub fn unsqueeze(&self, axis: usize) -> Result<Tensor> {
        let l = self.layout().unsqueeze(axis)?;
        Ok(self.view_op("unsqueeze", l, move |g| g.squeeze(axis)))
    }

    /// Removes dimension `axis`, which must have size 1 (a view).
    pub fn squeeze(&self, axis: usize) -> Result<Tensor> {
        let l = self.layout().squeeze(axis)?;
        Ok(self.view_op("squeeze", l, move |g| g.unsqueeze(axis)))
    }

    /// Broadcasts to `shape` without copying (stride 0 on broadcast dims), as `expand`.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let l = self.layout().broadcast_to(shape)?;
        let in_shape = self.shape().to_vec();
        Ok(self.view_op("expand", l, move |g| g.sum_to(&in_shape)))
    }

    /// Alias of [`Tensor::expand`].
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        self.expand(shape)
    }

    pub(crate) fn contiguous_raw(&self) -> Result<Tensor> {
        if self.is_contiguous() && self.layout().offset() == 0 && self.storage().len() == self.numel() {
            return Ok(self.detach());
        }
        let s = crate::profile::forward("contiguous", self.device(), || self.storage().contiguous(self.layout()))?;
        Ok(Tensor::from_storage(s, Layout::contiguous(self.shape())))
    }

    /// A contiguous copy (or this tensor when it already is contiguous).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let y = self.contiguous_raw()?;
        Ok(record_fn(y, "contiguous", &[self], || |g: &Tensor| Ok(vec![Some(g.clone())])))
    }

    /// Concatenates tensors along `axis` (as `torch.cat`).
    pub fn cat(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(Error::invalid("cat", "needs at least one tensor"));
        };
        for t in tensors {
            if t.dtype() != first.dtype() {
                return Err(Error::DTypeMismatch { op: "cat", lhs: first.dtype(), rhs: t.dtype() });
            }
        }
        let guards: Vec<_> = tensors.iter().map(|t| t.storage()).collect();
        let parts: Vec<(&Storage, &Layout)> = guards.iter().zip(tensors).map(|(g, t)| (&**g, t.layout())).collect();
        let s = crate::profile::forward("cat", first.device(), || Storage::concat(&parts, axis))?;
        drop(parts);
        drop(guards);
        let mut shape = first.shape().to_vec();
        shape[axis] = tensors.iter().map(|t| t.shape()[axis]).sum();
        let y = Tensor::from_storage(s, Layout::contiguous(&shape));
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[axis]).collect();
        Ok(record_fn(y, "cat", tensors, move || {
            move |g: &Tensor| {
                let mut start = 0;
                sizes
                    .iter()
                    .map(|&n| {
                        let piece = g.narrow(axis, start, n)?;
                        start += n;
                        Ok(Some(piece))
                    })
                    .collect()
            }
        }))
    }

    /// Stacks tensors of one shape along a new dimension `axis` (as `torch.stack`).
    pub fn stack(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
        let expanded = tensors.iter().map(|t| t.unsqueeze(axis)).collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = expanded.iter().collect();
        Tensor::cat(&refs, axis)
    }

    /// Pads every dimension with `(before, after)` copies of `value` (constant padding).
    pub fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor> {
        let s = crate::profile::forward("pad", self.device(), || self.storage().pad(self.layout(), pads, value))?;
        let shape: Vec<usize> = self.shape().iter().zip(pads).map(|(&d, &(a, b))| d + a + b).collect();
        let y = Tensor::from_storage(s, Layout::contiguous(&shape));
        let pads = pads.to_vec();
        let in_shape = self.shape().to_vec();
        Ok(record_fn(y, "pad", &[self], move || {
            move |g: &Tensor| {
                let mut t = g.clone();
                for (d, &(a, _)) in pads.iter().enumerate() {
                    t = t.narrow(d, a, in_shape[d])?;
                }
                Ok(vec![Some(t)])
            }
        }))
    }

    /// Tiles the tensor `reps[i]` times along each dimension (as `torch.Tensor.repeat`).
    pub fn repeat(&self, reps: &[usize]) -> Result<Tensor> {
        if reps.len() < self.ndim() {
            return Err(Error::invalid("repeat", format!("{} repetitions for a {}-D tensor", reps.len(), self.ndim())));
        }
        let mut t = self.clone();
        while t.ndim() < reps.len() {
            t = t.unsqueeze(0)?;
        }
        // [d0, d1, ...] -> [1, d0, 1, d1, ...] -> expand [r0, d0, r1, d1, ...] -> [r0*d0, ...]
        let mut shape = vec![];
        let mut expanded = vec![];
        for (i, &d) in t.shape().to_vec().iter().enumerate() {
            shape.extend([1, d]);
            expanded.extend([reps[i], d]);
        }
        let out: Vec<usize> = t.shape().iter().zip(reps).map(|(&d, &r)| d * r).collect();
        t.reshape_to(&shape)?.expand(&expanded)?.contiguous()?.reshape_to(&out)
    }

    /// Converts to another dtype (the gradient is converted back).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let s = crate::profile::forward("to_dtype", self.device(), || self.storage().cast(self.layout(), dtype))?;
        let y = Tensor::from_storage(s, Layout::contiguous(self.shape()));
        let from = self.dtype();
        if !dtype.is_float() || !from.is_float() {
            return Ok(y);
        }
        Ok(record_fn(y, "to_dtype", &[self], move || move |g: &Tensor| Ok(vec![Some(g.to_dtype(from)?)])))
    }

    /// Copies to another device (the gradient is copied back).
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let s = crate::profile::forward("to_device", device, || self.storage().to_device(self.layout(), device))?;
        let y = Tensor::from_storage(s, Layout::contiguous(self.shape()));
        let from = self.device();
        Ok(record_fn(y, "to_device", &[self], move || move |g: &Tensor| Ok(vec![Some(g.to_device(from)?)])))
    }
}
