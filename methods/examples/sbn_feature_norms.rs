//! The SBN paper's cheap claim: with SBN after the batch norms, feature maps are much smaller
//! than with batch norm alone (its forward transform is unnormalized, so SBN rescales each map by
//! about `γ/sqrt(H·W·E[x²])`), from initialization on.
//!
//! On a deep residual net (CIFAR ResNet-56: 27 basic blocks, option-A shortcuts) the root mean
//! square of every block's output (the residual stream) is recorded at every training step of
//! the first epoch of the small protocol's recipe (its CIFAR-10 subset and split, batch 128, SGD
//! 0.9, the one-cycle schedule laid out over all its epochs, weight decay 5e-4; only the model is
//! ResNet-56 instead of ResNet-18/0.25), for the plain net, SBN after every BN
//! of the last stage (the default placement for a three-stage ResNet) and SBN after every BN of
//! all three stages. Step 0 is the initialization (its batch statistics, before any update).
//! Writes `feature_norms.json` and `feature_norms.svg` into `--out`.
//!
//! ```sh
//! cargo run --release --example sbn_feature_norms -- --data-dir ../shared/data/cifar-10 \
//!     --out methods/results/sbn-feature-norms
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use autograd::{no_grad, Result, Tensor};
use layers::surgery::insert_after;
use layers::{Mode, Module, ModuleExt};
use methods::config::TrainConfig;
use methods::hparams::{HparamSpec, Hparams};
use methods::plot::{render, Panel, Series};
use methods::presets::SMALL_PROTOCOL;
use methods::registry::{Defaults, Method, MethodSpec, Phase, Progress, RunInfo, Training};
use methods::sbn::{Correction, Implementation, Inserted, Placement, SpectralNormMethod};
use methods::trainer::{train_with, RunOptions};

const MODEL: &str = "resnet56";
const VARIANTS: [(&str, &[usize]); 3] = [("baseline", &[]), ("sbn-stage3", &[3]), ("sbn-all", &[1, 2, 3])];

/// Per step, the RMS of each block's output; filled by the probes, read after each step.
static RECORDS: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());

/// Records the root mean square of what passes through it (training passes only).
struct Probe(Arc<Mutex<f64>>);

impl Module for Probe {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode.is_train() {
            let ms = no_grad(|| x.square()?.mean_all()?.item())?;
            *self.0.lock().unwrap() = ms.sqrt();
        }
        Ok(x.clone())
    }
}

/// SBN (or nothing) plus a probe after every residual block; the first epoch of the schedule.
struct Probed {
    sbn: Option<SpectralNormMethod>,
    probes: Vec<Arc<Mutex<f64>>>,
}

impl Method for Probed {
    fn prepare(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<()> {
        if let Some(m) = &mut self.sbn {
            m.prepare(model, run)?;
        }
        let blocks: Vec<String> = model
            .named_modules()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.starts_with("layer") && p.split('.').count() == 2)
            .collect();
        for b in blocks {
            let cell = Arc::new(Mutex::new(f64::NAN));
            insert_after(model.as_mut(), &b, "probe", Box::new(Probe(cell.clone())))?;
            self.probes.push(cell);
        }
        Ok(())
    }

    fn phases(&self, run: &RunInfo) -> Vec<Phase> {
        vec![Phase::new("train", 1).schedule_window(run.epochs, 0)]
    }

    fn after_step(
        &mut self,
        _m: &mut Box<dyn Module>,
        _o: &mut dyn layers::optim::Optimizer,
        _at: Progress,
    ) -> Result<()> {
        RECORDS.lock().unwrap().push(self.probes.iter().map(|p| *p.lock().unwrap()).collect());
        Ok(())
    }
}

const STAGES: HparamSpec = HparamSpec { key: "stages", default: "", help: "SBN stages (empty: none)" };
const DEFAULTS: Defaults = Defaults { model: MODEL, width: 1.0, ..SMALL_PROTOCOL };

