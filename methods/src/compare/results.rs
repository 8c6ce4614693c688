//! A sweep's results: `results.json` (every run, and per method the mean and sample standard
//! deviation over seeds), `results.md` (the table, with the command that made it) and
//! `results.svg` (test accuracy with ± one standard deviation per method; accuracy against
//! MACs when the methods' costs differ, and against sparsity when they report one: one curve per
//! method over its sparsity settings).

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
    /// MACs per image of the evaluated model (mean over seeds: data-dependent methods such as
    /// HASTE vary with the seed; for every other method all seeds agree).
    pub macs: u64,
    /// Mean measured training step time (ms).
    pub step_ms_mean: f64,
    /// Mean training images per second.
    pub images_per_second_mean: f64,
    /// Mean wall time of a run (s).
    pub wall_seconds_mean: f64,
    /// Mean sparsity the method reported (`sparsity` summary line), if any.
    pub sparsity: Option<f64>,
    /// Size in bytes of the method's compact checkpoint (`compact checkpoint bytes` summary
    /// line, first seed), if it reports one.
    pub checkpoint_bytes: Option<u64>,
    /// Size in bytes of the same network's dense checkpoint (`dense checkpoint bytes`), if
    /// reported.
    pub dense_checkpoint_bytes: Option<u64>,
}

/// The number at the start of summary line `key` of run `r`.
fn reported(r: &RunResult, key: &str) -> Option<f64> {
    let v = r.summary.extra.iter().find(|(k, _)| k == key)?.1.split_whitespace().next()?.to_string();
    v.trim_end_matches('%').parse().ok()
}

fn sparsity(r: &RunResult) -> Option<f64> {
    reported(r, "sparsity")
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
            macs: (mine.iter().map(|r| r.summary.macs as f64).sum::<f64>() / mine.len() as f64).round() as u64,
            step_ms_mean: mean_std(&col(&|r| r.summary.step_ms)).0,
            images_per_second_mean: mean_std(&col(&|r| r.summary.images_per_second)).0,
            wall_seconds_mean: mean_std(&col(&|r| r.summary.wall_seconds)).0,
            sparsity: (!sp.is_empty()).then(|| mean_std(&sp).0),
            checkpoint_bytes: reported(first, "compact checkpoint bytes").map(|b| b as u64),
            dense_checkpoint_bytes: reported(first, "dense checkpoint bytes").map(|b| b as u64),
        });
    }
    out
}

/// The table of `methods` as Markdown, the first method as the reference of the differences.
pub fn markdown(methods: &[MethodResult], command: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Command:\n\n```sh\n{command}\n```\n");
    let sparse = methods.iter().any(|m| m.sparsity.is_some());
    let ckpt = methods.iter().any(|m| m.checkpoint_bytes.is_some());
    let macs_differ = methods.iter().any(|m| m.macs != methods[0].macs);
    let _ = writeln!(
        s,
        "| method | seeds | test acc. % (mean ± sd) | per seed | Δ vs {} | selected epoch |{}{} params | MACs |{} step ms | img/s |",
        methods.first().map(|m| m.label.as_str()).unwrap_or("-"),
        if sparse { " sparsity |" } else { "" },
        if ckpt { " checkpoint |" } else { "" },
        if macs_differ { " MACs Δ |" } else { "" }
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---|---:|---:|{}{}---:|---:|{}---:|---:|",
        if sparse { "---:|" } else { "" },
        if ckpt { "---:|" } else { "" },
        if macs_differ { "---:|" } else { "" }
    );
    let reference = methods.first().map(|m| m.test_acc_mean).unwrap_or(f64::NAN);
    let reference_macs = methods.first().map_or(1.0, |m| m.macs.max(1) as f64);
    for m in methods {
        let seeds: Vec<String> = m.test_acc.iter().map(|a| format!("{a:.2}")).collect();
        let sp = match (sparse, m.sparsity) {
            (false, _) => String::new(),
            (true, Some(v)) => format!(" {v:.3} |"),
            (true, None) => " - |".to_string(),
        };
        let ck = match (ckpt, m.checkpoint_bytes) {
            (false, _) => String::new(),
            (true, Some(b)) => format!(" {}B |", human(b as f64)),
            (true, None) => " - |".to_string(),
        };
        let dm = if macs_differ {
            format!(" {:+.1} % |", 100.0 * (m.macs as f64 / reference_macs - 1.0))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} ± {:.2} | {} | {:+.2} | {:.1} |{sp}{ck} {} | {} |{dm} {:.1} | {:.0} |",
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
        "\nsd: sample standard deviation over seeds; MACs: per image of the evaluated model, on the first test batch (mean over seeds){}; step ms and img/s: measured training throughput (mean over seeds).",
        if macs_differ { ", and their difference from the first method's" } else { "" }
    );
    if ckpt {
        let dense_bytes = methods.iter().find_map(|m| m.dense_checkpoint_bytes);
        let dense = dense_bytes.map_or("-".to_string(), |b| format!("{}B ({b} bytes)", human(b as f64)));
        let _ = writeln!(
            s,
            "checkpoint: the method's compact checkpoint (`compact checkpoint bytes`: masks as bitmaps, kept values, frozen weights as seeds); the dense checkpoint of the same network is {dense}."
        );
    }
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
            series: sparsity_curves(methods),
            x_ticks: vec![],
        });
    }
    render(&panels)
}

