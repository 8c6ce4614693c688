//! The registry entries `moee` and `moefication`: phase `extract` (no epochs: capture, cluster,
//! extract, convert the MLPs, evaluate) and phase `finetune` (the run's epochs, optimizer and
//! learning rate, routing frozen); the structure is kept in the method state so `--resume` and
//! `--eval-only` rebuild it.

use std::time::Instant;

use autograd::{DType, Error, Result, Tensor};
use layers::mac::count_macs;
use layers::models::{self, ModelOptions};
use layers::moe::MoeMlp;
use layers::state_dict::{load_state_dict, Strictness};
use layers::{Module, ModuleExt};
use serde::{Deserialize, Serialize};

use super::capture::{capture, mlp_paths, Capture, CaptureOptions};
use super::convert::{apply_plans, plan_moee, plan_moefication, BlockPlan};
use super::shipped;
use crate::cluster::HdbscanOptions;
use crate::hparams::{HparamSpec, Hparams};
use crate::registry::{Defaults, Method, MethodSpec, MethodState, Phase, PhaseContext, Preset, RunInfo, Training};

/// How the calibration tokens' hidden activations are clustered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clustering {
    /// HDBSCAN (the paper): `min_cluster_size` (`None`: 1 % of the sampled tokens) and
    /// `min_samples` (`None`: `min_cluster_size`).
    Hdbscan {
        /// Smallest cluster.
        min_cluster_size: Option<usize>,
        /// Core-distance neighbour count.
        min_samples: Option<usize>,
    },
    /// k-means with `k` clusters (an option, not the paper's).
    Kmeans {
        /// Number of clusters.
        k: usize,
    },
}

impl Clustering {
    /// HDBSCAN's options for `n` sampled tokens.
    pub fn hdbscan_options(min_cluster_size: Option<usize>, min_samples: Option<usize>, n: usize) -> HdbscanOptions {
        let mcs = min_cluster_size.unwrap_or((n as f64 * 0.01).round() as usize).max(2);
        HdbscanOptions { min_cluster_size: mcs, min_samples: min_samples.map(|m| m.min(n.max(1))) }
    }
}

/// The MoEfication baseline's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moefication {
    /// Experts per MLP (equal sizes).
    pub experts: usize,
    /// Fraction of hidden neurons active per token (`None`: the MoEE extraction's, per layer).
    pub active: Option<f64>,
}

/// Everything `moee` (and `moefication`) is configured by.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeeConfig {
    /// Cumulative-variance share `p` of an expert.
    pub p: f64,
    /// The clustering.
    pub clustering: Clustering,
    /// Tokens sampled per block.
    pub tokens: usize,
    /// Calibration images (training images, first batches of epoch 0).
    pub images: usize,
    /// Whether class tokens are sampled.
    pub cls: bool,
    /// The bias-folding ablation.
    pub fold_bias: bool,
    /// Load the shipped ViT when the run did not load weights (`--init-from`).
    pub shipped: bool,
    /// `Some`: build the MoEfication baseline at the MoEE extraction's MACs instead.
    pub moefication: Option<Moefication>,
}

impl MoeeConfig {
    /// The configuration from the hyperparameters.
    pub fn from_hparams(h: &Hparams, moefication: bool) -> Result<MoeeConfig> {
        let auto = |key: &str| -> Result<Option<usize>> {
            match h.str(key)? {
                "auto" => Ok(None),
                _ => h.usize(key).map(Some),
            }
        };
        let clustering = match h.str("clustering")? {
            "hdbscan" => {
                Clustering::Hdbscan { min_cluster_size: auto("min_cluster_size")?, min_samples: auto("min_samples")? }
            }
            "kmeans" => Clustering::Kmeans { k: h.usize("k")? },
            s => return Err(Error::invalid("--set", format!("clustering = {s:?}; expected hdbscan or kmeans"))),
        };
        let p = h.f64("p")?;
        if !(p > 0.0 && p <= 1.0) {
            return Err(Error::invalid("--set", format!("p = {p} must be in (0, 1]")));
        }
        let shipped = match h.str("checkpoint")? {
            "auto" => true,
            "none" => false,
            s => return Err(Error::invalid("--set", format!("checkpoint = {s:?}; expected auto or none"))),
        };
        let moefication = if moefication {
            let active = match h.str("active")? {
                "auto" => None,
                _ => Some(h.f64("active")?),
            };
            Some(Moefication { experts: h.usize("experts")?, active })
        } else {
            None
        };
        Ok(MoeeConfig {
            p,
            clustering,
            tokens: h.usize("tokens")?,
            images: h.usize("images")?,
            cls: h.bool("cls")?,
            fold_bias: h.bool("fold_bias")?,
            shipped,
            moefication,
        })
    }
}

