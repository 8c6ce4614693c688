//! Whether a checkpoint can be continued with the configuration given to `--resume`.
//!
//! The binary refuses every flag that would change a run except `--epochs`, `--device`,
//! `--data-dir` and `--test-every` ([`crate::cli::RunArgs::resume_config`]). Changing `--epochs` extends (or
//! shortens) the run: the current phase's schedule is laid out again over its new length from
//! the step the run reached. That is only sound when the method plans the same phases for the
//! epochs already trained; a method that derives the lengths of earlier phases from `--epochs`
//! is refused here, naming the phases that would change.

use autograd::{Error, Result};

use super::setup::Run;
use super::state::Saved;
use crate::registry::{Phase, RunInfo};

fn describe(phases: &[Phase]) -> String {
    phases.iter().map(|p| format!("{} {}", p.name, p.epochs)).collect::<Vec<_>>().join(", ")
}

/// The same phase but for its length (and the schedule window that follows it).
fn same_kind(a: &Phase, b: &Phase) -> bool {
    a.name == b.name && a.lr == b.lr && a.schedule == b.schedule && a.schedule_start == b.schedule_start
}

/// Errors unless `run` (configured for `--resume`) can continue from `saved` with `phases`.
pub(crate) fn check_resumable(run: &Run, saved: &Saved, phases: &[Phase]) -> Result<()> {
    let (old, new) = (&saved.config, &run.cfg);
    if old.method != new.method {
        return Err(Error::invalid(
            "--resume",
            format!("the checkpoint is of a {} run, not {}", old.method, new.method),
        ));
    }
    if old.epochs == new.epochs {
        return Ok(());
    }
    let pos = saved.position;
    let total: usize = phases.iter().map(|p| p.epochs).sum();
    if total < pos.epoch {
        return Err(Error::invalid(
            "--epochs",
            format!("the run has already trained {} epochs; --epochs {} would end before them", pos.epoch, new.epochs),
        ));
    }
    let before = run.method.phases(&RunInfo { epochs: old.epochs, ..run.info.clone() });
    // The phases already trained are the same, and so is the one in progress but for its length.
    let kept = before.len() == phases.len()
        && pos.phase < phases.len()
        && before[..pos.phase] == phases[..pos.phase]
        && same_kind(&before[pos.phase], &phases[pos.phase])
        && phases[pos.phase].epochs >= pos.phase_epoch;
    if !kept {
        return Err(Error::invalid(
            "--epochs",
            format!(
                "method {} plans its phases from --epochs, and the phases this run has trained would change ({} -> {}); resume it with --epochs {}",
                new.method,
                describe(&before),
                describe(phases),
                old.epochs
            ),
        ));
    }
    Ok(())
}
