//! The `compare` binary end to end: a small sweep writes its table, JSON and plot; running it
//! again redoes nothing; a run whose summary is missing is finished from its checkpoint; a run
//! folder made with other options is refused; `--set` goes to the methods that declare the key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-compare-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compare")).args(args).env_remove("LAMINA_DATA").output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SWEEP: &[&str] = &[
    "--methods",
    "baseline,swd[p=0.3]",
    "--seeds",
    "2",
    "--first-seed",
    "4",
    "--model",
    "lenet5",
    "--epochs",
    "1",
    "--train-limit",
    "300",
    "--test-limit",
    "100",
    "--batch-size",
    "50",
    "--quiet",
];

fn with(out: &Path, extra: &[&str]) -> Vec<String> {
    SWEEP.iter().chain(extra).map(|s| s.to_string()).chain(["--out".into(), out.display().to_string()]).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

#[test]
fn a_sweep_writes_its_results_and_resumes_without_redoing_runs() {
    let out = out_dir("sweep");
    let args = with(&out, &[]);
    let o = compare(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| baseline | 2 |") && md.contains("| swd[p=0.3] | 2 |"), "{md}");
    assert!(md.contains("compare --methods") && md.contains("--first-seed 4"), "the command is recorded: {md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [4, 4, 5, 5], "seed by seed, every method of a seed first");
    assert!(std::fs::read_to_string(out.join("results.svg")).unwrap().starts_with("<svg"));
    let swd_cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("runs/swd-p-0.3--s4/config.json")).unwrap()).unwrap();
    assert_eq!((swd_cfg["hparams"]["p"].as_str(), swd_cfg["seed"].as_u64()), (Some("0.3"), Some(4)));

    // Again: nothing is retrained (the summaries are untouched).
    let summary = out.join("runs/baseline-s5/summary.json");
    let stamp = std::fs::metadata(&summary).unwrap().modified().unwrap();
    let o = compare(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&summary).unwrap().modified().unwrap(), stamp);

    // A run killed after its last checkpoint but before its summary is finished, not redone.
    let before = std::fs::read_to_string(&summary).unwrap();
    std::fs::remove_file(&summary).unwrap();
    let o = compare(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let after: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(after["test_acc"], before["test_acc"]);

    // Other options into the same folder: refused, naming the run folder.
    let o = compare(&strs(&with(&out, &["--lr", "0.05"])));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("other options") && stderr(&o).contains("baseline-s4"), "{}", stderr(&o));
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn set_assignments_go_to_the_methods_that_declare_them() {
    let out = out_dir("sets");
    let o = compare(&["--methods", "baseline,swd", "--set", "q=1", "--epochs", "1", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("\"q=1\" applies to none"), "{}", stderr(&o));
    let o = compare(&["--methods", "baseline,sw[d", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("--methods"), "{}", stderr(&o));
    let o = compare(&["--methods", "baseline,nope", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("unknown method \"nope\""), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written before the sweep is valid");
}

#[test]
fn help_describes_the_binary_itself() {
    let o = compare(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("Compare methods over several seeds"), "{text}");
}
