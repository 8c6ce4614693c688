//! The registry entries through the trainer on tiny runs of ResNet-8 on the embedded
//! Fashion-MNIST: placements of every combination, DropBlock's schedule across a resume, the
//! block-removal evaluation, the paper's `(M, P)` choices, option errors.

use std::path::PathBuf;
use std::sync::Arc;

use autograd::{Device, Tensor};
use layers::state_dict::load_tensors;
use layers::{models, DropBlock2d, Mode, Module, ModuleExt};

use crate::config::TrainConfig;
use crate::hparams::Hparams;
use crate::registry::{find, Method, MethodSpec, RunInfo};
use crate::sr::{evaluate_without_block, paper_choice, RegularizerKind, SrMethod, SrOptions};
use crate::trainer::{train_with, RunOptions};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-sr-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// One quick epoch of ResNet-8 on 300 embedded images (5 steps of 50 after the validation split).
fn config(spec: &MethodSpec, sets: &[&str]) -> TrainConfig {
    let mut cfg = TrainConfig::from_defaults(spec);
    let mut h = Hparams::from_values(spec.name, spec.hparams, &cfg.hparams).unwrap();
    for s in sets {
        h.set(s).unwrap();
    }
    cfg.hparams = h.values().clone();
    cfg.epochs = 1;
    cfg.batch_size = 50;
    cfg.train_limit = Some(300);
    cfg.test_limit = Some(200);
    cfg
}

fn quiet() -> RunOptions {
    RunOptions { quiet: true, ..RunOptions::default() }
}

fn run_info(model: &str, classes: usize, input: [usize; 3]) -> RunInfo {
    RunInfo {
        model: model.into(),
        width: 1.0,
        dataset: "test".into(),
        num_classes: classes,
        input_shape: input,
        epochs: 2,
        steps_per_epoch: 10,
        seed: 0,
        device: Device::Cpu,
    }
}

/// The method `name` with `sets`, prepared on a fresh `model`.
fn prepared(name: &str, sets: &[&str], model: &str, input: [usize; 3]) -> (Box<dyn Module>, SrMethod) {
    let spec = find(name).unwrap();
    let mut h = spec.default_hparams();
    for s in sets {
        h.set(s).unwrap();
    }
    let kind = match name {
        "dropblock" => RegularizerKind::DropBlock,
        "se" => RegularizerKind::Se,
        "cbam" => RegularizerKind::Cbam,
        _ => RegularizerKind::None,
    };
    let mut m = SrMethod::new(SrOptions::parse(&h, kind, name == "sr").unwrap());
    let run = run_info(model, 10, input);
    let mut net = models::build(model, 10, input[0], 0).unwrap();
    m.prepare(&mut net, &run).unwrap();
    (net, m)
}

/// An entry, its `--set`s, the first modules it inserts, and the SR block's path.
type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], Option<&'a str>);

#[test]
fn every_combination_places_its_modules() {
    let cases: &[Case] = &[
        ("sr", &[], &[], Some("layer4.sr")),
        ("sr", &["regularizer=d"], &["fc.dropout"], Some("layer3.sr")),
        ("sr", &["regularizer=d2d"], &["layer3.d2d", "layer4.d2d"], Some("layer3.sr")),
        ("sr", &["regularizer=d2d", "block=off"], &["layer3.d2d", "layer4.d2d"], None),
        ("sr", &["regularizer=db"], &["layer3.dropblock", "layer4.dropblock"], Some("layer4.sr")),
        ("sr", &["regularizer=se", "stage=2", "p=3"], &["layer1.0.bn2.se"], Some("layer2.sr")),
        ("sr", &["regularizer=cbam"], &["layer1.0.bn2.cbam"], Some("layer4.sr")),
        ("dropblock", &["stages=4"], &["layer4.dropblock"], None),
        ("se", &[], &["layer1.0.bn2.se"], None),
        ("cbam", &["reduction=4"], &["layer1.0.bn2.cbam"], None),
    ];
    for &(name, sets, first, block) in cases {
        let (net, m) = prepared(name, sets, "resnet18-cifar", [3, 32, 32]);
        let s = &m.structure;
        assert_eq!(&s.inserted[..first.len()], first, "{name} {sets:?}");
        assert_eq!(m.block_path().as_deref(), block, "{name} {sets:?}");
        if let Some(path) = block {
            assert_eq!(net.get_module(path).unwrap().type_name(), "SqueezeRemember");
        }
        let x = Tensor::randn(&[2, 3, 32, 32], 0).unwrap();
        let y = net.forward(&x, Mode::Train).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        assert!(net.trainable_parameters().iter().all(|p| p.grad().is_some()), "{name} {sets:?}");
    }
    // The paper's (M, P) for ResNet-18 CIFAR-10 with each regularizer, U = 8.
    let (_, m) = prepared("sr", &["regularizer=d2d"], "resnet18-cifar", [3, 32, 32]);
    let (set, _, shape, _) = m.structure.block.unwrap();
    assert_eq!((set.stage, set.blocks, set.hidden, shape), (3, 10, 8, [256, 8, 8]));
    // VGG has no residual branches for SE.
    let spec = find("se").unwrap();
    let mut se = SrMethod::new(SrOptions::parse(&spec.default_hparams(), RegularizerKind::Se, false).unwrap());
    let mut vgg = models::build("vgg11-bn", 10, 3, 0).unwrap();
    assert!(se.prepare(&mut vgg, &run_info("vgg11-bn", 10, [3, 32, 32])).is_err());
}

