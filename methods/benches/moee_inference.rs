//! Inference time of a MoEE-extracted ViT against the dense one, from one run: the shipped
//! ViT-Mini/4 (CIFAR-10) is split as `train --method moee` does on its defaults (1024
//! calibration images, 4096 tokens per block, HDBSCAN, `p` from `MOEE_P`, default 0.9), and the
//! dense model and the extracted inference form (gathered experts) are timed on CIFAR-10 test
//! images at batch 1 and 128 (forward pass, eval mode, no gradient), in interleaved rounds after
//! a warm-up, medians and minima reported (the minimum is the least disturbed by other jobs).
//! Also one MLP alone (block `MOEE_BLOCK`, default 3) on its 4096 sampled calibration tokens,
//! dense against its experts.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench moee_inference` (`MOEE_ROUNDS`, default
//! 11; `MOEE_PROFILE` set: the MLP alone once more under the op profiler). Needs CIFAR-10 (`LAMINA_DATA` or `shared/data` beside the workspace) and the shipped
//! checkpoint; without them it says so and uses random images or the seed's weights.

use std::path::PathBuf;
use std::time::Instant;

use autograd::{no_grad, Tensor};
use layers::mac::count_macs;
use layers::moe::MoeMlp;
use layers::pretrained::{load_pretrained, PretrainedOptions};
use layers::{models, Mode, Module, ModuleExt};
use methods::data::{batch_tensors, open_data, DataConfig};
use methods::moee::{apply_plans, capture, plan_moee, shipped, CaptureOptions, Clustering, MoeeConfig};

