//! SET (Mocanu et al., Nature Communications 2018): Erdős–Rényi initial topology; after each
//! epoch every layer drops the fraction `ζ = 0.3` of its active weights closest to zero
//! (`k = ⌊ζ·n_active⌋` of smallest `|θ|`) and grows as many uniformly at random among the
//! coordinates not kept, new weights at 0 with zero momentum (`google-research/rigl`'s SET; the
//! original draws them at random). Per-layer counts never change. No update follows the last
//! epoch (it would leave fresh zero weights untrained for evaluation).

use autograd::{Result, Tensor};

use super::{drop_and_grow, MaskUpdate};

/// One layer's SET update: drop `⌊zeta·n_active⌋` by `|θ|`, grow as many uniformly at random
/// (from `seed`).
pub fn set_layer_update(values: &[f32], mask: &[f32], zeta: f64, seed: u64) -> Result<MaskUpdate> {
    let active = mask.iter().filter(|&&m| m != 0.0).count();
    let k = (zeta * active as f64).floor() as usize;
    if k == 0 {
        return Ok(MaskUpdate::unchanged(mask));
    }
    let drop: Vec<f64> = values.iter().map(|v| f64::from(v.abs())).collect();
    let grow = Tensor::rand(&[values.len()], seed)?.to_f64_vec()?;
    Ok(drop_and_grow(mask, &drop, &grow, k))
}
