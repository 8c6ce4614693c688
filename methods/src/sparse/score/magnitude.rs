//! Magnitude: `s = |φ|` (IMP's and the lottery tickets' rule; at initialization, the
//! magnitude-pruning-at-init baseline).

use autograd::Result;
use layers::Module;

use super::trainable_values;

/// `|φ|` per masked layer (masked coordinates, being 0, score 0).
pub fn magnitude_scores(model: &dyn Module) -> Result<Vec<Vec<f64>>> {
    Ok(trainable_values(model)?.into_iter().map(|v| v.into_iter().map(|x| f64::from(x.abs())).collect()).collect())
}
