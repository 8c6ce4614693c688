//! Learning-rate schedules: step, multi-step, cosine annealing, linear warm-up (in front of any
//! other schedule) and one-cycle, with PyTorch's formulas (`torch.optim.lr_scheduler`).
//!
//! A [`Schedule`] is a pure function of the step count `t` and a group's base learning rate; a
//! [`Scheduler`] holds one, the base rates of the optimizer's groups (their learning rates when
//! the scheduler was made) and the count, and writes the rates into the optimizer — at
//! construction (`t = 0`) and after each [`Scheduler::step`]. Whether `t` counts batches or
//! epochs is the [`Interval`]; a trainer calls [`Scheduler::step_batch`] after every batch and
//! [`Scheduler::step_epoch`] after every epoch, and the scheduler advances on the right one.
//!
//! ```
//! use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
//! use layers::schedule::{Cosine, Interval, Scheduler, Warmup};
//! use layers::{Linear, ModuleExt};
//! let fc = Linear::new(2, 2, true);
//! let mut opt = Sgd::new(vec![ParamGroup::new(fc.named_parameters())], SgdOptions::new(0.1)).unwrap();
//! let schedule = Warmup::new(2, 0.5, Cosine::new(4, 0.0));
//! let mut sched = Scheduler::new(Box::new(schedule), Interval::Epoch, &mut opt).unwrap();
//! let mut lrs = vec![opt.lrs()[0]];
//! for _ in 0..6 {
//!     sched.step_batch(&mut opt).unwrap(); // no effect: this schedule counts epochs
//!     sched.step_epoch(&mut opt).unwrap();
//!     lrs.push(opt.lrs()[0]);
//! }
//! let expect = [0.05, 0.075, 0.1, 0.1 * (1.0 + 0.5f64.sqrt()) / 2.0, 0.05, 0.1 * (1.0 - 0.5f64.sqrt()) / 2.0, 0.0];
//! assert!(lrs.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-12), "{lrs:?}");
//! ```

use std::f64::consts::PI;

use autograd::{Error, Result};
use serde_json::json;

use crate::optim::Optimizer;

/// A learning rate (and optionally a momentum) as a function of the step count.
pub trait Schedule: Send + Sync {
    /// The learning rate at step `t` of a group whose base rate is `base_lr`.
    fn lr(&self, base_lr: f64, t: usize) -> f64;

    /// The momentum (SGD) or `β₁` (Adam) at step `t`, for schedules that cycle it.
    fn momentum(&self, _t: usize) -> Option<f64> {
        None
    }
}

/// The base rate at every step.
#[derive(Clone, Copy, Debug, Default)]
pub struct Constant;

impl Schedule for Constant {
    fn lr(&self, base_lr: f64, _t: usize) -> f64 {
        base_lr
    }
}

/// `base · γ^⌊t / step_size⌋` (`StepLR`).
#[derive(Clone, Copy, Debug)]
pub struct StepDecay {
    /// Steps between decays.
    pub step_size: usize,
    /// Factor of each decay.
    pub gamma: f64,
}

impl Schedule for StepDecay {
    fn lr(&self, base_lr: f64, t: usize) -> f64 {
        base_lr * self.gamma.powi((t / self.step_size.max(1)) as i32)
    }
}

/// `base · γ^(number of milestones ≤ t)` (`MultiStepLR`).
#[derive(Clone, Debug)]
pub struct MultiStep {
    /// Steps at which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    /// Factor of each decay.
    pub gamma: f64,
}

impl Schedule for MultiStep {
    fn lr(&self, base_lr: f64, t: usize) -> f64 {
        base_lr * self.gamma.powi(self.milestones.iter().filter(|&&m| m <= t).count() as i32)
    }
}