fn env(key: &str, default: f64) -> f64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `(median, minimum)`: the minimum is the least disturbed by other jobs on a shared machine.
fn median_min(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn time(m: &dyn Module, x: &Tensor) -> f64 {
    let t = Instant::now();
    no_grad(|| m.forward(x, Mode::Eval)).unwrap();
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let p = env("MOEE_P", 0.9);
    let rounds = env("MOEE_ROUNDS", 11.0) as usize;
    let block = env("MOEE_BLOCK", 3.0) as usize;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let mut dense = models::build(shipped::MODEL, 10, 3, 0).unwrap();
    match load_pretrained(dense.as_ref(), &shipped::path(), &PretrainedOptions::default()) {
        Ok(_) => println!("model: {} from {}", shipped::MODEL, shipped::path().display()),
        Err(e) => println!("model: {} at its seed's initialization ({e})", shipped::MODEL),
    }
    let dir = std::env::var_os("LAMINA_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let cfg = DataConfig {
        dataset: "cifar10".into(),
        data_dir: Some(dir),
        batch_size: 128,
        seed: 0,
        val_fraction: 0.0,
        train_limit: Some(1024),
        test_limit: Some(128),
        workers: 1,
        image_folder: Default::default(),
    };
    let (calib, test): (Vec<Tensor>, Tensor) = match open_data(&cfg) {
        Ok(data) => {
            let calib = data.train.epoch(0).map(|b| batch_tensors(&b.unwrap(), autograd::Device::Cpu).unwrap().0);
            let calib: Vec<Tensor> = calib.collect();
            let test = data.test.epoch(0).next().unwrap().unwrap();
            println!("data: CIFAR-10, {} calibration batches, 128 test images", calib.len());
            (calib, batch_tensors(&test, autograd::Device::Cpu).unwrap().0)
        }
        Err(e) => {
            println!("data: random images ({e})");
            (
                (0..8).map(|i| Tensor::randn(&[128, 3, 32, 32], i).unwrap()).collect(),
                Tensor::randn(&[128, 3, 32, 32], 99).unwrap(),
            )
        }
    };
    let moe_cfg = MoeeConfig {
        p,
        clustering: Clustering::Hdbscan { min_cluster_size: None, min_samples: None },
        tokens: 4096,
        images: 1024,
        cls: true,
        fold_bias: false,
        shipped: true,
        moefication: None,
    };
    let t0 = Instant::now();
    let caps = capture(&mut dense, &calib, CaptureOptions { max_tokens: 4096, cls: true, seed: 0 }).unwrap();
    let plans: Vec<_> = caps.iter().map(|c| plan_moee(dense.as_ref(), c, &moe_cfg, 0).unwrap()).collect();
    println!("extraction: {:.1} s, p = {p}", t0.elapsed().as_secs_f64());
    for pl in &plans {
        println!("  {}: {}", pl.path, pl.describe());
    }
    // The extracted model as its inference form: a copy with gathered experts.
    let mut moe = models::build(shipped::MODEL, 10, 3, 0).unwrap();
    layers::state_dict::load_state_dict(moe.as_ref(), &dense.state_dict(), layers::state_dict::Strictness::Strict)
        .unwrap();
    apply_plans(&mut moe, &plans).unwrap();
    for pl in plans.iter().filter(|p| p.is_moe()) {
        let slot = moe.replace_module(&pl.path, Box::new(layers::Identity)).unwrap();
        let mut m = slot.into_any().downcast::<MoeMlp>().ok().unwrap();
        m.gather_experts().unwrap();
        moe.replace_module(&pl.path, m).unwrap();
    }
    let (dm, mm) =
        (count_macs(dense.as_ref(), &test).unwrap().total_macs, count_macs(moe.as_ref(), &test).unwrap().total_macs);
    println!(
        "MACs / image on the 128 test images: dense {:.2}M, extracted {:.2}M ({:+.1}%); parameters {} -> {}",
        dm as f64 / 128e6,
        mm as f64 / 128e6,
        100.0 * (mm as f64 / dm as f64 - 1.0),
        dense.num_parameters(),
        moe.num_parameters()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "threads: {threads}; load average before timing: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}",
        "forward (ms)", "dense med", "extr. med", "ratio", "dense min", "extr. min", "ratio"
    );
    let row = |name: String, td: Vec<f64>, tm: Vec<f64>| {
        let ((d, dmin), (m, mmin)) = (median_min(td), median_min(tm));
        println!("{name:<28} {d:>10.2} {m:>10.2} {:>8.3} {dmin:>10.2} {mmin:>10.2} {:>8.3}", m / d, mmin / dmin);
    };
    for b in [1usize, 128] {
        let x = test.narrow(0, 0, b).unwrap().contiguous().unwrap();
        let (mut td, mut tm) = (Vec::new(), Vec::new());
        time(dense.as_ref(), &x);
        time(moe.as_ref(), &x);
        let reps = if b == 1 { 20 } else { 1 };
        for _ in 0..rounds {
            td.push((0..reps).map(|_| time(dense.as_ref(), &x)).sum::<f64>() / reps as f64);
            tm.push((0..reps).map(|_| time(moe.as_ref(), &x)).sum::<f64>() / reps as f64);
        }
        row(format!("ViT, batch {b}"), td, tm);
    }
    // One MLP alone on its sampled calibration tokens.
    let path = format!("blocks.{block}.mlp");
    if let (Some(c), Some(dm), Some(mm)) =
        (caps.iter().find(|c| c.path == path), dense.get_module(&path), moe.get_module(&path))
    {
        let x = Tensor::from_vec(c.x.clone(), &[c.len(), c.dim]).unwrap();
        let (mut td, mut tm) = (Vec::new(), Vec::new());
        time(dm, &x);
        time(mm, &x);
        for _ in 0..rounds {
            td.push(time(dm, &x));
            tm.push(time(mm, &x));
        }
        row(format!("{path}, {} tokens", c.len()), td, tm);
        if std::env::var_os("MOEE_PROFILE").is_some() {
            for (name, m) in [("dense", dm), ("extracted", mm)] {
                let (_, r) = autograd::profile::measure(|| time(m, &x));
                let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
                println!("profile of the {name} {path}: {:.2} ms, {:.2} ms in ops", ms(r.elapsed), ms(r.attributed()));
                for op in r.ops.iter().take(8) {
                    println!(
                        "  {:<20} {:>4} {:>5} calls {:>8.2} ms",
                        op.name,
                        op.pass.short_name(),
                        op.calls,
                        ms(op.time)
                    );
                }
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after timing: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
}
