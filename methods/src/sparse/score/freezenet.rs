//! FreezeNet's score (Wimmer, Mehnert, Condurache, ACCV 2020), one forward and backward pass at
//! initialization. The paper's exact rule is not available here (spec: reconstructed); both
//! candidates are implemented behind [`FreezeScore`]:
//!
//! - [`FreezeScore::Gradient`] (default): `|∂L/∂φ₀|`: nothing is removed when a weight is frozen,
//!   so the removal-oriented factor `φ₀` of SNIP is irrelevant; the weights whose gradient is
//!   largest are the ones worth training;
//! - [`FreezeScore::Snip`]: SNIP's `|φ₀ ⊙ ∂L/∂φ₀|`.

use autograd::{Error, Result};
use layers::Module;

use super::{abs_product, loss_gradients, trainable_leaves, Sample};

/// Which FreezeNet score ranks the weights to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezeScore {
    /// `|∂L/∂φ₀|`.
    Gradient,
    /// `|φ₀ ⊙ ∂L/∂φ₀|`.
    Snip,
}

impl FreezeScore {
    /// Parses `grad` or `snip`.
    pub fn parse(s: &str) -> Result<FreezeScore> {
        match s.trim() {
            "grad" | "gradient" => Ok(FreezeScore::Gradient),
            "snip" => Ok(FreezeScore::Snip),
            other => Err(Error::invalid("--set", format!("score = {other:?}; expected grad or snip"))),
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            FreezeScore::Gradient => "grad",
            FreezeScore::Snip => "snip",
        }
    }
}

/// FreezeNet's scores per masked layer (training mode, the loss summed over `samples`).
pub fn freezenet_scores(model: &dyn Module, samples: &[Sample], kind: FreezeScore) -> Result<Vec<Vec<f64>>> {
    let grads = loss_gradients(model, samples)?;
    match kind {
        FreezeScore::Gradient => {
            grads.iter().map(|g| Ok(g.to_f64_vec()?.into_iter().map(f64::abs).collect())).collect()
        }
        FreezeScore::Snip => trainable_leaves(model)?.iter().zip(&grads).map(|(w, g)| abs_product(w, g)).collect(),
    }
}
