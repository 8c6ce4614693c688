//! RigL (Evci, Gale, Menick, Castro, Elsen, ICML 2020), as `google-research/rigl`'s
//! `SparseRigLOptimizer`: every `ΔT = 100` steps from step 0 until `T_end` (75 % of training),
//! each layer drops the `k = ⌊f(t)·n_active⌋` active weights of smallest `|θ|` (plus
//! `N(0, 10⁻⁵)` noise to break ties, as the reference) and grows the `k` inactive weights of
//! largest dense gradient `|∂L/∂θ|` (the gradient as if the mask were all ones), new weights
//! at 0 with zero momentum; `f(t) = (α/2)(1 + cos(π t / T_end))` with `α = 0.3`. Per-layer
//! counts never change.
//!
//! Mask-update steps: step `t` (0-based, the optimizer steps done before it) is one when
//! `t mod ΔT = 0` and `t < T_end` (at `T_end` the drop fraction is 0 anyway). As in the TF
//! reference, the optimizer step of a mask-update step is skipped (the method clears the
//! gradients, so no parameter moves, momentum included); `skip_step = false` keeps it.

use autograd::backends::ops::Distribution;
use autograd::{DType, Device, Result, Tensor};

use super::{drop_and_grow, MaskUpdate};

/// RigL's schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiglSchedule {
    /// Initial drop fraction `α` (0.3).
    pub alpha: f64,
    /// Steps between mask updates `ΔT` (100).
    pub delta_t: usize,
    /// The step after which the mask stays fixed, `T_end` (75 % of the run's steps).
    pub t_end: usize,
}

impl RiglSchedule {
    /// The drop fraction `f(t) = (α/2)(1 + cos(π t / T_end))` (0 from `T_end` on).
    pub fn drop_fraction(&self, t: usize) -> f64 {
        if t >= self.t_end {
            return 0.0;
        }
        self.alpha / 2.0 * (1.0 + (std::f64::consts::PI * t as f64 / self.t_end as f64).cos())
    }

    /// Whether step `t` updates the masks.
    pub fn is_update(&self, t: usize) -> bool {
        self.delta_t > 0 && t.is_multiple_of(self.delta_t) && t < self.t_end
    }
}

/// `N(0, std)` noise of `n` values from `seed` (zeros when `std` is 0).
pub fn noise(n: usize, std: f64, seed: u64) -> Result<Vec<f64>> {
    if std == 0.0 || n == 0 {
        return Ok(vec![0.0; n]);
    }
    Tensor::random(&[n], Distribution::Normal { mean: 0.0, std }, seed, DType::F64, Device::Cpu)?.to_f64_vec()
}

/// One layer's RigL update: drop `⌊fraction·n_active⌋` by `|θ| + noise`, grow as many by
/// `|dense grad|`.
pub fn rigl_layer_update(values: &[f32], mask: &[f32], dense_grad: &[f64], fraction: f64, noise: &[f64]) -> MaskUpdate {
    let active = mask.iter().filter(|&&m| m != 0.0).count();
    let k = (fraction * active as f64).floor() as usize;
    if k == 0 {
        return MaskUpdate::unchanged(mask);
    }
    let drop: Vec<f64> = values.iter().zip(noise).map(|(&v, &e)| f64::from(v.abs()) + e).collect();
    let grow: Vec<f64> = dense_grad.iter().map(|g| g.abs()).collect();
    drop_and_grow(mask, &drop, &grow, k)
}
