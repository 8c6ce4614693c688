//! The `train` binary as an adversarial user meets it (issue 31): every case runs the binary and
//! checks its exit status, its message and the files it leaves. Numbers refer to the issue's
//! list: (1) run folders are never shared silently, (2) a closed stdout does not kill a run,
//! (3) `--threads` is capped, (4) divergence stops a run and is never selected, (6) empty sets
//! are errors, (7) every flag acts or is refused, (8) image folders train, (9) without a
//! validation split the last epoch is selected, (10) options are checked before the first step,
//! (11) checkpoint dtypes are checked, (13) the smaller ones: `--eval-only` paths, failed starts,
//! Ctrl-C, `swd` on an MLP. (5) and (12) are unit tests beside their code (`metrics.rs`,
//! `datasets/src/cifar.rs`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use layers::state_dict::{load_tensors, save_tensors};
use layers::ModuleExt;

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-robust-{}-{name}", std::process::id()));
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

/// Asserts that the run failed with a message holding every one of `needles`.
fn refused(o: &Output, needles: &[&str]) {
    assert!(!o.status.success(), "accepted: {}", stdout(o));
    let e = stderr(o);
    assert!(needles.iter().all(|n| e.contains(n)), "{needles:?} not all in: {e}");
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A run of one quick epoch of an MLP on 300 embedded Fashion-MNIST images, into `dir`; the
/// flags in `extra` are added or replace these.
fn quick(dir: &Path, extra: &[&str]) -> Vec<String> {
    let base = [
        ("--model", "mlp"),
        ("--epochs", "1"),
        ("--train-limit", "300"),
        ("--test-limit", "100"),
        ("--batch-size", "50"),
    ];
    let mut v: Vec<String> = Vec::new();
    for (flag, value) in base.iter().filter(|(f, _)| !extra.contains(f)) {
        v.extend([flag.to_string(), value.to_string()]);
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend(["--out".into(), dir.display().to_string()]);
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Epochs in metrics.jsonl (none when a kill came before its first write).
fn epochs_done(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl")).map(|t| t.lines().count()).unwrap_or(0)
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_for(path: &Path, child: &mut Child) {
    let t0 = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before {} appeared", path.display());
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig}");
}

/// A run that goes on until it is stopped: many epochs of 12 steps.
fn long_run(dir: &Path) -> Child {
    let args = quick(dir, &["--epochs", "2000", "--quiet"]);
    train(&strs(&args)).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

// (1) ----------------------------------------------------------------------------------------

#[test]
fn a_new_run_refuses_a_folder_that_holds_a_run_unless_overwrite() {
    let dir = out_dir("refuse");
    let o = run(&strs(&quick(&dir, &["--quiet"])));
    assert!(o.status.success(), "{}", stderr(&o));
    let config = std::fs::read(dir.join("config.json")).unwrap();
    let o = run(&strs(&quick(&dir, &["--quiet", "--seed", "7"])));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("already holds a run") && e.contains("--resume") && e.contains("--overwrite"), "{e}");
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), config, "the old run's config is untouched");
    let o = run(&strs(&quick(&dir, &["--quiet", "--seed", "7", "--overwrite"])));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&dir.join("config.json"))["seed"], 7);
    assert_eq!(json(&dir.join("summary.json"))["out"], dir.display().to_string());
    // A folder with other files is not taken either.
    let other = out_dir("refuse-other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = run(&strs(&quick(&other, &["--quiet"])));
    refused(&o, &["not empty"]);
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1, "nothing written");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(other).unwrap();
}

