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
    /// Side of the square images of an image folder (`--image-size`; `None`: 224).
    #[serde(default)]
    pub image_size: Option<usize>,
    /// The shorter side an image folder's evaluation resizes to before its center crop
    /// (`--resize`; `None`: `image_size * 256 / 224`).
    #[serde(default)]
    pub resize: Option<usize>,
    /// Leave out an image folder's empty or unreadable files instead of failing
    /// (`--skip-unreadable`).
    #[serde(default)]
    pub skip_unreadable: bool,
    /// How the CPU's f32 matrix products multiply (`--precision`): `f32` (the default), or
    /// `bf16` (operands rounded to bf16, f32 accumulation, every tensor and the weights f32; CPUs
    /// with AVX512_BF16).
    #[serde(default = "f32_precision")]
    pub precision: String,
}

/// One option on which two configurations differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The command-line flag that sets it (`--lr`, `--set p`).
    pub flag: String,
    /// The first configuration's value, as text.
    pub was: String,
    /// The second configuration's value, as text.
    pub now: String,
}

fn show(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "none".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn one() -> f64 {
    1.0
}

fn one_usize() -> usize {
    1
}

fn f32_precision() -> String {
    "f32".into()
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
            image_size: None,
            resize: None,
            skip_unreadable: false,
            precision: f32_precision(),
        }
    }

    /// The options on which `self` and `other` differ, named by their flags (`--lr`, and
    /// `--set KEY` for a method hyperparameter), sorted by name.
    ///
    /// ```
    /// use methods::config::TrainConfig;
    /// let a = TrainConfig::from_defaults(methods::registry::find("baseline").unwrap());
    /// let mut b = a.clone();
    /// b.lr = 0.05;
    /// b.train_limit = Some(100);
    /// let d = a.differences(&b);
    /// assert_eq!(d.iter().map(|d| d.flag.as_str()).collect::<Vec<_>>(), ["--lr", "--train-limit"]);
    /// assert_eq!((d[1].was.as_str(), d[1].now.as_str()), ("none", "100"));
    /// ```
    pub fn differences(&self, other: &TrainConfig) -> Vec<Difference> {
        let (Ok(a), Ok(b)) = (serde_json::to_value(self), serde_json::to_value(other)) else { return Vec::new() };
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return Vec::new() };
        let mut out = Vec::new();
        for (key, va) in a {
            let vb = b.get(key);
            if Some(va) == vb {
                continue;
            }
            if key == "hparams" {
                let empty = serde_json::Map::new();
                let ha = va.as_object().unwrap_or(&empty);
                let hb = vb.and_then(|v| v.as_object()).unwrap_or(&empty);
                let mut keys: Vec<&String> = ha.keys().chain(hb.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    if ha.get(k) != hb.get(k) {
                        out.push(Difference { flag: format!("--set {k}"), was: show(ha.get(k)), now: show(hb.get(k)) });
                    }
                }
                continue;
            }
            out.push(Difference { flag: format!("--{}", key.replace('_', "-")), was: show(Some(va)), now: show(vb) });
        }
        out
    }

    /// The device to train on.
    pub fn device(&self) -> Result<Device> {
        Device::parse(&self.device)
    }

    /// The matrix-product precision `--precision` names (`f32` or `bf16`); bf16 is a CPU mode.
    pub fn matmul_precision(&self) -> Result<autograd::backends::cpu::MatmulPrecision> {
        use autograd::backends::cpu::MatmulPrecision;
        match self.precision.as_str() {
            "f32" => Ok(MatmulPrecision::F32),
            "bf16" if self.device()? != Device::Cpu => Err(Error::invalid(
                "--precision",
                format!("bf16 products are a CPU mode; this run's device is {}", self.device),
            )),
            "bf16" => Ok(MatmulPrecision::Bf16),
            other => Err(Error::invalid("--precision", format!("unknown precision {other:?}; valid: f32, bf16"))),
        }
    }

    /// Writes `config.json` into `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::invalid("config", e.to_string()))?;
        layers::state_dict::write_atomic(&dir.join("config.json"), text.as_bytes())
    }

    /// Reads `config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<TrainConfig> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                format!("{}: no such file: {} is not a run folder", path.display(), dir.display())
            } else {
                format!("{}: cannot read: {e}", path.display())
            };
            Error::invalid("config", what)
        })?;
        serde_json::from_str(&text).map_err(|e| Error::invalid("config", format!("{}: {e}", path.display())))
    }
}
