//! Training-step time (forward + backward + SGD step) of ResNet-18 (CIFAR stem, batch 64,
//! 32x32 inputs, 10 classes) without spectral dropout and with 1-D SWD, 2-D SWD, 1-D SFD and
//! 2-D SFD placed as the paper does for ResNet-18 on CIFAR-10 (stage 3; 1-D methods after each
//! convolution, 2-D methods before it; `p`, `η` from its tables), as the multiplier over the
//! plain step — the paper's train-time multiplier (TTM) at the level of one step.
//!
//! The variants are timed in interleaved rounds (one step of each per round, after a warm-up
//! step each) and the median per variant is reported, so load that drifts during the run
//! affects all of them alike.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench swd_step` (`SWD_BENCH_ROUNDS`, default 5).

use std::time::Instant;

use autograd::Tensor;
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::{models, Mode, Module, ModuleExt};
use methods::swd::{SpectralKind, SpectralRecipe};

const BATCH: usize = 64;

struct Variant {
    name: &'static str,
    model: Box<dyn Module>,
    opt: Box<dyn Optimizer>,
    times: Vec<f64>,
}

fn variant(name: &'static str, kind: Option<SpectralKind>) -> Variant {
    let mut model = models::build("resnet18-cifar", 10, 3, 0).unwrap();
    if let Some(kind) = kind {
        let recipe = SpectralRecipe::paper_default(kind, "resnet18-cifar", 10);
        let wrapped = recipe.apply(model.as_mut()).unwrap();
        println!(
            "{name:<7} p {} eta {} stage {:?} {} {} convs",
            recipe.p,
            recipe.eta,
            recipe.stages,
            recipe.position.name(),
            wrapped.len()
        );
    }
    let groups = vec![ParamGroup::new(model.named_parameters())];
    let opt = Box::new(Sgd::new(groups, SgdOptions::new(0.01).momentum(0.9).weight_decay(5e-4)).unwrap());
    Variant { name, model, opt, times: vec![] }
}

/// One training step; returns its wall time in seconds.
fn step(v: &mut Variant, x: &Tensor, y: &Tensor) -> f64 {
    let t = Instant::now();
    let logits = v.model.forward(x, Mode::Train).unwrap();
    cross_entropy(&logits, y, CrossEntropyOptions::default()).unwrap().backward().unwrap();
    v.opt.step().unwrap();
    v.opt.zero_grad();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("SWD_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let x = Tensor::randn(&[BATCH, 3, 32, 32], 1).unwrap();
    let y = Tensor::from_vec((0..BATCH as i64).map(|i| i % 10).collect(), &[BATCH]).unwrap();
    layers::rng::manual_seed(0);
    let mut variants = vec![
        variant("none", None),
        variant("1D-SWD", Some(SpectralKind::Swd1d)),
        variant("2D-SWD", Some(SpectralKind::Swd2d)),
        variant("1D-SFD", Some(SpectralKind::Sfd1d)),
        variant("2D-SFD", Some(SpectralKind::Sfd2d)),
    ];
    for v in &mut variants {
        step(v, &x, &y);
    }
    for _ in 0..rounds {
        for v in &mut variants {
            let t = step(v, &x, &y);
            v.times.push(t);
        }
    }
    let base = median(variants[0].times.clone());
    println!("\nResNet-18 (CIFAR stem), batch {BATCH}, 32x32, {rounds} rounds: median step time and multiplier");
    for v in &variants {
        let m = median(v.times.clone());
        let (lo, hi) = v.times.iter().fold((f64::MAX, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
        println!("{:<7} {:>8.1} ms  (min {:.1}, max {:.1})  x{:.3}", v.name, m * 1e3, lo * 1e3, hi * 1e3, m / base);
    }
}
