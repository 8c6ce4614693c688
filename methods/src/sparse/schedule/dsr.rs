//! DSR, dynamic sparse reparameterization (Mostafa & Wang, ICML 2019): every `interval` steps,
//!
//! 1. prune every active weight with `|θ| < H` (one global threshold `H`), `K` in all;
//! 2. adapt `H` so the number pruned tracks a target `N_p`: `H ← 2H` if `K < (1 − δ)N_p`,
//!    `H ← H/2` if `K > (1 + δ)N_p`;
//! 3. regrow `K` weights at random, zero-initialized, spread over the layers in proportion to
//!    each layer's surviving non-zeros (so per-layer densities change; the total does not).
//!
//! Choices where the spec is silent (the paper's values could not be checked here): `H₀ =
//! 0.001`, `δ = 0.1`, an update every 100 steps over the whole run, and `N_p` = 10 % of the
//! active weights (a fraction, so it scales with model and sparsity). Integer regrowth counts
//! are the proportional shares floored with the remainder to the largest fractions (the total
//! is exactly `K`), capped at each layer's free positions (any excess goes to layers with room);
//! the grown positions are uniform among the layer's inactive ones, a just-pruned one included.

use autograd::{Result, Tensor};
use serde::{Deserialize, Serialize};

use super::super::allocation::{layer_counts, topk_indices};
use super::MaskUpdate;

/// DSR's hyperparameters and its adaptive threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dsr {
    /// The current threshold `H`.
    pub threshold: f64,
    /// The target number pruned per update, as a fraction of the active weights.
    pub target_fraction: f64,
    /// The tolerance `δ`.
    pub delta: f64,
}

impl Dsr {
    /// One DSR update of all layers (`values` and `masks` per masked layer); updates `H`.
    /// Random positions come from `seed`.
    pub fn update(&mut self, values: &[Vec<f32>], masks: &[Vec<f32>], seed: u64) -> Result<Vec<MaskUpdate>> {
        let h = self.threshold as f32;
        let mut pruned: Vec<Vec<f32>> = Vec::with_capacity(masks.len());
        let mut k_total = 0usize;
        let mut active_total = 0usize;
        for (v, m) in values.iter().zip(masks) {
            let mut nm = m.clone();
            for (x, mm) in v.iter().zip(nm.iter_mut()) {
                if *mm != 0.0 {
                    active_total += 1;
                    if x.abs() < h {
                        *mm = 0.0;
                        k_total += 1;
                    }
                }
            }
            pruned.push(nm);
        }
        let target = self.target_fraction * active_total as f64;
        if (k_total as f64) < (1.0 - self.delta) * target {
            self.threshold *= 2.0;
        } else if (k_total as f64) > (1.0 + self.delta) * target {
            self.threshold /= 2.0;
        }
        let survivors: Vec<usize> = pruned.iter().map(|m| m.iter().filter(|&&x| x != 0.0).count()).collect();
        let free: Vec<usize> = pruned.iter().zip(&survivors).map(|(m, s)| m.len() - s).collect();
        let grow = regrowth_counts(&survivors, &free, k_total);
        let mut out = Vec::with_capacity(masks.len());
        for (l, (nm, g)) in pruned.into_iter().zip(grow).enumerate() {
            let r = Tensor::rand(&[nm.len()], seed.wrapping_add(l as u64))?.to_f64_vec()?;
            let scores: Vec<f64> =
                nm.iter().zip(&r).map(|(&m, &r)| if m != 0.0 { f64::NEG_INFINITY } else { r }).collect();
            let mut mask = nm;
            let mut fresh = vec![false; mask.len()];
            for i in topk_indices(&scores, g) {
                mask[i] = 1.0;
                fresh[i] = masks[l][i] == 0.0;
            }
            out.push(MaskUpdate { mask, fresh });
        }
        Ok(out)
    }
}

/// `k` regrown weights split in proportion to `survivors`, exactly `k` in total when the free
/// positions allow, each layer at most its `free` positions.
pub fn regrowth_counts(survivors: &[usize], free: &[usize], k: usize) -> Vec<usize> {
    let total: usize = survivors.iter().sum();
    let k = k.min(free.iter().sum());
    if total == 0 {
        // Nothing survived: spread evenly by free room.
        let shares: Vec<f64> = free.iter().map(|&f| f as f64 / free.iter().sum::<usize>().max(1) as f64).collect();
        return layer_counts(&shares, free, k);
    }
    let densities: Vec<f64> =
        survivors.iter().zip(free).map(|(&s, &f)| (k as f64 * s as f64 / total as f64) / f.max(1) as f64).collect();
    layer_counts(&densities, free, k)
}
