//! Inference time of HASTE against the dense model it compresses, in one run: a trained
//! small-protocol ResNet-18 (width 0.25, CIFAR-10) at batch 1 and batch 128 on real test
//! images, dense and with HASTE at each `L` asked for (full-map patches, from stage 2), with
//! the MACs per image each ran (HASTE's include its hashing and merging). `L = 64` merges
//! nothing: it is HASTE's own pipeline (windows, hashing, one reduced convolution per image on
//! im2col) at no saving, the reference that separates the savings from the pipeline's cost.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo bench -p methods --bench haste_infer
//! ```
//!
//! `HASTE_CHECKPOINT` (default: the small protocol's baseline seed 0,
//! `methods/results/small-protocol-baseline/runs/baseline-s0/best.safetensors`, made by the
//! command in `methods/REPRODUCING.md`), `HASTE_L` (comma list, default `10,12,16,64`),
//! `HASTE_PATCH` (default 0: whole maps), `HASTE_ROUNDS` (default 7), `HASTE_DATA` (default
//! `../shared/data/cifar-10` from the workspace root).

use std::path::PathBuf;
use std::time::Instant;

use autograd::no_grad;
use layers::checkpoint::load_checkpoint;
use layers::mac::count_macs;
use layers::models::{build_with, ModelOptions};
use layers::{Mode, Module};
use methods::data::{batch_tensors, open_data, DataConfig};
use methods::haste::{compress, haste_layers, Centering, HasteConfig};

fn model(ckpt: &std::path::Path) -> Box<dyn Module> {
    let m = build_with("resnet18-cifar", &ModelOptions::new(10, 3, 0).width(0.25)).unwrap();
    load_checkpoint(ckpt, m.as_ref(), None, None).unwrap();
    m
}

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ckpt = std::env::var_os("HASTE_CHECKPOINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("methods/results/small-protocol-baseline/runs/baseline-s0/best.safetensors"));
    if !ckpt.is_file() {
        eprintln!(
            "haste_infer: no checkpoint at {} (train the small protocol's baseline, methods/REPRODUCING.md, or set HASTE_CHECKPOINT)",
            ckpt.display()
        );
        std::process::exit(2);
    }
    let data_dir =
        std::env::var_os("HASTE_DATA").map(PathBuf::from).unwrap_or_else(|| root.join("../shared/data/cifar-10"));
    let ls: Vec<usize> = std::env::var("HASTE_L")
        .unwrap_or_else(|_| "10,12,16,64".into())
        .split(',')
        .map(|s| s.trim().parse().expect("HASTE_L: a comma list of integers"))
        .collect();
    let patch = env_usize("HASTE_PATCH", 0);
    let rounds = env_usize("HASTE_ROUNDS", 7);
    let data = open_data(&DataConfig {
        dataset: "cifar10".into(),
        data_dir: Some(data_dir),
        batch_size: 128,
        seed: 0,
        val_fraction: 0.0,
        train_limit: Some(128),
        test_limit: Some(128),
        workers: 1,
        image_folder: Default::default(),
    })
    .unwrap();
    let batch = data.test.epoch(0).next().unwrap().unwrap();
    let (x128, _) = batch_tensors(&batch, autograd::Device::Cpu).unwrap();
    let mut variants: Vec<(String, Box<dyn Module>)> = vec![("dense".into(), model(&ckpt))];
    for &l in &ls {
        let mut m = model(&ckpt);
        let cfg = HasteConfig {
            hyperplanes: l,
            sparsity: None,
            patch,
            start: Some(2),
            pointwise: false,
            centering: Centering::Channels,
        };
        compress(m.as_mut(), &cfg, 0, [3, 32, 32]).unwrap();
        variants.push((format!("HASTE L={l}"), m));
    }
    println!("checkpoint {}, {} threads, patch {}", ckpt.display(), rayon::current_num_threads(), patch);
    let dense_macs = count_macs(variants[0].1.as_ref(), &x128).unwrap().total_macs as f64 / 128.0;
    for (name, m) in &variants {
        let macs = count_macs(m.as_ref(), &x128).unwrap().total_macs as f64 / 128.0;
        let kept: Vec<f64> = haste_layers(m.as_ref()).iter().map(|(_, h)| h.stats().kept_fraction()).collect();
        let mean_kept = if kept.is_empty() { 1.0 } else { kept.iter().sum::<f64>() / kept.len() as f64 };
        println!(
            "{name:<14} {:>7.2} MMACs/img ({:+.1} % vs dense), mean kept channel fraction {mean_kept:.3}",
            macs / 1e6,
            100.0 * (macs / dense_macs - 1.0)
        );
    }
    for n in [1usize, 128] {
        let x = x128.narrow(0, 0, n).unwrap().contiguous().unwrap();
        let reps = if n == 1 { 20 } else { 1 };
        let mut times = vec![Vec::new(); variants.len()];
        no_grad(|| {
            for (_, m) in &variants {
                m.forward(&x, Mode::Eval).unwrap();
            }
            for _ in 0..rounds {
                for (i, (_, m)) in variants.iter().enumerate() {
                    let t = Instant::now();
                    for _ in 0..reps {
                        m.forward(&x, Mode::Eval).unwrap();
                    }
                    times[i].push(t.elapsed().as_secs_f64() * 1e3 / reps as f64);
                }
            }
        });
        let med: Vec<f64> = times.into_iter().map(median).collect();
        println!("\nbatch {n}: median of {rounds} interleaved rounds");
        println!("| model | ms / batch | images / s | time vs dense |");
        println!("|---|---|---|---|");
        for ((name, _), t) in variants.iter().zip(&med) {
            println!("| {name} | {t:.2} | {:.0} | x{:.2} |", n as f64 * 1e3 / t, t / med[0]);
        }
    }
}
