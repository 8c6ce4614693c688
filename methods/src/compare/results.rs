//! A sweep's results: `results.json` (every run, and per method the mean and sample standard
//! deviation over seeds), `results.md` (the table, with the command that made it) and
//! `results.svg` (test accuracy with ± one standard deviation per method; accuracy against
//! MACs when the methods' costs differ, and against sparsity when they report one).

use std::fmt::Write;
use std::path::Path;

use autograd::{Error, Result};
use layers::mac::human;
use layers::state_dict::write_atomic;
use serde::Serialize;

use super::RunResult;
use crate::plot::{render, Panel, Series};

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// One method's results over its seeds.
#[derive(Clone, Debug, Serialize)]
pub struct MethodResult {
    /// The entry's label.
    pub label: String,
    /// The seeds run.
    pub seeds: Vec<u64>,
    /// Test accuracy (%) of each seed.
    pub test_acc: Vec<f64>,
    /// Mean test accuracy (%).
    pub test_acc_mean: f64,
    /// Sample standard deviation of the test accuracy (percentage points).
    pub test_acc_std: f64,
    /// Mean selected epoch.
    pub best_epoch_mean: f64,
    /// Parameters of the evaluated model (first seed).
    pub params: usize,
    /// MACs per image of the evaluated model (first seed).
    pub macs: u64,
    /// Mean measured training step time (ms).
    pub step_ms_mean: f64,
    /// Mean training images per second.
    pub images_per_second_mean: f64,
    /// Mean wall time of a run (s).
    pub wall_seconds_mean: f64,
    /// Mean sparsity the method reported (`sparsity` summary line), if any.
    pub sparsity: Option<f64>,
}

fn sparsity(r: &RunResult) -> Option<f64> {
    r.summary.extra.iter().find(|(k, _)| k == "sparsity").and_then(|(_, v)| v.trim_end_matches('%').parse().ok())
}

/// Per-method aggregates of `runs`, in the order of `labels` (methods with no finished run yet
/// are left out).
pub fn aggregate(labels: &[String], runs: &[RunResult]) -> Vec<MethodResult> {
    let mut out = Vec::new();
    for label in labels {
        let mine: Vec<&RunResult> = runs.iter().filter(|r| &r.label == label).collect();
        let Some(first) = mine.first() else { continue };
        let col = |f: &dyn Fn(&RunResult) -> f64| -> Vec<f64> { mine.iter().map(|r| f(r)).collect() };
        let acc = col(&|r| 100.0 * r.summary.test.acc);
        let (m, s) = mean_std(&acc);
        let sp: Vec<f64> = mine.iter().filter_map(|r| sparsity(r)).collect();
        out.push(MethodResult {
            label: label.clone(),
            seeds: mine.iter().map(|r| r.seed).collect(),
            test_acc: acc,
            test_acc_mean: m,
            test_acc_std: s,
            best_epoch_mean: mean_std(&col(&|r| r.summary.best_epoch as f64)).0,
            params: first.summary.params,
            macs: first.summary.macs,
            step_ms_mean: mean_std(&col(&|r| r.summary.step_ms)).0,
            images_per_second_mean: mean_std(&col(&|r| r.summary.images_per_second)).0,
            wall_seconds_mean: mean_std(&col(&|r| r.summary.wall_seconds)).0,
            sparsity: (!sp.is_empty()).then(|| mean_std(&sp).0),
        });
    }
    out
}

