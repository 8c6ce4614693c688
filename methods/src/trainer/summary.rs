//! The outcome of a run: printed as a table, written as `summary.json`.

use std::fmt;
use std::path::PathBuf;

use autograd::Result;
use layers::mac::human;
use serde::{Deserialize, Serialize};

use crate::metrics::SplitMetrics;

/// Test accuracy and cost of one form of the model (the trained one, or the method's inference
/// form).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormReport {
    /// Test metrics.
    pub test: SplitMetrics,
    /// Number of parameters.
    pub params: usize,
    /// MACs of one forward pass of one image.
    pub macs: u64,
}

/// The outcome of a run, printed as a table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Method name.
    pub method: String,
    /// Model name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// Test metrics of the evaluated model: the method's inference form of the selected weights
    /// if it has one, else the selected weights themselves.
    pub test: SplitMetrics,
    /// The trained model (selected weights) after the method's final hook.
    pub trained: FormReport,
    /// The method's inference form, when it has one.
    pub inference: Option<FormReport>,
    /// Epoch (1-based, whole run) of the selected weights; 0 when nothing was trained.
    pub best_epoch: usize,
    /// How the weights were selected.
    pub selection: String,
    /// Number of parameters of the evaluated model.
    pub params: usize,
    /// MACs of one forward pass of one image of the evaluated model.
    pub macs: u64,
    /// Wall time of the whole run in seconds.
    pub wall_seconds: f64,
    /// Mean training throughput (images per second).
    pub images_per_second: f64,
    /// Mean wall time of one training step, in milliseconds (0 when nothing was trained).
    pub step_ms: f64,
    /// Lines added by the set-up and the method.
    pub extra: Vec<(String, String)>,
    /// The run folder.
    pub out: PathBuf,
}

impl Summary {
    /// The summary as JSON (`summary.json`): every field, plus `test_acc` and `test_loss` of
    /// the evaluated model at the top level.
    pub fn to_json(&self) -> Result<String> {
        let err = |e: serde_json::Error| autograd::Error::invalid("summary", e.to_string());
        let mut v = serde_json::to_value(self).map_err(err)?;
        v["test_acc"] = self.test.acc.into();
        v["test_loss"] = self.test.loss.into();
        serde_json::to_string_pretty(&v).map_err(err)
    }
}

fn pct(m: &SplitMetrics) -> String {
    format!("{:.2}%", 100.0 * m.acc)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<(String, String)> = vec![
            ("method".into(), self.method.clone()),
            ("model".into(), self.model.clone()),
            ("dataset".into(), format!("{} (test split)", self.dataset)),
            ("test accuracy".into(), pct(&self.test)),
            ("test loss".into(), format!("{:.4}", self.test.loss)),
            ("selected epoch".into(), format!("{} ({})", self.best_epoch, self.selection)),
            ("parameters".into(), format!("{} ({})", self.params, human(self.params as f64))),
            ("MACs / image".into(), human(self.macs as f64)),
        ];
        if let Some(inf) = &self.inference {
            let t = &self.trained;
            rows.push((
                "trained model".into(),
                format!(
                    "{} test, {} parameters, {} MACs (inference form: {}, {}, {})",
                    pct(&t.test),
                    human(t.params as f64),
                    human(t.macs as f64),
                    pct(&inf.test),
                    human(inf.params as f64),
                    human(inf.macs as f64)
                ),
            ));
        }
        rows.extend([
            ("wall time".into(), format!("{:.1} s", self.wall_seconds)),
            ("train images/s".into(), format!("{:.0}", self.images_per_second)),
            ("step time".into(), format!("{:.1} ms", self.step_ms)),
        ]);
        rows.extend(self.extra.iter().cloned());
        rows.push(("output".into(), self.out.display().to_string()));
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            writeln!(f, "{k:<w$}  {v}")?;
        }
        Ok(())
    }
}
