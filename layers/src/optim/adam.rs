//! Adam and AdamW with PyTorch's exact update rule (`torch.optim.Adam` / `torch.optim.AdamW`):
//! bias correction, `eps` added after the square root, L2 or decoupled weight decay, AMSGrad.

use autograd::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::{GroupedOptimizer, Hyperparameters, ParamState, UpdateRule};

/// Adam's hyperparameters (per group).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamOptions {
    /// Learning rate.
    pub lr: f64,
    /// `(β₁, β₂)`: decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the bias-corrected `√v` in the denominator.
    pub eps: f64,
    /// Weight decay: an L2 term added to the gradient (Adam) or, when `decoupled`, a shrink of
    /// the parameter by `lr · weight_decay` before the update (AdamW).
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW).
    pub decoupled: bool,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl AdamOptions {
    /// `torch.optim.Adam(lr=lr)`: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn adam(lr: f64) -> AdamOptions {
        AdamOptions { lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, decoupled: false, amsgrad: false }
    }
    /// `torch.optim.AdamW(lr=lr)`: as Adam with decoupled weight decay 0.01.
    pub fn adamw(lr: f64) -> AdamOptions {
        AdamOptions { weight_decay: 0.01, decoupled: true, ..Self::adam(lr) }
    }
    /// With other betas.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
        self
    }
    setters! {
        /// With another eps.
        eps: f64,
        /// With weight decay (L2 for Adam, decoupled for AdamW).
        weight_decay: f64,
        /// With AMSGrad.
        amsgrad: bool,
    }
}

impl Hyperparameters for AdamOptions {
    lr_and_weight_decay!();
    fn momentum(&self) -> Option<f64> {
        Some(self.betas.0)
    }
    fn set_momentum(&mut self, momentum: f64) -> bool {
        self.betas.0 = momentum;
        true
    }
    fn validate(&self, op: &'static str) -> Result<()> {
        let (b1, b2) = self.betas;
        let ok = self.lr >= 0.0
            && self.eps >= 0.0
            && self.weight_decay >= 0.0
            && (0.0..1.0).contains(&b1)
            && (0.0..1.0).contains(&b2);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(op, format!("invalid hyperparameters {self:?}")))
        }
    }
}

/// The Adam/AdamW update (see [`Adam`]).
pub struct AdamRule;

impl UpdateRule for AdamRule {
    type Options = AdamOptions;
    const NAME: &'static str = "Adam";

    fn update(o: &AdamOptions, p: &Tensor, g: &Tensor, state: &mut ParamState) -> Result<Tensor> {
        let (b1, b2) = o.betas;
        let mut p = p.clone();
        let mut g = g.clone();
        if o.weight_decay != 0.0 {
            if o.decoupled {
                p = p.mul_scalar(1.0 - o.lr * o.weight_decay)?;
            } else {
                g = g.add(&p.mul_scalar(o.weight_decay)?)?;
            }
        }
        let zeros = || Tensor::zeros_like(&p);
        let m = state.buffers.get("exp_avg").cloned().map_or_else(zeros, Ok)?;
        let v = state.buffers.get("exp_avg_sq").cloned().map_or_else(zeros, Ok)?;
        // m.lerp(g, 1 − β₁) and v·β₂ + (1 − β₂)·g², as PyTorch writes them.
        let m = m.add(&g.sub(&m)?.mul_scalar(1.0 - b1)?)?;
        let v = v.mul_scalar(b2)?.add(&g.mul(&g)?.mul_scalar(1.0 - b2)?)?;
        let t = state.step as f64;
        let step_size = o.lr / (1.0 - b1.powf(t));
        let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
        let second = if o.amsgrad {
            let vmax = match state.buffers.get("max_exp_avg_sq") {
                Some(old) => old.maximum(&v)?,
                None => v.clone(),
            };
            state.buffers.insert("max_exp_avg_sq".into(), vmax.clone());
            vmax
        } else {
            v.clone()
        };
        let denom = second.sqrt()?.div_scalar(bc2_sqrt)?.add_scalar(o.eps)?;
        let new = p.sub(&m.div(&denom)?.mul_scalar(step_size)?)?;
        state.buffers.insert("exp_avg".into(), m);
        state.buffers.insert("exp_avg_sq".into(), v);
        Ok(new)
    }
}

/// Adam (`torch.optim.Adam`) and, with [`AdamOptions::adamw`], AdamW (`torch.optim.AdamW`). At
/// step `t`, for a parameter with gradient `g`:
///
/// ```text
/// p = p · (1 − lr · wd)   if decoupled (AdamW);   g = g + wd · p   otherwise
/// m = m + (1 − β₁)(g − m)          v = β₂ v + (1 − β₂) g²
/// p = p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)     (√ of max(v) with AMSGrad)
/// ```
///
/// State: `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq`) per parameter.
pub type Adam = GroupedOptimizer<AdamRule>;
