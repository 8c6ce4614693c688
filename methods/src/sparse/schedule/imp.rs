//! Iterative magnitude pruning and lottery tickets (Frankle & Carbin, ICLR 2019; rewinding:
//! Frankle et al., ICML 2020; learning-rate rewinding: Renda et al., ICLR 2020).
//!
//! The run is a dense training phase followed by `R` rounds; each round starts by pruning the
//! fraction `p` (20 %) of the *remaining* weights with the smallest `|θ|`, globally (masks are
//! nested: a pruned weight never returns), then
//!
//! - rewinds every parameter and buffer (masks aside) to `θ_k`, the state at the end of epoch
//!   `k` of the dense phase (`k = 0`: the initialization, the original lottery ticket), and
//!   trains the remaining `T − k` epochs with the schedule started at epoch `k`
//!   ([`Rewind::Epoch`]); or
//! - keeps the trained weights and only rewinds the learning-rate schedule to epoch `k`
//!   ([`Rewind::Lr`]).
//!
//! Rounds: with the paper's `p = 0.2`, as many as needed to reach the target density `ρ`
//! (`⌈ln ρ / ln 0.8⌉`, 11 for 90 % sparsity), the last one pruning to exactly the target; with
//! `rounds = R` given, `p = 1 − ρ^{1/R}` so `R` rounds reach it. The default rewind point is
//! 5 % of training (at least one epoch), inside the 0.1–7 % range of Frankle et al.

use autograd::{Error, Result};

use super::super::allocation::{exclude_inactive, global_masks, keep_count};

/// What a round starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewind {
    /// Weights and schedule rewound to the end of this epoch of the dense phase (0: the
    /// initialization).
    Epoch(usize),
    /// Trained weights kept, the schedule rewound to this epoch.
    Lr(usize),
}

impl Rewind {
    /// Parses `init`, `auto` (5 % of `epochs`, at least 1), `epoch:K` or `lr:K` (`lr` alone:
    /// `lr:0`).
    pub fn parse(s: &str, epochs: usize) -> Result<Rewind> {
        let auto = ((0.05 * epochs as f64).round() as usize).max(1);
        let num = |v: &str| -> Result<usize> {
            v.parse().map_err(|_| Error::invalid("--set", format!("rewind = {s:?}: {v:?} is not an epoch number")))
        };
        let r = match s.trim() {
            "init" => Rewind::Epoch(0),
            "auto" => Rewind::Epoch(auto),
            "lr" => Rewind::Lr(0),
            other => match other.split_once(':') {
                Some(("epoch", k)) => Rewind::Epoch(num(k)?),
                Some(("lr", k)) => Rewind::Lr(num(k)?),
                _ => {
                    return Err(Error::invalid(
                        "--set",
                        format!("rewind = {s:?}; expected init, auto, epoch:K, lr or lr:K"),
                    ))
                }
            },
        };
        if r.epoch() >= epochs.max(1) {
            return Err(Error::invalid(
                "--set",
                format!("rewind = {s:?}: epoch {} is not before the end of training ({epochs} epochs)", r.epoch()),
            ));
        }
        Ok(r)
    }

    /// The epoch rewound to.
    pub fn epoch(self) -> usize {
        match self {
            Rewind::Epoch(k) | Rewind::Lr(k) => k,
        }
    }

    /// A short description for summaries.
    pub fn describe(self) -> String {
        match self {
            Rewind::Epoch(0) => "weights to initialization".into(),
            Rewind::Epoch(k) => format!("weights and schedule to epoch {k}"),
            Rewind::Lr(k) => format!("learning rate to epoch {k} (weights kept)"),
        }
    }
}

/// The rounds of an IMP run to a final density.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImpPlan {
    /// The final density `ρ`.
    pub density: f64,
    /// The fraction of the remaining weights each round prunes (the last round may prune less).
    pub rate: f64,
    /// The number of rounds.
    pub rounds: usize,
}

impl ImpPlan {
    /// The plan for `density` with per-round `rate` (rounds as needed), or with `rounds` given
    /// (rate derived).
    pub fn new(density: f64, rate: f64, rounds: Option<usize>) -> Result<ImpPlan> {
        if !(0.0..1.0).contains(&density) || density <= 0.0 {
            return Err(Error::invalid("lth", format!("density {density} must be in (0, 1)")));
        }
        Ok(match rounds {
            Some(0) => return Err(Error::invalid("--set", "rounds must be at least 1")),
            Some(r) => ImpPlan { density, rate: 1.0 - density.powf(1.0 / r as f64), rounds: r },
            None => {
                if !(0.0..1.0).contains(&rate) || rate <= 0.0 {
                    return Err(Error::invalid("--set", format!("rate = {rate} must be in (0, 1)")));
                }
                let r = (density.ln() / (1.0 - rate).ln() - 1e-9).ceil().max(1.0) as usize;
                ImpPlan { density, rate, rounds: r }
            }
        })
    }

    /// How many of `total` weights round `round` (1-based) keeps when `active` remain.
    pub fn keep(&self, round: usize, active: usize, total: usize) -> usize {
        if round >= self.rounds {
            keep_count(self.density, total).min(active)
        } else {
            keep_count(1.0 - self.rate, active).max(keep_count(self.density, total))
        }
    }
}

/// The nested global magnitude masks keeping `keep` of the active weights.
pub fn imp_masks(values: &[Vec<f32>], masks: &[Vec<f32>], keep: usize) -> Vec<Vec<f32>> {
    let mut scores: Vec<Vec<f64>> = values.iter().map(|v| v.iter().map(|x| f64::from(x.abs())).collect()).collect();
    exclude_inactive(&mut scores, masks);
    global_masks(&scores, keep)
}
