//! The method lifecycle end to end through the trainer, with test methods given as specs (not in
//! the registry): each hook is called at its point, or a test here fails.
//!
//! - gradient masks after backward with the masked coordinates' momentum zeroed keep pruned
//!   weights exactly zero under SGD with momentum and weight decay (and do not without the
//!   momentum reset: the check can fail);
//! - the loss hook's loss is the one differentiated;
//! - the optimizer hook's parameter groups are the ones stepped;
//! - an inference form that changes predictions is what per-epoch evaluation, the final test and
//!   `--eval-only` report;
//! - a training-free method runs with `--epochs 0`, a method that needs training refuses it;
//! - a two-phase method stopped in phase 2 (or right at its start) resumes bit-identically, its
//!   own state (mask, counter) included.

use std::path::{Path, PathBuf};

use autograd::{Error, Result, Tensor};
use layers::optim::{Optimizer, ParamGroup};
use layers::state_dict::load_tensors;
use layers::{Mode, Module, ModuleExt};
use methods::config::TrainConfig;
use methods::hparams::Hparams;
use methods::registry::{
    Method, MethodSpec, MethodState, Phase, PhaseContext, Progress, RunInfo, StepLoss, Training, SMALL_DEFAULTS,
};
use methods::trainer::{evaluate_checkpoint_with, train_with, RunOptions, Summary};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-lifecycle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A quick MLP run on 600 embedded Fashion-MNIST images: 54 steps per epoch of batch 10.
fn config(spec: &MethodSpec, epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig::from_defaults(spec);
    cfg.model = "mlp".into();
    cfg.epochs = epochs;
    cfg.batch_size = 10;
    cfg.train_limit = Some(600);
    cfg.test_limit = Some(300);
    cfg.schedule = "constant".into();
    cfg.lr = 0.05;
    cfg
}

fn quiet() -> RunOptions {
    RunOptions { quiet: true, ..RunOptions::default() }
}

fn model_tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    load_tensors(path)
        .unwrap()
        .tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with("optim."))
        .map(|(n, t)| {
            let bits = match t.dtype() {
                autograd::DType::F32 => t.to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect(),
                _ => t
                    .to_dtype(autograd::DType::F64)
                    .unwrap()
                    .to_vec::<f64>()
                    .unwrap()
                    .iter()
                    .map(|x| *x as u32)
                    .collect(),
            };
            (n, bits)
        })
        .collect()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_dtype(autograd::DType::F32).unwrap().to_vec::<f32>().unwrap()
}

