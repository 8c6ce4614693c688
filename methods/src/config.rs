//! The resolved configuration of a training run (method defaults overridden by the command
//! line), saved as `config.json` in the run folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autograd::{Device, Error, Result};
use serde::{Deserialize, Serialize};

use crate::hparams::Hparams;
use crate::registry::{Defaults, MethodSpec};

/// Everything that determines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Method name.
    pub method: String,
    /// The preset the defaults came from (`--preset`), if any.
    #[serde(default)]
    pub preset: Option<String>,
    /// Model name.
    pub model: String,
    /// Width multiplier of the model's channels.
    #[serde(default = "one")]
    pub width: f64,
    /// Dataset name.
    pub dataset: String,
    /// Folder of the dataset's files.
    pub data_dir: Option<PathBuf>,
    /// Number of epochs.
    pub epochs: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// `sgd`, `adam` or `adamw`.
    pub optimizer: String,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum or Adam's β1.
    pub momentum: f64,
    /// Weight decay (not applied to biases and normalization parameters).
    pub weight_decay: f64,
    /// LR schedule (see [`Defaults::schedule`](crate::registry::Defaults::schedule)).
    pub schedule: String,
    /// Label smoothing of the cross-entropy loss.
    pub label_smoothing: f64,
    /// Seed of initialization, data order, augmentation and masks.
    pub seed: u64,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Fraction of the training set held out for validation and checkpoint selection.
    pub val_fraction: f64,
    /// Use only the first N training images.
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    pub test_limit: Option<usize>,
    /// Evaluate the test set every N epochs for the curves (0: only the selected weights after
    /// training, which the summary always reports).
    #[serde(default = "one_usize")]
    pub test_every: usize,
    /// The method's hyperparameters (`--set key=value` applied to its defaults).
    pub hparams: BTreeMap<String, String>,
    /// Weights loaded before the method's `prepare` hook (`--init-from`): a Lamina checkpoint
    /// or a torchvision/timm safetensors file.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
}

fn one() -> f64 {
    1.0
}

fn one_usize() -> usize {
    1
}

impl TrainConfig {
    /// The configuration a method runs with when nothing is overridden.
    pub fn from_defaults(spec: &MethodSpec) -> TrainConfig {
        Self::from_recipe(spec, &spec.defaults, None)
    }

    /// The configuration of `spec` with preset `preset` (`small`, `paper`), or its own defaults
    /// for `None`; an unknown preset is an error listing the method's presets.
    pub fn from_spec(spec: &MethodSpec, preset: Option<&str>) -> Result<TrainConfig> {
        let Some(name) = preset else { return Ok(Self::from_defaults(spec)) };
        let p = spec.preset(name)?;
        let mut cfg = Self::from_recipe(spec, &p.defaults, Some(name));
        let mut h = Hparams::from_values(spec.name, spec.hparams, &cfg.hparams)?;
        for (k, v) in p.hparams {
            h.set(&format!("{k}={v}"))?;
        }
        cfg.hparams = h.values().clone();
        Ok(cfg)
    }

    fn from_recipe(spec: &MethodSpec, d: &Defaults, preset: Option<&str>) -> TrainConfig {
        TrainConfig {
            method: spec.name.into(),
            preset: preset.map(str::to_string),
            model: d.model.into(),
            width: d.width,
            dataset: d.dataset.into(),
            data_dir: None,
            epochs: d.epochs,
            batch_size: d.batch_size,
            optimizer: d.optimizer.into(),
            lr: d.lr,
            momentum: d.momentum,
            weight_decay: d.weight_decay,
            schedule: d.schedule.into(),
            label_smoothing: 0.0,
            seed: 0,
            device: "cpu".into(),
            val_fraction: d.val_fraction,
            train_limit: d.train_limit,
            test_limit: None,
            test_every: d.test_every,
            hparams: spec.default_hparams().values().clone(),
            init_from: None,
        }
    }

    /// The device to train on.
    pub fn device(&self) -> Result<Device> {
        Device::parse(&self.device)
    }

    /// Writes `config.json` into `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::invalid("config", e.to_string()))?;
        layers::state_dict::write_atomic(&dir.join("config.json"), text.as_bytes())
    }

    /// Reads `config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<TrainConfig> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::invalid("config", format!("{}: cannot read: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| Error::invalid("config", format!("{}: {e}", path.display())))
    }
}
