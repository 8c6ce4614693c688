//! Softmax and log-softmax along an axis (numerically stable) and their derivatives.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::Layout;

impl Tensor {
    fn softmax_impl(&self, axis: usize, log: bool) -> Result<Tensor> {
        if axis >= self.ndim() {
            return Err(Error::AxisOutOfRange {
                op: if log { "log_softmax" } else { "softmax" },
                axis,
                ndim: self.ndim(),
            });
        }
        let s = crate::profile::forward(if log { "log_softmax" } else { "softmax" }, self.device(), || {
            self.storage().softmax(self.layout(), axis, log)
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(self.shape()));
        let (x, yy) = (self.clone(), y.clone());
        Ok(record_fn(y, if log { "log_softmax" } else { "softmax" }, &[self], move || {
            move |g: &Tensor| {
                if !crate::is_grad_enabled() {
                    // First order: the backend's fused kernel (one pass over the rows).
                    return Ok(vec![Some(yy.softmax_backward_raw(g, axis, log)?)]);
                }
                // Under create_graph the output is recomputed from x so that it carries a graph.
                let y = x.softmax_impl(axis, log)?;
                let gx = if log {
                    // g - softmax(x) * sum(g)
                    g.sub(&y.exp()?.mul(&g.sum(&[axis], true)?)?)?
                } else {
                    // y * (g - sum(g * y))
                    y.mul(&g.sub(&g.mul(&y)?.sum(&[axis], true)?)?)?
                };
                Ok(vec![Some(gx)])
            }
        }))
    }

    /// The input gradient of softmax (or log-softmax) along `axis` from its output `self` and
    /// the output gradient `g`, by the backend's [`Backend::softmax_backward`] kernel. Not
    /// recorded: for backward rules that run without a graph.
    ///
    /// [`Backend::softmax_backward`]: backends::Backend::softmax_backward
    pub(crate) fn softmax_backward_raw(&self, g: &Tensor, axis: usize, log: bool) -> Result<Tensor> {
        let s = self.storage().softmax_backward(self.layout(), &g.storage(), g.layout(), axis, log)?;
        Ok(Tensor::from_storage(s, Layout::contiguous(self.shape())))
    }

    /// Softmax along `axis`.
    pub fn softmax(&self, axis: usize) -> Result<Tensor> {
        self.softmax_impl(axis, false)
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: usize) -> Result<Tensor> {
        self.softmax_impl(axis, true)
    }
}
