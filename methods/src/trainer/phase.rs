//! A phase's optimizer and learning-rate schedule: the trainer's default parameter groups (weight
//! decay on tensors of two or more dimensions), handed to the method's
//! [`configure_optimizer`](crate::registry::Method::configure_optimizer) hook, then the
//! run's optimizer kind with the phase's peak learning rate, and the phase's schedule started at
//! its first epoch.

use autograd::{Error, Result};
use layers::optim::{split_weight_decay, Adam, AdamOptions, Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::schedule::{Interval, Scheduler};
use layers::ModuleExt;

use super::setup::Run;
use crate::config::TrainConfig;
use crate::registry::{Phase, Progress};
use crate::schedule_spec::parse_schedule;

/// The optimizer of kind `cfg.optimizer` over `groups` with peak learning rate `lr`.
pub(crate) fn make_optimizer(cfg: &TrainConfig, groups: Vec<ParamGroup>, lr: f64) -> Result<Box<dyn Optimizer>> {
    Ok(match cfg.optimizer.as_str() {
        "sgd" => Box::new(Sgd::new(groups, SgdOptions::new(lr).momentum(cfg.momentum))?),
        "adam" => Box::new(Adam::new(groups, AdamOptions::adam(lr).betas(cfg.momentum, 0.999))?),
        "adamw" => Box::new(Adam::new(groups, AdamOptions::adamw(lr).betas(cfg.momentum, 0.999))?),
        other => {
            return Err(Error::invalid("--optimizer", format!("unknown optimizer {other:?}; valid: sgd, adam, adamw")))
        }
    })
}

/// Checks every phase's learning rate and schedule against its length before the first step,
/// so a schedule that cannot work fails now, naming its flag (and its phase), not after epochs
/// of training.
pub(crate) fn check_phases(run: &Run, phases: &[Phase]) -> Result<()> {
    for phase in phases.iter().filter(|p| p.epochs > 0) {
        let context = |e: Error| {
            if phases.len() > 1 || phase.schedule.is_some() {
                Error::invalid("phase", format!("phase {:?} ({} epochs): {e}", phase.name, phase.epochs))
            } else {
                e
            }
        };
        if let Some(lr) = phase.lr {
            if !(lr.is_finite() && lr >= 0.0) {
                return Err(context(Error::invalid("lr", format!("must be a finite number of at least 0, got {lr}"))));
            }
        }
        let window = phase.schedule_epochs.unwrap_or(phase.epochs);
        if phase.schedule_start > window {
            return Err(context(Error::invalid(
                "schedule",
                format!("starts at epoch {} of a schedule of {window}", phase.schedule_start),
            )));
        }
        let spec = phase.schedule.as_deref().unwrap_or(&run.cfg.schedule);
        parse_schedule(spec, window, run.info.steps_per_epoch).map_err(context)?;
    }
    Ok(())
}

/// The optimizer and the step-wise scheduler of `phase`, starting at `at`.
pub(crate) fn phase_optimizer(run: &mut Run, phase: &Phase, at: Progress) -> Result<(Box<dyn Optimizer>, Scheduler)> {
    let params: Vec<_> = run.model.named_parameters().into_iter().filter(|(_, p)| p.is_trainable()).collect();
    let groups = split_weight_decay(params, run.cfg.weight_decay);
    let groups = run.method.configure_optimizer(run.model.as_ref(), groups, at)?;
    let mut opt = make_optimizer(&run.cfg, groups, phase.lr.unwrap_or(run.cfg.lr))?;
    let spe = run.info.steps_per_epoch;
    let spec = phase.schedule.as_deref().unwrap_or(&run.cfg.schedule);
    let window = phase.schedule_epochs.unwrap_or(phase.epochs);
    if phase.schedule_start > window {
        return Err(Error::invalid(
            "phase",
            format!("phase {:?} starts its schedule at epoch {} of {window}", phase.name, phase.schedule_start),
        ));
    }
    let schedule = parse_schedule(spec, window, spe)?;
    let mut sched = Scheduler::new(schedule, Interval::Step, opt.as_mut())?;
    if phase.schedule_start > 0 {
        sched.seek(phase.schedule_start * spe, opt.as_mut())?;
    }
    Ok((opt, sched))
}
