//! The method registry and the lifecycle every method plugs into the trainer through.
//!
//! A method is a [`MethodSpec`] (static data: name, defaults, presets, hyperparameters) plus a
//! [`Method`] object built from its hyperparameters. The trainer calls the [`Method`] hooks at
//! fixed points and nowhere else; a method never edits the trainer. Every hook has a do-nothing
//! default.
//!
//! # The lifecycle
//!
//! | hook | when the trainer calls it | what it may change |
//! |---|---|---|
//! | [`Method::prepare`] | once per process, after the model is built and `--init-from` weights are loaded, before the model moves to its device; also before `--resume` and `--eval-only` load their weights | the model's structure (must depend only on the configuration and the loaded weights) |
//! | [`Method::phases`] | once, after `prepare` | nothing: it lists the phases (names, epochs, optimizer and schedule of each) |
//! | [`Method::start_phase`] | at the start of each phase of a run, model on its device, data at hand; *not* again when `--resume` continues inside that phase | weights, structure, the method's own state (prune and rewind, fold, quantize, extract, score at initialization) |
//! | [`Method::restore_phase`] | on `--resume` and `--eval-only`, after [`Method::load_state`] and before the weights are loaded | the structure `start_phase` built for the phases up to this one |
//! | [`Method::configure_optimizer`] | whenever a phase builds its optimizer (after `start_phase`) | the parameter groups: which parameters, their learning rate and weight decay |
//! | [`Method::loss`] | every training step, after the forward pass | the loss that is differentiated (task loss in hand, with logits, labels and images) |
//! | [`Method::after_backward`] | every step, gradients present, before the optimizer step | gradients (masks, RigL's dense gradients, statistics), optimizer state |
//! | [`Method::after_step`] | every step, after the optimizer step, before gradients are cleared | weights (re-applied masks), optimizer state, schedules of the method |
//! | [`Method::end_epoch`] | after each epoch's training, before its evaluation | weights, optimizer state, method state |
//! | [`Method::inference_form`] | at every evaluation (per-epoch validation and test, final test, `--eval-only`) and for the exported `inference.safetensors` | nothing: returns the converted model (BN folded, integer, compressed, extracted, sparse) or `None` to evaluate the trained model itself |
//! | [`Method::finish`] | once after training, with the selected weights loaded, before the final test | the trained model; returns lines for the summary |
//! | [`Method::state`] / [`Method::load_state`] | at every checkpoint / when one is loaded | the method's own state (masks, counters, random streams) |
//!
//! Parameters and buffers of modules a method inserts are saved with the model; anything else a
//! method must carry across `--resume` goes into its [`MethodState`], which the checkpoint stores
//! beside the weights (tensors under `method.`) and restores bit-exactly.

use autograd::{Device, Error, Result, Tensor};
use layers::optim::{Optimizer, ParamGroup};
use layers::Module;

use crate::data::Data;
use crate::hparams::{HparamSpec, Hparams};

/// Training defaults of a method (each can be overridden on the command line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Defaults {
    /// Model name (see `layers::models`).
    pub model: &'static str,
    /// Width multiplier of the model's channels (1.0: the published architecture).
    pub width: f64,
    /// Dataset name (see `datasets::DATASET_NAMES`).
    pub dataset: &'static str,
    /// Use only the first N training images (before the validation split), if set.
    pub train_limit: Option<usize>,
    /// Fraction of the training images held out for validation and checkpoint selection.
    pub val_fraction: f64,
    /// Evaluate the test set every N epochs (0: only the selected weights, after training).
    pub test_every: usize,
    /// Number of epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// `sgd`, `adam` or `adamw`.
    pub optimizer: &'static str,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum (β1 for Adam).
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// LR schedule: `constant`, `cosine`, `step:EPOCHS:GAMMA`, `multistep:E1,E2:GAMMA`, `onecycle`;
    /// prefix `warmup=N,` for N warm-up epochs.
    pub schedule: &'static str,
}

