//! "Removing the trained block should hurt": a trained `sr` run evaluated on its test set with
//! and without its SR block ([`evaluate_without_block`]).

use std::path::Path;

use autograd::{Error, Result};

use crate::config::TrainConfig;
use crate::metrics::SplitMetrics;
use crate::registry;
use crate::trainer::{evaluate_checkpoint_with, RunOptions};

/// Test metrics of one trained run with its SR block and with the block removed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ablation {
    /// The trained model as it is.
    pub with_block: SplitMetrics,
    /// The same weights with the SR block replaced by the identity.
    pub without_block: SplitMetrics,
}

/// Evaluates the selected weights (`best.safetensors`) of the `sr` run in `run_dir` on its test
/// set twice: as trained, and with the SR block removed (`--set ablate=remove`, whose inference
/// form is the trained model without the block). The configuration comes from the run's
/// `config.json`, so the data and every other setting are the run's own.
///
/// The same as `train --eval-only RUN/best.safetensors --method sr --model ... --set
/// ablate=remove` with the run's options repeated; the example `sr_ablation` runs it over
/// several runs (`cargo run --release -p methods --example sr_ablation -- RUN...`).
pub fn evaluate_without_block(run_dir: &Path) -> Result<Ablation> {
    let cfg = TrainConfig::load(run_dir)?;
    if cfg.method != "sr" {
        return Err(Error::invalid(
            "evaluate_without_block",
            format!("{} is a run of method {:?}, not sr", run_dir.display(), cfg.method),
        ));
    }
    if cfg.hparams.get("block").is_some_and(|b| b == "off") {
        return Err(Error::invalid(
            "evaluate_without_block",
            format!("{} was trained without an SR block (block=off)", run_dir.display()),
        ));
    }
    let spec = registry::find("sr")?;
    let ckpt = run_dir.join("best.safetensors");
    let opts = RunOptions { quiet: true, ..RunOptions::default() };
    let with_block = evaluate_checkpoint_with(spec, &ckpt, &cfg, &opts)?.test;
    let mut ablated = cfg.clone();
    ablated.hparams.insert("ablate".into(), "remove".into());
    let without_block = evaluate_checkpoint_with(spec, &ckpt, &ablated, &opts)?.test;
    Ok(Ablation { with_block, without_block })
}
