//! SNIP (Lee, Ajanthan, Torr, ICLR 2019): connection sensitivity `s = |φ ⊙ ∂L/∂φ|` on a batch
//! at initialization. The paper's normalization by `Σ|s|` does not change the ranking and is
//! left out.

use autograd::Result;
use layers::Module;

use super::{abs_product, loss_gradients, trainable_leaves, Sample};

/// `|φ ⊙ ∂L/∂φ|` per masked layer, the loss summed over `samples` (training mode).
pub fn snip_scores(model: &dyn Module, samples: &[Sample]) -> Result<Vec<Vec<f64>>> {
    let grads = loss_gradients(model, samples)?;
    trainable_leaves(model)?.iter().zip(&grads).map(|(w, g)| abs_product(w, g)).collect()
}
