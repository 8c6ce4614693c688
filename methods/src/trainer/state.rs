//! The run's checkpoints: `last.safetensors` (model, optimizer, schedule, method state, history
//! and position, for `--resume`) and `best.safetensors` (the selected weights with the method
//! state and phase they belong to, for the final test and `--eval-only`), both written
//! atomically.

use std::path::Path;

use autograd::{Error, Result};
use layers::checkpoint::{method_tensors, save_checkpoint_with, TrainingState, FORMAT};
use layers::optim::Optimizer;
use layers::schedule::Scheduler;
use layers::state_dict::load_tensors;
use serde::{Deserialize, Serialize};

use super::setup::Run;
use crate::metrics::EpochMetrics;
use crate::registry::MethodState;

/// The checkpoint `--resume` continues from.
pub(crate) const LAST: &str = "last.safetensors";
/// The selected weights.
pub(crate) const BEST: &str = "best.safetensors";

/// Where a run is after its last complete epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// The phase the last epoch belonged to.
    pub(crate) phase: usize,
    /// Epochs of that phase done.
    pub(crate) phase_epoch: usize,
    /// Epochs done in the whole run.
    pub(crate) epoch: usize,
    /// Optimizer steps done in the whole run.
    pub(crate) step: usize,
}

/// The selected epoch so far.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Best {
    /// Its validation accuracy (`-1` before any selection).
    pub(crate) val_acc: f64,
    /// Its 1-based epoch of the whole run (0: none yet).
    pub(crate) epoch: usize,
}

impl Default for Best {
    fn default() -> Best {
        Best { val_acc: -1.0, epoch: 0 }
    }
}

/// The trainer's data in a checkpoint's user metadata.
#[derive(Serialize, Deserialize)]
struct UserData {
    position: Position,
    #[serde(default)]
    history: Vec<EpochMetrics>,
    #[serde(default)]
    best: Best,
    config: crate::config::TrainConfig,
    #[serde(default)]
    method: serde_json::Value,
}

/// What a checkpoint holds besides the weights.
pub(crate) struct Saved {
    /// The configuration the run had when the checkpoint was written.
    pub(crate) config: crate::config::TrainConfig,
    pub(crate) position: Position,
    pub(crate) history: Vec<EpochMetrics>,
    pub(crate) best: Best,
    pub(crate) method: MethodState,
}

fn save(
    path: &Path,
    run: &Run,
    opt: Option<(&dyn Optimizer, &Scheduler)>,
    position: Position,
    history: &[EpochMetrics],
    best: Best,
) -> Result<()> {
    let method = run.method.state()?;
    let user = UserData { position, history: history.to_vec(), best, config: run.cfg.clone(), method: method.meta };
    let user = serde_json::to_value(&user).map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
    let state = TrainingState { epoch: position.epoch as u64, step: position.step as u64, user };
    let (o, s) = match opt {
        Some((o, s)) => (Some(o), Some(s)),
        None => (None, None),
    };
    save_checkpoint_with(path, run.model.as_ref(), o, s, &state, &method.tensors)
}

/// Writes `last.safetensors` in `dir`.
pub(crate) fn save_last(
    dir: &Path,
    run: &Run,
    opt: &dyn Optimizer,
    sched: &Scheduler,
    position: Position,
    history: &[EpochMetrics],
    best: Best,
) -> Result<()> {
    save(&dir.join(LAST), run, Some((opt, sched)), position, history, best)
}

/// Writes `best.safetensors` in `dir`: the current weights with the method state and position.
pub(crate) fn save_best(dir: &Path, run: &Run, position: Position) -> Result<()> {
    save(&dir.join(BEST), run, None, position, &[], Best::default())
}

/// The trainer's data of the checkpoint at `path`, or `None` for a file of plain weights (a
/// state dict, or a checkpoint of another program).
pub(crate) fn read_saved(path: &Path) -> Result<Option<Saved>> {
    let file = load_tensors(path)?;
    if file.metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Ok(None);
    }
    let bad = |what: String| Error::invalid("checkpoint", format!("{}: {what}", path.display()));
    let Some(user) = file.metadata.get("user") else { return Ok(None) };
    let user: serde_json::Value = serde_json::from_str(user).map_err(|e| bad(format!("metadata \"user\": {e}")))?;
    if user.get("position").is_none() {
        return Ok(None);
    }
    let user: UserData =
        serde_json::from_value(user).map_err(|e| bad(format!("the run data is incomplete or corrupt: {e}")))?;
    Ok(Some(Saved {
        config: user.config,
        position: user.position,
        history: user.history,
        best: user.best,
        method: MethodState { meta: user.method, tensors: method_tensors(&file) },
    }))
}