/// Accuracy and cost measured around the extraction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtractionReport {
    /// Test accuracy of the dense model.
    pub dense_test_acc: f64,
    /// MACs per image of the dense model.
    pub dense_macs: u64,
    /// Parameters of the dense model.
    pub dense_params: usize,
    /// Test accuracy of the extracted model before fine-tuning.
    pub extracted_test_acc: f64,
    /// MACs per image of the extracted model, averaged over up to 512 test images (routing
    /// makes them depend on the data).
    pub extracted_macs: f64,
    /// Parameters of the extracted model.
    pub extracted_params: usize,
    /// Calibration images run.
    pub calibration_images: usize,
    /// Seconds spent capturing activations.
    pub capture_seconds: f64,
    /// Seconds spent clustering and extracting.
    pub cluster_seconds: f64,
    /// Whether the shipped checkpoint was loaded.
    pub shipped_checkpoint: bool,
}

/// The hooks of `moee` / `moefication`.
pub struct MoeeMethod {
    /// Its configuration.
    pub config: MoeeConfig,
    /// The structure decided for every MLP (empty before extraction).
    pub blocks: Vec<BlockPlan>,
    /// The extraction's measurements.
    pub report: ExtractionReport,
    shipped_loaded: bool,
}

impl MoeeMethod {
    /// A method with `config`, nothing extracted yet.
    pub fn new(config: MoeeConfig) -> MoeeMethod {
        MoeeMethod { config, blocks: Vec::new(), report: ExtractionReport::default(), shipped_loaded: false }
    }

    /// Clusters and extracts every captured MLP.
    pub fn plan(&self, model: &dyn Module, captures: &[Capture], seed: u64) -> Result<Vec<BlockPlan>> {
        captures
            .iter()
            .map(|cap| {
                let moee = plan_moee(model, cap, &self.config, seed)?;
                match self.config.moefication {
                    Some(m) => plan_moefication(model, &moee, m, seed),
                    None => Ok(moee),
                }
            })
            .collect()
    }
}

fn opts_of(run: &RunInfo) -> ModelOptions {
    ModelOptions::new(run.num_classes, run.input_shape[0], run.seed).width(run.width)
}

