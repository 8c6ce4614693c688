//! The `train` binary end to end: a short run and its output files, a run killed mid-epoch and
//! resumed to the same weights as an uninterrupted one, error messages for bad arguments, and
//! `--profile`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use layers::state_dict::load_tensors;

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn train(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train"));
    c.args(args).env_remove("LAMINA_DATA");
    c
}

fn run(args: &[&str]) -> Output {
    train(args).output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A small, quick configuration on the embedded Fashion-MNIST.
const SMALL: &[&str] = &["--method", "baseline", "--test-limit", "200", "--batch-size", "50", "--quiet"];

fn with(extra: &[&str]) -> Vec<String> {
    SMALL.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

/// [`SMALL`] with one epoch of the MLP on 600 training images into `out`, then `extra`.
fn mlp_epoch(out: &Path, extra: &[&str]) -> Vec<String> {
    let base = ["--model", "mlp", "--epochs", "1", "--train-limit", "600", "--out", out.to_str().unwrap()];
    with(&[&base[..], extra].concat())
}

/// The JSON file `name` of the run in `dir`.
fn run_json(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn a_short_run_writes_every_output_file() {
    let dir = out_dir("short");
    let o = run(&strs(&mlp_epoch(&dir, &[])));
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("test accuracy") && stdout.contains("MACs"), "{stdout}");
    for f in ["config.json", "metrics.jsonl", "best.safetensors", "last.safetensors", "curves.svg", "summary.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    assert_eq!(line["epoch"], 1);
    assert!(line["test"]["acc"].as_f64().unwrap() > 0.3, "an MLP learns something in one epoch: {line}");
    let cfg = run_json(&dir, "config.json");
    assert_eq!(cfg["model"], "mlp");
    let last = load_tensors(&dir.join("last.safetensors")).unwrap();
    assert!(last.tensors.iter().any(|(n, _)| n.starts_with("optim.")), "the last checkpoint holds optimizer state");
    assert_eq!(last.metadata["epoch"], "1");
    assert!(std::fs::read_to_string(dir.join("curves.svg")).unwrap().starts_with("<svg"));
    // --eval-only reads the model from config.json beside the checkpoint.
    let e = run(&["--eval-only", dir.join("best.safetensors").to_str().unwrap(), "--quiet"]);
    assert!(e.status.success(), "{}", stderr(&e));
    assert!(String::from_utf8_lossy(&e.stdout).contains("test accuracy"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--precision bf16` trains (on a CPU with AVX512_BF16; elsewhere it is refused naming the
/// flag and the instructions), is recorded in the run's configuration, and learns as f32 does;
/// unknown precisions and bf16 on another device are refused before any work.
#[test]
fn bf16_precision_trains_or_is_refused_with_the_reason() {
    let o = run(&strs(&with(&["--model", "mlp", "--epochs", "1", "--precision", "fp8"])));
    assert!(!o.status.success() && stderr(&o).contains("--precision") && stderr(&o).contains("fp8"), "{}", stderr(&o));
    let o = run(&strs(&with(&["--model", "mlp", "--epochs", "1", "--precision", "bf16", "--device", "cuda"])));
    assert!(!o.status.success() && stderr(&o).contains("CPU mode"), "{}", stderr(&o));
    let dir = out_dir("bf16");
    let o = run(&strs(&mlp_epoch(&dir, &["--precision", "bf16"])));
    if !autograd::backends::cpu::has_bf16() {
        assert!(!o.status.success() && stderr(&o).contains("AVX512_BF16"), "{}", stderr(&o));
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = run_json(&dir, "config.json");
    assert_eq!(cfg["precision"], "bf16");
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    assert!(line["test"]["acc"].as_f64().unwrap() > 0.3, "an MLP learns something in one bf16 epoch: {line}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn model_tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    load_tensors(path)
        .unwrap()
        .tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with("optim."))
        .map(|(n, t)| (n, t.to_vec::<f32>().map(|v| v.iter().map(|x| x.to_bits()).collect()).unwrap_or_default()))
        .collect()
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let extra = ["--epochs", "3", "--train-limit", "3000", "--model", "lenet5"];
    let whole = out_dir("whole");
    let args = with(&[&extra[..], &["--out", whole.to_str().unwrap()]].concat());
    let o = run(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));

    let cut = out_dir("cut");
    let args = with(&[&extra[..], &["--out", cut.to_str().unwrap()]].concat());
    let mut child = train(&strs(&args)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if cut.join("last.safetensors").is_file() || t0.elapsed() > Duration::from_secs(300) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!cut.join("summary.json").exists(), "the run was killed before it finished");
    let r = run(&["--resume", cut.to_str().unwrap(), "--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(model_tensors(&cut.join("last.safetensors")), model_tensors(&whole.join("last.safetensors")));
    let lines = std::fs::read_to_string(cut.join("metrics.jsonl")).unwrap().lines().count();
    assert_eq!(lines, 3);
    std::fs::remove_dir_all(whole).unwrap();
    std::fs::remove_dir_all(cut).unwrap();
}

#[test]
fn bad_arguments_are_explained() {
    let o = run(&["--method", "nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown method \"nope\"") && stderr(&o).contains("baseline"), "{}", stderr(&o));

    let o = run(&["--model", "resnet9000", "--epochs", "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("resnet9000") && stderr(&o).contains("resnet20"), "{}", stderr(&o));

    let o = run(&["--set", "nope=1"]);
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));

    let o = run(&["--dataset", "mnist", "--data-dir", "/nonexistent/lamina-data"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/lamina-data"), "{}", stderr(&o));

    let dir = out_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("broken.safetensors");
    std::fs::write(&bad, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let o = run(&["--eval-only", bad.to_str().unwrap(), "--model", "mlp"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("broken.safetensors"), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).unwrap();

    let o = run(&["--list-methods"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("baseline"));
}

#[test]
fn profile_prints_a_per_op_table_and_writes_profile_json() {
    let dir = out_dir("profile");
    // 120 images in batches of 50: the 2 warm-up and 2 profiled steps run into a second epoch.
    let args = with(&["--model", "lenet5", "--train-limit", "120", "--profile", "2", "--out", dir.to_str().unwrap()]);
    let o = run(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("lenet5") && stdout.contains("2 steps after 2 warm-up"), "{stdout}");
    let row = |op: &str, pass: &str| stdout.lines().any(|l| l.split_whitespace().take(2).eq([op, pass]));
    for (op, pass) in [("conv2d", "fwd"), ("conv2d", "bwd"), ("linear", "fwd"), ("optimizer_step", "all")] {
        assert!(row(op, pass), "no {op} {pass} row in\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("other ")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("(total step)") && l.trim_end().ends_with("100.0%")), "{stdout}");

    let p = run_json(&dir, "profile.json");
    assert_eq!(
        (p["model"].as_str(), p["steps"].as_u64(), p["warmup_steps"].as_u64()),
        (Some("lenet5"), Some(2), Some(2))
    );
    assert_eq!(p["batch_size"], 50);
    let ops = p["ops"].as_array().unwrap();
    let find = |op: &str, pass: &str| ops.iter().find(|o| o["op"] == op && o["pass"] == pass);
    // LeNet-5 has two convolutions and three linear layers; one optimizer step per step.
    assert_eq!(find("conv2d", "fwd").unwrap()["calls_per_step"], 2.0);
    assert_eq!(find("conv2d", "bwd").unwrap()["calls_per_step"], 2.0);
    assert_eq!(find("linear", "fwd").unwrap()["calls_per_step"], 3.0);
    assert_eq!(find("optimizer_step", "all").unwrap()["calls_per_step"], 1.0);
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert!(ops.iter().all(|o| (0.0..=1.0).contains(&f(o, "share")) && f(o, "ms_per_step") >= 0.0));
    assert!(ops.windows(2).all(|w| f(&w[0], "ms_per_step") >= f(&w[1], "ms_per_step")), "sorted by time");
    let shares: f64 = ops.iter().map(|o| f(o, "share")).sum::<f64>() + f(&p, "other_share");
    assert!((shares - 1.0).abs() < 1e-6, "the shares add up to the step: {shares}");
    let ms: f64 = ops.iter().map(|o| f(o, "ms_per_step")).sum::<f64>() + f(&p, "other_ms_per_step");
    assert!((ms - f(&p, "step_ms")).abs() < 1e-6 * f(&p, "step_ms"), "{ms} vs {}", p["step_ms"]);
    std::fs::remove_dir_all(dir).unwrap();

    let o = run(&strs(&with(&["--model", "mlp", "--profile", "0"])));
    assert!(!o.status.success() && stderr(&o).contains("--profile"), "{}", stderr(&o));
}

#[test]
fn presets_set_the_recipe_and_options_override_it() {
    let dir = out_dir("preset");
    // The small protocol's recipe (width 0.25, 15 epochs, one-cycle) on the embedded data.
    let args = with(&[
        "--preset",
        "small",
        "--dataset",
        "fashion-mnist-embedded",
        "--model",
        "resnet8",
        "--epochs",
        "1",
        "--train-limit",
        "200",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let o = run(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = run_json(&dir, "config.json");
    assert_eq!(cfg["preset"], "small");
    assert_eq!((cfg["width"].as_f64(), cfg["model"].as_str()), (Some(0.25), Some("resnet8")));
    assert_eq!((cfg["epochs"].as_u64(), cfg["train_limit"].as_u64()), (Some(1), Some(200)));
    assert_eq!((cfg["schedule"].as_str(), cfg["weight_decay"].as_f64()), (Some("onecycle"), Some(5e-4)));
    let summary = run_json(&dir, "summary.json");
    // ResNet-8 at width 0.25: 4/8/16 channels.
    assert!(summary["params"].as_u64().unwrap() < 6_000, "{}", summary["params"]);
    std::fs::remove_dir_all(dir).unwrap();

    let o = run(&["--method", "swd", "--preset", "nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no preset \"nope\"") && stderr(&o).contains("small, paper"), "{}", stderr(&o));
    let o = run(&["--list-methods"]);
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("--preset small") && listing.contains("--preset paper"), "{listing}");
    let o = run(&["--model", "mlp", "--width", "0.5", "--epochs", "1"]);
    assert!(!o.status.success() && stderr(&o).contains("mlp"), "{}", stderr(&o));
}

#[test]
fn init_from_loads_a_checkpoint_before_training() {
    let first = out_dir("init-a");
    let o = run(&strs(&mlp_epoch(&first, &[])));
    assert!(o.status.success(), "{}", stderr(&o));
    // A trained start: the second run evaluates to the first one's accuracy before any training,
    // so its first epoch starts far above chance.
    let second = out_dir("init-b");
    let best = first.join("best.safetensors");
    let o = run(&strs(&mlp_epoch(&second, &["--lr", "0", "--init-from", best.to_str().unwrap()])));
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (run_json(&first, "summary.json"), run_json(&second, "summary.json"));
    assert_eq!(a["test_acc"], b["test_acc"], "lr 0: the loaded weights are the evaluated ones");
    let extra = b["extra"].to_string();
    assert!(extra.contains("init-from") && extra.contains("loaded"), "{extra}");
    // A file that does not exist is named.
    let o = run(&strs(&with(&["--model", "mlp", "--init-from", "/nonexistent/w.safetensors"])));
    assert!(!o.status.success() && stderr(&o).contains("/nonexistent/w.safetensors"), "{}", stderr(&o));
    std::fs::remove_dir_all(first).unwrap();
    std::fs::remove_dir_all(second).unwrap();
}

#[test]
fn test_every_zero_tests_only_the_selected_weights() {
    let dir = out_dir("test-every");
    let args = with(&[
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--train-limit",
        "300",
        "--test-every",
        "0",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let o = run(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    for line in metrics.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(m["test"].is_null() && m["val"]["acc"].is_number(), "{m}");
    }
    let summary = run_json(&dir, "summary.json");
    assert!(summary["test_acc"].as_f64().unwrap() > 0.3, "{summary}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn moee_on_its_defaults_without_data_says_what_to_pass() {
    // moee's defaults are the shipped ViT on CIFAR-10, which needs the data's folder.
    let o = run(&["--method", "moee", "--quiet", "--out", out_dir("moee").to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--data-dir DIR") && e.contains("LAMINA_DATA") && e.contains("cifar-10/data_batch_1.bin"),
        "{e}"
    );
}

#[test]
fn help_describes_the_binary_itself() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("Train a model with one of Lamina's"), "{text}");
}
