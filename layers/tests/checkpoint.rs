//! Checkpoints: a run interrupted after K steps, saved, and resumed into a freshly built model,
//! optimizer and scheduler ends bit-identical to the uninterrupted run (weights, BatchNorm
//! statistics, dropout masks through the seed generator, momentum, schedule); damaged files are
//! errors naming the file.

use std::path::PathBuf;

use autograd::{DType, Tensor};
use layers::checkpoint::{load_checkpoint, save_checkpoint, TrainingState};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::optim::{clip_grad_norm, split_weight_decay, Adam, AdamOptions, Optimizer, Sgd, SgdOptions};
use layers::schedule::{Cosine, Interval, Scheduler, Warmup};
use layers::{BatchNorm2d, Conv2d, Conv2dOptions, Dropout, Flatten, Linear, Mode, Module, ModuleExt, ReLU, Sequential};

const STEPS: u64 = 6;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lamina-ckpt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn net() -> Sequential {
    Sequential::new()
        .push(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1)).unwrap())
        .push(BatchNorm2d::new(4))
        .push(ReLU)
        .push(Dropout::new(0.3).unwrap())
        .push(Flatten::default())
        .push(Linear::new(4 * 6 * 6, 3, true))
}

struct Run {
    model: Sequential,
    opt: Box<dyn Optimizer>,
    sched: Scheduler,
}

fn start(adam: bool) -> Run {
    let model = net();
    let groups = split_weight_decay(model.named_parameters(), 5e-3);
    let mut opt: Box<dyn Optimizer> = if adam {
        Box::new(Adam::new(groups, AdamOptions::adamw(1e-2).amsgrad(true)).unwrap())
    } else {
        Box::new(Sgd::new(groups, SgdOptions::new(0.1).momentum(0.9).nesterov(true)).unwrap())
    };
    let schedule = Warmup::new(2, 0.2, Cosine::new(STEPS as usize, 1e-3));
    let sched = Scheduler::new(Box::new(schedule), Interval::Step, opt.as_mut()).unwrap();
    Run { model, opt, sched }
}

/// One training step on batch number `step` (the data depends on the step, not on any state).
fn train_step(run: &mut Run, step: u64) {
    let x = Tensor::randn(&[8, 1, 6, 6], 1000 + step).unwrap();
    let y = Tensor::from_vec((0..8).map(|i| (i + step as i64) % 3).collect(), &[8]).unwrap();
    let logits = run.model.forward(&x, Mode::Train).unwrap();
    let loss = cross_entropy(&logits, &y, CrossEntropyOptions::default().label_smoothing(0.1)).unwrap();
    loss.backward().unwrap();
    clip_grad_norm(&run.model.parameters(), 1.0).unwrap();
    run.opt.step().unwrap();
    run.opt.zero_grad();
    run.sched.step_batch(run.opt.as_mut()).unwrap();
}

fn bits(model: &Sequential) -> Vec<(String, Vec<u64>)> {
    model
        .state_dict()
        .into_iter()
        .map(|(n, t)| {
            let v = match t.dtype() {
                DType::F32 => t.to_vec::<f32>().unwrap().iter().map(|x| x.to_bits() as u64).collect(),
                DType::I64 => t.to_vec::<i64>().unwrap().iter().map(|&x| x as u64).collect(),
                other => panic!("unexpected dtype {other}"),
            };
            (n, v)
        })
        .collect()
}

#[test]
fn resumed_training_is_bit_identical() {
    let dir = temp_dir("resume");
    for adam in [false, true] {
        layers::rng::manual_seed(7);
        let mut full = start(adam);
        for s in 0..STEPS {
            train_step(&mut full, s);
        }
        let full_rng = layers::rng::state();

        layers::rng::manual_seed(7);
        let mut first = start(adam);
        let k = 3;
        for s in 0..k {
            train_step(&mut first, s);
        }
        let path = dir.join(format!("adam-{adam}.safetensors"));
        let saved = TrainingState { epoch: 1, step: k, user: serde_json::json!({"best_acc": 0.625, "note": "k"}) };
        save_checkpoint(&path, &first.model, Some(first.opt.as_ref()), Some(&first.sched), &saved).unwrap();
        drop(first);

        // A fresh process would start from another seed: the model is initialized differently
        // and the generator is elsewhere until the checkpoint puts it back.
        layers::rng::manual_seed(12345);
        let mut resumed = start(adam);
        assert_ne!(bits(&resumed.model), bits(&full.model));
        let back =
            load_checkpoint(&path, &resumed.model, Some(resumed.opt.as_mut()), Some(&mut resumed.sched)).unwrap();
        assert_eq!(back, saved);
        for s in back.step..STEPS {
            train_step(&mut resumed, s);
        }
        assert_eq!(bits(&resumed.model), bits(&full.model), "adam {adam}: weights and buffers");
        assert_eq!(resumed.opt.lrs(), full.opt.lrs());
        assert_eq!(resumed.sched.t(), full.sched.t());
        assert_eq!(layers::rng::state(), full_rng);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn damaged_checkpoints_are_errors_naming_the_file() {
    let dir = temp_dir("damaged");
    layers::rng::manual_seed(1);
    let mut run = start(false);
    train_step(&mut run, 0);
    let path = dir.join("good.safetensors");
    save_checkpoint(&path, &run.model, Some(run.opt.as_ref()), Some(&run.sched), &TrainingState::default()).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("short", bytes[..5].to_vec()),
        ("garbage", b"this is not a checkpoint at all".to_vec()),
        ("header", {
            let mut b = bytes.clone();
            b[10] = b'{';
            b[11] = b'!';
            b
        }),
    ];
    for (name, data) in cases {
        let p = dir.join(format!("{name}.safetensors"));
        std::fs::write(&p, data).unwrap();
        let e = load_checkpoint(&p, &run.model, Some(run.opt.as_mut()), None).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{name}: {e}");
    }
    let missing = dir.join("missing.safetensors");
    assert!(load_checkpoint(&missing, &run.model, None, None).unwrap_err().to_string().contains("missing.safetensors"));

    // A plain state dict is not a checkpoint; a checkpoint of another model does not load.
    let plain = dir.join("plain.safetensors");
    layers::state_dict::save_module(&run.model, &plain).unwrap();
    let e = load_checkpoint(&plain, &run.model, None, None).unwrap_err().to_string();
    assert!(e.contains("plain.safetensors") && e.contains("not a Lamina checkpoint"), "{e}");
    let other = Sequential::new().push(Linear::new(2, 2, true));
    let e = load_checkpoint(&path, &other, None, None).unwrap_err().to_string();
    assert!(e.contains("good.safetensors") && e.contains("unexpected"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
