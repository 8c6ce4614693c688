//! `train --method ip-*` for the seven interspace-pruning entries on the embedded Fashion-MNIST
//! (ResNet-8 at width 0.25, one quick epoch each): each runs with a trained DCT filter basis on
//! its 3x3 convolutions, keeps the sparsity it was asked for over the coefficients, and stores
//! the bases in its checkpoints.

use std::process::Command;

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
        let dir = std::env::temp_dir().join(format!("lamina-ip-cli-{}-{method}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut args: Vec<String> =
            ["--method", method, "--model", "resnet8", "--width", "0.25", "--epochs", "1", "--train-limit", "300"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(["--test-limit", "100", "--batch-size", "30", "--quiet", "--out"].iter().map(|s| s.to_string()));
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
        let basis = get("filter basis");
        let want_init = if sets.contains(&"basis=random") { "random" } else { "dct" };
        assert!(basis.starts_with(want_init) && basis.ends_with("trained"), "{method}: {basis:?}");
        let ckpt = std::fs::read(dir.join("last.safetensors")).unwrap();
        let header_len = u64::from_le_bytes(ckpt[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8_lossy(&ckpt[8..8 + header_len]);
        assert!(header.contains("conv1.weight_basis"), "{method}: no basis in the checkpoint");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
