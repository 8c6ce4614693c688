//! Reductions (sum, mean, max, min, var over axes; argmax/argmin) and their derivatives.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::ops::{ArgReduceOp, CmpOp, ReduceOp};
use backends::Layout;

/// Sorted, distinct axes, or an error naming `op`.
fn norm_axes(op: &'static str, axes: &[usize], ndim: usize) -> Result<Vec<usize>> {
    let mut a = axes.to_vec();
    a.sort_unstable();
    a.dedup();
    if let Some(&bad) = a.iter().find(|&&x| x >= ndim) {
        return Err(Error::AxisOutOfRange { op, axis: bad, ndim });
    }
    Ok(a)
}

/// The input shape with reduced axes set to 1.
fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(d, &s)| if axes.contains(&d) { 1 } else { s }).collect()
}

impl Tensor {
    fn reduce_raw(&self, op: ReduceOp, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        let s = crate::profile::forward(op.name(), self.device(), || {
            self.storage().reduce(op, self.layout(), axes, keepdim)
        })?;
        let shape: Vec<usize> = if keepdim {
            kept_shape(self.shape(), axes)
        } else {
            self.shape().iter().enumerate().filter(|(d, _)| !axes.contains(d)).map(|(_, &s)| s).collect()
        };
        Ok(Tensor::from_storage(s, Layout::contiguous(&shape)))
    }

    /// Sum over `axes` (all axes when empty is not intended: pass them explicitly).
    pub fn sum(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        let axes = norm_axes("sum", axes, self.ndim())?;
        let y = self.reduce_raw(ReduceOp::Sum, &axes, keepdim)?;
        let in_shape = self.shape().to_vec();
        Ok(record_fn(y, "sum", &[self], move || {
            move |g: &Tensor| Ok(vec![Some(g.reshape_to(&kept_shape(&in_shape, &axes))?.expand(&in_shape)?)])
        }))
    }

    /// Sum of every element (a 0-D tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.ndim()).collect();
        self.sum(&axes, false)
    }

    /// Mean over `axes`.
    pub fn mean(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        let axes = norm_axes("mean", axes, self.ndim())?;
        let y = self.reduce_raw(ReduceOp::Mean, &axes, keepdim)?;
        let in_shape = self.shape().to_vec();
        let count: usize = axes.iter().map(|&a| in_shape[a]).product();
        Ok(record_fn(y, "mean", &[self], move || {
            move |g: &Tensor| {
                Ok(vec![Some(
                    g.div_scalar(count as f64)?.reshape_to(&kept_shape(&in_shape, &axes))?.expand(&in_shape)?,
                )])
            }
        }))
    }

    /// Mean of every element (a 0-D tensor).
    pub fn mean_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.ndim()).collect();
        self.mean(&axes, false)
    }

    fn extreme(&self, op: ReduceOp, name: &'static str, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        let axes = norm_axes(name, axes, self.ndim())?;
        let y = self.reduce_raw(op, &axes, keepdim)?;
        let (x, yy) = (self.clone(), y.clone());
        Ok(record_fn(y, name, &[self], move || {
            move |g: &Tensor| {
                // The gradient is shared equally by all elements equal to the extreme.
                let ks = kept_shape(x.shape(), &axes);
                let yk = yy.reshape_to(&ks)?;
                let mask = x.detach().compare(&yk, CmpOp::Eq)?.to_dtype(x.dtype())?;
                let count = mask.sum(&axes, true)?;
                let share = g.reshape_to(&ks)?.div(&count)?;
                Ok(vec![Some(mask.mul(&share)?)])
            }
        }))
    }

    /// Maximum over `axes` (ties share the gradient equally, as `torch.amax`).
    pub fn max(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        self.extreme(ReduceOp::Max, "max", axes, keepdim)
    }

    /// Minimum over `axes` (ties share the gradient equally, as `torch.amin`).
    pub fn min(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        self.extreme(ReduceOp::Min, "min", axes, keepdim)
    }

    /// Variance over `axes` with Bessel's `correction` (1: unbiased, as `torch.var`; 0: biased).
    pub fn var(&self, axes: &[usize], correction: usize, keepdim: bool) -> Result<Tensor> {
        let axes = norm_axes("var", axes, self.ndim())?;
        let y = self.reduce_raw(ReduceOp::Var { correction }, &axes, keepdim)?;
        let x = self.clone();
        Ok(record_fn(y, "var", &[self], move || {
            move |g: &Tensor| {
                let n: usize = axes.iter().map(|&a| x.shape()[a]).product();
                let ks = kept_shape(x.shape(), &axes);
                let centered = x.sub(&x.mean(&axes, true)?)?;
                let scale = 2.0 / (n as f64 - correction as f64);
                Ok(vec![Some(centered.mul(&g.reshape_to(&ks)?)?.mul_scalar(scale)?)])
            }
        }))
    }

    /// Index of the maximum along `axis` (i64; lowest index on ties; not differentiable).
    pub fn argmax(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(ArgReduceOp::ArgMax, axis, keepdim)
    }

    /// Index of the minimum along `axis` (i64; lowest index on ties; not differentiable).
    pub fn argmin(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(ArgReduceOp::ArgMin, axis, keepdim)
    }

    fn arg_reduce(&self, op: ArgReduceOp, axis: usize, keepdim: bool) -> Result<Tensor> {
        let s = crate::profile::forward(op.name(), self.device(), || {
            self.storage().arg_reduce(op, self.layout(), axis, keepdim)
        })?;
        let axes = [axis];
        let shape: Vec<usize> = if keepdim {
            kept_shape(self.shape(), &axes)
        } else {
            self.shape().iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &s)| s).collect()
        };
        Ok(Tensor::from_storage(s, Layout::contiguous(&shape)))
    }

    /// Sums a broadcast gradient back to `shape` (the adjoint of broadcasting to this shape).
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let nd = self.ndim();
        if shape.len() > nd {
            return Err(Error::shape("sum_to", self.shape(), shape));
        }
        let lead = nd - shape.len();
        let mut axes: Vec<usize> = (0..lead).collect();
        for (i, &s) in shape.iter().enumerate() {
            let d = self.shape()[lead + i];
            if s == 1 && d != 1 {
                axes.push(lead + i);
            } else if s != d {
                return Err(Error::shape("sum_to", self.shape(), shape));
            }
        }
        self.sum(&axes, true)?.reshape_to(shape)
    }
}
