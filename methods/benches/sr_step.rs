//! Training-step time (forward + backward + SGD step) of ResNet-18 with the CIFAR stem (32x32
//! inputs, 10 classes) without and with the SR block, as the multiplier over the plain step
//! (the paper reports under 1% more time per step).
//!
//! Two models: the small protocol's width-0.25 ResNet-18 (batch 128) and the full-width one
//! (batch 64). SR variants: the paper's CIFAR-10 ResNet-18 choices, `M = 4, P = 4` (SR alone;
//! 512x4x4 maps at full width) and `M = 3, P = 10` (its D2D+SR choice; 256x8x8), `U = 8`.
//! The variants of a model are timed in interleaved rounds (one step of each per round, after a
//! warm-up step each) and the median per variant is reported. On a loaded machine step times
//! vary by more than the block costs, so the block is also timed alone (forward and backward
//! through it on the maps it sees, median of many repetitions) and its share of the plain
//! step's median is printed: the overhead SR adds to a step, measured where it happens.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench sr_step` (`SR_BENCH_ROUNDS`, default 7
//! rounds for the full-width model and three times as many for the small one).

mod common;

use std::time::Instant;

use autograd::Tensor;
use common::Variant;
use layers::models::{build_with, ModelOptions};
use layers::{Mode, Module, ModuleExt};
use methods::sr::{insert_at_stage_output, Activation, SqueezeRemember};

fn variant(width: f64, sr: Option<(usize, usize)>) -> Variant {
    let mut model = build_with("resnet18-cifar", &ModelOptions::new(10, 3, 0).width(width)).unwrap();
    let base = model.num_parameters();
    let Some((m, p)) = sr else { return Variant::new("none", model) };
    let (_, [c, h, w]) = insert_at_stage_output(model.as_mut(), m, "sr", [3, 32, 32], |s| {
        Ok(Box::new(SqueezeRemember::new(s, p, 8, Activation::Relu)?))
    })
    .unwrap();
    let added = 100.0 * (model.num_parameters() - base) as f64 / base as f64;
    Variant::new(format!("SR M{m} P{p} ({c}x{h}x{w}, +{added:.2}% params)"), model)
}

/// Median time (ms) of forward + backward through an SR block alone on `[batch, C, H, W]` maps.
fn block_alone(batch: usize, shape: [usize; 3], p: usize, reps: usize) -> f64 {
    let block = SqueezeRemember::new(shape, p, 8, Activation::Relu).unwrap();
    let q = block.memory.leaf().shape().to_vec();
    block.memory.set_data(&Tensor::randn(&q, 3).unwrap()).unwrap();
    let [c, h, w] = shape;
    let x = Tensor::randn(&[batch, c, h, w], 1).unwrap().requires_grad_();
    let r = Tensor::randn(&[batch, c, h, w], 2).unwrap();
    let mut times: Vec<f64> = (0..reps + 1)
        .map(|_| {
            let t = Instant::now();
            block.forward(&x, Mode::Train).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .skip(1)
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let rounds = common::rounds("SR_BENCH_ROUNDS", 7);
    for (width, batch, rounds) in [(0.25, 128, 3 * rounds), (1.0, 64, rounds)] {
        let (x, y) = common::batch(batch);
        layers::rng::manual_seed(0);
        let mut variants = vec![variant(width, None), variant(width, Some((4, 4))), variant(width, Some((3, 10)))];
        let title = format!("ResNet-18 (CIFAR stem) width {width}, batch {batch}, 32x32");
        let base = common::run(&mut variants, &x, &y, rounds, &title);
        let c = |k: usize| layers::models::scale_channels(k, width);
        for (m, p, shape) in [(4, 4, [c(512), 4, 4]), (3, 10, [c(256), 8, 8])] {
            let ms = block_alone(batch, shape, p, 30);
            println!(
                "  SR M{m} P{p} block alone, forward + backward: {ms:.2} ms = {:.2}% of the plain step's median",
                100.0 * ms / base
            );
        }
    }
}
