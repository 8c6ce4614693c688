//! Dropout (elementwise) and Dropout2d (whole channels), on the backend's seeded Bernoulli fill.
//!
//! The scaled mask `m = bernoulli(1 − p) / (1 − p)` is drawn from the counter-based generator, so
//! a `(seed, shape)` pair gives the same mask on every device and thread count. The op saves only
//! `m`; its derivative is `g · m`.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::ops::Distribution;

impl Tensor {
    /// Zeroes each element with probability `p` and scales the others by `1/(1 − p)` when
    /// `train` is true (as `torch.nn.functional.dropout`); the identity when `train` is false.
    /// `seed` selects the mask (the caller advances it between steps).
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::ones(&[1000]);
    /// let y = x.dropout(0.5, 7, true).unwrap().to_vec::<f32>().unwrap();
    /// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
    /// assert_eq!(x.dropout(0.5, 7, false).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 1000]);
    /// ```
    pub fn dropout(&self, p: f64, seed: u64, train: bool) -> Result<Tensor> {
        let shape = self.shape().to_vec();
        self.masked_dropout("dropout", p, seed, train, &shape)
    }

    /// Zeroes whole channels of `[N, C, ...]` with probability `p` (one draw per `(n, c)`) and
    /// scales the others by `1/(1 − p)` when `train` is true (as `torch.nn.functional.dropout2d`);
    /// the identity when `train` is false.
    pub fn dropout2d(&self, p: f64, seed: u64, train: bool) -> Result<Tensor> {
        if self.ndim() < 2 {
            return Err(Error::invalid("dropout2d", format!("needs an [N, C, ...] input, got {:?}", self.shape())));
        }
        let mut shape = vec![1; self.ndim()];
        shape[0] = self.shape()[0];
        shape[1] = self.shape()[1];
        self.masked_dropout("dropout2d", p, seed, train, &shape)
    }

    fn masked_dropout(&self, op: &'static str, p: f64, seed: u64, train: bool, mask_shape: &[usize]) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(op, format!("probability {p} is outside [0, 1]")));
        }
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType { op, dtype: self.dtype() });
        }
        if !train || p == 0.0 {
            return Ok(self.clone());
        }
        let mask = if p == 1.0 {
            Tensor::full_on(mask_shape, 0.0, self.dtype(), self.device())?
        } else {
            Tensor::random(mask_shape, Distribution::Bernoulli { p: 1.0 - p }, seed, self.dtype(), self.device())?
                .mul_scalar(1.0 / (1.0 - p))?
        };
        let y = crate::no_grad(|| self.mul(&mask))?;
        Ok(record_fn(y, op, &[self], move || move |g: &Tensor| Ok(vec![Some(g.mul(&mask)?)])))
    }
}