/// Whether `model` still holds the initialization `run` builds (no `--init-from` loaded).
fn at_initialization(model: &dyn Module, run: &RunInfo) -> Result<bool> {
    let fresh = models::build_with(&run.model, &opts_of(run))?;
    let (a, b) = (model.state_dict(), fresh.state_dict());
    if a.len() != b.len() {
        return Ok(false);
    }
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        if na != nb || ta.shape() != tb.shape() || ta.to_f64_vec()? != tb.to_f64_vec()? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// MACs per image of `model`, averaged over the first batches of `loader` (up to `max_images`).
fn mean_macs(
    model: &dyn Module,
    loader: &datasets::Loader,
    device: autograd::Device,
    max_images: usize,
) -> Result<f64> {
    let (mut macs, mut n) = (0u64, 0usize);
    for batch in loader.epoch(0) {
        let batch = batch.map_err(|e| Error::invalid("dataset", e.to_string()))?;
        let (x, _) = crate::data::batch_tensors(&batch, device)?;
        macs += count_macs(model, &x)?.total_macs;
        n += batch.n;
        loader.recycle(batch);
        if n >= max_images {
            break;
        }
    }
    Ok(macs as f64 / n.max(1) as f64)
}

impl Method for MoeeMethod {
    fn prepare(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<()> {
        if mlp_paths(model.as_ref()).is_empty() {
            return Err(Error::invalid(
                "moee",
                format!(
                    "model {} has no transformer MLP to split into experts; use a ViT (vit-mini-4, vit-tiny-4, ...)",
                    run.model
                ),
            ));
        }
        if self.config.shipped && at_initialization(model.as_ref(), run)? {
            shipped::load(model.as_ref(), run)?;
            self.shipped_loaded = true;
        }
        Ok(())
    }

    fn phases(&self, run: &RunInfo) -> Vec<Phase> {
        let mut v = vec![Phase::new("extract", 0)];
        if run.epochs > 0 {
            v.push(Phase::new("finetune", run.epochs));
        }
        v
    }

    fn start_phase(&mut self, model: &mut Box<dyn Module>, ctx: &PhaseContext<'_>) -> Result<()> {
        if ctx.at.phase != 0 {
            return Ok(());
        }
        let (run, data) = (ctx.run, ctx.data);
        let mut report = ExtractionReport { shipped_checkpoint: self.shipped_loaded, ..Default::default() };
        report.dense_test_acc = crate::trainer::evaluate(model.as_ref(), &data.test, run.device)?.acc;
        let [c, h, w] = run.input_shape;
        let one = Tensor::zeros(&[1, c, h, w]).to_device(run.device)?;
        report.dense_macs = count_macs(model.as_ref(), &one)?.total_macs;
        report.dense_params = model.num_parameters();
        let t0 = Instant::now();
        let batch = data.train.config().batch_size.max(1);
        let batches: Vec<Tensor> =
            ctx.train_batches(self.config.images.div_ceil(batch))?.into_iter().map(|(x, _)| x).collect();
        report.calibration_images = batches.iter().map(|b| b.shape()[0]).sum();
        let opts = CaptureOptions { max_tokens: self.config.tokens, cls: self.config.cls, seed: run.seed };
        let captures = capture(model, &batches, opts)?;
        drop(batches);
        report.capture_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        self.blocks = self.plan(model.as_ref(), &captures, run.seed)?;
        drop(captures);
        apply_plans(model, &self.blocks)?;
        model.convert(DType::F32, run.device)?;
        report.cluster_seconds = t1.elapsed().as_secs_f64();
        report.extracted_test_acc = crate::trainer::evaluate(model.as_ref(), &data.test, run.device)?.acc;
        report.extracted_macs = mean_macs(model.as_ref(), &data.test, run.device, 512)?;
        report.extracted_params = model.num_parameters();
        self.report = report;
        Ok(())
    }

    fn restore_phase(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo, _phase: usize) -> Result<()> {
        apply_plans(model, &self.blocks)
    }

    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        if !self.blocks.iter().any(BlockPlan::is_moe) {
            return Ok(None);
        }
        let mut form = models::build_with(&run.model, &opts_of(run))?;
        apply_plans(&mut form, &self.blocks)?;
        form.convert(DType::F32, run.device)?;
        load_state_dict(form.as_ref(), &model.state_dict(), Strictness::Strict)?;
        let paths: Vec<String> = self.blocks.iter().filter(|b| b.is_moe()).map(|b| b.path.clone()).collect();
        for path in paths {
            let slot = form.replace_module(&path, Box::new(layers::Identity))?;
            let mut moe =
                slot.into_any().downcast::<MoeMlp>().map_err(|_| Error::invalid("moee", "not an MoE layer"))?;
            moe.gather_experts()?;
            form.replace_module(&path, moe)?;
        }
        Ok(Some(form))
    }

    fn finish(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        let r = &self.report;
        let pct = |a: f64| format!("{:.2}%", 100.0 * a);
        let moe: Vec<&BlockPlan> = self.blocks.iter().filter(|b| b.is_moe()).collect();
        let mut lines = vec![
            ("dense test accuracy".into(), pct(r.dense_test_acc)),
            ("extracted, before fine-tuning".into(), pct(r.extracted_test_acc)),
            (
                "MACs / image (dense -> extracted)".into(),
                format!(
                    "{} -> {} ({:+.1}%; extracted: mean over up to 512 test images)",
                    layers::mac::human(r.dense_macs as f64),
                    layers::mac::human(r.extracted_macs),
                    100.0 * (r.extracted_macs / r.dense_macs.max(1) as f64 - 1.0)
                ),
            ),
            (
                "parameters (dense -> extracted)".into(),
                format!(
                    "{} -> {} ({:+.1}%)",
                    r.dense_params,
                    r.extracted_params,
                    100.0 * (r.extracted_params as f64 / r.dense_params.max(1) as f64 - 1.0)
                ),
            ),
            ("MoE blocks".into(), format!("{} of {} (the rest stay dense)", moe.len(), self.blocks.len())),
        ];
        for b in &self.blocks {
            lines.push((b.path.clone(), b.describe()));
        }
        lines.push((
            "calibration".into(),
            format!(
                "{} images, capture {:.1} s, clustering + extraction {:.1} s{}",
                r.calibration_images,
                r.capture_seconds,
                r.cluster_seconds,
                if r.shipped_checkpoint { "; started from the shipped checkpoint" } else { "" }
            ),
        ));
        Ok(lines)
    }

    fn state(&self) -> Result<MethodState> {
        let mut tensors = Vec::new();
        for b in self.blocks.iter().filter(|b| b.is_moe()) {
            tensors.extend(b.tensors()?);
        }
        let meta = serde_json::json!({ "blocks": self.blocks, "report": self.report });
        Ok(MethodState { meta, tensors })
    }

    fn load_state(&mut self, state: &MethodState) -> Result<()> {
        if state.meta.is_null() {
            return Ok(());
        }
        let bad = |e: serde_json::Error| Error::invalid("moee", format!("saved method state: {e}"));
        self.report = serde_json::from_value(state.meta["report"].clone()).map_err(bad)?;
        let mut blocks: Vec<BlockPlan> = serde_json::from_value(state.meta["blocks"].clone()).map_err(bad)?;
        for b in blocks.iter_mut().filter(|b| b.is_moe()) {
            b.load_tensors(state)?;
        }
        self.blocks = blocks;
        Ok(())
    }
}

/// `moee`'s defaults: the shipped ViT-Mini/4 on CIFAR-10, fine-tuned for 2 epochs on the
/// first 10,000 training images (9,000 + 1,000 for validation) with AdamW at 1e-4 (cosine,
/// weight decay 0.05), tested on the full test set. Minutes on two cores; needs
/// `--data-dir` (the folder with CIFAR-10's `.bin` files) or `LAMINA_DATA`.
pub const MOEE_DEFAULTS: Defaults = Defaults {
    model: shipped::MODEL,
    width: 1.0,
    dataset: "cifar10",
    train_limit: Some(10_000),
    val_fraction: 0.1,
    test_every: 1,
    epochs: 2,
    batch_size: 128,
    optimizer: "adamw",
    lr: 1e-4,
    momentum: 0.9,
    weight_decay: 0.05,
    schedule: "cosine",
};

/// `--preset full`: the fine-tune on the full training set (45,000 + 5,000), 5 epochs.
pub const FULL: Preset = Preset {
    name: "full",
    about: "fine-tune on all 50k CIFAR-10 training images (45k + 5k validation) for 5 epochs",
    defaults: Defaults { train_limit: None, epochs: 5, ..MOEE_DEFAULTS },
    hparams: &[],
};

const HPARAMS: &[HparamSpec] = &[
    HparamSpec { key: "p", default: "0.9", help: "cumulative share of in-cluster activation variance an expert keeps" },
    HparamSpec { key: "clustering", default: "hdbscan", help: "hdbscan (the paper) | kmeans" },
    HparamSpec {
        key: "min_cluster_size",
        default: "auto",
        help: "HDBSCAN's smallest cluster; auto = 1% of the sampled tokens",
    },
    HparamSpec {
        key: "min_samples",
        default: "auto",
        help: "HDBSCAN's core-distance neighbours; auto = min_cluster_size",
    },
    HparamSpec { key: "k", default: "8", help: "clusters of clustering=kmeans" },
    HparamSpec {
        key: "tokens",
        default: "4096",
        help: "tokens sampled per block (memory: tokens x (d + D) floats, n^2 doubles to cluster)",
    },
    HparamSpec { key: "images", default: "1024", help: "calibration images (first training batches)" },
    HparamSpec { key: "cls", default: "true", help: "sample class tokens too" },
    HparamSpec {
        key: "fold_bias",
        default: "false",
        help: "fold dropped neurons' cluster-mean output into a per-expert bias (ablation)",
    },
    HparamSpec {
        key: "checkpoint",
        default: "auto",
        help: "auto: the shipped ViT when --init-from loaded nothing; none: the model as built",
    },
];

const MOEFICATION_HPARAMS: &[HparamSpec] = &[
    HPARAMS[0],
    HPARAMS[1],
    HPARAMS[2],
    HPARAMS[3],
    HPARAMS[4],
    HPARAMS[5],
    HPARAMS[6],
    HPARAMS[7],
    HPARAMS[8],
    HPARAMS[9],
    HparamSpec { key: "experts", default: "16", help: "equal-size experts per MLP" },
    HparamSpec {
        key: "active",
        default: "auto",
        help: "fraction of hidden neurons per token; auto = MoEE's at the same p, per layer",
    },
];

/// `moee`: mixture-of-experts extraction from a trained ViT.
pub static MOEE: MethodSpec = MethodSpec {
    name: "moee",
    description:
        "MoEE (2025): HDBSCAN-cluster a trained ViT's MLP activations, extract variance experts, cosine top-1 routing",
    defaults: MOEE_DEFAULTS,
    presets: &[FULL],
    training: Training::Optional,
    hparams: HPARAMS,
    build: |h, _| Ok(Box::new(MoeeMethod::new(MoeeConfig::from_hparams(h, false)?))),
};

/// `moefication`: the MoEfication baseline at the MoEE extraction's MACs.
pub static MOEFICATION: MethodSpec = MethodSpec {
    name: "moefication",
    description: "MoEfication baseline (2022): equal-size experts by balanced k-means on fc1 rows, at MoEE's MACs",
    defaults: MOEE_DEFAULTS,
    presets: &[FULL],
    training: Training::Optional,
    hparams: MOEFICATION_HPARAMS,
    build: |h, _| Ok(Box::new(MoeeMethod::new(MoeeConfig::from_hparams(h, true)?))),
};

/// The two entries, in registry order.
pub static SPECS: [&MethodSpec; 2] = [&MOEE, &MOEFICATION];
