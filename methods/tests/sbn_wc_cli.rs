//! `train --method sbn | 2bn | wc | wc-learned` end to end on the embedded Fashion-MNIST: a
//! short run of each writes its outputs, the weight compander's folded inference form is
//! exported and `--eval-only` rebuilds the companded model from `config.json` and reports the
//! same test accuracy.

use std::path::PathBuf;
use std::process::{Command, Output};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-sbn-wc-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train")).args(args).env_remove("LAMINA_DATA").output().expect("the binary runs")
}

fn summary(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn each_method_trains_from_the_command_line() {
    for (method, set) in
        [("sbn", "stages=2,3"), ("2bn", "shortcuts=false"), ("wc", "compander=arsinh"), ("wc-learned", "b=0.8")]
    {
        let dir = out_dir(method);
        let d = dir.to_str().unwrap();
        let args = [
            "--method",
            method,
            "--set",
            set,
            "--epochs",
            "1",
            "--train-limit",
            "300",
            "--test-limit",
            "200",
            "--batch-size",
            "50",
            "--quiet",
            "--out",
            d,
        ];
        let o = run(&args);
        assert!(o.status.success(), "{method}: {}", String::from_utf8_lossy(&o.stderr));
        let s = summary(&dir);
        assert!(s["test"]["acc"].as_f64().unwrap() > 0.1, "{method}: {s}");
        let wc = method.starts_with("wc");
        assert_eq!(dir.join("inference.safetensors").is_file(), wc, "{method}: only WC has an inference form");
        let e = run(&["--eval-only", dir.join("best.safetensors").to_str().unwrap(), "--quiet"]);
        assert!(e.status.success(), "{method}: {}", String::from_utf8_lossy(&e.stderr));
        let stdout = String::from_utf8_lossy(&e.stdout);
        let acc = format!("{:.2}", 100.0 * s["test"]["acc"].as_f64().unwrap());
        assert!(stdout.contains(&acc), "{method}: --eval-only reports {stdout}, the run {acc}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
