//! Stochastic gradient descent with momentum, Nesterov momentum, dampening and (L2) weight decay,
//! with PyTorch's exact update rule (`torch.optim.SGD`).

use autograd::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::{GroupedOptimizer, Hyperparameters, ParamState, UpdateRule};

/// SGD's hyperparameters (per group); PyTorch's defaults except the learning rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdOptions {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: plain SGD).
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// L2 penalty added to the gradient: `g + weight_decay · p`.
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
}

impl SgdOptions {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> SgdOptions {
        SgdOptions { lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
    setters! {
        /// With momentum.
        momentum: f64,
        /// With dampening.
        dampening: f64,
        /// With weight decay.
        weight_decay: f64,
        /// With Nesterov momentum.
        nesterov: bool,
    }
}

impl Hyperparameters for SgdOptions {
    lr_and_weight_decay!();
    fn momentum(&self) -> Option<f64> {
        Some(self.momentum)
    }
    fn set_momentum(&mut self, momentum: f64) -> bool {
        self.momentum = momentum;
        true
    }
    fn validate(&self, op: &'static str) -> Result<()> {
        let ok = self.lr >= 0.0 && self.momentum >= 0.0 && self.weight_decay >= 0.0 && self.dampening.is_finite();
        if !ok {
            return Err(Error::invalid(op, format!("invalid hyperparameters {self:?}")));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(op, "Nesterov momentum needs momentum > 0 and zero dampening"));
        }
        Ok(())
    }
}

/// The SGD update (see [`Sgd`]).
pub struct SgdRule;

impl UpdateRule for SgdRule {
    type Options = SgdOptions;
    const NAME: &'static str = "SGD";

    fn update(o: &SgdOptions, p: &Tensor, g: &Tensor, state: &mut ParamState) -> Result<Tensor> {
        // Each line one fused pass (`axpby`) over the parameter's elements.
        let mut d = if o.weight_decay != 0.0 { g.axpby(1.0, p, o.weight_decay)? } else { g.clone() };
        if o.momentum != 0.0 {
            let buf = match state.buffers.get("momentum_buffer") {
                None => d.contiguous()?,
                Some(b) => b.axpby(o.momentum, &d, 1.0 - o.dampening)?,
            };
            d = if o.nesterov { d.axpby(1.0, &buf, o.momentum)? } else { buf.clone() };
            state.buffers.insert("momentum_buffer".into(), buf);
        }
        p.axpby(1.0, &d, -o.lr)
    }
}

/// Stochastic gradient descent (`torch.optim.SGD`). For each parameter with gradient `g`:
///
/// ```text
/// d = g + weight_decay · p
/// b = d                                   (first step)
/// b = momentum · b + (1 − dampening) · d  (later steps)
/// d = d + momentum · b  if nesterov, else b      (when momentum ≠ 0)
/// p = p − lr · d
/// ```
///
/// The momentum buffer is saved as `state.<param>.momentum_buffer`.
pub type Sgd = GroupedOptimizer<SgdRule>;