/// Cosine annealing from the base rate to `eta_min` over `t_max` steps (`CosineAnnealingLR`):
/// `eta_min + (base − eta_min)(1 + cos(π t / t_max)) / 2`, then `eta_min` after `t_max` (PyTorch
/// would start a second half-cycle upwards).
#[derive(Clone, Copy, Debug)]
pub struct Cosine {
    /// Length of the annealing.
    pub t_max: usize,
    /// Final rate.
    pub eta_min: f64,
}

impl Cosine {
    /// Annealing over `t_max` steps down to `eta_min`.
    pub fn new(t_max: usize, eta_min: f64) -> Cosine {
        Cosine { t_max, eta_min }
    }
}

impl Schedule for Cosine {
    fn lr(&self, base_lr: f64, t: usize) -> f64 {
        let frac = t.min(self.t_max) as f64 / self.t_max.max(1) as f64;
        self.eta_min + (base_lr - self.eta_min) * (1.0 + (PI * frac).cos()) / 2.0
    }
}

/// A linear warm-up from `start_factor · base` to `base` over `steps` steps, then `then` started
/// from its own step 0 (PyTorch's `LinearLR(start_factor, total_iters=steps)` followed by another
/// scheduler in `SequentialLR(milestones=[steps])`).
pub struct Warmup {
    /// Length of the warm-up.
    pub steps: usize,
    /// Fraction of the base rate at step 0.
    pub start_factor: f64,
    /// The schedule after the warm-up.
    pub then: Box<dyn Schedule>,
}

impl Warmup {
    /// A warm-up of `steps` steps from `start_factor · base`, followed by `then`.
    pub fn new(steps: usize, start_factor: f64, then: impl Schedule + 'static) -> Warmup {
        Warmup { steps, start_factor, then: Box::new(then) }
    }
}

impl Schedule for Warmup {
    fn lr(&self, base_lr: f64, t: usize) -> f64 {
        if t < self.steps {
            base_lr * (self.start_factor + (1.0 - self.start_factor) * t as f64 / self.steps as f64)
        } else {
            self.then.lr(base_lr, t - self.steps)
        }
    }

    fn momentum(&self, t: usize) -> Option<f64> {
        self.then.momentum(t.saturating_sub(self.steps))
    }
}

/// The one-cycle policy (`OneCycleLR` with its defaults): the base rate is the peak (`max_lr`);
/// the rate rises from `base / div_factor` to `base` over the first `pct_start` of
/// `total_steps`, then falls to `base / (div_factor · final_div_factor)` at step
/// `total_steps − 1`, both along cosines; the momentum moves the opposite way between
/// `max_momentum` and `base_momentum` (when `cycle_momentum`). Steps past the end stay there.
#[derive(Clone, Copy, Debug)]
pub struct OneCycle {
    /// Number of steps of the whole cycle.
    pub total_steps: usize,
    /// Fraction of the cycle spent rising (0.3).
    pub pct_start: f64,
    /// `max_lr / initial_lr` (25).
    pub div_factor: f64,
    /// `initial_lr / min_lr` (1e4).
    pub final_div_factor: f64,
    /// Whether the momentum (SGD) or `β₁` (Adam) is cycled (true).
    pub cycle_momentum: bool,
    /// Momentum at the peak rate (0.85).
    pub base_momentum: f64,
    /// Momentum at the start and end (0.95).
    pub max_momentum: f64,
}

