//! The command-line options that configure a training run, shared by `train` and `compare`:
//! a method's defaults (or a preset's), overridden by every option given.
//!
//! Every option either acts or is refused with the reason: `--momentum` under the one-cycle
//! schedule (which sets the momentum itself), options that would change a run being continued
//! with `--resume` ([`RunArgs::resume_config`]), training options given to `--eval-only`
//! ([`RunArgs::eval_config`]).

use std::path::PathBuf;

use autograd::{Error, Result};
use clap::Args;

use crate::config::{Difference, TrainConfig};
use crate::registry::MethodSpec;
use crate::schedule_spec::cycles_momentum;

/// The options `--resume` may change (everything else would make the continued run a different
/// run): more or fewer epochs, another device, the data moved to another folder, how often the
/// test set is evaluated for the curves.
pub const RESUME_MAY_CHANGE: [&str; 4] = ["--epochs", "--device", "--data-dir", "--test-every"];

/// The options `--eval-only` may set to other values than the run's `config.json`: which data
/// and how much of it, the device, the batch size and an image folder's sizes.
pub const EVAL_MAY_CHANGE: [&str; 8] = [
    "--dataset",
    "--data-dir",
    "--test-limit",
    "--device",
    "--batch-size",
    "--image-size",
    "--resize",
    "--skip-unreadable",
];

/// Options of one training run (every one overrides the method's default or preset).
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct RunArgs {
    /// Start from a named recipe of the method: `small` (the small reproduction protocol of
    /// methods/REPRODUCING.md) or `paper` (the paper's own recipe); other options override it.
    #[arg(long)]
    pub preset: Option<String>,
    /// Model (e.g. resnet8, resnet20, resnet18-cifar, vgg16-bn, mobilenetv2-cifar, vit-tiny-4, lenet5, mlp).
    #[arg(long)]
    pub model: Option<String>,
    /// Width multiplier of the model's channels (ResNets, VGG-BN, MobileNetV2, ViT embedding width).
    #[arg(long, allow_negative_numbers = true)]
    pub width: Option<f64>,
    /// Dataset (fashion-mnist-embedded, mnist, fashion-mnist, cifar10, cifar100, imagefolder, digits).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder holding the dataset's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of epochs (0: convert and evaluate, for methods that need no training).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Optimizer: sgd, adam or adamw.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Peak learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// SGD momentum (Adam's beta1).
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Weight decay (not applied to biases and normalization parameters).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// LR schedule: constant, cosine, onecycle, step:EPOCHS:GAMMA, multistep:E1,E2:GAMMA; prefix warmup=N, for N warm-up epochs.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Label smoothing of the cross-entropy loss.
    #[arg(long, allow_negative_numbers = true)]
    pub label_smoothing: Option<f64>,
    /// Seed of initialization, data order, augmentation and masks.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Fraction of the training set held out for validation and checkpoint selection.
    #[arg(long, allow_negative_numbers = true)]
    pub val_fraction: Option<f64>,
    /// Use only the first N training images (before the validation split).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images (quick runs).
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Evaluate the test set every N epochs for the curves (0: only after training).
    #[arg(long)]
    pub test_every: Option<usize>,
    /// Load these weights before the method changes the model: a Lamina checkpoint, or a
    /// torchvision/timm safetensors file (names matched; a classifier of another class count is re-initialized).
    #[arg(long, value_name = "CHECKPOINT")]
    pub init_from: Option<PathBuf>,
    /// A method hyperparameter, key=value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Side of the square images of --dataset imagefolder (training: random-resized crop to it;
    /// evaluation: resize, then center crop to it) [default: 224].
    #[arg(long, value_name = "PIXELS")]
    pub image_size: Option<usize>,
    /// The shorter side --dataset imagefolder's evaluation resizes to before its center crop
    /// [default: image size x 256/224].
    #[arg(long, value_name = "PIXELS")]
    pub resize: Option<usize>,
    /// Leave out an image folder's empty or unreadable files (listed in the summary) instead of
    /// failing on the first.
    #[arg(long)]
    pub skip_unreadable: bool,
    /// Precision of the CPU's matrix products: f32, or bf16 (operands rounded to bf16 with f32
    /// accumulation, weights and every other op f32; needs AVX512_BF16) [default: f32].
    #[arg(long, value_name = "f32|bf16")]
    pub precision: Option<String>,
}

