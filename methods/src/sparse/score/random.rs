//! Random: independent uniform scores, so a top-k keeps a uniformly random subset (of every
//! layer, in expectation, with a global top-k; exactly per layer with a per-layer allocation).

use autograd::{Result, Tensor};
use layers::Module;

use super::trainable_leaves;

/// Uniform `[0, 1)` scores per masked layer from `seed` (layer `l` uses `seed + l`); masked
/// coordinates score `-1` so they are never chosen over active ones.
pub fn random_scores(model: &dyn Module, seed: u64) -> Result<Vec<Vec<f64>>> {
    let layers = super::super::engine::require_masked(model)?;
    trainable_leaves(model)?
        .iter()
        .zip(&layers)
        .enumerate()
        .map(|(l, (w, (_, layer)))| {
            let r = Tensor::rand(w.shape(), seed.wrapping_add(l as u64))?.to_f64_vec()?;
            let m = layer.mask().to_f64_vec()?;
            Ok(r.into_iter().zip(m).map(|(r, m)| if m != 0.0 { r } else { -1.0 }).collect())
        })
        .collect()
}
