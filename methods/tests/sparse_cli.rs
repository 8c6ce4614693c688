//! `train --method NAME` for the ten pruning and freezing methods on the embedded Fashion-MNIST
//! (an MLP, one quick epoch each): each runs, reports its sparsity and compact checkpoint size,
//! and keeps the density it was asked for.

use std::process::Command;

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
        let dir = std::env::temp_dir().join(format!("lamina-sparse-cli-{}-{method}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut args: Vec<String> = ["--method", method, "--model", "mlp", "--epochs", "1", "--train-limit", "600"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--test-limit", "200", "--batch-size", "50", "--quiet", "--out"].iter().map(|s| s.to_string()));
        args.push(dir.to_str().unwrap().to_string());
        for s in *sets {
            args.extend(["--set".to_string(), s.to_string()]);
        }
        let o = Command::new(env!("CARGO_BIN_EXE_train")).args(&args).env_remove("LAMINA_DATA").output().unwrap();
        assert!(o.status.success(), "{method}: {}", String::from_utf8_lossy(&o.stderr));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        let extra: Vec<(String, String)> = serde_json::from_value(summary["extra"].clone()).unwrap();
        let get = |k: &str| extra.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
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