#[test]
fn two_runs_started_together_get_their_own_folders() {
    let cwd = out_dir("default-names");
    std::fs::create_dir_all(&cwd).unwrap();
    let args = ["--model", "mlp", "--epochs", "1", "--train-limit", "200", "--test-limit", "100", "--quiet"];
    let mut children: Vec<Child> = (0..2)
        .map(|seed| {
            let mut c = train(&args);
            c.args(["--seed", &seed.to_string()]).current_dir(&cwd).stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children.drain(..).map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", stderr(o));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cwd.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let mut seeds: Vec<u64> = dirs.iter().map(|d| json(&d.join("config.json"))["seed"].as_u64().unwrap()).collect();
    seeds.sort();
    assert_eq!(seeds, [0, 1]);
    std::fs::remove_dir_all(cwd).unwrap();
}

#[test]
fn a_live_run_locks_its_folder_and_a_killed_one_does_not() {
    let dir = out_dir("lock");
    let mut child = long_run(&dir);
    wait_for(&dir.join("last.safetensors"), &mut child);
    let pid = child.id().to_string();
    for args in [vec!["--resume", dir.to_str().unwrap()], strs(&quick(&dir, &["--overwrite"]))] {
        let o = run(&args);
        refused(&o, &["in use", &pid]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // kill -9 released the lock: the run resumes, extended by one epoch.
    let done = epochs_done(&dir);
    let more = (done + 1).to_string();
    let o = run(&["--resume", dir.to_str().unwrap(), "--epochs", &more, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&dir).len(), done + 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resume_applies_epochs_and_refuses_other_changes() {
    let dir = out_dir("resume-flags");
    let o = run(&strs(&quick(&dir, &["--quiet", "--schedule", "cosine"])));
    assert!(o.status.success(), "{}", stderr(&o));
    let d = dir.to_str().unwrap();
    let o = run(&["--resume", d, "--lr", "0.5", "--batch-size", "10", "--epochs", "2"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("--lr 0.5 (the run has 0.1)") && e.contains("--batch-size 10 (the run has 50)"), "{e}");
    assert!(!e.contains("--epochs 2 ("), "--epochs may change: {e}");
    let o = run(&["--resume", d, "--method", "swd"]);
    refused(&o, &["--method swd"]);
    // The same values as stored are no change.
    let o = run(&["--resume", d, "--epochs", "2", "--lr", "0.1", "--model", "mlp", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--epochs 1 -> 2"), "the extension is said: {}", stderr(&o));
    assert_eq!(metrics(&dir).iter().map(|m| m["epoch"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(json(&dir.join("config.json"))["epochs"], 2, "config.json holds the extended run");
    // Fewer epochs than trained: refused.
    let o = run(&["--resume", d, "--epochs", "1"]);
    refused(&o, &["already trained 2 epochs"]);
    let o = run(&["--resume", "/nonexistent/run"]);
    refused(&o, &["/nonexistent/run"]);
    std::fs::remove_dir_all(dir).unwrap();
}

// (2) ----------------------------------------------------------------------------------------

#[test]
fn a_closed_stdout_does_not_stop_the_run() {
    let dir = out_dir("pipe");
    let args = quick(&dir, &["--epochs", "2"]);
    let mut child = train(&strs(&args)).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take()); // `train ... | head -0`: the reader is gone before the first line
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(metrics(&dir).len(), 2);
    assert_eq!(json(&dir.join("summary.json"))["best_epoch"], 2);
    std::fs::remove_dir_all(dir).unwrap();
}

// (3) ----------------------------------------------------------------------------------------

#[test]
fn threads_beyond_the_cores_are_capped_with_a_warning() {
    let dir = out_dir("threads");
    let o = run(&strs(&quick(&dir, &["--quiet", "--threads", "1000"])));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--threads 1000 is more than the") && stderr(&o).contains("cores"), "{}", stderr(&o));
    let o = run(&strs(&quick(&dir, &["--threads", "0"])));
    refused(&o, &["--threads"]);
    std::fs::remove_dir_all(dir).unwrap();
}

// (4) and (13) a failed start ------------------------------------------------------------------

#[test]
fn divergence_stops_the_run_and_is_never_selected() {
    // Epoch 1 at lr 0.05 learns; the step schedule multiplies the rate by 1e6 for epoch 2.
    let dir = out_dir("diverge");
    let o = run(&strs(&quick(&dir, &["--epochs", "3", "--lr", "0.05", "--schedule", "step:1:1e6", "--quiet"])));
    refused(&o, &["diverged", "epoch 2"]);
    assert_eq!(metrics(&dir).len(), 1, "the diverged epoch is not recorded");
    assert!(!dir.join("summary.json").exists());
    let best = load_tensors(&dir.join("best.safetensors")).unwrap();
    assert_eq!(best.metadata["epoch"], "1");
    for (name, t) in best.tensors.iter().filter(|(_, t)| t.dtype().is_float()) {
        let v = t.to_dtype(autograd::DType::F64).unwrap().to_vec::<f64>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{name} holds a non-finite value");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // Diverging in the first epoch leaves nothing behind (no folder holding only config.json).
    let o = run(&strs(&quick(&dir, &["--lr", "1e4", "--schedule", "constant", "--quiet"])));
    refused(&o, &["diverged", "epoch 1 step"]);
    assert!(!dir.exists(), "the failed start's folder is removed");
}

// (6) ----------------------------------------------------------------------------------------

fn idx(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend(std::iter::repeat_n(0u8, dims.iter().product::<u32>() as usize));
    v
}

#[test]
fn empty_sets_are_errors_naming_the_set() {
    let dir = out_dir("empty");
    for (flag, value) in [("--train-limit", "0"), ("--test-limit", "0")] {
        let o = run(&strs(&quick(&dir, &[flag, value])));
        refused(&o, &[flag]);
    }
    let o = run(&strs(&quick(&dir, &["--val-fraction", "0.001"])));
    assert!(!o.status.success(), "0.1% of 300 images is no validation image");
    assert!(stderr(&o).contains("the validation set of fashion-mnist-embedded is empty"), "{}", stderr(&o));
    assert!(!dir.exists(), "nothing was written");

    let data = out_dir("empty-data");
    std::fs::create_dir_all(data.join("mnist")).unwrap();
    std::fs::write(data.join("mnist/train-images-idx3-ubyte"), idx(0x803, &[0, 28, 28])).unwrap();
    std::fs::write(data.join("mnist/train-labels-idx1-ubyte"), idx(0x801, &[0])).unwrap();
    let d = data.to_str().unwrap();
    let o = run(&[
        "--dataset",
        "mnist",
        "--data-dir",
        d,
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    refused(&o, &["train-images-idx3-ubyte", "no images"]);
    std::fs::create_dir_all(data.join("sklearn-digits")).unwrap();
    let row: Vec<String> = (0..65).map(|i| (i % 10).to_string()).collect();
    std::fs::write(data.join("sklearn-digits/digits.csv"), row.join(",") + "\n").unwrap();
    let o = run(&[
        "--dataset",
        "digits",
        "--data-dir",
        d,
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    refused(&o, &["digits.csv", "too few"]);
    assert!(!dir.exists());
    std::fs::remove_dir_all(data).unwrap();
}

// (7) ----------------------------------------------------------------------------------------

#[test]
fn eval_only_flags_act_or_are_refused() {
    let dir = out_dir("eval");
    let o = run(&strs(&quick(&dir, &["--quiet"])));
    assert!(o.status.success(), "{}", stderr(&o));
    let best = dir.join("best.safetensors");
    let b = best.to_str().unwrap();
    // The run's config.json gives the model; --test-limit acts; the output names data and split.
    let o = run(&["--eval-only", b, "--test-limit", "40"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("fashion-mnist-embedded test split, 40 images"), "{}", stdout(&o));
    let o = run(&["--eval-only", b, "--model", "lenet5"]);
    refused(&o, &["--model lenet5 (the run has mlp)"]);
    let o = run(&["--eval-only", b, "--lr", "0.3", "--epochs", "2"]);
    refused(&o, &["--epochs, --lr only affect training"]);
    // Without config.json the flags give the model, and the output says so.
    let bare = out_dir("eval-bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(&best, bare.join("w.safetensors")).unwrap();
    let w = bare.join("w.safetensors");
    let o = run(&["--eval-only", w.to_str().unwrap(), "--model", "mlp", "--test-limit", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no config.json") && stdout(&o).contains("30 images"), "{}{}", stderr(&o), stdout(&o));
    // (13) A missing path or a folder is named, not config.json.
    let o = run(&["--eval-only", dir.join("nope.safetensors").to_str().unwrap()]);
    refused(&o, &["nope.safetensors: no such file"]);
    let o = run(&["--eval-only", dir.to_str().unwrap()]);
    refused(&o, &["is a folder"]);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(bare).unwrap();
}

#[test]
fn momentum_under_one_cycle_is_refused_with_the_reason() {
    let o = run(&["--momentum", "0.5", "--schedule", "onecycle"]);
    refused(&o, &["--momentum", "one-cycle sets the momentum"]);
    let o = run(&["--profile-warmup", "3"]);
    refused(&o, &["--profile"]);
}

// (8) ----------------------------------------------------------------------------------------

fn write_image(path: &Path, w: u32, h: u32, seed: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 + seed * 40) as u8, (y * 5) as u8, ((x + y) * seed) as u8])
    });
    let format = if path.extension().unwrap() == "png" { image::ImageFormat::Png } else { image::ImageFormat::Jpeg };
    img.save_with_format(path, format).unwrap();
}

/// `train/` and `val/` with two classes of JPEG and PNG images of different sizes.
fn image_folder(root: &Path) {
    for (split, n) in [("train", 8u32), ("val", 3)] {
        for (c, class) in ["cat", "dog"].iter().enumerate() {
            let d = root.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for k in 0..n {
                let ext = if k % 2 == 0 { "png" } else { "jpg" };
                write_image(&d.join(format!("{k}.{ext}")), 30 + 7 * k, 45 - 3 * k, c as u32 + 1);
            }
        }
    }
}

#[test]
fn an_image_folder_of_varying_sizes_trains() {
    let data = out_dir("folder-data");
    image_folder(&data);
    let dir = out_dir("folder-run");
    let d = data.to_str().unwrap();
    let args = [
        "--dataset",
        "imagefolder",
        "--data-dir",
        d,
        "--image-size",
        "28",
        "--resize",
        "32",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--val-fraction",
        "0",
        "--quiet",
    ];
    let with_out = |extra: &[&str]| -> Vec<String> {
        args.iter().chain(extra).map(|s| s.to_string()).chain(["--out".into(), dir.display().to_string()]).collect()
    };
    let o = run(&strs(&with_out(&[])));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&dir.join("config.json"))["image_size"], 28);
    assert!(json(&dir.join("summary.json"))["test_acc"].as_f64().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
    // A 0-byte file is named; with --skip-unreadable it is skipped and counted.
    std::fs::write(data.join("train/dog/empty.jpg"), b"").unwrap();
    let o = run(&strs(&with_out(&[])));
    assert!(
        !o.status.success() && stderr(&o).contains("empty.jpg") && stderr(&o).contains("0 bytes"),
        "{}",
        stderr(&o)
    );
    let o = run(&strs(&with_out(&["--skip-unreadable"])));
    assert!(o.status.success(), "{}", stderr(&o));
    let extra = json(&dir.join("summary.json"))["extra"].to_string();
    assert!(extra.contains("1 unreadable files skipped") && extra.contains("empty.jpg"), "{extra}");
    std::fs::remove_dir_all(&dir).unwrap();
    // The size options belong to image folders only.
    let o = run(&strs(&quick(&dir, &["--image-size", "28"])));
    refused(&o, &["--image-size"]);
    std::fs::remove_dir_all(data).unwrap();
}

// (9) ----------------------------------------------------------------------------------------

#[test]
fn without_a_validation_split_the_last_epoch_is_selected() {
    // The rate jumps 30x after epoch 1, so epoch 2 tests worse than epoch 1: selecting on the
    // test set would pick epoch 1.
    let dir = out_dir("selection");
    let args =
        quick(&dir, &["--epochs", "2", "--val-fraction", "0", "--lr", "0.05", "--schedule", "step:1:30", "--quiet"]);
    let o = run(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let m = metrics(&dir);
    let acc = |e: usize| m[e]["test"]["acc"].as_f64().unwrap();
    assert!(acc(0) > acc(1), "the case needs epoch 1 to test better: {} vs {}", acc(0), acc(1));
    assert!(m.iter().all(|e| e["val"].is_null()));
    let s = json(&dir.join("summary.json"));
    assert_eq!((s["best_epoch"].as_u64(), s["selection"].as_str()), (Some(2), Some("last epoch: no validation split")));
    assert_eq!(s["test_acc"].as_f64(), Some(acc(1)), "the reported accuracy is the last epoch's");
    std::fs::remove_dir_all(dir).unwrap();
}

// (10) ---------------------------------------------------------------------------------------

#[test]
fn options_are_checked_before_anything_is_written() {
    let dir = out_dir("checks");
    let cases: &[(&[&str], &str)] = &[
        (&["--lr", "-1"], "--lr"),
        (&["--lr", "inf", "--schedule", "constant"], "--lr"),
        (&["--val-fraction", "1"], "--val-fraction"),
        (&["--val-fraction", "-0.1"], "--val-fraction"),
        (&["--schedule", "step:0:0.1"], "step size"),
        (&["--schedule", "step:1:nan"], "GAMMA"),
        (&["--schedule", "multistep:1,2:-0.5"], "GAMMA"),
        (&["--schedule", "warmup=4,cosine", "--epochs", "4"], "warm-up"),
        (&["--schedule", "multistep:2,30:0.1", "--epochs", "4"], "epoch 30"),
        (&["--momentum", "1.5", "--schedule", "cosine"], "--momentum"),
        (&["--weight-decay", "-1"], "--weight-decay"),
        (&["--label-smoothing", "1"], "--label-smoothing"),
        (&["--width", "nan"], "--width"),
        (&["--width", "1000"], "--width"),
        (&["--dataset", "imagefolder", "--image-size", "100000"], "--image-size"),
        (&["--dataset", "imagefolder", "--image-size", "32", "--resize", "16"], "resize 16"),
        (&["--optimizer", "rmsprop"], "--optimizer"),
        (&["--epochs", "100000000"], "--epochs"),
    ];
    for (flags, named) in cases {
        let mut args = vec!["--out", dir.to_str().unwrap()];
        args.extend_from_slice(flags);
        let o = run(&args);
        assert!(!o.status.success(), "{flags:?} accepted");
        assert!(stderr(&o).contains(named), "{flags:?}: {}", stderr(&o));
        assert!(!dir.exists(), "{flags:?} wrote {}", dir.display());
    }
}

// (11) ---------------------------------------------------------------------------------------

#[test]
fn integer_tensors_for_float_parameters_are_refused_naming_them() {
    let dir = out_dir("dtype");
    std::fs::create_dir_all(&dir).unwrap();
    let net = layers::models::build("mlp", 10, 1, 0).unwrap();
    let ints: Vec<(String, autograd::Tensor)> =
        net.state_dict().into_iter().map(|(n, t)| (n, t.to_dtype(autograd::DType::I64).unwrap())).collect();
    let file = dir.join("ints.safetensors");
    save_tensors(&file, &ints, &Default::default()).unwrap();
    let f = file.to_str().unwrap();
    let o = run(&["--eval-only", f, "--model", "mlp", "--test-limit", "20"]);
    refused(&o, &["fc1.", "I64"]);
    let run_dir = dir.join("run");
    let o = run(&strs(&quick(&run_dir, &["--init-from", f])));
    refused(&o, &["fc1.", "I64"]);
    assert!(!run_dir.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

// (13) ---------------------------------------------------------------------------------------

#[test]
fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let dir = out_dir("sigint");
    let mut child = long_run(&dir);
    wait_for(&dir.join("last.safetensors"), &mut child);
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let expect = format!("resume with: train --resume {}", dir.display());
    assert!(stderr(&o).to_lowercase().contains(&expect.to_lowercase()), "{}", stderr(&o));
    let done = epochs_done(&dir);
    let more = (done + 1).to_string();
    let r = run(&["--resume", dir.to_str().unwrap(), "--epochs", &more, "--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    std::fs::remove_dir_all(&dir).unwrap();

    // Before the first checkpoint: nothing to resume, nothing left behind.
    let mut child = long_run(&dir);
    wait_for(&dir.join("config.json"), &mut child);
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    if !dir.join("last.safetensors").exists() {
        assert!(stderr(&o).contains("nothing to resume"), "{}", stderr(&o));
        assert!(!dir.exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_method_that_needs_convolutions_says_so_on_an_mlp() {
    let dir = out_dir("swd-mlp");
    let o = run(&strs(&quick(&dir, &["--method", "swd"])));
    refused(&o, &["needs a convolutional model", "mlp"]);
    assert!(!dir.exists());
}