impl OneCycle {
    /// PyTorch's defaults over `total_steps` steps.
    pub fn new(total_steps: usize) -> OneCycle {
        OneCycle {
            total_steps,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// The value at step `t` of a quantity that is `start` at step 0, `peak` at the end of the
    /// rising phase and `end` at the last step, annealed along cosines as PyTorch computes it.
    fn phase(&self, t: usize, start: f64, peak: f64, end: f64) -> f64 {
        let t = t.min(self.total_steps.saturating_sub(1)) as f64;
        let end1 = self.pct_start * self.total_steps as f64 - 1.0;
        let end2 = self.total_steps as f64 - 1.0;
        let (a, b, pct) = if t <= end1 { (start, peak, t / end1) } else { (peak, end, (t - end1) / (end2 - end1)) };
        b + (a - b) / 2.0 * ((PI * pct).cos() + 1.0)
    }
}

impl Schedule for OneCycle {
    fn lr(&self, base_lr: f64, t: usize) -> f64 {
        let initial = base_lr / self.div_factor;
        self.phase(t, initial, base_lr, initial / self.final_div_factor)
    }

    fn momentum(&self, t: usize) -> Option<f64> {
        self.cycle_momentum.then(|| self.phase(t, self.max_momentum, self.base_momentum, self.max_momentum))
    }
}

/// What a scheduler's step counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    /// Optimizer steps (batches).
    Step,
    /// Epochs.
    Epoch,
}

/// Drives an optimizer's learning rates (and momentum) along a [`Schedule`].
pub struct Scheduler {
    schedule: Box<dyn Schedule>,
    interval: Interval,
    base_lrs: Vec<f64>,
    t: usize,
}

impl Scheduler {
    /// Takes the optimizer's current rates as the base rates and applies step 0.
    pub fn new(schedule: Box<dyn Schedule>, interval: Interval, opt: &mut dyn Optimizer) -> Result<Scheduler> {
        let s = Scheduler { schedule, interval, base_lrs: opt.lrs(), t: 0 };
        s.apply(opt)?;
        Ok(s)
    }

    /// The step count.
    pub fn t(&self) -> usize {
        self.t
    }

    /// What the step count counts.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The base rates of the groups.
    pub fn base_lrs(&self) -> &[f64] {
        &self.base_lrs
    }

    /// The rate of group `group` at the current step.
    pub fn lr(&self, group: usize) -> Option<f64> {
        self.base_lrs.get(group).map(|&b| self.schedule.lr(b, self.t))
    }

    /// Moves to step `t` (learning-rate rewinding: a schedule started part-way) and writes its
    /// rates into `opt`.
    pub fn seek(&mut self, t: usize, opt: &mut dyn Optimizer) -> Result<()> {
        self.t = t;
        self.apply(opt)
    }

    /// Advances one step and writes the new rates into `opt`.
    pub fn step(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        self.t += 1;
        self.apply(opt)
    }

    /// [`Scheduler::step`] if this scheduler counts batches.
    pub fn step_batch(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        if self.interval == Interval::Step {
            self.step(opt)?;
        }
        Ok(())
    }

    /// [`Scheduler::step`] if this scheduler counts epochs.
    pub fn step_epoch(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        if self.interval == Interval::Epoch {
            self.step(opt)?;
        }
        Ok(())
    }

    /// Writes the rates (and momentum, for one-cycle) of the current step into `opt`.
    pub fn apply(&self, opt: &mut dyn Optimizer) -> Result<()> {
        let groups = opt.lrs().len();
        if groups != self.base_lrs.len() {
            return Err(Error::invalid(
                "Scheduler",
                format!("made for {} parameter groups, the optimizer has {groups}", self.base_lrs.len()),
            ));
        }
        for (g, &base) in self.base_lrs.iter().enumerate() {
            opt.set_lr(g, self.schedule.lr(base, self.t))?;
            if let Some(m) = self.schedule.momentum(self.t) {
                opt.set_momentum(g, m)?;
            }
        }
        Ok(())
    }

    /// The position to checkpoint: step count, base rates and interval.
    pub fn state(&self) -> serde_json::Value {
        let interval = match self.interval {
            Interval::Step => "step",
            Interval::Epoch => "epoch",
        };
        json!({ "t": self.t, "base_lrs": self.base_lrs, "interval": interval })
    }

