//! `compare`: a sweep of methods x seeds, one run after the other (each with every kernel
//! thread), written as one table, one JSON file and one plot.
//!
//! Every run of seed `s` uses seed `s` for the model's initialization and the data order, so all
//! methods of a seed see the same data in the same order. Runs live in `OUT/runs/<label>-s<seed>/`;
//! a finished run (its `summary.json` exists) is never redone, a killed one resumes from its last
//! checkpoint (or starts again when killed in its first epoch), and a run folder started with
//! other options is an error, so a killed sweep
//! continues where it stopped when the same command is run again. The results are rewritten after
//! every run ([`results`]).
//!
//! ```
//! use methods::compare::parse_methods;
//! let e = parse_methods("baseline,swd[p=0.2,stages=3],sfd").unwrap();
//! assert_eq!(e[1].method, "swd");
//! assert_eq!(e[1].sets, ["p=0.2", "stages=3"]);
//! assert_eq!(e[1].label, "swd[p=0.2,stages=3]");
//! assert!(parse_methods("swd[p=0.2").is_err());
//! ```

pub mod results;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use autograd::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::RunArgs;
use crate::config::TrainConfig;
use crate::registry;
use crate::trainer::{train, RunOptions, Summary};

/// One method of a sweep: a registered method with hyperparameter assignments
/// (`snip[sparsity=0.9]`), labelled by how it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The text that named it (`snip[sparsity=0.9]`), used in tables and folder names.
    pub label: String,
    /// The registered method.
    pub method: String,
    /// `key=value` assignments for this entry only.
    pub sets: Vec<String>,
}

/// Parses a comma-separated list of methods, each optionally followed by `[key=value,...]`.
pub fn parse_methods(list: &str) -> Result<Vec<Entry>> {
    let bad = |what: String| Error::invalid("--methods", what);
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(bad(format!("unbalanced brackets in {list:?}")));
        }
    }
    if depth != 0 {
        return Err(bad(format!("unbalanced brackets in {list:?}")));
    }
    items.push(&list[start..]);
    let mut out = Vec::new();
    for item in items.into_iter().map(str::trim) {
        if item.is_empty() {
            return Err(bad(format!("an empty method name in {list:?}")));
        }
        let (method, sets) = match item.split_once('[') {
            Some((m, rest)) => {
                let inner =
                    rest.strip_suffix(']').ok_or_else(|| bad(format!("{item:?}: text after the closing bracket")))?;
                let sets: Vec<String> =
                    inner.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                if let Some(s) = sets.iter().find(|s| !s.contains('=')) {
                    return Err(bad(format!("{item:?}: {s:?} is not key=value")));
                }
                (m.trim(), sets)
            }
            None => (item, Vec::new()),
        };
        registry::find(method)?;
        if out.iter().any(|e: &Entry| e.label == item) {
            return Err(bad(format!("{item:?} is listed twice")));
        }
        out.push(Entry { label: item.to_string(), method: method.to_string(), sets });
    }
    Ok(out)
}

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// The entry's label.
    pub label: String,
    /// The seed.
    pub seed: u64,
    /// Its configuration.
    pub cfg: TrainConfig,
    /// Its folder.
    pub dir: PathBuf,
}

/// The label as a folder name: letters, digits, `.`, `_` and `-` kept, the rest `-`.
fn folder_name(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect()
}

