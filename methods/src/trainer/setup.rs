//! A run's set-up: the data, the model (with `--init-from` weights), the method built from its
//! hyperparameters and its `prepare` hook, everything on the training device.

use autograd::{DType, Device, Error, Result};
use layers::models::{self, ModelOptions};
use layers::{rng, Module, ModuleExt};

use crate::config::TrainConfig;
use crate::data::{open_data, Data, DataConfig};
use crate::hparams::Hparams;
use crate::registry::{Method, MethodSpec, RunInfo, Training};

/// A run's configuration, data, model and method, ready to train.
pub(crate) struct Run {
    pub(crate) cfg: TrainConfig,
    pub(crate) data: Data,
    pub(crate) info: RunInfo,
    pub(crate) model: Box<dyn Module>,
    pub(crate) method: Box<dyn Method>,
    pub(crate) training: Training,
    pub(crate) device: Device,
    /// Lines for the summary from the set-up (what `--init-from` loaded).
    pub(crate) notes: Vec<(String, String)>,
}

/// Opens the data and builds the model and the method of `cfg` (with `workers` loader threads):
/// the model from its seed, then the `--init-from` weights, then the method's `prepare` hook,
/// then the move to the device.
pub(crate) fn setup(spec: &MethodSpec, cfg: &TrainConfig, workers: usize) -> Result<Run> {
    if spec.name != cfg.method {
        return Err(Error::invalid(
            "train",
            format!("the configuration is for method {:?}, not {}", cfg.method, spec.name),
        ));
    }
    crate::checks::check_config(cfg)?;
    let hp = Hparams::from_values(spec.name, spec.hparams, &cfg.hparams)?;
    let device = cfg.device()?;
    let precision = cfg.matmul_precision()?;
    autograd::backends::cpu::set_matmul_precision(precision)
        .map_err(|e| Error::invalid("--precision", e.to_string()))?;
    if precision == autograd::backends::cpu::MatmulPrecision::Bf16 {
        if let Some(why) = autograd::backends::cpu::bf16_slower_reason() {
            crate::errln!("warning: {why}");
        }
    }
    if cfg.epochs == 0 && spec.training == Training::Required {
        return Err(Error::invalid(
            "--epochs",
            format!("method {} needs training: --epochs 0 is only for methods that convert a trained network without training", spec.name),
        ));
    }
    let data = open_data(&DataConfig {
        dataset: cfg.dataset.clone(),
        data_dir: cfg.data_dir.clone(),
        batch_size: cfg.batch_size,
        seed: cfg.seed,
        val_fraction: cfg.val_fraction,
        train_limit: cfg.train_limit,
        test_limit: cfg.test_limit,
        workers,
        image_folder: crate::checks::image_folder_options(cfg),
    })?;
    let info = RunInfo {
        model: cfg.model.clone(),
        width: cfg.width,
        dataset: cfg.dataset.clone(),
        num_classes: data.num_classes,
        input_shape: data.input_shape,
        epochs: cfg.epochs,
        steps_per_epoch: data.train.len(),
        seed: cfg.seed,
        device,
    };
    let opts = ModelOptions::new(data.num_classes, data.input_shape[0], cfg.seed).width(cfg.width);
    let mut model = models::build_with(&cfg.model, &opts)?;
    let mut notes = data.notes.clone();
    if let Some(path) = &cfg.init_from {
        let report = layers::pretrained::load_pretrained(model.as_ref(), path, &Default::default())
            .map_err(|e| Error::invalid("--init-from", e.to_string()))?;
        notes.push(("init-from".to_string(), report.to_string()));
    }
    let mut method = (spec.build)(&hp, &info)?;
    rng::with_seed(cfg.seed ^ 0x5EED, || method.prepare(&mut model, &info))?;
    model.convert(DType::F32, device)?;
    Ok(Run { cfg: cfg.clone(), data, info, model, method, training: spec.training, device, notes })
}
