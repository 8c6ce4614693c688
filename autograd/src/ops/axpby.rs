//! `a·x + b·y` of two tensors of one shape in one pass, [`Tensor::axpby`]: the update of
//! optimizers (weight decay, momentum, the step) without a temporary per term.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::{Layout, Storage};

/// `l` as `[1, 1, n]` (one channel of one image) when it is contiguous.
fn one_channel(l: &Layout) -> Option<Layout> {
    let r = l.contiguous_range()?;
    let n = r.len();
    Layout::new(vec![1, 1, n], vec![n, n, 1], r.start).ok()
}

impl Tensor {
    /// `a·self + b·other` (same shapes, dtypes and devices), differentiable in both. Float
    /// contiguous operands take one fused pass (the backend's per-channel multiply-add over a
    /// single channel); other views are computed as `a·self` plus `b·other`.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    /// let y = Tensor::from_vec(vec![10.0f64, 20.0], &[2]).unwrap();
    /// assert_eq!(x.axpby(2.0, &y, -0.5).unwrap().to_vec::<f64>().unwrap(), vec![-3.0, -6.0]);
    /// ```
    pub fn axpby(&self, a: f64, other: &Tensor, b: f64) -> Result<Tensor> {
        const OP: &str = "axpby";
        if self.shape() != other.shape() {
            return Err(Error::shape(OP, self.shape(), other.shape()));
        }
        let fused = match (one_channel(self.layout()), one_channel(other.layout())) {
            (Some(lx), Some(ly)) if self.dtype().is_float() && self.dtype() == other.dtype() => Some((lx, ly)),
            _ => None,
        };
        let Some((lx, ly)) = fused else {
            return self.mul_scalar(a)?.add(&other.mul_scalar(b)?);
        };
        let s = crate::profile::forward(OP, self.device(), || -> Result<Storage> {
            let scalar = |v: f64| Tensor::full_on(&[1], v, self.dtype(), self.device());
            let (ta, tb, tz) = (scalar(a)?, scalar(b)?, scalar(0.0)?);
            let (sa, sb, zero) = (ta.storage(), tb.storage(), tz.storage());
            self.storage().channel_fma(&lx, &sa, &zero, Some((&other.storage(), &ly, &sb)))
        })?;
        let out = Tensor::from_storage(s, Layout::contiguous(self.shape()));
        Ok(record_fn(out, OP, &[self, other], move || {
            move |g: &Tensor| Ok(vec![Some(g.mul_scalar(a)?), Some(g.mul_scalar(b)?)])
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    /// The fused pass equals `a·x + b·y` elementwise, on contiguous views with an offset, and
    /// a strided view takes the composite with the same values.
    #[test]
    fn matches_the_composite() {
        let x = Tensor::from_vec((0..40).map(|i| i as f64 * 0.3 - 5.0).collect::<Vec<_>>(), &[5, 8]).unwrap();
        let y = Tensor::from_vec((0..40).map(|i| (i * 7 % 11) as f64).collect::<Vec<_>>(), &[5, 8]).unwrap();
        let want = |x: &Tensor, y: &Tensor| -> Vec<f64> {
            let (xv, yv) = (x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap());
            xv.iter().zip(&yv).map(|(x, y)| 0.75 * x - 2.5 * y).collect()
        };
        let got = x.axpby(0.75, &y, -2.5).unwrap();
        assert_eq!(got.to_vec::<f64>().unwrap(), want(&x, &y));
        // Rows 1..4: contiguous with an offset.
        let (xs, ys) = (x.narrow(0, 1, 3).unwrap(), y.narrow(0, 1, 3).unwrap());
        assert_eq!(xs.axpby(0.75, &ys, -2.5).unwrap().to_vec::<f64>().unwrap(), want(&xs, &ys));
        // Transposed: not contiguous.
        let (xt, yt) = (x.t().unwrap(), y.t().unwrap());
        assert_eq!(xt.axpby(0.75, &yt, -2.5).unwrap().to_vec::<f64>().unwrap(), want(&xt, &yt));
        let err = x.axpby(1.0, &y.t().unwrap(), 1.0).unwrap_err().to_string();
        assert!(err.contains("axpby") && err.contains("[5, 8]") && err.contains("[8, 5]"), "{err}");
    }

    /// The gradients are `a·g` and `b·g`.
    #[test]
    fn gradients_scale_the_output_gradient() {
        let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3]).unwrap().requires_grad_();
        let y = Tensor::from_vec(vec![0.5f64, 4.0, -1.0], &[3]).unwrap().requires_grad_();
        let w = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
        x.axpby(3.0, &y, -0.5).unwrap().mul(&w).unwrap().sum(&[0], false).unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 6.0, 9.0]);
        assert_eq!(y.grad().unwrap().to_vec::<f64>().unwrap(), vec![-0.5, -1.0, -1.5]);
    }
}
