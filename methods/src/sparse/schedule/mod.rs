//! When and how masks change during training, one schedule per file: iterative magnitude
//! pruning with rewinding ([`imp`]), SET ([`set`]), DSR ([`dsr`]) and RigL ([`rigl`]); the
//! one-shot pruning-at-initialization rules need no schedule (the method applies their mask at
//! the start of training).
//!
//! Dynamic schedules produce a [`MaskUpdate`] per layer; [`apply_updates`] installs them:
//! coordinates that leave the mask get `φ = 0` and zero optimizer state, coordinates that
//! enter it ("fresh") start at `φ = 0` with zero optimizer state (RigL's and `google-research/
//! rigl`'s SET's zero initialization), and a coordinate dropped and grown again in the same
//! update keeps its value and state.

pub mod dsr;
pub mod imp;
pub mod rigl;
pub mod set;

use autograd::Result;
use layers::optim::Optimizer;
use layers::Module;

use super::allocation::{topk_indices, topk_mask};
use super::engine::{mask_tensor, require_masked, values_name};

/// One layer's new mask and which of its active coordinates are new.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskUpdate {
    /// The new 0/1 mask.
    pub mask: Vec<f32>,
    /// `true` where the coordinate was inactive before and is active now.
    pub fresh: Vec<bool>,
}

impl MaskUpdate {
    /// The unchanged mask.
    pub fn unchanged(mask: &[f32]) -> MaskUpdate {
        MaskUpdate { mask: mask.to_vec(), fresh: vec![false; mask.len()] }
    }

    /// Number of fresh coordinates.
    pub fn grown(&self) -> usize {
        self.fresh.iter().filter(|&&f| f).count()
    }
}

/// Drops the `k` active coordinates with the smallest `drop_scores`, then grows the `k`
/// coordinates with the largest `grow_scores` among those not kept (a just-dropped coordinate
/// can be grown again: it is then not fresh and keeps its value, as in `google-research/rigl`).
/// Ties: lower index first, for both. `k` is capped at the number of active coordinates.
pub fn drop_and_grow(mask: &[f32], drop_scores: &[f64], grow_scores: &[f64], k: usize) -> MaskUpdate {
    let active = mask.iter().filter(|&&m| m != 0.0).count();
    let k = k.min(active);
    let keep_scores: Vec<f64> =
        mask.iter().zip(drop_scores).map(|(&m, &s)| if m != 0.0 { s } else { f64::NEG_INFINITY }).collect();
    let kept = topk_mask(&keep_scores, active - k);
    let grow: Vec<f64> =
        kept.iter().zip(grow_scores).map(|(&m, &s)| if m != 0.0 { f64::NEG_INFINITY } else { s }).collect();
    let mut new_mask = kept;
    let mut fresh = vec![false; mask.len()];
    for i in topk_indices(&grow, k) {
        new_mask[i] = 1.0;
        fresh[i] = mask[i] == 0.0;
    }
    MaskUpdate { mask: new_mask, fresh }
}

/// Installs `updates` (one per masked layer, in order): new masks, `φ = 0` off the mask, and
/// the optimizer state of inactive and fresh coordinates zeroed.
pub fn apply_updates(model: &dyn Module, updates: &[MaskUpdate], mut opt: Option<&mut dyn Optimizer>) -> Result<()> {
    let layers = require_masked(model)?;
    for ((path, layer), u) in layers.iter().zip(updates) {
        layer.set_mask(&mask_tensor(layer, &u.mask)?)?;
        let keep: Vec<f32> = u.mask.iter().zip(&u.fresh).map(|(&m, &f)| if f { 0.0 } else { m }).collect();
        let keep = mask_tensor(layer, &keep)?;
        if u.fresh.iter().any(|&f| f) {
            layer.zero_where_not(&keep)?;
        }
        if let Some(o) = opt.as_deref_mut() {
            o.mask_state(&values_name(path, layer), &keep)?;
        }
    }
    Ok(())
}