/// The defaults most methods start from when no preset is named: a CIFAR-style ResNet-8 on the
/// embedded Fashion-MNIST, sized to finish in a few minutes on two cores.
pub const SMALL_DEFAULTS: Defaults = Defaults {
    model: "resnet8",
    width: 1.0,
    dataset: "fashion-mnist-embedded",
    train_limit: None,
    val_fraction: 0.1,
    test_every: 1,
    epochs: 4,
    batch_size: 128,
    optimizer: "sgd",
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 5e-4,
    schedule: "onecycle",
};

/// A named recipe of a method (`--preset NAME`): training defaults and hyperparameter values
/// that replace the method's own before the command line's overrides apply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// `small` (the project's small reproduction protocol) or `paper` (the paper's own recipe).
    pub name: &'static str,
    /// One line for `--list-methods`.
    pub about: &'static str,
    /// The training recipe.
    pub defaults: Defaults,
    /// `(key, value)` hyperparameter assignments.
    pub hparams: &'static [(&'static str, &'static str)],
}

/// Whether a method trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Training {
    /// The method needs training (`--epochs 0` is refused).
    Required,
    /// The method converts a trained network without training (HASTE): `--epochs 0` means
    /// "convert and evaluate"; with more epochs the converted model is fine-tuned.
    Optional,
}

/// What a method knows of the run when it is built and in its hooks.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// Model name.
    pub model: String,
    /// Width multiplier of the model.
    pub width: f64,
    /// Dataset name.
    pub dataset: String,
    /// Number of classes.
    pub num_classes: usize,
    /// `[C, H, W]` of the model's input.
    pub input_shape: [usize; 3],
    /// Number of epochs asked for (`--epochs`); the phases divide or repeat them.
    pub epochs: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// The run's seed.
    pub seed: u64,
    /// The training device.
    pub device: Device,
}

/// Where the trainer is when it calls a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Index of the current phase (0-based, into [`Method::phases`]).
    pub phase: usize,
    /// Current epoch of the whole run (0-based, counting every phase's epochs).
    pub epoch: usize,
    /// Current epoch within the phase (0-based).
    pub phase_epoch: usize,
    /// Optimizer steps done so far in the whole run.
    pub step: usize,
}

/// One phase of a run: its name (written with its metrics), its length, and how its optimizer
/// and learning-rate schedule start. Every phase builds a fresh optimizer (through
/// [`Method::configure_optimizer`]) and a fresh schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Name (`train`, `prune-1`, `qat`, `finetune`, ...).
    pub name: String,
    /// Number of epochs.
    pub epochs: usize,
    /// Peak learning rate, if not the run's `--lr`.
    pub lr: Option<f64>,
    /// Schedule (same syntax as `--schedule`), if not the run's.
    pub schedule: Option<String>,
    /// The number of epochs the schedule is laid out over (default: this phase's epochs).
    pub schedule_epochs: Option<usize>,
    /// The epoch of that schedule the phase starts at (0: from the beginning; `k`: learning-rate
    /// rewinding to epoch `k`).
    pub schedule_start: usize,
}

impl Phase {
    /// A phase of `epochs` epochs with the run's optimizer settings and schedule.
    pub fn new(name: &str, epochs: usize) -> Phase {
        Phase { name: name.into(), epochs, lr: None, schedule: None, schedule_epochs: None, schedule_start: 0 }
    }

    /// With its own peak learning rate.
    pub fn lr(mut self, lr: f64) -> Phase {
        self.lr = Some(lr);
        self
    }

    /// With its own schedule.
    pub fn schedule(mut self, spec: &str) -> Phase {
        self.schedule = Some(spec.into());
        self
    }

    /// With the schedule laid out over `epochs` epochs and started at epoch `start` of it.
    pub fn schedule_window(mut self, epochs: usize, start: usize) -> Phase {
        self.schedule_epochs = Some(epochs);
        self.schedule_start = start;
        self
    }
}