#[test]
fn the_paper_s_choices_and_fallbacks() {
    use RegularizerKind::*;
    let c = |m: &str, k: usize, side: usize, r: RegularizerKind| {
        let c = paper_choice(m, k, side, r, 4);
        (c.stage, c.blocks, c.hidden)
    };
    assert_eq!(c("resnet18-cifar", 10, 32, None), (4, 4, 8));
    assert_eq!(c("resnet18-cifar", 10, 32, Dropout), (3, 6, 8));
    assert_eq!(c("resnet18-cifar", 10, 32, DropBlock), (4, 6, 8));
    assert_eq!(c("resnet18-cifar", 100, 32, Dropout2d), (4, 12, 8));
    assert_eq!(c("resnet34-cifar", 100, 32, DropBlock), (3, 2, 8));
    assert_eq!(c("vgg19-bn", 10, 32, None), (2, 12, 8));
    assert_eq!(c("resnet50", 1000, 224, DropBlock), (3, 8, 16));
    assert_eq!(c("resnet50", 1000, 224, Dropout), (3, 2, 16));
    // SE / CBAM: the model's SR-alone values; unknown models: M = 3, P = 4.
    assert_eq!(c("resnet34-cifar", 10, 32, Se), (3, 8, 8));
    assert_eq!(c("vgg16-bn", 10, 32, Dropout2d), (4, 8, 8));
    assert_eq!(c("resnet8", 10, 28, None), (3, 4, 8));
    assert_eq!(paper_choice("lenet5", 10, 28, None, 2).stage, 2);
    assert!(paper_choice("mobilenetv2", 1000, 224, None, 5).source.starts_with("fallback"));
}

#[test]
fn bad_options_are_errors_that_name_them() {
    let spec = find("sr").unwrap();
    for (set, word) in [
        ("block=maybe", "block"),
        ("ablate=yes", "ablate"),
        ("regularizer=l2", "regularizer"),
        ("act=swish", "activation"),
        ("p=0", "at least 1"),
        ("block_size=0", "at least 1"),
        ("keep_prob=0", "keep probability"),
        ("drop_p=2", "probability"),
    ] {
        let mut h = spec.default_hparams();
        h.set(set).unwrap();
        let e = SrOptions::parse(&h, RegularizerKind::None, true).unwrap_err().to_string();
        assert!(e.contains(word), "{set}: {e}");
    }
    let mut h = spec.default_hparams();
    h.set("ablate=remove").unwrap();
    h.set("block=off").unwrap();
    assert!(SrOptions::parse(&h, RegularizerKind::None, true).is_err());
}

