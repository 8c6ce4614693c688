//! The `haste` entry through the trainer: a trained checkpoint compressed with `--epochs 0`,
//! the dense reference (`start=none`), the layers the transform picks, option errors.

use std::path::PathBuf;

use layers::models;

use crate::config::TrainConfig;
use crate::haste::{compress, haste_layers, Centering, HasteConfig};
use crate::hparams::Hparams;
use crate::registry::{find, MethodSpec, Training};
use crate::trainer::{train_with, RunOptions};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-haste-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// ResNet-8 on 300 embedded images, 200 test images.
fn config(spec: &MethodSpec, sets: &[&str], epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig::from_defaults(spec);
    let mut h = Hparams::from_values(spec.name, spec.hparams, &cfg.hparams).unwrap();
    for s in sets {
        h.set(s).unwrap();
    }
    cfg.hparams = h.values().clone();
    cfg.epochs = epochs;
    cfg.batch_size = 50;
    cfg.train_limit = Some(300);
    cfg.test_limit = Some(200);
    cfg
}

fn quiet() -> RunOptions {
    RunOptions { quiet: true, ..RunOptions::default() }
}

fn cfg(hyperplanes: usize, start: Option<usize>, pointwise: bool) -> HasteConfig {
    HasteConfig { hyperplanes, sparsity: None, patch: 0, start, pointwise, centering: Centering::Channels }
}

#[test]
fn a_trained_checkpoint_is_compressed_without_training() {
    let base = out_dir("base");
    let b = train_with(find("baseline").unwrap(), &config(find("baseline").unwrap(), &[], 1), &base, false, &quiet())
        .unwrap();
    let spec = find("haste").unwrap();
    assert_eq!(spec.training, Training::Optional);
    let run = |name: &str, sets: &[&str]| {
        let mut c = config(spec, sets, 0);
        c.init_from = Some(base.join("best.safetensors"));
        let dir = out_dir(name);
        let s = train_with(spec, &c, &dir, false, &quiet()).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        s
    };
    // The dense reference reproduces the baseline's test result and cost.
    let dense = run("dense", &["start=none"]);
    assert_eq!((dense.test.acc, dense.macs), (b.test.acc, b.macs));
    assert!(dense.inference.is_none());
    // One bucket per patch from stage 2 on: far fewer MACs; many hyperplanes: about the dense
    // result, with the hashing overhead on top of the dense MACs.
    let coarse = run("coarse", &["hyperplanes=0"]);
    let fine = run("fine", &["hyperplanes=64"]);
    assert!(coarse.macs < b.macs * 3 / 4, "{} vs {}", coarse.macs, b.macs);
    assert!(fine.macs > b.macs, "{} vs {}", fine.macs, b.macs);
    assert!((fine.test.acc - b.test.acc).abs() <= 0.01, "{} vs {}", fine.test.acc, b.test.acc);
    assert_eq!(fine.trained.macs, b.macs, "the trained model is the dense one");
    let line = fine.extra.iter().find(|(k, _)| k == "haste").unwrap();
    assert!(line.1.contains("L=64") && line.1.contains("layers replaced"), "{line:?}");
    std::fs::remove_dir_all(base).unwrap();
}

#[test]
fn the_transform_picks_the_kxk_convolutions_from_the_start_stage() {
    let mut net = models::build("resnet18-cifar", 10, 3, 0).unwrap();
    let paths = compress(net.as_mut(), &cfg(8, Some(2), false), 0, [3, 32, 32]).unwrap();
    // Stages 2-4 of ResNet-18: 3 x 2 blocks x 2 convolutions; no shortcut 1x1.
    assert_eq!(paths.len(), 12, "{paths:?}");
    assert_eq!(haste_layers(net.as_ref()).len(), 12);
    let mut net = models::build("resnet18-cifar", 10, 3, 0).unwrap();
    let paths = compress(net.as_mut(), &cfg(8, Some(3), true), 0, [3, 32, 32]).unwrap();
    assert_eq!(paths.len(), 8 + 2, "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("shortcut") || p.contains("downsample")), "{paths:?}");
    // Each layer draws its own hyperplanes; the auto sparsity is CIFAR's 2/3.
    let seeds: Vec<u64> = haste_layers(net.as_ref()).iter().map(|(_, h)| h.settings().seed).collect();
    let mut uniq = seeds.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), seeds.len());
    assert!(haste_layers(net.as_ref()).iter().all(|(_, h)| (h.settings().sparsity - 2.0 / 3.0).abs() < 1e-12));
    // VGG: its stages from the max-pools; the first conv (3 channels) never.
    let mut vgg = models::build("vgg11-bn", 10, 3, 0).unwrap();
    let all = compress(vgg.as_mut(), &cfg(8, Some(1), false), 0, [3, 32, 32]).unwrap();
    assert_eq!(all.len(), 7, "{all:?}");
    // Nothing replaced with start=none; a start past the last stage is an error.
    let mut net = models::build("resnet20", 10, 3, 0).unwrap();
    assert!(compress(net.as_mut(), &cfg(8, None, false), 0, [3, 32, 32]).unwrap().is_empty());
    let e = compress(net.as_mut(), &cfg(8, Some(4), false), 0, [3, 32, 32]).unwrap_err().to_string();
    assert!(e.contains("3 stages"), "{e}");
}

#[test]
fn bad_options_are_errors_that_name_them() {
    let spec = find("haste").unwrap();
    for (set, word) in [
        ("hyperplanes=65", "hyperplanes"),
        ("sparsity=1", "sparsity"),
        ("start=0", "start"),
        ("centering=mean", "centering"),
        ("patch=-1", "patch"),
    ] {
        let mut h = spec.default_hparams();
        h.set(set).unwrap();
        let e = HasteConfig::parse(&h).unwrap_err().to_string();
        assert!(e.contains(word), "{set}: {e}");
    }
}
