//! What the step-time benchmarks share: a model with its SGD optimizer, one timed training
//! step, interleaved rounds with a warm-up step each, and the median table.

use std::time::Instant;

use autograd::Tensor;
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::{Mode, Module, ModuleExt};

/// A model variant with its optimizer (SGD, lr 0.01, momentum 0.9, weight decay 5e-4) and its
/// measured step times.
pub struct Variant {
    /// Its name in the table.
    pub name: String,
    model: Box<dyn Module>,
    opt: Box<dyn Optimizer>,
    times: Vec<f64>,
}

impl Variant {
    /// `model` under `name`.
    pub fn new(name: impl Into<String>, model: Box<dyn Module>) -> Variant {
        let groups = vec![ParamGroup::new(model.named_parameters())];
        let opt = Box::new(Sgd::new(groups, SgdOptions::new(0.01).momentum(0.9).weight_decay(5e-4)).unwrap());
        Variant { name: name.into(), model, opt, times: vec![] }
    }

    /// One training step (forward, cross-entropy, backward, SGD step); its wall time in seconds.
    fn step(&mut self, x: &Tensor, y: &Tensor) -> f64 {
        let t = Instant::now();
        let logits = self.model.forward(x, Mode::Train).unwrap();
        cross_entropy(&logits, y, CrossEntropyOptions::default()).unwrap().backward().unwrap();
        self.opt.step().unwrap();
        self.opt.zero_grad();
        t.elapsed().as_secs_f64()
    }
}

/// A random batch of `n` 32x32 RGB images and labels of 10 classes.
pub fn batch(n: usize) -> (Tensor, Tensor) {
    let x = Tensor::randn(&[n, 3, 32, 32], 1).unwrap();
    let y = Tensor::from_vec((0..n as i64).map(|i| i % 10).collect(), &[n]).unwrap();
    (x, y)
}

/// The rounds count from the environment variable `var`, else `default`.
pub fn rounds(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A warm-up step of every variant, then `rounds` rounds of one step each, interleaved, so load
/// that drifts during the run affects all variants alike; the step times in seconds, per
/// variant.
pub fn interleaved(variants: &mut [Variant], x: &Tensor, y: &Tensor, rounds: usize) -> Vec<Vec<f64>> {
    for v in variants.iter_mut() {
        v.step(x, y);
    }
    for _ in 0..rounds {
        for v in variants.iter_mut() {
            let t = v.step(x, y);
            v.times.push(t);
        }
    }
    variants.iter().map(|v| v.times.clone()).collect()
}

/// [`interleaved`], then prints `title` and per variant the median step time, its range and the
/// multiplier over the first variant's median; returns that median in milliseconds.
pub fn run(variants: &mut [Variant], x: &Tensor, y: &Tensor, rounds: usize, title: &str) -> f64 {
    interleaved(variants, x, y, rounds);
    let base = median(variants[0].times.clone());
    let w = variants.iter().map(|v| v.name.len()).max().unwrap_or(0);
    println!("\n{title}, {rounds} rounds: median step time and multiplier");
    for v in variants.iter() {
        let m = median(v.times.clone());
        let (lo, hi) = v.times.iter().fold((f64::MAX, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
        println!("{:<w$} {:>8.1} ms  (min {:.1}, max {:.1})  x{:.4}", v.name, m * 1e3, lo * 1e3, hi * 1e3, m / base);
    }
    base * 1e3
}
