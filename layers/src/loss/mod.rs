//! Loss functions over batches: cross-entropy (with label smoothing; class-index or probability
//! targets) and NLL,
//! MSE, and binary cross-entropy with logits. Each returns a differentiable tensor, reduced as
//! the [`Reduction`] says, and checks its inputs' shapes and dtypes (errors name the loss and the
//! shapes).

mod bce;
mod cross_entropy;
mod mse;

pub use bce::bce_with_logits;
pub use cross_entropy::{cross_entropy, cross_entropy_soft, nll_loss, CrossEntropyOptions};
pub use mse::mse_loss;

use autograd::{Result, Tensor};

/// How per-element losses are combined (PyTorch's `reduction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over every element (a 0-D tensor).
    #[default]
    Mean,
    /// The sum over every element (a 0-D tensor).
    Sum,
    /// No reduction: one loss per element.
    None,
}

impl Reduction {
    /// Applies the reduction to per-element losses.
    pub fn apply(self, losses: Tensor) -> Result<Tensor> {
        match self {
            Reduction::Mean => losses.mean_all(),
            Reduction::Sum => losses.sum_all(),
            Reduction::None => Ok(losses),
        }
    }
}
