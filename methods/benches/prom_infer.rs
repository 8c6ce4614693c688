//! PROM's integer inference against float, in one run:
//!
//! 1. MobileNetV2 (CIFAR strides, width 1.0, 32x32 inputs, 10 classes) at batch 1 and 64: the
//!    float model, the fake-quantized QAT model and its integer form ([`to_integer`]: ternary
//!    block 1x1 convolutions on the add/subtract kernel, int8 elsewhere, BatchNorm folded),
//!    forward passes in evaluation mode, interleaved rounds, medians. The QAT model is random
//!    weights with LSQ steps and BatchNorm statistics from three training batches of random
//!    images: timing does not depend on what the weights learned.
//!    Also the sizes on disk of the integer checkpoint ([`methods::prom::save_integer`]) and
//!    the float one.
//! 2. The ternary 1x1 kernel (`i8` codes, `{−1, 0, 1}` weights, `i32` sums) against the f32 1x1
//!    convolution and the int8 one on MobileNetV2's block pointwise shapes at 224x224, batch 1.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo bench -p methods --bench prom_infer
//! ```
//!
//! `PROM_ROUNDS` (default 9); `PROM_PROFILE` set: one more integer forward pass at batch 64
//! under the op profiler.

use std::time::Instant;

use autograd::{no_grad, Conv2dParams, DType, Layout, Tensor};
use layers::models::{build_with, ModelOptions};
use layers::{Mode, Module, ModuleExt};
use methods::prom::{quantize, to_integer, ActQuant, PromConfig, WeightQuant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Milliseconds of `f`, the median over `rounds` after one warm-up call.
fn time(rounds: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn mobilenet() -> Box<dyn Module> {
    build_with("mobilenetv2-cifar", &ModelOptions::new(10, 3, 0)).unwrap()
}

fn main() {
    let rounds: usize = std::env::var("PROM_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(9);
    println!("prom_infer: {} threads, {rounds} rounds", rayon::current_num_threads());
    let float = mobilenet();
    let mut qat = mobilenet();
    let cfg = PromConfig { ternary: WeightQuant::TernaryAbsmean, act: ActQuant::Lsq, final_ternary: false };
    quantize(qat.as_mut(), &cfg).unwrap();
    for s in 0..3 {
        qat.forward(&Tensor::randn(&[32, 3, 32, 32], s).unwrap(), Mode::Train).unwrap();
    }
    let mut int = mobilenet();
    quantize(int.as_mut(), &cfg).unwrap();
    layers::state_dict::load_state_dict(int.as_ref(), &qat.state_dict(), layers::state_dict::Strictness::Strict)
        .unwrap();
    let layers = to_integer(int.as_mut()).unwrap();
    let ternary = layers.iter().filter(|(_, t)| *t).count();
    println!("integer MobileNetV2: {} layers, {ternary} on the ternary kernel", layers.len());
    let dir = std::env::temp_dir().join(format!("lamina-prom-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bytes, weights) = methods::prom::save_integer(int.as_ref(), &dir.join("int.safetensors")).unwrap();
    layers::state_dict::save_module(float.as_ref(), &dir.join("float.safetensors")).unwrap();
    let float_bytes = std::fs::metadata(dir.join("float.safetensors")).unwrap().len();
    println!(
        "checkpoints: integer {bytes} bytes ({weights} of weights, 2-bit packed ternary and int8), float32 {float_bytes} bytes (x{:.2})",
        float_bytes as f64 / bytes as f64
    );
    std::fs::remove_dir_all(&dir).unwrap();
    println!("\n| MobileNetV2 (32x32) | batch | float ms | QAT (fake-quant) ms | integer ms | integer vs float |");
    println!("|---|---:|---:|---:|---:|---:|");
    for batch in [1usize, 64] {
        let x = Tensor::randn(&[batch, 3, 32, 32], 7).unwrap();
        let run = |m: &dyn Module| {
            no_grad(|| m.forward(&x, Mode::Eval)).unwrap();
        };
        let (mut tf, mut tq, mut ti) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            tf.push(time(1, || run(float.as_ref())));
            tq.push(time(1, || run(qat.as_ref())));
            ti.push(time(1, || run(int.as_ref())));
        }
        let (f, q, i) = (median(tf), median(tq), median(ti));
        println!("| forward | {batch} | {f:.2} | {q:.2} | {i:.2} | x{:.2} |", i / f);
    }
    if std::env::var_os("PROM_PROFILE").is_some() {
        let x = Tensor::randn(&[64, 3, 32, 32], 7).unwrap();
        let (_, r) = autograd::profile::measure(|| no_grad(|| int.forward(&x, Mode::Eval)));
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "\nprofile of the integer model, batch 64: {:.1} ms, {:.1} ms in ops",
            ms(r.elapsed),
            ms(r.attributed())
        );
        for op in r.ops.iter().take(12) {
            println!("  {:<24} {:>5} calls {:>8.1} ms", op.name, op.calls, ms(op.time));
        }
        for a in r.algorithms.iter().take(6) {
            println!("  {:<24} by {:<10} {:>5} calls {:>8.1} ms", a.op, a.algorithm, a.calls, ms(a.time));
        }
    }
    // The pointwise kernels alone.
    println!("\n| 1x1 conv, 224x224 batch 1 | f32 ms | int8 ms | ternary ms | ternary vs f32 |");
    println!("|---|---:|---:|---:|---:|");
    for (c, o, hw) in
        [(16, 96, 112), (24, 144, 56), (144, 24, 56), (32, 192, 28), (64, 384, 14), (96, 576, 14), (960, 160, 7)]
    {
        let x = Tensor::randn(&[1, c, hw, hw], 1).unwrap();
        let w = Tensor::randn(&[o, c, 1, 1], 2).unwrap();
        let xi =
            x.mul_scalar(40.0).unwrap().round().unwrap().clamp(-127.0, 127.0).unwrap().to_dtype(DType::I8).unwrap();
        let wt = w.round().unwrap().clamp(-1.0, 1.0).unwrap().to_dtype(DType::I8).unwrap();
        let wt2 = wt.reshape(&[o as isize, c as isize]).unwrap().contiguous().unwrap();
        let p = Conv2dParams::default();
        let f = time(rounds, || {
            no_grad(|| x.conv2d(&w, None, p)).unwrap();
        });
        let i8c = time(rounds, || {
            xi.conv2d(&wt, None, p).unwrap();
        });
        let t = time(rounds, || {
            let s = xi.storage().ternary_conv1x1(xi.layout(), &wt2.storage(), wt2.layout()).unwrap();
            std::hint::black_box(Tensor::from_storage(s, Layout::contiguous(&[1, o, hw, hw])));
        });
        println!("| {c}->{o} at {hw}x{hw} | {f:.3} | {i8c:.3} | {t:.3} | x{:.2} |", t / f);
    }
}