#[test]
fn sr_trains_its_memory_and_removing_the_block_changes_the_predictions() {
    let spec = find("sr").unwrap();
    let dir = out_dir("train");
    let s = train_with(spec, &config(spec, &[]), &dir, false, &quiet()).unwrap();
    let line = |k: &str| s.extra.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert!(line("sr block").starts_with("layer3.sr on 64x7x7 maps: M 3, P 4, U 8, relu"), "{:?}", s.extra);
    // 64 + 49·8 + 8·4 + 4·64·49 = 13,032 by the paper's formula, plus 1 + 8 + 4 biases.
    assert!(line("sr overhead").starts_with("+13,045 parameters"), "{}", line("sr overhead"));
    assert!(line("sr overhead").contains("+13,032 ("), "{}", line("sr overhead"));
    let norms: Vec<f64> = line("sr memory norms").split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!(norms.len(), 4);
    assert!(norms.iter().all(|&n| n > 0.0), "the memory learned: {norms:?}");
    let file = load_tensors(&dir.join("best.safetensors")).unwrap();
    assert_eq!(file.get("layer3.sr.memory").unwrap().shape(), &[4, 64, 7, 7]);
    // The removal evaluation: the same weights with the block are the run's test result.
    let a = evaluate_without_block(&dir).unwrap();
    assert_eq!(a.with_block.acc, s.test.acc);
    assert!((a.with_block.loss - s.test.loss).abs() < 1e-9);
    assert_ne!(a.without_block.loss, a.with_block.loss);
    // Training with ablate=remove is refused.
    let e = train_with(spec, &config(spec, &["ablate=remove"]), &out_dir("ablate"), false, &quiet())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--eval-only"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dropblock_s_schedule_runs_per_step_and_resumes_bit_identically() {
    let spec = find("dropblock").unwrap();
    let mut cfg = config(spec, &[]);
    cfg.epochs = 3;
    let whole = out_dir("db-whole");
    let s = train_with(spec, &cfg, &whole, false, &quiet()).unwrap();
    let line = s.extra.iter().find(|(n, _)| n == "regularizer").unwrap().1.clone();
    // 270 training images in batches of 50: 6 steps per epoch, 18 in all; ResNet-8 has stage 3.
    assert_eq!(line, "db block 3 keep 0.9 (linear from 1 over 18 steps) at 1 module(s): layer3.dropblock");
    let file = load_tensors(&whole.join("last.safetensors")).unwrap();
    let reference: Vec<(String, Vec<f32>)> = file
        .tensors
        .iter()
        .filter(|(n, t)| !n.starts_with("optim.") && t.dtype() == autograd::DType::F32)
        .map(|(n, t)| (n.clone(), t.to_vec::<f32>().unwrap()))
        .collect();
    // A run killed after its first epoch and resumed.
    let cut = out_dir("db-cut");
    let stop: crate::trainer::EpochCallback = Arc::new(|done, _| {
        if done == 1 {
            panic!("stopped on purpose after epoch 1");
        }
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_with(spec, &cfg, &cut, false, &RunOptions { quiet: true, on_epoch: Some(stop), ..RunOptions::default() })
    }));
    assert!(r.is_err());
    let resumed = train_with(spec, &cfg, &cut, true, &quiet()).unwrap();
    let file = load_tensors(&cut.join("last.safetensors")).unwrap();
    for (name, want) in &reference {
        assert_eq!(&file.get(name).unwrap().to_vec::<f32>().unwrap(), want, "{name}");
    }
    assert_eq!(resumed.test, s.test);
    // The schedule itself: keep 1 at step 0, the target at the end.
    let (net, mut m) = prepared("dropblock", &[], "resnet8", [1, 28, 28]);
    let db = || net.get_module("layer3.dropblock").unwrap().downcast_ref::<DropBlock2d>().unwrap().keep_prob();
    assert_eq!(db(), 1.0);
    m.load_state(&crate::registry::MethodState { meta: serde_json::json!({ "step": 10 }), tensors: vec![] }).unwrap();
    let mut net = net;
    m.restore_phase(&mut net, &run_info("resnet8", 10, [1, 28, 28]), 0).unwrap();
    let keep = net.get_module("layer3.dropblock").unwrap().downcast_ref::<DropBlock2d>().unwrap().keep_prob();
    assert!((keep - 0.95).abs() < 1e-12, "step 10 of 20: {keep}");
    std::fs::remove_dir_all(whole).unwrap();
    std::fs::remove_dir_all(cut).unwrap();
}
