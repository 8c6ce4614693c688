//! Runs trained `prom` checkpoints over the whole CIFAR-10 test set as three models: the
//! fake-quantized model as QAT evaluates it (float convolutions, then BatchNorm), the same
//! model with its BatchNorms folded (`methods::prom::fold_batch_norms`), and its integer form
//! (`methods::prom::to_integer`); prints, per run, the three accuracies, on how many images the
//! integer model predicts another class than each fake-quantized one, and how many of the
//! integer model's logits differ from the folded model's at all.
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
use methods::prom::{fold_batch_norms, quantize, to_integer, ActQuant, PromConfig, WeightQuant};

/// One run's counts over the test set.
#[derive(Default)]
struct Agreement {
    images: usize,
    /// Correct predictions of the fake-quantized, folded and integer models.
    correct: [usize; 3],
    /// Images on which the integer model's class differs from the fake-quantized and from the
    /// folded model's.
    differ: [usize; 2],
    /// Logits of the integer model that differ from the folded model's (any bit), of `logits`.
    logits_differ: usize,
    logits: usize,
}

fn agreement(data_dir: &Path, run: &Path) -> Result<Agreement> {
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
    let mut folded = build()?;
    fold_batch_norms(folded.as_mut())?;
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
    let mut a = Agreement::default();
    for batch in data.test.epoch(0) {
        let batch = batch.map_err(|e| autograd::Error::invalid("prom_agreement", e.to_string()))?;
        let (x, y) = batch_tensors(&batch, autograd::Device::Cpu)?;
        let logits = |m: &dyn Module| no_grad(|| m.forward(&x, Mode::Eval));
        let (lf, lfold, li) = (logits(fake.as_ref())?, logits(folded.as_ref())?, logits(int.as_ref())?);
        let (vfold, vi) = (lfold.to_vec::<f32>()?, li.to_vec::<f32>()?);
        a.logits += vi.len();
        a.logits_differ += vfold.iter().zip(&vi).filter(|(p, q)| p.to_bits() != q.to_bits()).count();
        let pred = |l: &Tensor| l.argmax(1, false)?.to_vec::<i64>();
        let (pf, pfold, pi) = (pred(&lf)?, pred(&lfold)?, pred(&li)?);
        let labels: Vec<i64> = y.to_dtype(autograd::DType::I64)?.to_vec()?;
        for (k, &l) in labels.iter().enumerate() {
            for (c, p) in a.correct.iter_mut().zip([&pf, &pfold, &pi]) {
                *c += usize::from(p[k] == l);
            }
            a.differ[0] += usize::from(pi[k] != pf[k]);
            a.differ[1] += usize::from(pi[k] != pfold[k]);
            a.images += 1;
        }
    }
    Ok(a)
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
    println!(
        "| run | fake-quantized acc. % | folded acc. % | integer acc. % | integer vs fake-quantized: classes differ | integer vs folded: classes differ | integer vs folded: logits differ |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for run in &runs {
        match agreement(&data_dir, run) {
            Ok(a) => {
                let pct = |c: usize| 100.0 * c as f64 / a.images as f64;
                println!(
                    "| {} | {:.2} | {:.2} | {:.2} | {} of {} | {} | {} of {} |",
                    run.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                    pct(a.correct[0]),
                    pct(a.correct[1]),
                    pct(a.correct[2]),
                    a.differ[0],
                    a.images,
                    a.differ[1],
                    a.logits_differ,
                    a.logits
                )
            }
            Err(e) => {
                eprintln!("{}: {e}", run.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
