//! Per-epoch metrics of a run: `metrics.jsonl` (one JSON object per epoch) and `curves.svg`
//! (loss and accuracy per epoch), both rewritten atomically after every epoch.

use std::path::Path;

use autograd::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::plot::{render, Panel, Series};

/// Loss and accuracy over one pass of a split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy in `[0, 1]`.
    pub acc: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number of the whole run.
    pub epoch: usize,
    /// Name of the phase the epoch belongs to (`train` for single-phase methods).
    #[serde(default = "train_phase")]
    pub phase: String,
    /// 1-based epoch number within the phase.
    #[serde(default)]
    pub phase_epoch: usize,
    /// Training loss/accuracy (running average over the epoch's batches).
    pub train: SplitMetrics,
    /// Validation metrics, if a validation split exists.
    pub val: Option<SplitMetrics>,
    /// Test metrics, on the epochs `--test-every` evaluates.
    pub test: Option<SplitMetrics>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Seconds spent training (not evaluating) in this epoch.
    pub train_seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

fn train_phase() -> String {
    "train".to_string()
}

/// Reads a run's `metrics.jsonl` (missing file: no epochs).
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::invalid("metrics", format!("{}: {e}", path.display()))),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::invalid("metrics", format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Rewrites `metrics.jsonl` and `curves.svg` in `dir` from the full history.
pub fn write_metrics(dir: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in history {
        text.push_str(&serde_json::to_string(m).map_err(|e| Error::invalid("metrics", e.to_string()))?);
        text.push('\n');
    }
    layers::state_dict::write_atomic(&dir.join("metrics.jsonl"), text.as_bytes())?;
    layers::state_dict::write_atomic(&dir.join("curves.svg"), curves_svg(history).as_bytes())
}

/// The loss and accuracy curves of a run as SVG.
pub fn curves_svg(history: &[EpochMetrics]) -> String {
    let pick = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
        history.iter().filter_map(|m| f(m).map(|v| (m.epoch as f64, v))).collect()
    };
    let series = |name: &str, points: Vec<(f64, f64)>| Series::line(name, points);
    let loss = Panel {
        title: "loss".into(),
        x_label: "epoch".into(),
        y_label: "cross-entropy".into(),
        series: vec![
            series("train", pick(&|m| Some(m.train.loss))),
            series("validation", pick(&|m| m.val.map(|v| v.loss))),
            series("test", pick(&|m| m.test.map(|t| t.loss))),
        ],
        x_ticks: vec![],
    };
    let acc = Panel {
        title: "accuracy".into(),
        x_label: "epoch".into(),
        y_label: "top-1 accuracy (%)".into(),
        series: vec![
            series("train", pick(&|m| Some(100.0 * m.train.acc))),
            series("validation", pick(&|m| m.val.map(|v| 100.0 * v.acc))),
            series("test", pick(&|m| m.test.map(|t| 100.0 * t.acc))),
        ],
        x_ticks: vec![],
    };
    render(&[loss, acc])
}
