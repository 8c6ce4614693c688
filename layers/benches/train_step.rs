//! Full training steps on random inputs, f32: forward, cross-entropy loss, backward and an SGD
//! step (momentum 0.9, weight decay 5e-4 on every parameter, PyTorch's rule), for ResNet-20
//! (batch 128), ResNet-18 with the CIFAR stem, MobileNetV2 (CIFAR variant) and ViT-Tiny with 4x4
//! patches (batch 64 each) on CIFAR-shaped inputs (10 classes), ResNet-50 at 224x224 (batch 16,
//! 1000 classes: the MoD paper's base model), plus one ViT-Tiny encoder block forward + backward
//! (128 x 65 tokens, dim 192, 3 heads, MLP 768). `torch_train_step.py` times the same steps in
//! PyTorch; `backends/benches/run_vs_torch.py` pairs the two.
//!
//! Prints `params <name> <count>` and `step <name> train|fwdbwd <median ms> <min ms>` per row.
//!
//! `cargo bench -p layers --bench train_step [-- [--bf16] NAME_SUBSTRING]` (threads:
//! `RAYON_NUM_THREADS`). `--bf16` runs every f32 matrix product with bf16 operands and f32
//! accumulation (`set_matmul_precision(Bf16)`, AVX512_BF16 CPUs only); the rest stays f32.
//! `--profile` runs one more step of each row under the op profiler and prints its fifteen
//! most expensive ops and convolution algorithms (where the step goes).

use autograd::{BackwardOptions, Result, Tensor};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::{models, EncoderBlock, Mode, Module, ModuleExt};

#[path = "../../backends/benches/common/mod.rs"]
mod common;
use common::{random, time_ms};

/// With `--profile`: one more step under the op profiler, its most expensive ops and
/// convolution algorithms printed.
fn profile_step(name: &str, step: impl FnOnce() -> Result<()>) -> Result<()> {
    if std::env::args().any(|a| a == "--profile") {
        let (r, report) = autograd::profile::measure(step);
        r?;
        print!("{}", report.summary(name, 15));
    }
    Ok(())
}

/// `(registry name, batch, classes)` of the whole-model rows; each takes its registered input
/// size (32x32 for the CIFAR models, 224x224 for ResNet-50), 3 channels.
const MODELS: &[(&str, usize, usize)] = &[
    ("resnet20", 128, 10),
    ("resnet18-cifar", 64, 10),
    ("mobilenetv2-cifar", 64, 10),
    ("vit-tiny-4", 64, 10),
    ("resnet50", 16, 1000),
];

/// The encoder-block row: name, batch, tokens, dim, heads, MLP ratio.
const BLOCK: (&str, usize, usize, usize, usize, f64) = ("vit-tiny-block", 128, 65, 192, 3, 4.0);

/// Timed steps per row (after two warm-up steps).
const RUNS: usize = 7;

/// A float tensor of `shape` filled with values in [-1, 1) from `seed`.
fn input(shape: &[usize], seed: u64) -> Result<Tensor> {
    Tensor::from_vec(random(shape.iter().product(), seed), shape)
}

/// `(median, min)` ms of one training step of the registered model `name` at `batch` with a
/// head of `classes`.
fn model_step(name: &str, batch: usize, classes: usize) -> Result<(usize, (f64, f64))> {
    let model = models::build(name, classes, 3, 0)?;
    let size = models::input_size(name)?;
    let x = input(&[batch, 3, size, size], 1)?;
    let labels: Vec<i64> = random(batch, 2).iter().map(|v| ((v + 1.0) * 0.5 * classes as f32) as i64).collect();
    let y = Tensor::from_vec(labels.into_iter().map(|c| c.min(classes as i64 - 1)).collect(), &[batch])?;
    let opts = SgdOptions::new(0.01).momentum(0.9).weight_decay(5e-4);
    let mut opt = Sgd::new(vec![ParamGroup::new(model.named_parameters())], opts)?;
    let mut step = || -> Result<()> {
        opt.zero_grad();
        let logits = model.forward(&x, Mode::Train)?;
        cross_entropy(&logits, &y, CrossEntropyOptions::default())?.backward()?;
        opt.step()
    };
    step()?;
    let times = time_ms(RUNS, || step().expect("training step"));
    profile_step(name, step)?;
    Ok((model.num_parameters(), times))
}

/// `(median, min)` ms of the encoder block's forward + backward (input and parameter gradients)
/// from a random output gradient.
fn block_step() -> Result<(usize, (f64, f64))> {
    let (_, batch, tokens, dim, heads, ratio) = BLOCK;
    let block = EncoderBlock::new(dim, heads, ratio)?;
    let x = input(&[batch, tokens, dim], 1)?;
    let gy = input(&[batch, tokens, dim], 2)?;
    let step = || -> Result<()> {
        block.zero_grad();
        let xr = x.detach().requires_grad_();
        let y = block.forward(&xr, Mode::Train)?;
        y.backward_with(BackwardOptions { seed: Some(gy.clone()), accumulate: true, ..Default::default() })?;
        Ok(())
    };
    step()?;
    let times = time_ms(RUNS, || step().expect("block forward + backward"));
    profile_step(BLOCK.0, step)?;
    Ok((block.num_parameters(), times))
}

fn main() -> Result<()> {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--")).unwrap_or_default();
    println!("threads {}", rayon::current_num_threads());
    if std::env::args().any(|a| a == "--bf16") {
        use autograd::backends::cpu::{set_matmul_precision, MatmulPrecision};
        set_matmul_precision(MatmulPrecision::Bf16)?;
        println!("matmul precision bf16");
    }
    for &(name, batch, classes) in MODELS.iter().filter(|(n, _, _)| n.contains(&filter)) {
        let (params, (med, min)) = model_step(name, batch, classes)?;
        println!("params {name} {params}");
        println!("step {name} train {med:.3} {min:.3}");
    }
    if BLOCK.0.contains(&filter) {
        let (params, (med, min)) = block_step()?;
        println!("params {} {params}", BLOCK.0);
        println!("step {} fwdbwd {med:.3} {min:.3}", BLOCK.0);
    }
    Ok(())
}
