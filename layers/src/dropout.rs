//! `Dropout` and `Dropout2d` layers: masks drawn from the per-thread seed generator
//! ([`crate::rng`]) in training, the identity in evaluation.

use autograd::{Error, Result, Tensor};

use crate::{rng, Mode, Module};

fn check(op: &'static str, p: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::invalid(op, format!("drop probability {p} is outside [0, 1]")))
    }
}

/// Elementwise dropout (`torch.nn.Dropout`) with inverted scaling `1/(1 − p)`.
///
/// ```
/// use layers::{Dropout, Mode, Module};
/// use autograd::Tensor;
/// let d = Dropout::new(0.5).unwrap();
/// let x = Tensor::ones(&[8]);
/// assert_eq!(d.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 8]);
/// ```
pub struct Dropout {
    /// Drop probability.
    pub p: f64,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1]`.
    pub fn new(p: f64) -> Result<Dropout> {
        Ok(Dropout { p: check("Dropout", p)? })
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if !mode.is_train() || self.p == 0.0 {
            return Ok(x.clone());
        }
        x.dropout(self.p, rng::next_seed(), true)
    }
}

/// Channel dropout (`torch.nn.Dropout2d`): zeroes whole `(sample, channel)` maps.
pub struct Dropout2d {
    /// Drop probability.
    pub p: f64,
}

impl Dropout2d {
    /// Channel dropout with probability `p` in `[0, 1]`.
    pub fn new(p: f64) -> Result<Dropout2d> {
        Ok(Dropout2d { p: check("Dropout2d", p)? })
    }
}

impl Module for Dropout2d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if !mode.is_train() || self.p == 0.0 {
            return Ok(x.clone());
        }
        x.dropout2d(self.p, rng::next_seed(), true)
    }
}
