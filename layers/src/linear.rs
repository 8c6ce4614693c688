//! `Linear`: `y = x Wᵀ + b` over the last axis.

use autograd::{Error, Result, Tensor};

use crate::init::{default_bias, kaiming_uniform, FanMode, Nonlinearity};
use crate::{mac, Mode, Module, Param};

/// A fully connected layer (`torch.nn.Linear`): weight `[out, in]`, optional bias `[out]`,
/// applied over the last axis of inputs of any rank. PyTorch's default initialization.
///
/// ```
/// use layers::{Linear, Mode, Module};
/// use autograd::Tensor;
/// let fc = Linear::new(3, 2, true);
/// assert_eq!(fc.forward(&Tensor::ones(&[4, 5, 3]), Mode::Train).unwrap().shape(), &[4, 5, 2]);
/// ```
pub struct Linear {
    /// Weight `[out_features, in_features]`.
    pub weight: Param,
    /// Bias `[out_features]`, if any.
    pub bias: Option<Param>,
}

impl Linear {
    /// A new layer with PyTorch's default init (Kaiming uniform with a = √5, bias U(±1/√in)).
    pub fn new(in_features: usize, out_features: usize, bias: bool) -> Linear {
        let w = kaiming_uniform(&[out_features, in_features], FanMode::FanIn, Nonlinearity::LeakyRelu(5f64.sqrt()))
            .expect("a 2-D shape has fans");
        let b = bias.then(|| default_bias(out_features, in_features).expect("1-D init"));
        Linear::from_tensors(w, b)
    }

    /// A layer with the given weight `[out, in]` and bias `[out]`.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Linear {
        Linear { weight: Param::new(weight), bias: bias.map(Param::new) }
    }

    /// `(in_features, out_features)`.
    pub fn features(&self) -> (usize, usize) {
        let s = self.weight.leaf().shape().to_vec();
        (s[1], s[0])
    }
}

impl Linear {
    /// The layer with an explicit weight `[out, in]` (wrappers that transform the weight, such
    /// as masked or reparametrized weights, use this); the bias and the MAC record are the
    /// layer's own.
    ///
    /// ```
    /// use layers::Linear;
    /// use autograd::Tensor;
    /// let fc = Linear::new(2, 1, false);
    /// let y = fc.forward_with_weight(&Tensor::ones(&[1, 2]), &Tensor::full(&[1, 2], 3.0)).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![6.0]);
    /// ```
    pub fn forward_with_weight(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        let (fin, fout) = self.features();
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != fin || w.shape() != [fout, fin] {
            return Err(Error::shape("Linear", x.shape(), w.shape()));
        }
        let y = x.linear(w, self.bias.as_ref().map(|b| b.tensor()).as_ref())?;
        let rows = (x.numel() / fin.max(1)) as u64;
        mac::record(Some(&self.weight), "linear", rows * (fin * fout) as u64, x.shape(), y.shape());
        Ok(y)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        self.forward_with_weight(x, &self.weight.tensor())
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }
}