/// The flags given among `flags`, as their names.
fn given(flags: &[(&'static str, bool)]) -> Vec<&'static str> {
    flags.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect()
}

impl RunArgs {
    /// The configuration of the registered method `method` with these options.
    pub fn config(&self, method: &str) -> Result<TrainConfig> {
        self.config_for(crate::registry::find(method)?, &self.set)
    }

    /// The configuration of `spec` with these options and the hyperparameter assignments `sets`
    /// (instead of `self.set`). `--momentum` under the one-cycle schedule is refused: one-cycle
    /// sets the momentum itself.
    pub fn config_for(&self, spec: &MethodSpec, sets: &[String]) -> Result<TrainConfig> {
        let mut cfg = TrainConfig::from_spec(spec, self.preset.as_deref())?;
        self.apply(&mut cfg, spec, sets)?;
        if self.momentum.is_some() && cycles_momentum(&cfg.schedule) {
            return Err(Error::invalid(
                "--momentum",
                format!(
                    "has no effect with --schedule {}: one-cycle sets the momentum (Adam's beta1) itself at every step, from 0.95 down to 0.85 and back; drop --momentum or choose another --schedule",
                    cfg.schedule
                ),
            ));
        }
        Ok(cfg)
    }

    /// The training flags given (they mean nothing to an evaluation).
    fn training_flags(&self) -> Vec<&'static str> {
        given(&[
            ("--epochs", self.epochs.is_some()),
            ("--optimizer", self.optimizer.is_some()),
            ("--lr", self.lr.is_some()),
            ("--momentum", self.momentum.is_some()),
            ("--weight-decay", self.weight_decay.is_some()),
            ("--schedule", self.schedule.is_some()),
            ("--label-smoothing", self.label_smoothing.is_some()),
            ("--val-fraction", self.val_fraction.is_some()),
            ("--train-limit", self.train_limit.is_some()),
            ("--init-from", self.init_from.is_some()),
            ("--test-every", self.test_every.is_some()),
        ])
    }

    /// `stored` with the options given here applied, and how it differs from `stored`; a
    /// difference in an option `may_change` does not list is refused (as `op`, `why` saying
    /// why the options must match).
    fn on_top_of(
        &self,
        method: Option<&str>,
        stored: &TrainConfig,
        may_change: &[&str],
        op: &'static str,
        why: &str,
    ) -> Result<(TrainConfig, Vec<Difference>)> {
        let spec = crate::registry::find(&stored.method)?;
        let mut cfg = stored.clone();
        self.apply(&mut cfg, spec, &self.set)?;
        if let Some(p) = &self.preset {
            cfg.preset = Some(p.clone());
        }
        if let Some(m) = method {
            cfg.method = m.to_string();
        }
        let diffs = stored.differences(&cfg);
        let refused: Vec<String> = diffs
            .iter()
            .filter(|d| !may_change.contains(&d.flag.as_str()))
            .map(|d| format!("{} {} (the run has {})", d.flag, d.now, d.was))
            .collect();
        if !refused.is_empty() {
            return Err(Error::invalid(
                op,
                format!("{why}: {}; only {} may change", refused.join(", "), may_change.join(", ")),
            ));
        }
        Ok((cfg, diffs))
    }

    /// The configuration `train --resume DIR` continues with: the run's own (`stored`, from
    /// its `config.json`) with the options given here that [`RESUME_MAY_CHANGE`] lists applied
    /// (each change described in the returned lines). Any other option whose value differs from
    /// the run's is refused, naming it: it would silently make the continued run another run.
    pub fn resume_config(&self, method: Option<&str>, stored: &TrainConfig) -> Result<(TrainConfig, Vec<String>)> {
        let why = "continues a run with its own configuration, and these options differ from it (start a new run to change them)";
        let (cfg, diffs) = self.on_top_of(method, stored, &RESUME_MAY_CHANGE, "--resume", why)?;
        let notes = diffs
            .iter()
            .map(|d| match d.flag.as_str() {
                "--epochs" => format!(
                    "--epochs {} -> {}: the run continues to epoch {} (the learning-rate schedule is laid out over the new length from the step it reached)",
                    d.was, d.now, d.now
                ),
                _ => format!("{} {} -> {}", d.flag, d.was, d.now),
            })
            .collect();
        Ok((cfg, notes))
    }

    /// The configuration `train --eval-only CHECKPOINT` evaluates with. With the run's
    /// `config.json` beside the checkpoint (`stored`), the model is the run's: the options
    /// [`EVAL_MAY_CHANGE`] lists may differ from it, the others (model, width, method, its
    /// hyperparameters, preset, seed) must match it. Without one, the model and data come from
    /// these options and the method's defaults. Training options (`--lr`, `--epochs`, ...) are
    /// refused either way: an evaluation does not train. The lines returned say where the
    /// configuration came from.
    pub fn eval_config(
        &self,
        method: Option<&str>,
        stored: Option<&TrainConfig>,
    ) -> Result<(TrainConfig, Vec<String>)> {
        let training = self.training_flags();
        if !training.is_empty() {
            return Err(Error::invalid(
                "--eval-only",
                format!("{} only affect training, and an evaluation does not train", training.join(", ")),
            ));
        }
        let Some(stored) = stored else {
            let cfg = self.config(method.unwrap_or("baseline"))?;
            let line = format!(
                "no config.json beside the checkpoint: evaluating it as method {}, model {}, on {}",
                cfg.method, cfg.model, cfg.dataset
            );
            return Ok((cfg, vec![line]));
        };
        let why = "the model comes from the checkpoint's run (config.json beside it), which was configured otherwise";
        let (cfg, diffs) = self.on_top_of(method, stored, &EVAL_MAY_CHANGE, "--eval-only", why)?;
        Ok((cfg, diffs.iter().map(|d| format!("{} {} (the run had {})", d.flag, d.now, d.was)).collect()))
    }

    /// Applies the options given here (and the assignments `sets`) to `cfg`, a configuration
    /// of `spec`.
    fn apply(&self, cfg: &mut TrainConfig, spec: &MethodSpec, sets: &[String]) -> Result<()> {
        macro_rules! take {
            ($($field:ident),*) => { $(if let Some(v) = &self.$field { cfg.$field = v.clone().into(); })* };
        }
        take!(
            model,
            width,
            dataset,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            weight_decay,
            schedule,
            label_smoothing,
            seed,
            device,
            val_fraction,
            test_every,
            precision
        );
        cfg.data_dir = self.data_dir.clone().or(cfg.data_dir.take());
        cfg.train_limit = self.train_limit.or(cfg.train_limit);
        cfg.test_limit = self.test_limit.or(cfg.test_limit);
        cfg.init_from = self.init_from.clone().or(cfg.init_from.take());
        cfg.image_size = self.image_size.or(cfg.image_size);
        cfg.resize = self.resize.or(cfg.resize);
        cfg.skip_unreadable |= self.skip_unreadable;
        let mut h = crate::hparams::Hparams::from_values(spec.name, spec.hparams, &cfg.hparams)?;
        for s in sets {
            h.set(s)?;
        }
        cfg.hparams = h.values().clone();
        Ok(())
    }
}