/// The table of `methods` as Markdown, the first method as the reference of the differences.
pub fn markdown(methods: &[MethodResult], command: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Command:\n\n```sh\n{command}\n```\n");
    let sparse = methods.iter().any(|m| m.sparsity.is_some());
    let _ = writeln!(
        s,
        "| method | seeds | test acc. % (mean ± sd) | per seed | Δ vs {} | selected epoch |{} params | MACs | step ms | img/s |",
        methods.first().map(|m| m.label.as_str()).unwrap_or("-"),
        if sparse { " sparsity |" } else { "" }
    );
    let _ = writeln!(s, "|---|---:|---:|---|---:|---:|{}---:|---:|---:|---:|", if sparse { "---:|" } else { "" });
    let reference = methods.first().map(|m| m.test_acc_mean).unwrap_or(f64::NAN);
    for m in methods {
        let seeds: Vec<String> = m.test_acc.iter().map(|a| format!("{a:.2}")).collect();
        let sp = match (sparse, m.sparsity) {
            (false, _) => String::new(),
            (true, Some(v)) => format!(" {v:.3} |"),
            (true, None) => " - |".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} ± {:.2} | {} | {:+.2} | {:.1} |{sp} {} | {} | {:.1} | {:.0} |",
            m.label,
            m.seeds.len(),
            m.test_acc_mean,
            m.test_acc_std,
            seeds.join(", "),
            m.test_acc_mean - reference,
            m.best_epoch_mean,
            human(m.params as f64),
            human(m.macs as f64),
            m.step_ms_mean,
            m.images_per_second_mean
        );
    }
    let _ = writeln!(
        s,
        "\nsd: sample standard deviation over seeds; step ms and img/s: measured training throughput (mean over seeds)."
    );
    s
}

/// The sweep's plot: accuracy per method with error bars, plus accuracy against MACs (when they
/// differ) and against sparsity (when reported).
pub fn plot(methods: &[MethodResult]) -> String {
    let points: Vec<(f64, f64)> = methods.iter().enumerate().map(|(i, m)| (i as f64, m.test_acc_mean)).collect();
    let errors: Vec<f64> = methods.iter().map(|m| m.test_acc_std).collect();
    let mut panels = vec![Panel {
        title: "test accuracy (mean ± sd over seeds)".into(),
        x_label: "method".into(),
        y_label: "top-1 accuracy (%)".into(),
        series: vec![Series::markers("mean ± sd", points, errors)],
        x_ticks: methods.iter().enumerate().map(|(i, m)| (i as f64, m.label.clone())).collect(),
    }];
    let per_method = |x: &dyn Fn(&MethodResult) -> Option<f64>| -> Vec<Series> {
        methods
            .iter()
            .filter_map(|m| {
                x(m).map(|v| Series::markers(m.label.clone(), vec![(v, m.test_acc_mean)], vec![m.test_acc_std]))
            })
            .collect()
    };
    if methods.iter().any(|m| m.macs != methods[0].macs) {
        panels.push(Panel {
            title: "accuracy vs cost".into(),
            x_label: "MMACs per image".into(),
            y_label: "top-1 accuracy (%)".into(),
            series: per_method(&|m| Some(m.macs as f64 / 1e6)),
            x_ticks: vec![],
        });
    }
    if methods.iter().any(|m| m.sparsity.is_some()) {
        panels.push(Panel {
            title: "accuracy vs sparsity".into(),
            x_label: "sparsity".into(),
            y_label: "top-1 accuracy (%)".into(),
            series: per_method(&|m| m.sparsity),
            x_ticks: vec![],
        });
    }
    render(&panels)
}

/// Rewrites `results.json`, `results.md` and `results.svg` in `out`.
pub fn write(out: &Path, labels: &[String], runs: &[RunResult], command: &str) -> Result<()> {
    let methods = aggregate(labels, runs);
    let json = serde_json::json!({
        "command": command,
        "methods": methods,
        "runs": runs.iter().map(|r| serde_json::json!({ "label": r.label, "seed": r.seed, "summary": r.summary })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::invalid("compare", e.to_string()))?;
    write_atomic(&out.join("results.json"), text.as_bytes())?;
    write_atomic(&out.join("results.md"), markdown(&methods, command).as_bytes())?;
    write_atomic(&out.join("results.svg"), plot(&methods).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_standard_deviation() {
        assert_eq!(mean_std(&[1.0, 2.0, 3.0]), (2.0, 1.0));
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }
}