/// A method's own state, saved in every checkpoint beside the weights: JSON metadata (counters,
/// random-stream positions, the phase's decisions) and named tensors (masks, scores, initial
/// weights to rewind to).
#[derive(Clone, Debug, Default)]
pub struct MethodState {
    /// JSON metadata (`null` when the method keeps none).
    pub meta: serde_json::Value,
    /// Named tensors (stored as `method.<name>`).
    pub tensors: Vec<(String, Tensor)>,
}

impl MethodState {
    /// The tensor called `name`, or an error naming it.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| {
            let have: Vec<&str> = self.tensors.iter().map(|(n, _)| n.as_str()).collect();
            Error::invalid("MethodState", format!("no tensor {name:?} in the saved method state (it has {have:?})"))
        })
    }
}

/// What [`Method::start_phase`] gets besides the model: the run, the phase, and the data
/// (score-at-initialization methods draw batches from it).
pub struct PhaseContext<'a> {
    /// The run.
    pub run: &'a RunInfo,
    /// Where the run is: the phase starting, at its epoch 0.
    pub at: Progress,
    /// The phase starting.
    pub phase: &'a Phase,
    /// The run's loaders.
    pub data: &'a Data,
}

impl PhaseContext<'_> {
    /// The first `n` training batches of the data order of epoch 0 (deterministic for a seed),
    /// as `(images, labels)` on the training device.
    pub fn train_batches(&self, n: usize) -> Result<Vec<(Tensor, Tensor)>> {
        let mut out = Vec::with_capacity(n);
        for batch in self.data.train.epoch(0).take(n) {
            let batch = batch.map_err(|e| Error::invalid("dataset", e.to_string()))?;
            out.push(crate::data::batch_tensors(&batch, self.run.device)?);
            self.data.train.recycle(batch);
        }
        Ok(out)
    }
}

/// What [`Method::loss`] gets each step.
pub struct StepLoss<'a> {
    /// The model in training mode.
    pub model: &'a dyn Module,
    /// The batch's images `[N, C, H, W]`.
    pub images: &'a Tensor,
    /// The batch's labels `[N]` (i64).
    pub labels: &'a Tensor,
    /// The model's output for `images`.
    pub logits: &'a Tensor,
    /// The run's task loss (cross-entropy with `--label-smoothing`) of `logits`.
    pub task_loss: Tensor,
    /// Where the run is.
    pub at: Progress,
}

