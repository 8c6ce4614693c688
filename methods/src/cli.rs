//! The command-line options that configure a training run, shared by `train` and `compare`:
//! a method's defaults (or a preset's), overridden by every option given.

use std::path::PathBuf;

use autograd::Result;
use clap::Args;

use crate::config::TrainConfig;
use crate::registry::MethodSpec;

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
    #[arg(long)]
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
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum (Adam's beta1).
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay (not applied to biases and normalization parameters).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// LR schedule: constant, cosine, onecycle, step:EPOCHS:GAMMA, multistep:E1,E2:GAMMA; prefix warmup=N, for N warm-up epochs.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Label smoothing of the cross-entropy loss.
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Seed of initialization, data order, augmentation and masks.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Fraction of the training set held out for validation and checkpoint selection.
    #[arg(long)]
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
}

impl RunArgs {
    /// The configuration of the registered method `method` with these options.
    pub fn config(&self, method: &str) -> Result<TrainConfig> {
        self.config_for(crate::registry::find(method)?, &self.set)
    }

    /// The configuration of `spec` with these options and the hyperparameter assignments `sets`
    /// (instead of `self.set`).
    pub fn config_for(&self, spec: &MethodSpec, sets: &[String]) -> Result<TrainConfig> {
        let mut cfg = TrainConfig::from_spec(spec, self.preset.as_deref())?;
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
            test_every
        );
        cfg.data_dir = self.data_dir.clone().or(cfg.data_dir);
        cfg.train_limit = self.train_limit.or(cfg.train_limit);
        cfg.test_limit = self.test_limit.or(cfg.test_limit);
        cfg.init_from = self.init_from.clone();
        let mut h = crate::hparams::Hparams::from_values(spec.name, spec.hparams, &cfg.hparams)?;
        for s in sets {
            h.set(s)?;
        }
        cfg.hparams = h.values().clone();
        Ok(cfg)
    }
}
