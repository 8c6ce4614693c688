//! Runs trained `prom` checkpoints as the fake-quantized model and as its integer form
//! (`methods::prom::to_integer`) over the whole CIFAR-10 test set and prints, per run, both
//! accuracies and on how many images the two predict different classes.
//!
//! ```text
//! cargo run --release -p methods --example prom_agreement -- ../shared/data/cifar-10 RUN_DIR...
//! ```
//!
//! Each run folder needs `config.json` (a `prom` run of a MobileNetV2 with the default
//! quantizers) and `best.safetensors`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use autograd::{no_grad, Result, Tensor};
use layers::checkpoint::load_checkpoint;
use layers::models::{build_with, ModelOptions};
use layers::{Mode, Module};
use methods::config::TrainConfig;
use methods::data::{batch_tensors, open_data, DataConfig};
use methods::prom::{quantize, to_integer, ActQuant, PromConfig, WeightQuant};

/// `(fake-quantized correct, integer correct, disagreements, images)` of one run.
fn agreement(data_dir: &Path, run: &Path) -> Result<(usize, usize, usize, usize)> {
    let cfg = TrainConfig::load(run)?;
    let is = |k: &str, v: &str| cfg.hparams.get(k).is_none_or(|x| x == v);
    if cfg.method != "prom" || !(is("ternary", "absmean") && is("act", "lsq") && is("final", "int8")) {
        return Err(autograd::Error::invalid(
            "prom_agreement",
            format!("{}: a {} run with {:?}; expected prom with its defaults", run.display(), cfg.method, cfg.hparams),
        ));
    }
    let build = || -> Result<Box<dyn Module>> {
        let mut m = build_with(&cfg.model, &ModelOptions::new(10, 3, cfg.seed).width(cfg.width))?;
        let prom = PromConfig { ternary: WeightQuant::TernaryAbsmean, act: ActQuant::Lsq, final_ternary: false };
        quantize(m.as_mut(), &prom)?;
        load_checkpoint(&run.join("best.safetensors"), m.as_ref(), None, None)?;
        Ok(m)
    };
    let fake = build()?;
    let mut int = build()?;
    to_integer(int.as_mut())?;
    let data = open_data(&DataConfig {
        dataset: "cifar10".into(),
        data_dir: Some(data_dir.to_path_buf()),
        batch_size: 500,
        seed: 0,
        val_fraction: 0.0,
        train_limit: Some(500),
        test_limit: None,
        workers: 1,
        image_folder: Default::default(),
    })?;
    let (mut f_ok, mut i_ok, mut differ, mut n) = (0, 0, 0, 0);
    for batch in data.test.epoch(0) {
        let batch = batch.map_err(|e| autograd::Error::invalid("prom_agreement", e.to_string()))?;
        let (x, y) = batch_tensors(&batch, autograd::Device::Cpu)?;
        let pred = |m: &dyn Module| -> Result<Vec<i64>> {
            no_grad(|| m.forward(&x, Mode::Eval))?.argmax(1, false)?.to_vec::<i64>()
        };
        let (pf, pi, labels) = (pred(fake.as_ref())?, pred(int.as_ref())?, y.to_dtype(autograd::DType::I64)?);
        let labels: Vec<i64> = Tensor::to_vec(&labels)?;
        for ((a, b), l) in pf.iter().zip(&pi).zip(&labels) {
            f_ok += usize::from(a == l);
            i_ok += usize::from(b == l);
            differ += usize::from(a != b);
            n += 1;
        }
    }
    Ok((f_ok, i_ok, differ, n))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).map(PathBuf::from);
    let Some(data_dir) = args.next() else {
        eprintln!("usage: prom_agreement CIFAR10_DIR RUN_DIR...");
        return ExitCode::FAILURE;
    };
    let runs: Vec<PathBuf> = args.collect();
    if runs.is_empty() {
        eprintln!("usage: prom_agreement CIFAR10_DIR RUN_DIR...");
        return ExitCode::FAILURE;
    }
    println!("| run | fake-quantized test acc. % | integer test acc. % | images predicted differently |");
    println!("|---|---:|---:|---:|");
    for run in &runs {
        match agreement(&data_dir, run) {
            Ok((f, i, d, n)) => println!(
                "| {} | {:.2} | {:.2} | {d} of {n} |",
                run.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                100.0 * f as f64 / n as f64,
                100.0 * i as f64 / n as f64
            ),
            Err(e) => {
                eprintln!("{}: {e}", run.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
