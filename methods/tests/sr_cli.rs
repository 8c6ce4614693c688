//! `train --method sr|dropblock|se|cbam` end to end on the embedded Fashion-MNIST, and the
//! entries in `--list-methods`.

use std::path::PathBuf;
use std::process::Command;

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-sr-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn train(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_train")).args(args).env_remove("LAMINA_DATA").output().expect("the binary runs")
}

#[test]
fn the_entries_train_on_the_embedded_data() {
    for (method, sets, expect) in [
        ("sr", vec!["--set", "regularizer=d2d"], "layer3.sr on 64x7x7 maps"),
        ("cbam", vec![], "cbam r 16 at 3 module(s)"),
    ] {
        let dir = out_dir(method);
        let mut args = vec!["--method", method, "--epochs", "1", "--train-limit", "300", "--test-limit", "100"];
        args.extend(["--batch-size", "50", "--quiet", "--out", dir.to_str().unwrap()]);
        args.extend(sets);
        let o = train(&args);
        assert!(o.status.success(), "{method}: {}", String::from_utf8_lossy(&o.stderr));
        let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        assert!(summary.contains(expect), "{method}: {summary}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn the_entries_are_listed_with_their_options() {
    let o = train(&["--list-methods"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for word in
        ["sr ", "dropblock ", "se ", "cbam ", "--set regularizer=none", "--set ablate=none", "--set keep_prob=0.9"]
    {
        assert!(text.contains(word), "{word} missing from --list-methods");
    }
}
