//! The method registry: every method's name, description, training defaults, hyperparameters
//! and the hooks the trainer calls.
//!
//! A method is a [`MethodSpec`] (static data) plus a [`Method`] object built from its
//! hyperparameters. The trainer calls the hooks at fixed points: [`Method::prepare`] before
//! training (insert layers, wrap weights, prune at init), [`Method::extra_loss`] each step,
//! [`Method::after_step`] after each optimizer step (re-apply masks, update schedules),
//! [`Method::end_epoch`] after each epoch, [`Method::finish`] after training (conversion,
//! post-training compression). Pruning schedules, QAT conversion and post-training compression
//! all fit these hooks.

use autograd::{Error, Result, Tensor};
use layers::Module;

use crate::hparams::{HparamSpec, Hparams};

/// Training defaults of a method (each can be overridden on the command line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Defaults {
    /// Model name (see `layers::models`).
    pub model: &'static str,
    /// Dataset name (see `datasets::DATASET_NAMES`).
    pub dataset: &'static str,
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

/// The defaults most methods start from: a CIFAR-style ResNet-8 on the embedded Fashion-MNIST,
/// sized to finish in a few minutes on two cores.
pub const SMALL_DEFAULTS: Defaults = Defaults {
    model: "resnet8",
    dataset: "fashion-mnist-embedded",
    epochs: 4,
    batch_size: 128,
    optimizer: "sgd",
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 5e-4,
    schedule: "onecycle",
};

/// What a method knows of the run when it is built and in its hooks.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// Model name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// Number of classes.
    pub num_classes: usize,
    /// `[C, H, W]` of the model's input.
    pub input_shape: [usize; 3],
    /// Number of epochs.
    pub epochs: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
}

/// Where the trainer is when it calls a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Optimizer steps done so far in the whole run.
    pub step: usize,
}

/// A method's behaviour during a training run. Every hook has a do-nothing default.
///
/// State a method must carry across a resumed run (masks, counters) belongs in [`layers::Buffer`]s
/// of the modules it inserts: they are saved and restored with the model.
pub trait Method: Send {
    /// Changes the model before training (and before a resumed run loads its weights, so the
    /// structure must depend only on the configuration).
    fn prepare(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<()> {
        Ok(())
    }

    /// A term added to the task loss of each step (regularizers), if any.
    fn extra_loss(&mut self, _model: &dyn Module, _at: Progress) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// Called after each optimizer step.
    fn after_step(&mut self, _model: &mut Box<dyn Module>, _at: Progress) -> Result<()> {
        Ok(())
    }

    /// Called after each epoch's training, before evaluation.
    fn end_epoch(&mut self, _model: &mut Box<dyn Module>, _at: Progress) -> Result<()> {
        Ok(())
    }

    /// Called once after training, before the final test; returns lines for the summary.
    fn finish(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
}

/// A registered method.
pub struct MethodSpec {
    /// The name given to `--method`.
    pub name: &'static str,
    /// One line for `--list-methods`.
    pub description: &'static str,
    /// Training defaults.
    pub defaults: Defaults,
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
}

/// The method that changes nothing: plain training.
pub struct Baseline;

impl Method for Baseline {}

/// Every registered method, in `--list-methods` order.
pub fn all() -> Vec<&'static MethodSpec> {
    let mut v = vec![&BASELINE];
    v.extend(crate::swd::SPECS.iter());
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
    hparams: &[],
    build: |_, _| Ok(Box::new(Baseline)),
};