/// A method's behaviour during a training run (see the [module docs](self) for when each hook
/// runs). Every hook has a do-nothing default.
pub trait Method: Send {
    /// Changes the model's structure before training (insert layers, wrap weights).
    fn prepare(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<()> {
        Ok(())
    }

    /// The phases of the run, in order (default: one `train` phase of `run.epochs` epochs). A
    /// method that needs no training ([`Training::Optional`]) returns no phase for 0 epochs.
    fn phases(&self, run: &RunInfo) -> Vec<Phase> {
        if run.epochs == 0 {
            Vec::new()
        } else {
            vec![Phase::new("train", run.epochs)]
        }
    }

    /// Called when phase `ctx.at.phase` starts (not when a resumed run continues inside it).
    fn start_phase(&mut self, _model: &mut Box<dyn Module>, _ctx: &PhaseContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Rebuilds, on a freshly prepared model, the structure that [`Method::start_phase`] built
    /// for phases `0..=phase`, from the state just given to [`Method::load_state`].
    fn restore_phase(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo, _phase: usize) -> Result<()> {
        Ok(())
    }

    /// The optimizer's parameter groups for a phase. `groups` holds the trainer's default: every
    /// trainable parameter, weight decay on tensors of two or more dimensions only.
    fn configure_optimizer(
        &mut self,
        _model: &dyn Module,
        groups: Vec<ParamGroup>,
        _at: Progress,
    ) -> Result<Vec<ParamGroup>> {
        Ok(groups)
    }

    /// The loss to differentiate this step (default: the task loss).
    fn loss(&mut self, step: StepLoss<'_>) -> Result<Tensor> {
        Ok(step.task_loss)
    }

    /// After the backward pass, before the optimizer step: gradients are present.
    fn after_backward(&mut self, _model: &dyn Module, _opt: &mut dyn Optimizer, _at: Progress) -> Result<()> {
        Ok(())
    }

    /// After the optimizer step (`at.step` already counts it), before gradients are cleared.
    fn after_step(&mut self, _model: &mut Box<dyn Module>, _opt: &mut dyn Optimizer, _at: Progress) -> Result<()> {
        Ok(())
    }

    /// After each epoch's training, before its evaluation.
    fn end_epoch(&mut self, _model: &mut Box<dyn Module>, _opt: &mut dyn Optimizer, _at: Progress) -> Result<()> {
        Ok(())
    }

    /// The model that evaluation and export use, converted from the trained one; `None`: the
    /// trained model itself.
    fn inference_form(&mut self, _model: &dyn Module, _run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        Ok(None)
    }

    /// Called once after training, before the final test; returns lines for the summary.
    fn finish(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// The state to checkpoint.
    fn state(&self) -> Result<MethodState> {
        Ok(MethodState::default())
    }

    /// Restores a state saved by [`Method::state`].
    fn load_state(&mut self, _state: &MethodState) -> Result<()> {
        Ok(())
    }
}

/// A registered method.
pub struct MethodSpec {
    /// The name given to `--method`.
    pub name: &'static str,
    /// One line for `--list-methods`.
    pub description: &'static str,
    /// Training defaults when no preset is named (a quick run on the embedded dataset).
    pub defaults: Defaults,
    /// Named recipes (`--preset small`, `--preset paper`).
    pub presets: &'static [Preset],
    /// Whether the method needs training.
    pub training: Training,
    /// The method's own hyperparameters.
    pub hparams: &'static [HparamSpec],
    /// Builds the method's hooks from its hyperparameters and the run.
    pub build: fn(&Hparams, &RunInfo) -> Result<Box<dyn Method>>,
}

impl MethodSpec {
    /// The default hyperparameters.
    pub fn default_hparams(&self) -> Hparams {
        Hparams::new(self.name, self.hparams)
    }

    /// The preset called `name`; an unknown name is an error listing this method's presets.
    pub fn preset(&self, name: &str) -> Result<&'static Preset> {
        self.presets.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.presets.iter().map(|p| p.name).collect();
            Error::invalid(
                "--preset",
                format!("method {} has no preset {name:?}; its presets: {}", self.name, names.join(", ")),
            )
        })
    }
}

/// The method that changes nothing: plain training.
pub struct Baseline;

impl Method for Baseline {}

/// Every registered method, in `--list-methods` order.
pub fn all() -> Vec<&'static MethodSpec> {
    let mut v = vec![&BASELINE];
    v.extend(crate::swd::SPECS.iter());
    v.extend(crate::sparse::SPECS.iter());
    v.extend(crate::ip::SPECS.iter());
    v.extend(crate::sbn::SPECS.iter());
    v.extend(crate::wc::SPECS.iter());
    v.extend(crate::sr::SPECS.iter());
    v.extend(crate::haste::SPECS.iter());
    v.extend(crate::prom::SPECS.iter());
    v.extend(crate::cnn_mod::SPECS.iter());
    v.extend(crate::moee::SPECS.iter());
    v
}

/// The method called `name`; unknown names are an error listing the valid ones.
///
/// ```
/// assert_eq!(methods::registry::find("baseline").unwrap().name, "baseline");
/// let err = methods::registry::find("nope").err().unwrap().to_string();
/// assert!(err.contains("baseline"));
/// ```
pub fn find(name: &str) -> Result<&'static MethodSpec> {
    all().into_iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|m| m.name).collect();
        Error::invalid("--method", format!("unknown method {name:?}; valid methods: {}", names.join(", ")))
    })
}

/// Plain training with the small defaults.
pub static BASELINE: MethodSpec = MethodSpec {
    name: "baseline",
    description: "plain training, no method: the reference every method is compared with",
    defaults: SMALL_DEFAULTS,
    presets: &[crate::presets::SMALL, crate::presets::PAPER_CIFAR10_RESNET18],
    training: Training::Required,
    hparams: &[],
    build: |_, _| Ok(Box::new(Baseline)),
};