/// The runs of `entries` x `seeds` in execution order (seed by seed, every method of a seed
/// before the next seed), configured by `args` and the sweep-wide assignments `sets`: `key=value`
/// applies to every method that declares `key` (and must be declared by one), `METHOD:key=value`
/// to the entries of that method or label only.
pub fn plan(args: &RunArgs, entries: &[Entry], seeds: &[u64], sets: &[String], out: &Path) -> Result<Vec<PlannedRun>> {
    if entries.is_empty() || seeds.is_empty() {
        return Err(Error::invalid("compare", "needs at least one method and one seed"));
    }
    let mut used = vec![false; sets.len()];
    let mut configs = Vec::new();
    for e in entries {
        let spec = registry::find(&e.method)?;
        let mut mine = Vec::new();
        for (i, s) in sets.iter().enumerate() {
            let (target, assignment) = match s.split_once(':') {
                Some((t, a)) if !t.contains('=') => (Some(t), a),
                _ => (None, s.as_str()),
            };
            let key = assignment.split_once('=').map(|(k, _)| k.trim()).unwrap_or(assignment);
            let applies = match target {
                Some(t) => t == e.method || t == e.label,
                None => spec.hparams.iter().any(|h| h.key == key),
            };
            if applies {
                mine.push(assignment.to_string());
                used[i] = true;
            }
        }
        mine.extend(e.sets.iter().cloned());
        configs.push((e, args.config_for(spec, &mine)?));
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(Error::invalid("--set", format!("{:?} applies to none of the methods compared", sets[i])));
    }
    let mut runs = Vec::new();
    for &seed in seeds {
        for (e, cfg) in &configs {
            let mut cfg = cfg.clone();
            cfg.seed = seed;
            let dir = out.join("runs").join(format!("{}-s{seed}", folder_name(&e.label)));
            runs.push(PlannedRun { label: e.label.clone(), seed, cfg, dir });
        }
    }
    Ok(runs)
}

/// A finished run of a sweep.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The entry's label.
    pub label: String,
    /// The seed.
    pub seed: u64,
    /// What the run reported.
    pub summary: Summary,
}

fn read_summary(dir: &Path) -> Result<Option<Summary>> {
    let path = dir.join("summary.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::invalid("compare", format!("{}: {e}; delete the run folder to redo it", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::invalid("compare", format!("{}: {e}", path.display()))),
    }
}

/// Runs the sweep: finished runs are read back, killed ones resumed, the rest trained; the
/// results in `out` are rewritten after every run. `command` is recorded with them. One progress
/// line shows the whole sweep's epochs and ETA (hidden when `quiet`).
pub fn run_sweep(runs: &[PlannedRun], out: &Path, command: &str, quiet: bool) -> Result<Vec<RunResult>> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::invalid("compare", format!("{}: cannot create: {e}", out.display())))?;
    let total: usize = runs.iter().map(|r| r.cfg.epochs).sum();
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total as u64) };
    let style = ProgressStyle::with_template("sweep [{bar:30.cyan/blue}] {pos}/{len} epochs  {msg}  ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    let mut results: Vec<RunResult> = Vec::new();
    let mut done_epochs = 0u64;
    for (i, r) in runs.iter().enumerate() {
        bar.set_message(format!("run {}/{}: {} seed {}", i + 1, runs.len(), r.label, r.seed));
        if r.dir.join("config.json").is_file() && TrainConfig::load(&r.dir)? != r.cfg {
            return Err(Error::invalid(
                "compare",
                format!(
                    "{} was started with other options than this sweep's; delete it or use another --out",
                    r.dir.display()
                ),
            ));
        }
        let summary = match read_summary(&r.dir)? {
            Some(s) => s,
            None => {
                // The folder is this sweep's (its config.json, if any, was checked above): a
                // checkpoint is resumed; anything else is a killed first epoch, started again.
                let resume = r.dir.join("last.safetensors").is_file();
                let base = done_epochs;
                let b = bar.clone();
                let on_epoch = Arc::new(move |done: usize, _of: usize| b.set_position(base + done as u64));
                let opts = RunOptions { quiet: true, on_epoch: Some(on_epoch), overwrite: !resume };
                train(&r.cfg, &r.dir, resume, &opts)?
            }
        };
        done_epochs += r.cfg.epochs as u64;
        bar.set_position(done_epochs);
        results.push(RunResult { label: r.label.clone(), seed: r.seed, summary });
        let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).fold(Vec::new(), |mut v, l| {
            if !v.contains(&l) {
                v.push(l);
            }
            v
        });
        results::write(out, &labels, &results, command)?;
    }
    bar.finish_and_clear();
    Ok(results)
}
