//! CNN MoD's wall-time speed-ups, in one run: inference and training-step time of ResNet50,
//! ResNet50-MoD and ResNet75-MoD (`c = 64`, top-k selection), at 224x224 (ImageNet stem, 1000
//! classes) and at CIFAR size (32x32, CIFAR stem, 10 classes), batch 1 and 32, on random
//! inputs. The paper's CPU speed-ups over ResNet50 at 224: x1.48 (ResNet50-MoD) and x1.25
//! (ResNet75-MoD); on CIFAR-10, ResNet50-MoD x1.44.
//!
//! Each configuration times its three models in interleaved rounds (one pass of each per round,
//! after a warm-up pass each), so load that drifts affects all alike, and prints per model the
//! median, the range and the speed-up over ResNet50's median. Inference runs in eval mode
//! without recording a graph; a training step is forward, cross-entropy, backward and an SGD
//! step (momentum 0.9, weight decay 5e-4). `methods/results/mod-speed/torch_mod_speed.py`
//! times the same models, built as the paper describes them, in PyTorch, with the same table.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo bench -p methods --bench mod_speed
//! ```
//!
//! Last, the small protocol's pair (`compare --preset small`: ResNet-18 at width 0.25, CIFAR
//! stem, and its MoD version with the width's `c` = 16), inference and training step at batch
//! 128 (`MOD_SMALL=0` skips it): the clean step-time ratio beside the `compare` table, whose
//! runs trained at different times.
//!
//! `MOD_ROUNDS` (default 5), `MOD_SIZES` (comma list of 224 and 32, default both), `MOD_BATCHES`
//! (default `1,32`), `MOD_PASSES` (`infer`, `train`, default both). With `MOD_PROFILE` set, one
//! more inference pass of each model per configuration runs under the op profiler and its ten
//! most expensive ops and convolution algorithms are printed (where the time of each model goes).

// The shared step timing; this benchmark does not use its 32x32 batch and table helpers.
#[allow(dead_code)]
mod common;

use std::time::Instant;

use autograd::{no_grad, Tensor};
use common::Variant;
use layers::models::resnet::Stem;
use layers::models::{build_with, ModelOptions};
use layers::{Mode, Module};
use methods::cnn_mod::{build_mod, resnet_mod, Selection, C_RESNET};

fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().to_string()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// ResNet50, ResNet50-MoD and ResNet75-MoD for inputs of `size` (224: ImageNet stem and 1000
/// classes; otherwise the CIFAR stem and 10 classes).
fn models(size: usize) -> Vec<(String, Box<dyn Module>)> {
    let (stem, classes, name) =
        if size == 224 { (Stem::ImageNet, 1000, "resnet50") } else { (Stem::Cifar, 10, "resnet50-cifar") };
    let opts = ModelOptions::new(classes, 3, 0);
    let mut v: Vec<(String, Box<dyn Module>)> = vec![(name.into(), build_with(name, &opts).unwrap())];
    for depth in [50, 75] {
        v.push((
            format!("resnet{depth}-mod"),
            Box::new(resnet_mod(depth, stem, &opts, C_RESNET, Selection::TopK).unwrap()),
        ));
    }
    v
}

/// Prints the table of one configuration: median, range, speed-up over the first row.
fn table(title: &str, rows: &[(String, Vec<f64>)]) {
    let base = median(rows[0].1.clone());
    println!("\n{title}: median of {} interleaved rounds", rows[0].1.len());
    println!("| model | ms | min | max | speed-up vs {} |", rows[0].0);
    println!("|---|---:|---:|---:|---:|");
    for (name, t) in rows {
        let m = median(t.clone());
        let (lo, hi) = t.iter().fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        println!("| {name} | {:.1} | {:.1} | {:.1} | x{:.2} |", m * 1e3, lo * 1e3, hi * 1e3, base / m);
    }
}

/// Times `models` on `x` (inference) and `(x, y)` (training steps) as `passes` asks, one table
/// each, the first model the reference.
fn configuration(
    models: &dyn Fn() -> Vec<(String, Box<dyn Module>)>,
    what: &str,
    x: &Tensor,
    y: &Tensor,
    rounds: usize,
    passes: &[String],
) {
    if passes.iter().any(|p| p == "infer") {
        let nets = models();
        let mut times = vec![Vec::new(); nets.len()];
        for round in 0..=rounds {
            for (i, (_, net)) in nets.iter().enumerate() {
                let t = Instant::now();
                let out = no_grad(|| net.forward(x, Mode::Eval)).unwrap();
                std::hint::black_box(out);
                if round > 0 {
                    times[i].push(t.elapsed().as_secs_f64());
                }
            }
        }
        let rows: Vec<_> = nets.iter().map(|(n, _)| n.clone()).zip(times).collect();
        table(&format!("inference, {what}"), &rows);
        if std::env::var_os("MOD_PROFILE").is_some() {
            for (name, net) in &nets {
                let (_, report) = autograd::profile::measure(|| no_grad(|| net.forward(x, Mode::Eval)));
                print!("{}", report.summary(name, 10));
            }
        }
    }
    if passes.iter().any(|p| p == "train") {
        let mut variants: Vec<Variant> = models().into_iter().map(|(n, m)| Variant::new(n, m)).collect();
        let times = common::interleaved(&mut variants, x, y, rounds);
        let rows: Vec<_> = variants.iter().map(|v| v.name.clone()).zip(times).collect();
        table(&format!("training step, {what}"), &rows);
    }
}

/// The small protocol's ResNet-18/0.25 and its MoD version.
fn small_protocol() -> Vec<(String, Box<dyn Module>)> {
    let opts = ModelOptions::new(10, 3, 0).width(0.25);
    vec![
        ("resnet18-cifar/0.25".into(), build_with("resnet18-cifar", &opts).unwrap()),
        ("resnet18-mod/0.25".into(), build_mod("resnet18-cifar", None, &opts, None, Selection::TopK).unwrap()),
    ]
}

fn main() {
    let rounds = common::rounds("MOD_ROUNDS", 5);
    let sizes: Vec<usize> =
        list("MOD_SIZES", "224,32").iter().map(|s| s.parse().expect("MOD_SIZES: 224 or 32")).collect();
    let batches: Vec<usize> =
        list("MOD_BATCHES", "1,32").iter().map(|s| s.parse().expect("MOD_BATCHES: integers")).collect();
    let passes = list("MOD_PASSES", "infer,train");
    println!("mod_speed: {} threads, {rounds} rounds", rayon::current_num_threads());
    for &size in &sizes {
        for &batch in &batches {
            let classes = if size == 224 { 1000 } else { 10 };
            let x = Tensor::randn(&[batch, 3, size, size], 1).unwrap();
            let y = Tensor::from_vec((0..batch as i64).map(|i| i % classes as i64).collect(), &[batch]).unwrap();
            configuration(&|| models(size), &format!("{size}x{size}, batch {batch}"), &x, &y, rounds, &passes);
        }
    }
    if std::env::var("MOD_SMALL").map_or(true, |v| v != "0") {
        let (x, y) = common::batch(128);
        configuration(&small_protocol, "small protocol (32x32), batch 128", &x, &y, rounds, &passes);
    }
}
