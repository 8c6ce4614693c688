//! Training checkpoints: one safetensors file with the model's state (`state_dict` names), the
//! optimizer's state (prefixed `optim.`, e.g. `optim.state.layer1.0.conv1.weight.momentum_buffer`)
//! and metadata — format tag, epoch, step, scheduler position, the seed generator's position
//! ([`crate::rng::state`]), the optimizer's hyperparameters and any user JSON (best accuracy,
//! configuration) — written atomically. [`load_checkpoint`] restores all of it, so a resumed run
//! continues exactly as the uninterrupted one would have.
//!
//! ```
//! use layers::checkpoint::{load_checkpoint, save_checkpoint, TrainingState};
//! use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
//! use layers::{Linear, ModuleExt};
//! let dir = std::env::temp_dir().join(format!("lamina-ckpt-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("last.safetensors");
//! let fc = Linear::new(2, 2, true);
//! let mut opt = Sgd::new(vec![ParamGroup::new(fc.named_parameters())], SgdOptions::new(0.1)).unwrap();
//! let state = TrainingState { epoch: 3, step: 120, user: serde_json::json!({"best_acc": 0.91}) };
//! save_checkpoint(&path, &fc, Some(&opt), None, &state).unwrap();
//! let back = load_checkpoint(&path, &fc, Some(&mut opt), None).unwrap();
//! assert_eq!(back, state);
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```

use std::collections::HashMap;
use std::path::Path;

use autograd::{Error, Result};
use serde_json::{json, Value};

use crate::optim::{Optimizer, OptimizerState};
use crate::rng::{self, RngState};
use crate::schedule::Scheduler;
use crate::state_dict::{load_state_dict, load_tensors, save_tensors, Strictness};
use crate::{Module, ModuleExt};

/// The value of the `format` metadata entry of a Lamina checkpoint.
pub const FORMAT: &str = "lamina-checkpoint-1";
/// Prefix of the optimizer's tensors in the file.
pub const OPTIM_PREFIX: &str = "optim.";
/// Prefix of the training method's own tensors in the file (masks, scores, weights to rewind
/// to): saved by [`save_checkpoint_with`], skipped when the model's weights are loaded.
pub const METHOD_PREFIX: &str = "method.";

/// Whether a checkpoint entry is training state (optimizer or method) rather than a model
/// parameter or buffer.
pub fn is_training_state(name: &str) -> bool {
    name.starts_with(OPTIM_PREFIX) || name.starts_with(METHOD_PREFIX)
}

/// Where a training run is, saved beside the weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingState {
    /// Completed epochs.
    pub epoch: u64,
    /// Completed optimizer steps.
    pub step: u64,
    /// Anything else the trainer wants back (best accuracy, configuration, ...).
    pub user: Value,
}

fn err(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::invalid("checkpoint", format!("{}: {what}", path.display()))
}

/// Writes `model`, the optimizer's state, the scheduler's position, the seed generator's position
/// and `state` to `path` atomically (a temporary file and a rename).
pub fn save_checkpoint(
    path: &Path,
    model: &dyn Module,
    optimizer: Option<&dyn Optimizer>,
    scheduler: Option<&Scheduler>,
    state: &TrainingState,
) -> Result<()> {
    save_checkpoint_with(path, model, optimizer, scheduler, state, &[])
}

/// [`save_checkpoint`] plus the training method's tensors, stored under [`METHOD_PREFIX`]
/// (`("mask.layer1", t)` is written as `method.mask.layer1`); [`method_tensors`] reads them back.
pub fn save_checkpoint_with(
    path: &Path,
    model: &dyn Module,
    optimizer: Option<&dyn Optimizer>,
    scheduler: Option<&Scheduler>,
    state: &TrainingState,
    method: &[(String, autograd::Tensor)],
) -> Result<()> {
    let mut tensors = model.state_dict();
    if let Some(clash) = tensors.iter().find(|(n, _)| is_training_state(n)) {
        return Err(err(path, format!("model entry {:?} clashes with the optimizer or method prefix", clash.0)));
    }
    tensors.extend(method.iter().map(|(n, t)| (format!("{METHOD_PREFIX}{n}"), t.clone())));
    let rng = rng::state();
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), state.epoch.to_string()),
        ("step".to_string(), state.step.to_string()),
        ("rng".to_string(), json!({ "seed": rng.seed, "counter": rng.counter }).to_string()),
        ("user".to_string(), state.user.to_string()),
    ]);
    if let Some(opt) = optimizer {
        let s = opt.state_dict()?;
        tensors.extend(s.tensors.into_iter().map(|(n, t)| (format!("{OPTIM_PREFIX}{n}"), t)));
        meta.insert("optimizer".into(), s.meta.to_string());
    }
    if let Some(s) = scheduler {
        meta.insert("scheduler".into(), s.state().to_string());
    }
    save_tensors(path, &tensors, &meta)
}

/// Restores what [`save_checkpoint`] wrote: the model's parameters and buffers (strictly: every
/// name must match), the optimizer's state and the scheduler's position when given, and this
/// thread's seed generator. Returns the saved [`TrainingState`]. A missing, truncated or corrupt
/// file, or one that is not a Lamina checkpoint, is an error naming the file.
pub fn load_checkpoint(
    path: &Path,
    model: &dyn Module,
    optimizer: Option<&mut dyn Optimizer>,
    scheduler: Option<&mut Scheduler>,
) -> Result<TrainingState> {
    let file = load_tensors(path)?;
    let meta = &file.metadata;
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(err(path, format!("not a Lamina checkpoint (format {:?})", meta.get("format"))));
    }
    let json = |key: &str| -> Result<Option<Value>> {
        meta.get(key)
            .map(|s| serde_json::from_str(s).map_err(|e| err(path, format!("metadata {key:?}: {e}"))))
            .transpose()
    };
    let number = |key: &str| -> Result<u64> {
        meta.get(key).and_then(|s| s.parse().ok()).ok_or_else(|| err(path, format!("metadata {key:?} missing or bad")))
    };
    let state =
        TrainingState { epoch: number("epoch")?, step: number("step")?, user: json("user")?.unwrap_or_default() };
    let rng_json = json("rng")?.ok_or_else(|| err(path, "no rng metadata"))?;
    let rng_state = match (rng_json["seed"].as_u64(), rng_json["counter"].as_u64()) {
        (Some(seed), Some(counter)) => RngState { seed, counter },
        _ => return Err(err(path, format!("bad rng metadata {rng_json}"))),
    };
    let (optim, weights): (Vec<_>, Vec<_>) = file
        .tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with(METHOD_PREFIX))
        .partition(|(n, _)| n.starts_with(OPTIM_PREFIX));
    load_state_dict(model, &weights, Strictness::Strict).map_err(|e| err(path, e))?;
    if let Some(opt) = optimizer {
        let meta = json("optimizer")?.ok_or_else(|| err(path, "the file holds no optimizer state"))?;
        let tensors = optim.into_iter().map(|(n, t)| (n[OPTIM_PREFIX.len()..].to_string(), t)).collect();
        opt.load_state_dict(&OptimizerState { tensors, meta }).map_err(|e| err(path, e))?;
    }
    if let Some(s) = scheduler {
        let saved = json("scheduler")?.ok_or_else(|| err(path, "the file holds no scheduler state"))?;
        s.load_state(&saved).map_err(|e| err(path, e))?;
    }
    rng::set_state(rng_state);
    Ok(state)
}

/// The training method's tensors of a checkpoint file (names without [`METHOD_PREFIX`]).
pub fn method_tensors(file: &crate::state_dict::TensorFile) -> Vec<(String, autograd::Tensor)> {
    file.tensors.iter().filter_map(|(n, t)| n.strip_prefix(METHOD_PREFIX).map(|k| (k.to_string(), t.clone()))).collect()
}
