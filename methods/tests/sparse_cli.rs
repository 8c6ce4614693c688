//! `train --method NAME` for the ten pruning and freezing methods on the embedded Fashion-MNIST
//! (an MLP, one quick epoch each): each runs, reports its sparsity and compact checkpoint size,
//! and keeps the density it was asked for; and for the seven interspace-pruning entries
//! (ResNet-8 at width 0.25, whose 3x3 convolutions get a trained filter basis).

use std::path::PathBuf;
use std::process::Command;

/// Runs `train --method method` with `args` and `--set` of each of `sets` into a fresh folder;
/// the folder, the summary and its extra lines.
fn train(method: &str, args: &[&str], sets: &[&str]) -> (PathBuf, serde_json::Value, Vec<(String, String)>) {
    let dir = std::env::temp_dir().join(format!("lamina-sparse-cli-{}-{method}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut all: Vec<String> = ["--method", method].iter().chain(args).map(|s| s.to_string()).collect();
    all.extend(["--quiet".to_string(), "--out".to_string(), dir.to_str().unwrap().to_string()]);
    for s in sets {
        all.extend(["--set".to_string(), s.to_string()]);
    }
    let o = Command::new(env!("CARGO_BIN_EXE_train")).args(&all).env_remove("LAMINA_DATA").output().unwrap();
    assert!(o.status.success(), "{method}: {}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let extra: Vec<(String, String)> = serde_json::from_value(summary["extra"].clone()).unwrap();
    (dir, summary, extra)
}

fn get(extra: &[(String, String)], k: &str) -> String {
    extra.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default()
}

#[test]
fn every_sparse_method_trains_from_the_command_line() {
    let cases: &[(&str, &[&str], f64)] = &[
        ("snip", &["sparsity=0.9"], 0.9),
        ("grasp", &["sparsity=0.9"], 0.9),
        ("synflow", &["sparsity=0.9", "rounds=20"], 0.9),
        ("magnitude", &["sparsity=0.8"], 0.8),
        ("random-prune", &["sparsity=0.8"], 0.8),
        ("lth", &["sparsity=0.36", "rewind=init"], 0.36),
        ("set", &["sparsity=0.9"], 0.9),
        ("dsr", &["sparsity=0.9", "interval=20"], 0.9),
        ("rigl", &["sparsity=0.9", "delta_t=20"], 0.9),
        ("freezenet", &["freezing_rate=0.9"], 0.9),
    ];
    for (method, sets, sparsity) in cases {
        let args =
            ["--model", "mlp", "--epochs", "1", "--train-limit", "600", "--test-limit", "200", "--batch-size", "50"];
        let (dir, summary, extra) = train(method, &args, sets);
        let get = |k: &str| get(&extra, k);
        let got: f64 = get("sparsity").parse().unwrap();
        assert!((got - sparsity).abs() < 1e-3, "{method}: sparsity {got}, asked {sparsity}");
        let compact: usize = get("compact checkpoint bytes").parse().unwrap();
        // The MLP's 266,200 prunable weights: 33,275 bytes of bitmap plus 4 per kept value.
        let kept = ((1.0 - sparsity) * 266_200.0f64).round() as usize;
        assert!(compact > 33_275 + 4 * kept && compact < 33_275 + 4 * kept + 8_000, "{method}: {compact} bytes");
        // A uniformly random topology (random pruning, DSR's start) shrinks the unnormalized
        // MLP's activations and it barely moves in one epoch; every other method beats chance.
        let floor = if ["random-prune", "dsr"].contains(method) { 0.0 } else { 0.15 };
        assert!(summary["test_acc"].as_f64().unwrap() > floor, "{method} learns: {}", summary["test_acc"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn every_ip_method_trains_from_the_command_line() {
    let cases: &[(&str, &[&str], f64)] = &[
        ("ip-snip", &["sparsity=0.9"], 0.9),
        ("ip-grasp", &["sparsity=0.9"], 0.9),
        ("ip-synflow", &["sparsity=0.9", "rounds=10"], 0.9),
        ("ip-magnitude", &["sparsity=0.8", "granularity=channel"], 0.8),
        ("ip-lth", &["sparsity=0.36", "rewind=init"], 0.36),
        ("ip-set", &["sparsity=0.9", "basis=random"], 0.9),
        ("ip-rigl", &["sparsity=0.9", "delta_t=3"], 0.9),
    ];
    for (method, sets, sparsity) in cases {
        let args = [
            "--model",
            "resnet8",
            "--width",
            "0.25",
            "--epochs",
            "1",
            "--train-limit",
            "300",
            "--test-limit",
            "100",
            "--batch-size",
            "30",
        ];
        let (dir, _, extra) = train(method, &args, sets);
        let got: f64 = get(&extra, "sparsity").parse().unwrap();
        assert!((got - sparsity).abs() < 1e-3, "{method}: sparsity {got}, asked {sparsity}");
        let basis = get(&extra, "filter basis");
        let want_init = if sets.contains(&"basis=random") { "random" } else { "dct" };
        assert!(basis.starts_with(want_init) && basis.ends_with("trained"), "{method}: {basis:?}");
        let ckpt = std::fs::read(dir.join("last.safetensors")).unwrap();
        let header_len = u64::from_le_bytes(ckpt[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8_lossy(&ckpt[8..8 + header_len]);
        assert!(header.contains("conv1.weight_basis"), "{method}: no basis in the checkpoint");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
