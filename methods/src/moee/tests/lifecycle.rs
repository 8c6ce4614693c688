//! `moee` and `moefication` through the trainer on a few generated CIFAR-format images:
//! extract, report, fine-tune, evaluate the inference form, resume and `--eval-only`.

use std::path::{Path, PathBuf};

use crate::config::TrainConfig;
use crate::moee::{MOEE, MOEFICATION};
use crate::registry::MethodSpec;
use crate::trainer::{evaluate_checkpoint_with, train_with, RunOptions};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-moee-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A CIFAR-10 folder: the real one (`$LAMINA_DATA/cifar-10`, else `shared/data/cifar-10`
/// beside the workspace) when present, else generated files of the official size (a class's
/// images are a noisy colour of their own) in `scratch`.
fn cifar(scratch: &Path) -> PathBuf {
    let base = std::env::var_os("LAMINA_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let real = base.join("cifar-10");
    if real.join("test_batch.bin").is_file() {
        return real;
    }
    let mut state = 7u64;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    let files = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"];
    for f in files {
        let mut bytes = Vec::with_capacity(10_000 * 3073);
        for _ in 0..10_000 {
            let c = (next() % 10) as u8;
            bytes.push(c);
            for ch in 0..3u32 {
                let base = (u32::from(c) * 25 + ch * 60) % 200;
                bytes.extend((0..1024).map(|_| (base + next() % 56) as u8));
            }
        }
        std::fs::write(scratch.join(format!("{f}.bin")), bytes).unwrap();
    }
    scratch.to_path_buf()
}

fn config(spec: &MethodSpec, data: &Path, epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig::from_defaults(spec);
    cfg.data_dir = Some(data.to_path_buf());
    cfg.train_limit = Some(200);
    cfg.test_limit = Some(60);
    cfg.val_fraction = 0.2;
    cfg.epochs = epochs;
    cfg.batch_size = 20;
    for (k, v) in [("checkpoint", "none"), ("tokens", "200"), ("images", "40"), ("clustering", "kmeans"), ("k", "3")] {
        cfg.hparams.insert(k.into(), v.into());
    }
    cfg
}

fn line<'a>(extra: &'a [(String, String)], key: &str) -> &'a str {
    extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key:?} in {extra:?}"))
}

#[test]
fn moee_extracts_reports_finetunes_resumes_and_evaluates() {
    let scratch = temp("data");
    let data = cifar(&scratch);
    let out = temp("run");
    let quiet = RunOptions { quiet: true, ..RunOptions::default() };
    let cfg = config(&MOEE, &data, 1);
    let s = train_with(&MOEE, &cfg, &out, false, &quiet).unwrap();
    for key in ["dense test accuracy", "extracted, before fine-tuning", "MACs / image (dense -> extracted)"] {
        assert!(line(&s.extra, key).contains('%'), "{key}");
    }
    assert!(line(&s.extra, "blocks.5.mlp").contains("3 experts"), "{:?}", s.extra);
    let inf = s.inference.expect("the extracted model has an inference form");
    assert_eq!(inf.params, s.trained.params, "the inference form keeps the union's parameters");
    // The structure comes back from the method state: resuming the finished run and
    // evaluating its selected checkpoint give the same test accuracy.
    let again = train_with(&MOEE, &cfg, &out, true, &quiet).unwrap();
    assert_eq!(again.test.acc, s.test.acc);
    let eval = evaluate_checkpoint_with(&MOEE, &out.join("best.safetensors"), &cfg, &quiet).unwrap();
    assert_eq!((eval.test.acc, eval.form), (s.test.acc, "inference form"));
    std::fs::remove_dir_all(out).unwrap();

    // The MoEfication baseline converts the same blocks without training (--epochs 0).
    let out = temp("moefication");
    let mut cfg = config(&MOEFICATION, &data, 0);
    cfg.hparams.insert("experts".into(), "4".into());
    let s = train_with(&MOEFICATION, &cfg, &out, false, &quiet).unwrap();
    assert!(line(&s.extra, "blocks.0.mlp").contains("4 experts of 96..96 neurons"), "{:?}", s.extra);
    assert!(line(&s.extra, "blocks.0.mlp").contains("dot top-"));
    std::fs::remove_dir_all(out).unwrap();
    std::fs::remove_dir_all(scratch).unwrap();
}

#[test]
fn a_model_without_transformer_mlps_is_refused() {
    let mut cfg = TrainConfig::from_defaults(&MOEE);
    cfg.model = "mlp".into();
    cfg.dataset = "fashion-mnist-embedded".into();
    cfg.train_limit = Some(100);
    let e = train_with(&MOEE, &cfg, &temp("refused"), false, &RunOptions { quiet: true, ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("no transformer MLP"), "{e}");
}
