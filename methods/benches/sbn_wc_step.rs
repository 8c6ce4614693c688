//! Training-step time of ResNet-18 (CIFAR stem, width 1, 32x32 inputs, 10 classes) with the SBN
//! paper's and the WC paper's methods against the plain step, from one run: `baseline`, `sbn`
//! (SBN34, the fused op), `sbn-fft` (SBN34 computed literally with `rfft2`/`irfft2`, the form the
//! fused op replaces), `2bn` (the control), `wc` (fixed `a, b`, decay on `w` through the loss) and
//! `wc-learned`. Each variant runs through its registry entry's hooks exactly as the trainer
//! calls them per step (forward, task loss, `Method::loss`, backward, `after_backward`, SGD
//! step with the method's parameter groups, `after_step`).
//!
//! Variants are timed in interleaved rounds (one step of each per round, after a warm-up step
//! each) and the median per variant is reported with its multiplier over the baseline's, so
//! load that drifts during the run affects all alike, with the minimum (the least disturbed
//! step). Then one profiled step of each method lists the time of the ops it adds.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench sbn_wc_step` (`SBN_WC_BATCH`, default
//! 128, the papers' batch; `SBN_WC_ROUNDS`, default 5).

use std::time::Instant;

use autograd::profile::{self, Pass};
use autograd::{Device, Tensor};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::optim::{split_weight_decay, Optimizer, Sgd, SgdOptions};
use layers::{models, Mode, Module, ModuleExt};
use methods::registry::{self, Method, Progress, RunInfo, StepLoss};

const MODEL: &str = "resnet18-cifar";

struct Variant {
    name: &'static str,
    model: Box<dyn Module>,
    method: Box<dyn Method>,
    opt: Box<dyn Optimizer>,
    times: Vec<f64>,
}

fn variant(name: &'static str, method: &str, set: &[&str], batch: usize) -> Variant {
    let spec = registry::find(method).unwrap();
    let mut h = spec.default_hparams();
    for s in set {
        h.set(s).unwrap();
    }
    let run = RunInfo {
        model: MODEL.into(),
        width: 1.0,
        dataset: "cifar10".into(),
        num_classes: 10,
        input_shape: [3, 32, 32],
        epochs: 1,
        steps_per_epoch: 50_000 / batch,
        seed: 0,
        device: Device::Cpu,
    };
    let mut m = (spec.build)(&h, &run).unwrap();
    let mut model = models::build(MODEL, 10, 3, 0).unwrap();
    m.prepare(&mut model, &run).unwrap();
    let params: Vec<_> = model.named_parameters().into_iter().filter(|(_, p)| p.is_trainable()).collect();
    let at = Progress { phase: 0, epoch: 0, phase_epoch: 0, step: 0 };
    let groups = m.configure_optimizer(model.as_ref(), split_weight_decay(params, 5e-4), at).unwrap();
    let opt = Box::new(Sgd::new(groups, SgdOptions::new(0.01).momentum(0.9)).unwrap());
    Variant { name, model, method: m, opt, times: vec![] }
}

/// One training step as the trainer runs it; returns its wall time in seconds.
fn step(v: &mut Variant, x: &Tensor, y: &Tensor) -> f64 {
    let at = Progress { phase: 0, epoch: 0, phase_epoch: 0, step: 1 };
    let t = Instant::now();
    let logits = v.model.forward(x, Mode::Train).unwrap();
    let task = cross_entropy(&logits, y, CrossEntropyOptions::default()).unwrap();
    let loss = v
        .method
        .loss(StepLoss { model: v.model.as_ref(), images: x, labels: y, logits: &logits, task_loss: task, at })
        .unwrap();
    loss.backward().unwrap();
    drop(loss);
    v.method.after_backward(v.model.as_ref(), v.opt.as_mut(), at).unwrap();
    v.opt.step().unwrap();
    v.method.after_step(&mut v.model, v.opt.as_mut(), at).unwrap();
    v.model.zero_grad();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() {
    let batch = env("SBN_WC_BATCH", 128);
    let rounds = env("SBN_WC_ROUNDS", 5);
    let x = Tensor::randn(&[batch, 3, 32, 32], 1).unwrap();
    let y = Tensor::from_vec((0..batch as i64).map(|i| i % 10).collect(), &[batch]).unwrap();
    layers::rng::manual_seed(0);
    let mut variants = vec![
        variant("baseline", "baseline", &[], batch),
        variant("sbn", "sbn", &["stages=3,4"], batch),
        variant("sbn-fft", "sbn", &["stages=3,4", "implementation=fft"], batch),
        variant("2bn", "2bn", &["stages=3,4"], batch),
        variant("wc", "wc", &["a=1.0", "b=0.6"], batch),
        variant("wc-learned", "wc-learned", &[], batch),
    ];
    for v in &mut variants {
        step(v, &x, &y);
    }
    for r in 0..rounds {
        for v in &mut variants {
            let t = step(v, &x, &y);
            v.times.push(t);
        }
        eprintln!("round {}/{rounds} done", r + 1);
    }
    let base = median(variants[0].times.clone());
    let base_min = variants[0].times.iter().cloned().fold(f64::MAX, f64::min);
    println!(
        "\nResNet-18 (CIFAR stem), batch {batch}, 32x32, {rounds} rounds: median and minimum step time, multipliers"
    );
    for v in &variants {
        let m = median(v.times.clone());
        let (lo, hi) = v.times.iter().fold((f64::MAX, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
        println!(
            "{:<11} median {:>8.1} ms x{:.3}   min {:>8.1} ms x{:.3}   max {:>8.1} ms",
            v.name,
            m * 1e3,
            m / base,
            lo * 1e3,
            lo / base_min,
            hi * 1e3
        );
    }
    // Where a step's extra time goes: the ops each method adds, from one profiled step of each.
    let sbn_ops: &[&str] = &[
        "spectral_batch_norm",
        "rfft2",
        "irfft2",
        "mean",
        "sub",
        "square",
        "sum",
        "div",
        "sqrt",
        "add_scalar",
        "mul",
        "add",
        "stack",
        "reshape",
        "select",
        "narrow",
    ];
    let wc_ops: &[&str] = &["atan", "mul_scalar", "mul", "div", "square", "sum_all", "add", "grad_accumulate"];
    for v in variants.iter_mut().filter(|v| v.name != "baseline" && v.name != "2bn") {
        let ops = if v.name.starts_with("sbn") { sbn_ops } else { wc_ops };
        let (_, report) = profile::measure(|| step(v, &x, &y));
        println!(
            "\n{}: one profiled step, {:.1} ms; the ops the method runs (shared ones include the rest of the net):",
            v.name,
            report.elapsed.as_secs_f64() * 1e3
        );
        for o in report.ops.iter().filter(|o| ops.contains(&o.name) && o.pass != Pass::Scope) {
            println!(
                "  {:<22} {:<3} {:>5} calls {:>9.1} ms",
                o.name,
                o.pass.short_name(),
                o.calls,
                o.time.as_secs_f64() * 1e3
            );
        }
    }
}