    /// Restores a position saved by [`Scheduler::state`] (the optimizer's own state carries the
    /// rates in effect, so nothing is written into it here).
    pub fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let bad = || Error::invalid("Scheduler::load_state", format!("not a scheduler state: {state}"));
        let t = state["t"].as_u64().ok_or_else(bad)? as usize;
        let base: Vec<f64> = serde_json::from_value(state["base_lrs"].clone()).map_err(|_| bad())?;
        let interval = match state["interval"].as_str() {
            Some("step") => Interval::Step,
            Some("epoch") => Interval::Epoch,
            _ => return Err(bad()),
        };
        if base.len() != self.base_lrs.len() || interval != self.interval {
            return Err(Error::invalid(
                "Scheduler::load_state",
                format!(
                    "saved for {} groups counting {interval:?}, this scheduler has {} counting {:?}",
                    base.len(),
                    self.base_lrs.len(),
                    self.interval
                ),
            ));
        }
        self.t = t;
        self.base_lrs = base;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{ParamGroup, Sgd, SgdOptions};
    use crate::Param;
    use autograd::Tensor;

    fn sgd(groups: usize) -> Sgd {
        let groups = (0..groups)
            .map(|i| ParamGroup::new(vec![(format!("p{i}"), Param::new(Tensor::zeros(&[1])))]).lr(0.1 * (i + 1) as f64))
            .collect();
        Sgd::new(groups, SgdOptions::new(0.1)).unwrap()
    }

    #[test]
    fn closed_forms() {
        let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-15 * b.abs().max(1e-3), "{a} vs {b}");
        let s = StepDecay { step_size: 2, gamma: 0.1 };
        assert_eq!([0, 1, 2, 5].map(|t| s.lr(1.0, t)), [1.0, 1.0, 0.1, 0.1f64.powi(2)]);
        let c = Cosine::new(4, 0.1);
        close(c.lr(1.0, 0), 1.0);
        close(c.lr(1.0, 2), 0.55);
        close(c.lr(1.0, 4), 0.1);
        assert_eq!(c.lr(1.0, 9), c.lr(1.0, 4), "stays at eta_min");
        let o = OneCycle::new(10);
        // Rising phase ends at step 0.3·10 − 1 = 2 at the peak; the end is max/25/1e4.
        close(o.lr(2.5, 0), 0.1);
        close(o.lr(2.5, 2), 2.5);
        close(o.lr(2.5, 9), 1e-5);
        assert_eq!(o.lr(2.5, 50), o.lr(2.5, 9));
        close(o.momentum(0).unwrap(), 0.95);
        close(o.momentum(2).unwrap(), 0.85);
        assert_eq!(Constant.lr(0.3, 7), 0.3);
    }

    #[test]
    fn per_group_rates_intervals_and_state() {
        let mut opt = sgd(2);
        let mut s = Scheduler::new(Box::new(StepDecay { step_size: 1, gamma: 0.5 }), Interval::Step, &mut opt).unwrap();
        s.step_epoch(&mut opt).unwrap();
        assert_eq!(s.t(), 0);
        s.step_batch(&mut opt).unwrap();
        assert_eq!(opt.lrs(), vec![0.05, 0.1]);
        let state = s.state();
        let mut opt2 = sgd(2);
        let mut s2 =
            Scheduler::new(Box::new(StepDecay { step_size: 1, gamma: 0.5 }), Interval::Step, &mut opt2).unwrap();
        s2.load_state(&state).unwrap();
        s.step(&mut opt).unwrap();
        s2.step(&mut opt2).unwrap();
        assert_eq!(opt.lrs(), opt2.lrs());
        let mut e = Scheduler::new(Box::new(Constant), Interval::Epoch, &mut sgd(2)).unwrap();
        assert!(e.load_state(&state).unwrap_err().to_string().contains("Step"));
        assert!(e.load_state(&serde_json::json!({"t": "x"})).is_err());
        let mut one = Scheduler::new(Box::new(Constant), Interval::Epoch, &mut sgd(1)).unwrap();
        assert!(one.step(&mut opt).unwrap_err().to_string().contains("2"));
    }
}