fn build(h: &Hparams, _run: &RunInfo) -> Result<Box<dyn Method>> {
    let stages = h.usize_list("stages")?;
    let sbn = (!stages.is_empty()).then(|| {
        let inserted = Inserted::Sbn {
            correction: Correction::Samples,
            momentum: 0.1,
            eps: 1e-5,
            implementation: Implementation::Fused,
        };
        SpectralNormMethod::new(Placement { stages, shortcuts: true }, inserted)
    });
    Ok(Box::new(Probed { sbn, probes: Vec::new() }))
}

static SPEC: MethodSpec = MethodSpec {
    name: "sbn-feature-norms",
    description: "feature-map norms with and without SBN",
    defaults: DEFAULTS,
    presets: &[],
    training: Training::Required,
    hparams: &[STAGES],
    build,
};

fn arg(args: &[String], key: &str) -> Option<String> {
    args.iter().position(|a| a == key).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let data_dir = arg(&args, "--data-dir").map(PathBuf::from);
    let out = PathBuf::from(arg(&args, "--out").unwrap_or_else(|| "methods/results/sbn-feature-norms".into()));
    std::fs::create_dir_all(&out).map_err(|e| autograd::Error::invalid("--out", e.to_string()))?;
    let mut all = Vec::new();
    for (name, stages) in VARIANTS {
        RECORDS.lock().unwrap().clear();
        let mut cfg = TrainConfig::from_defaults(&SPEC);
        cfg.data_dir = data_dir.clone();
        cfg.test_limit = Some(1000);
        let list: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
        cfg.hparams.insert("stages".into(), list.join(","));
        let run_dir = out.join("runs").join(name);
        let s = train_with(&SPEC, &cfg, &run_dir, false, &RunOptions { quiet: true, ..RunOptions::default() })?;
        let steps = std::mem::take(&mut *RECORDS.lock().unwrap());
        eprintln!("{name}: {} steps, test acc after one epoch {:.2}%", steps.len(), 100.0 * s.test.acc);
        all.push((name, steps));
    }
    // JSON: per variant, per step, per block.
    let json = serde_json::json!({
        "model": MODEL,
        "what": "RMS of each residual block's output (training-mode forward of each step of the first epoch; step 0 = initialization)",
        "variants": all.iter().map(|(n, s)| serde_json::json!({"name": n, "rms": s})).collect::<Vec<_>>(),
    });
    std::fs::write(out.join("feature_norms.json"), serde_json::to_string_pretty(&json).unwrap())
        .map_err(|e| autograd::Error::invalid("write", e.to_string()))?;
    let at_init = all
        .iter()
        .map(|(n, s)| Series::line(*n, s[0].iter().enumerate().map(|(i, v)| ((i + 1) as f64, v.log10())).collect()))
        .collect();
    let last = all
        .iter()
        .map(|(n, s)| Series::line(*n, s.iter().enumerate().map(|(i, v)| (i as f64, v[v.len() - 1].log10())).collect()))
        .collect();
    let panels = [
        Panel {
            title: format!("{MODEL} at initialization"),
            x_label: "residual block".into(),
            y_label: "log10 RMS of block output".into(),
            series: at_init,
            x_ticks: vec![],
        },
        Panel {
            title: "last block over the first epoch".into(),
            x_label: "training step".into(),
            y_label: "log10 RMS of block output".into(),
            series: last,
            x_ticks: vec![],
        },
    ];
    std::fs::write(out.join("feature_norms.svg"), render(&panels))
        .map_err(|e| autograd::Error::invalid("write", e.to_string()))?;
    for (n, s) in &all {
        let init = &s[0];
        let end = &s[s.len() - 1];
        println!(
            "{n:<11} init: block 1 {:.3}, block {} {:.3}; end of epoch 1: block 1 {:.3}, last {:.3}",
            init[0],
            init.len(),
            init[init.len() - 1],
            end[0],
            end[end.len() - 1]
        );
    }
    Ok(())
}