/// The label of `label` without its sparsity setting (`snip[sparsity=0.9]` → `snip`,
/// `lth[sparsity=0.9,rounds=2]` → `lth[rounds=2]`, FreezeNet's `freezing_rate` likewise): the
/// runs one accuracy-vs-sparsity curve joins.
pub fn sparsity_family(label: &str) -> String {
    let Some((name, rest)) = label.split_once('[') else {
        return label.to_string();
    };
    let kept: Vec<&str> = rest
        .trim_end_matches(']')
        .split(',')
        .filter(|kv| !matches!(kv.split_once('=').map(|(k, _)| k.trim()), Some("sparsity" | "freezing_rate")))
        .collect();
    if kept.is_empty() {
        name.to_string()
    } else {
        format!("{name}[{}]", kept.join(","))
    }
}

/// One curve per [`sparsity_family`] of the methods that report a sparsity (in order of first
/// appearance), its points (mean accuracy with the seed sd as error bars) by increasing
/// sparsity, joined when there are several.
fn sparsity_curves(methods: &[MethodResult]) -> Vec<Series> {
    /// `(sparsity, mean accuracy, sd)` of one method setting.
    type Point = (f64, f64, f64);
    let mut curves: Vec<(String, Vec<Point>)> = Vec::new();
    for m in methods {
        let Some(sp) = m.sparsity else { continue };
        let family = sparsity_family(&m.label);
        let point = (sp, m.test_acc_mean, m.test_acc_std);
        match curves.iter_mut().find(|(f, _)| *f == family) {
            Some((_, points)) => points.push(point),
            None => curves.push((family, vec![point])),
        }
    }
    curves
        .into_iter()
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let joined = points.len() > 1;
            Series {
                name,
                errors: points.iter().map(|p| p.2).collect(),
                points: points.iter().map(|p| (p.0, p.1)).collect(),
                joined,
            }
        })
        .collect()
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
    fn sparsity_curves_join_the_settings_of_one_method() {
        assert_eq!(sparsity_family("snip[sparsity=0.9]"), "snip");
        assert_eq!(sparsity_family("lth[sparsity=0.98,rounds=2]"), "lth[rounds=2]");
        assert_eq!(sparsity_family("freezenet[freezing_rate=0.9]"), "freezenet");
        assert_eq!(sparsity_family("baseline"), "baseline");
        let labels: Vec<String> = [
            "baseline",
            "snip[sparsity=0.98]",
            "ip-snip[sparsity=0.9]",
            "snip[sparsity=0.9]",
            "ip-snip[sparsity=0.98]",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let sparsities = ["", "0.98", "0.9", "0.9", "0.98"];
        let runs: Vec<RunResult> = labels
            .iter()
            .zip(sparsities)
            .map(|(l, sp)| if sp.is_empty() { run(l, &[]) } else { run(l, &[("sparsity", sp)]) })
            .collect();
        let curves = sparsity_curves(&aggregate(&labels, &runs));
        let names: Vec<&str> = curves.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["snip", "ip-snip"]);
        assert_eq!(curves[0].points.iter().map(|p| p.0).collect::<Vec<_>>(), [0.9, 0.98], "sorted by sparsity");
        assert!(curves.iter().all(|c| c.joined && c.errors.len() == 2));
    }

    #[test]
    fn sample_standard_deviation() {
        assert_eq!(mean_std(&[1.0, 2.0, 3.0]), (2.0, 1.0));
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }

    fn run(label: &str, extra: &[(&str, &str)]) -> RunResult {
        let test = crate::metrics::SplitMetrics { loss: 1.0, acc: 0.5 };
        let form = crate::trainer::FormReport { test, params: 10, macs: 100 };
        let summary = crate::trainer::Summary {
            method: label.into(),
            model: "m".into(),
            dataset: "d".into(),
            test,
            trained: form,
            inference: None,
            best_epoch: 1,
            selection: "s".into(),
            params: 10,
            macs: 100,
            wall_seconds: 1.0,
            images_per_second: 1.0,
            step_ms: 1.0,
            extra: extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            out: "x".into(),
        };
        RunResult { label: label.into(), seed: 0, summary }
    }

    #[test]
    fn sparsity_and_checkpoint_sizes_get_columns() {
        let runs = [
            run("baseline", &[]),
            run(
                "snip",
                &[
                    ("sparsity", "0.9000"),
                    ("compact checkpoint bytes", "52000"),
                    ("dense checkpoint bytes", "400000 (7.7x)"),
                ],
            ),
        ];
        let m = aggregate(&["baseline".into(), "snip".into()], &runs);
        assert_eq!(
            (m[1].sparsity, m[1].checkpoint_bytes, m[1].dense_checkpoint_bytes),
            (Some(0.9), Some(52000), Some(400000))
        );
        let md = markdown(&m, "compare");
        assert!(md.contains("| sparsity | checkpoint |"), "{md}");
        assert!(md.contains("| 0.900 | 52.00KB |") && md.contains("| - | - |"), "{md}");
        assert!(md.contains("400.00KB (400000 bytes)"), "{md}");
    }

    #[test]
    fn macs_are_averaged_over_seeds_and_compared_with_the_first_method() {
        let with_macs = |label: &str, seed: u64, macs: u64| {
            let mut r = run(label, &[]);
            r.seed = seed;
            r.summary.macs = macs;
            r
        };
        let runs = [with_macs("dense", 0, 1000), with_macs("haste", 0, 700), with_macs("haste", 1, 800)];
        let m = aggregate(&["dense".into(), "haste".into()], &runs);
        assert_eq!(m[1].macs, 750);
        let md = markdown(&m, "compare");
        assert!(md.contains("| MACs | MACs Δ |") && md.contains("| -25.0 % |") && md.contains("| +0.0 % |"), "{md}");
        // Equal MACs: no difference column.
        let same = aggregate(&["dense".into()], &runs[..1]);
        assert!(!markdown(&same, "compare").contains("MACs Δ"));
    }
}