/// The mask that keeps the larger half (by magnitude) of `w`'s entries.
fn top_half_mask(w: &Tensor) -> Tensor {
    let v = f32s(w);
    let mut mags: Vec<f32> = v.iter().map(|x| x.abs()).collect();
    mags.sort_by(f32::total_cmp);
    let t = mags[mags.len() / 2];
    Tensor::from_vec(v.iter().map(|x| f32::from(x.abs() >= t)).collect::<Vec<f32>>(), w.shape()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Gradient masks and optimizer state.

/// Prunes `fc1.weight` to half at step `PRUNE_AT` (after dense steps built up momentum), then
/// masks its gradient after every backward pass; zeroes the pruned coordinates' momentum when
/// `reset_momentum`.
struct GradMask {
    reset_momentum: bool,
    mask: Option<Tensor>,
}

const PRUNE_AT: usize = 5;

impl Method for GradMask {
    fn after_backward(&mut self, model: &dyn Module, opt: &mut dyn Optimizer, at: Progress) -> Result<()> {
        let (_, w) = model.named_parameters().into_iter().find(|(n, _)| n == "fc1.weight").unwrap();
        if at.step == PRUNE_AT {
            let mask = top_half_mask(&w.leaf());
            w.set_data(&w.leaf().mul(&mask)?)?;
            if self.reset_momentum {
                opt.mask_state("fc1.weight", &mask)?;
            }
            self.mask = Some(mask);
        }
        if let Some(mask) = &self.mask {
            let g = w.grad().ok_or_else(|| Error::invalid("GradMask", "no gradient after backward"))?;
            w.leaf().set_grad(Some(g.mul(mask)?))?;
        }
        Ok(())
    }

    fn state(&self) -> Result<MethodState> {
        Ok(MethodState {
            meta: serde_json::Value::Null,
            tensors: self.mask.iter().map(|m| ("mask".into(), m.clone())).collect(),
        })
    }
}

static GRAD_MASK: MethodSpec = MethodSpec {
    name: "test-grad-mask",
    description: "test: gradient mask with momentum reset",
    defaults: SMALL_DEFAULTS,
    presets: &[],
    training: Training::Required,
    hparams: &[],
    build: |_, _| Ok(Box::new(GradMask { reset_momentum: true, mask: None })),
};

static GRAD_MASK_NO_RESET: MethodSpec = MethodSpec {
    name: "test-grad-mask-no-reset",
    description: "test: gradient mask without momentum reset",
    defaults: SMALL_DEFAULTS,
    presets: &[],
    training: Training::Required,
    hparams: &[],
    build: |_, _| Ok(Box::new(GradMask { reset_momentum: false, mask: None })),
};

/// The number of nonzero `fc1.weight` entries where the saved mask is 0, after training.
fn revived(spec: &MethodSpec, name: &str) -> usize {
    let dir = out_dir(name);
    let mut cfg = config(spec, 1);
    cfg.momentum = 0.9;
    cfg.weight_decay = 5e-4;
    train_with(spec, &cfg, &dir, false, &quiet()).unwrap();
    let file = load_tensors(&dir.join("last.safetensors")).unwrap();
    let (w, m) = (f32s(file.get("fc1.weight").unwrap()), f32s(file.get("method.mask").unwrap()));
    assert_eq!(m.iter().filter(|&&x| x == 0.0).count(), m.len() / 2, "half the weights pruned");
    std::fs::remove_dir_all(dir).unwrap();
    w.iter().zip(&m).filter(|(w, m)| **m == 0.0 && **w != 0.0).count()
}

#[test]
fn masked_gradients_and_momentum_keep_pruned_weights_exactly_zero() {
    // 54 steps per epoch: 49 masked SGD steps with momentum 0.9 and weight decay after pruning.
    assert_eq!(revived(&GRAD_MASK, "mask"), 0, "a pruned weight moved");
    // Without zeroing the momentum built before pruning, the pruned weights move again.
    assert!(revived(&GRAD_MASK_NO_RESET, "mask-no-reset") > 1000);
}

// ---------------------------------------------------------------------------------------------
// The loss hook and the optimizer hook.

/// Differentiates zero instead of the task loss, and checks what it is given.
struct ZeroLoss {
    calls: usize,
}

impl Method for ZeroLoss {
    fn loss(&mut self, step: StepLoss<'_>) -> Result<Tensor> {
        let n = step.images.shape()[0];
        assert_eq!(step.logits.shape(), &[n, 10]);
        assert_eq!(step.labels.shape(), &[n]);
        assert!(step.task_loss.item()? > 0.0);
        self.calls += 1;
        step.task_loss.mul_scalar(0.0)
    }

    fn finish(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        Ok(vec![("loss calls".into(), self.calls.to_string())])
    }
}

static ZERO_LOSS: MethodSpec = MethodSpec {
    name: "test-zero-loss",
    description: "test: the loss hook",
    defaults: SMALL_DEFAULTS,
    presets: &[],
    training: Training::Required,
    hparams: &[],
    build: |_, _| Ok(Box::new(ZeroLoss { calls: 0 })),
};

/// Puts `fc3` in a group of its own with learning rate 0.
struct FrozenHead;

impl Method for FrozenHead {
    fn configure_optimizer(
        &mut self,
        _m: &dyn Module,
        groups: Vec<ParamGroup>,
        _at: Progress,
    ) -> Result<Vec<ParamGroup>> {
        let all: Vec<_> = groups.into_iter().flat_map(|g| g.params).collect();
        let (head, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|(n, _)| n.starts_with("fc3."));
        Ok(vec![ParamGroup::new(rest), ParamGroup::new(head).lr(0.0)])
    }
}

static FROZEN_HEAD: MethodSpec = MethodSpec {
    name: "test-frozen-head",
    description: "test: the optimizer hook",
    defaults: SMALL_DEFAULTS,
    presets: &[],
    training: Training::Required,
    hparams: &[],
    build: |_, _| Ok(Box::new(FrozenHead)),
};

fn initial_weights(spec: &MethodSpec, cfg: &TrainConfig) -> Vec<(String, Vec<f32>)> {
    let net = layers::models::build(&cfg.model, 10, 1, cfg.seed).unwrap();
    let _ = spec;
    net.named_parameters().into_iter().map(|(n, p)| (n, f32s(&p.leaf()))).collect()
}

#[test]
fn the_loss_hook_is_differentiated_and_the_optimizer_hook_groups_are_stepped() {
    let dir = out_dir("zero-loss");
    let mut cfg = config(&ZERO_LOSS, 1);
    cfg.weight_decay = 0.0;
    let s = train_with(&ZERO_LOSS, &cfg, &dir, false, &quiet()).unwrap();
    assert!(s.extra.contains(&("loss calls".into(), "54".into())), "{:?}", s.extra);
    let file = load_tensors(&dir.join("last.safetensors")).unwrap();
    for (name, init) in initial_weights(&ZERO_LOSS, &cfg) {
        assert_eq!(f32s(file.get(&name).unwrap()), init, "{name} moved under a zero loss");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = out_dir("frozen-head");
    let cfg = config(&FROZEN_HEAD, 1);
    train_with(&FROZEN_HEAD, &cfg, &dir, false, &quiet()).unwrap();
    let file = load_tensors(&dir.join("last.safetensors")).unwrap();
    for (name, init) in initial_weights(&FROZEN_HEAD, &cfg) {
        let moved = f32s(file.get(&name).unwrap()) != init;
        assert_eq!(moved, !name.starts_with("fc3."), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The inference form.

/// The model with its logits negated: predictions change completely.
struct Negated {
    inner: Box<dyn Module>,
}

impl Module for Negated {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.inner.forward(x, mode)?.neg()
    }
    layers::children!(inner);
}

/// Converts to [`Negated`] (a copy of the trained weights).
struct NegateForm;

impl Method for NegateForm {
    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        let copy = layers::models::build(&run.model, run.num_classes, run.input_shape[0], 0)?;
        layers::state_dict::load_state_dict(
            copy.as_ref(),
            &model.state_dict(),
            layers::state_dict::Strictness::Strict,
        )?;
        Ok(Some(Box::new(Negated { inner: copy })))
    }
}

static NEGATE: MethodSpec = MethodSpec {
    name: "test-negate",
    description: "test: an inference form",
    defaults: SMALL_DEFAULTS,
    presets: &[],
    training: Training::Optional,
    hparams: &[],
    build: |_, _| Ok(Box::new(NegateForm)),
};

#[test]
fn evaluation_reports_the_inference_form() {
    let dir = out_dir("negate");
    let cfg = config(&NEGATE, 2);
    let s: Summary = train_with(&NEGATE, &cfg, &dir, false, &quiet()).unwrap();
    assert!(s.trained.test.acc > 0.5, "the trained MLP learns: {}", s.trained.test.acc);
    assert!(s.test.acc < 0.2, "the summary reports the negated form: {}", s.test.acc);
    assert_eq!(s.inference.unwrap().test, s.test);
    let history = methods::metrics::read_metrics(&dir).unwrap();
    for m in &history {
        assert!(m.val.unwrap().acc < 0.2 && m.test.unwrap().acc < 0.2, "per-epoch evaluation uses the form: {m:?}");
    }
    assert!(dir.join("inference.safetensors").is_file());
    let e = evaluate_checkpoint_with(&NEGATE, &dir.join("best.safetensors"), &cfg, &quiet()).unwrap();
    assert_eq!((e.test, e.form), (s.test, "inference form"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_training_free_method_runs_with_zero_epochs_and_others_refuse_them() {
    let dir = out_dir("free");
    let s = train_with(&NEGATE, &config(&NEGATE, 0), &dir, false, &quiet()).unwrap();
    assert_eq!((s.best_epoch, s.selection.as_str(), s.step_ms), (0, "no training", 0.0));
    assert!(s.inference.is_some() && s.test.acc != s.trained.test.acc);
    assert!(methods::metrics::read_metrics(&dir).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
    let e = train_with(&ZERO_LOSS, &config(&ZERO_LOSS, 0), &dir, false, &quiet()).unwrap_err().to_string();
    assert!(e.contains("--epochs") && e.contains("needs training"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Phases, method state and resume.

/// Phase `dense` (1 epoch), then phase `sparse` (2 epochs, its own lr and a schedule window)
/// whose start prunes `fc1.weight` by magnitude and draws a random permutation seed; the mask and
/// a step counter are method state. Fails in `end_epoch` of global epoch `fail_at` (1-based), a
/// stand-in for a kill: the checkpoint of the epoch before exists.
struct TwoPhase {
    fail_at: Option<usize>,
    mask: Option<Tensor>,
    steps: u64,
    drawn: u64,
}

impl Method for TwoPhase {
    fn phases(&self, run: &RunInfo) -> Vec<Phase> {
        vec![
            Phase::new("dense", 1),
            Phase::new("sparse", run.epochs - 1).lr(0.02).schedule("cosine").schedule_window(4, 1),
        ]
    }

    fn start_phase(&mut self, model: &mut Box<dyn Module>, ctx: &PhaseContext<'_>) -> Result<()> {
        if ctx.at.phase == 1 {
            assert_eq!(ctx.phase.name, "sparse");
            assert_eq!(ctx.at.epoch, 1);
            assert_eq!(ctx.train_batches(2)?.len(), 2);
            let (_, w) = model.named_parameters().into_iter().find(|(n, _)| n == "fc1.weight").unwrap();
            let mask = top_half_mask(&w.leaf());
            w.set_data(&w.leaf().mul(&mask)?)?;
            self.mask = Some(mask);
            self.drawn = layers::rng::next_seed();
        }
        Ok(())
    }

    fn after_backward(&mut self, model: &dyn Module, _opt: &mut dyn Optimizer, _at: Progress) -> Result<()> {
        self.steps += 1;
        if let Some(mask) = &self.mask {
            let (_, w) = model.named_parameters().into_iter().find(|(n, _)| n == "fc1.weight").unwrap();
            let g = w.grad().unwrap();
            w.leaf().set_grad(Some(g.mul(mask)?))?;
        }
        Ok(())
    }

    fn end_epoch(&mut self, _m: &mut Box<dyn Module>, _o: &mut dyn Optimizer, at: Progress) -> Result<()> {
        if self.fail_at == Some(at.epoch + 1) {
            return Err(Error::invalid("test", "stopped on purpose"));
        }
        Ok(())
    }

    fn state(&self) -> Result<MethodState> {
        Ok(MethodState {
            meta: serde_json::json!({ "steps": self.steps, "drawn": self.drawn }),
            tensors: self.mask.iter().map(|m| ("mask".into(), m.clone())).collect(),
        })
    }

    fn load_state(&mut self, s: &MethodState) -> Result<()> {
        self.steps = s.meta["steps"].as_u64().unwrap();
        self.drawn = s.meta["drawn"].as_u64().unwrap();
        self.mask = s.tensor("mask").ok().cloned();
        Ok(())
    }

    fn finish(&mut self, _m: &mut Box<dyn Module>, _r: &RunInfo) -> Result<Vec<(String, String)>> {
        Ok(vec![("steps".into(), self.steps.to_string()), ("drawn".into(), self.drawn.to_string())])
    }
}

const FAIL_AT: methods::hparams::HparamSpec =
    methods::hparams::HparamSpec { key: "fail_at", default: "0", help: "stop at this epoch (0: never)" };

static TWO_PHASE: MethodSpec = MethodSpec {
    name: "test-two-phase",
    description: "test: phases and method state",
    defaults: SMALL_DEFAULTS,
    presets: &[],
    training: Training::Required,
    hparams: &[FAIL_AT],
    build: |h: &Hparams, _| {
        let f = h.usize("fail_at")?;
        Ok(Box::new(TwoPhase { fail_at: (f > 0).then_some(f), mask: None, steps: 0, drawn: 0 }))
    },
};

#[test]
fn a_two_phase_run_stopped_in_either_phase_resumes_bit_identically() {
    let whole = out_dir("phases-whole");
    let cfg = config(&TWO_PHASE, 3);
    let s = train_with(&TWO_PHASE, &cfg, &whole, false, &quiet()).unwrap();
    assert!(s.extra.contains(&("steps".into(), "162".into())), "{:?}", s.extra);
    let history = methods::metrics::read_metrics(&whole).unwrap();
    let phases: Vec<(&str, usize)> = history.iter().map(|m| (m.phase.as_str(), m.phase_epoch)).collect();
    assert_eq!(phases, [("dense", 1), ("sparse", 1), ("sparse", 2)]);
    // The sparse phase's cosine schedule (peak 0.02) is laid out over 4 epochs and starts at its
    // epoch 1: the phase's two epochs end at epochs 2 and 3 of the cosine.
    let cosine = |e: f64| 0.02 * (1.0 + (std::f64::consts::PI * e / 4.0).cos()) / 2.0;
    assert!((history[1].lr - cosine(2.0)).abs() < 1e-12, "{}", history[1].lr);
    assert!((history[2].lr - cosine(3.0)).abs() < 1e-12, "{}", history[2].lr);
    assert_eq!(history[0].lr, 0.05);
    assert!(s.selection.contains("sparse"), "{}", s.selection);
    let reference = model_tensors(&whole.join("last.safetensors"));
    let file = load_tensors(&whole.join("last.safetensors")).unwrap();
    assert!(file.get("method.mask").is_some());
    let (w, m) = (f32s(file.get("fc1.weight").unwrap()), f32s(file.get("method.mask").unwrap()));
    assert!(w.iter().zip(&m).all(|(w, m)| *m != 0.0 || *w == 0.0), "pruned weights stay zero in phase 2");
    for fail_at in [3, 2] {
        let cut = out_dir(&format!("phases-cut-{fail_at}"));
        let mut c = cfg.clone();
        c.hparams.insert("fail_at".into(), fail_at.to_string());
        let e = train_with(&TWO_PHASE, &c, &cut, false, &quiet()).unwrap_err().to_string();
        assert!(e.contains("on purpose"), "{e}");
        assert_eq!(methods::metrics::read_metrics(&cut).unwrap().len(), fail_at - 1);
        // The resumed run must not fail again: clear the switch.
        c.hparams.insert("fail_at".into(), "0".into());
        c.save(&cut).unwrap();
        let r = train_with(&TWO_PHASE, &c, &cut, true, &quiet()).unwrap();
        assert_eq!(model_tensors(&cut.join("last.safetensors")), reference, "stopped at epoch {fail_at}");
        assert_eq!(r.extra, s.extra, "method state (step counter, phase draw) restored");
        assert_eq!(r.test, s.test);
        std::fs::remove_dir_all(cut).unwrap();
    }
    std::fs::remove_dir_all(whole).unwrap();
}
