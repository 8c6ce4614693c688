//! Mutation fuzzing of the safetensors checkpoint loader a user feeds files to (`--init-from`,
//! `--eval-only`, `--resume`): valid files (a state dict of every dtype with metadata, a training
//! checkpoint with optimizer state and JSON metadata, a convolution with batch norm) with a few
//! random edits go through [`parse_tensors`] and, when accepted, into a module with
//! [`load_state_dict`] and through the checkpoint's JSON metadata. Nothing may panic.
//!
//! The suite runs a short smoke pass; the full run is ignored by default:
//!
//! ```text
//! LAMINA_FUZZ_CASES=1000000 nice -n 19 cargo test --release -p layers --test fuzz_safetensors -- --ignored --nocapture
//! ```

#[path = "../../datasets/tests/common/mutate.rs"]
mod mutate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autograd::Tensor;
use layers::checkpoint::{save_checkpoint, TrainingState};
use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::state_dict::{load_state_dict, parse_tensors, save_tensors, Strictness};
use layers::{BatchNorm2d, Conv2d, Conv2dOptions, Linear, Module, ModuleExt, Sequential};
use mutate::{cases, fuzz};

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-fuzz-st-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn model() -> Sequential {
    Sequential::new().push(Conv2d::new(1, 2, 3, Conv2dOptions::default()).unwrap()).push(BatchNorm2d::new(2))
}

/// The valid files the inputs start from.
fn seeds() -> Vec<Vec<u8>> {
    let dir = tmp();
    let mut out = Vec::new();
    let every_dtype: Vec<(String, Tensor)> = vec![
        ("f32".into(), Tensor::from_vec(vec![1.5f32, -2.0, 3.0], &[3]).unwrap()),
        ("f64".into(), Tensor::from_vec(vec![0.25f64; 4], &[2, 2]).unwrap()),
        ("i64".into(), Tensor::from_vec(vec![7i64, -1], &[2]).unwrap()),
        ("u8".into(), Tensor::from_vec(vec![1u8, 2, 3, 4, 5, 6], &[2, 3]).unwrap()),
        ("i8".into(), Tensor::from_vec(vec![-3i8], &[1]).unwrap()),
        ("i32".into(), Tensor::from_vec(vec![9i32, 8], &[1, 2]).unwrap()),
        ("u32".into(), Tensor::from_vec(vec![5u32], &[]).unwrap()),
    ];
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let path = dir.join("dtypes.safetensors");
    save_tensors(&path, &every_dtype, &meta).unwrap();
    out.push(std::fs::read(&path).unwrap());
    // A training checkpoint: weights, SGD momentum, metadata with JSON.
    let fc = Linear::new(3, 2, true);
    let mut opt = Sgd::new(vec![ParamGroup::new(fc.named_parameters())], SgdOptions::new(0.1).momentum(0.9)).unwrap();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[1, 3]).unwrap();
    fc.forward(&x, layers::Mode::Train).unwrap().sum_all().unwrap().backward().unwrap();
    opt.step().unwrap();
    let state = TrainingState { epoch: 2, step: 40, user: serde_json::json!({"best": {"epoch": 1, "val_acc": 0.5}}) };
    let path = dir.join("ckpt.safetensors");
    save_checkpoint(&path, &fc, Some(&opt), None, &state).unwrap();
    out.push(std::fs::read(&path).unwrap());
    let path = dir.join("conv_bn.safetensors");
    save_tensors(&path, &model().state_dict(), &HashMap::new()).unwrap();
    out.push(std::fs::read(&path).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
    out
}

fn check(bytes: &[u8], targets: &[Box<dyn Module>]) {
    let Ok(file) = parse_tensors(bytes, Path::new("fuzz.safetensors")) else { return };
    for (_, t) in &file.tensors {
        let n: usize = t.shape().iter().product();
        assert_eq!(t.numel(), n);
    }
    if let Some(user) = file.metadata.get("user") {
        let _ = serde_json::from_str::<serde_json::Value>(user);
    }
    for m in targets {
        let _ = load_state_dict(m.as_ref(), &file.tensors, Strictness::Lenient);
    }
}

fn run(n: u32) {
    let seeds = seeds();
    let targets: Vec<Box<dyn Module>> = vec![Box::new(Linear::new(3, 2, true)), Box::new(model())];
    let ran = fuzz(n, &seeds, |_, input| check(input, &targets));
    println!("safetensors loader: {ran} mutated inputs, no failure");
}

#[test]
fn mutated_checkpoints_never_crash_the_loader_smoke() {
    run(300);
}

#[test]
#[ignore = "long: LAMINA_FUZZ_CASES inputs (default 100000)"]
fn fuzz_safetensors_loader() {
    run(cases(100_000));
}
