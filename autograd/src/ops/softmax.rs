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
                // Under create_graph the output is recomputed from x so that it carries a graph.
                let y = if crate::is_grad_enabled() { x.softmax_impl(axis, log)? } else { yy.clone() };
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

    /// Softmax along `axis`.
    pub fn softmax(&self, axis: usize) -> Result<Tensor> {
        self.softmax_impl(axis, false)
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: usize) -> Result<Tensor> {
        self.softmax_impl(axis, true)
    }
}
