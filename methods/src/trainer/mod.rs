//! The training loop behind the `train` binary: data, model, the method's lifecycle (see
//! [`crate::registry`] for the table of hooks), phases with their optimizers and schedules,
//! evaluation of the method's inference form on validation and test sets each epoch,
//! best-on-validation and last checkpoints, metrics, curves and a final summary.
//!
//! # Selection
//!
//! The selected weights are those of the epoch with the best validation accuracy *within the
//! last phase* (earlier phases train a model the method then changes). Without a validation
//! split the last epoch is selected: the test set never chooses a model.
//!
//! # Determinism
//!
//! The data order of epoch `e` depends only on `(seed, e)`, the per-thread seed generator
//! (dropout masks) is reseeded from `(seed, e)` at the start of each epoch and from
//! `(seed, phase)` before each [`Method::start_phase`](crate::registry::Method::start_phase),
//! and the method's own state is checkpointed, so a run resumed from the checkpoint of epoch
//! `e` (in any phase) continues exactly like an uninterrupted one.

mod folder;
pub mod interrupt;
mod phase;
mod resume;
mod setup;
mod state;
mod step;
mod summary;

pub use folder::{default_out_dir, default_out_dir_in, LOCK_FILE, RUN_FILES};
pub use summary::{FormReport, Summary};

pub(crate) use phase::phase_optimizer;
pub(crate) use setup::{setup, Run};
pub(crate) use step::train_step;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use autograd::{no_grad, DType, Device, Error, Result, Tensor};
use layers::checkpoint::{is_training_state, load_checkpoint};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::mac::count_macs;
use layers::metrics::top1_correct;
use layers::state_dict::{load_state_dict, load_tensors, save_module, write_atomic, Strictness};
use layers::{rng, Mode, Module, ModuleExt};

use crate::config::TrainConfig;
use crate::data::batch_tensors;
use crate::metrics::{write_metrics, EpochMetrics, SplitMetrics};
use crate::registry::{self, MethodSpec, PhaseContext, Progress, Training};
use folder::{Claim, RunFolder};
use state::{read_saved, save_best, save_last, Best, Position, BEST, LAST};

/// Called after every epoch with `(epochs done, epochs in the run)`.
pub type EpochCallback = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Options of a run that do not change its results: presentation, and whether a new run may
/// replace the run in its folder.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Print only the final summary.
    pub quiet: bool,
    /// Told after every epoch (`compare`'s sweep-wide progress line).
    pub on_epoch: Option<EpochCallback>,
    /// A new run may take a folder that holds a run: the old run's files are removed first
    /// (`--overwrite`). Without it a new run refuses any folder that is not new or empty.
    pub overwrite: bool,
}

/// Sets the number of kernel threads (once per process). A request above the machine's cores
/// only slows a run down (and a huge one can exhaust the machine), so it is capped at the core
/// count with a warning on stderr.
pub fn set_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("--threads", "needs at least one thread"));
    }
    let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1);
    if n > cores {
        crate::errln!("warning: --threads {n} is more than the {cores} cores of this machine; using {cores}");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.min(cores))
        .build_global()
        .map_err(|e| Error::invalid("--threads", e.to_string()))
}

pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

fn phase_seed(seed: u64, phase: usize) -> u64 {
    epoch_seed(seed ^ 0x0050_4841_5345, phase)
}

/// Evaluates `model` on every batch of `loader` (eval mode, no gradient). An empty loader is
/// an error: it has no accuracy.
pub fn evaluate(model: &dyn Module, loader: &datasets::Loader, device: Device) -> Result<SplitMetrics> {
    if loader.dataset().is_empty() {
        return Err(Error::invalid(
            "evaluate",
            format!("no image to evaluate: the {} set is empty", loader.dataset().name()),
        ));
    }
    let (mut loss, mut correct, mut n) = (0.0f64, 0usize, 0usize);
    no_grad(|| -> Result<()> {
        for batch in loader.epoch(0) {
            interrupt::check()?;
            let batch = batch.map_err(|e| Error::invalid("dataset", e.to_string()))?;
            let (x, y) = batch_tensors(&batch, device)?;
            let logits = model.forward(&x, Mode::Eval)?;
            let l = cross_entropy(&logits, &y, CrossEntropyOptions::default())?.item()?;
            loss += l * batch.n as f64;
            correct += top1_correct(&logits, &y)?;
            n += batch.n;
            loader.recycle(batch);
        }
        Ok(())
    })?;
    Ok(SplitMetrics { loss: loss / n.max(1) as f64, acc: correct as f64 / n.max(1) as f64 })
}

/// The method's inference form of the run's model, on the run's device (`None`: the trained
/// model is evaluated as it is).
fn inference_form(run: &mut Run) -> Result<Option<Box<dyn Module>>> {
    let form = run.method.inference_form(run.model.as_ref(), &run.info)?;
    if let Some(f) = &form {
        f.convert(DType::F32, run.device)?;
    }
    Ok(form)
}

/// Validation (if any) and, when `with_test`, test metrics of the method's inference form.
fn evaluate_run(run: &mut Run, with_test: bool) -> Result<(Option<SplitMetrics>, Option<SplitMetrics>)> {
    let form = inference_form(run)?;
    let m: &dyn Module = form.as_deref().unwrap_or(run.model.as_ref());
    let val = run.data.val.as_ref().map(|v| evaluate(m, v, run.device)).transpose()?;
    let test = with_test.then(|| evaluate(m, &run.data.test, run.device)).transpose()?;
    Ok((val, test))
}

/// The form's test metrics, parameters, and MACs per image counted on the first test batch:
/// real images, so that layers whose work depends on the data (HASTE) count what they run on
/// it; for every other layer the count is the same for any image.
fn form_report(model: &dyn Module, test: SplitMetrics, run: &Run) -> Result<FormReport> {
    let [c, h, w] = run.info.input_shape;
    let first = run.data.test.epoch(0).next().transpose().map_err(|e| Error::invalid("dataset", e.to_string()))?;
    let (input, n) = match first {
        Some(batch) => {
            let (x, _) = batch_tensors(&batch, run.device)?;
            let n = batch.n;
            run.data.test.recycle(batch);
            (x, n)
        }
        None => (Tensor::zeros(&[1, c, h, w]).to_device(run.device)?, 1),
    };
    let macs = count_macs(model, &input)?.total_macs / n.max(1) as u64;
    Ok(FormReport { test, params: model.num_parameters(), macs })
}

fn check_finite(split: &str, m: &SplitMetrics, at: Position) -> Result<()> {
    if m.loss.is_finite() {
        return Ok(());
    }
    Err(Error::invalid(
        "train",
        format!(
            "the {split} loss became {} when evaluated after epoch {} (step {} of the run): training diverged (lower --lr?); the run stopped, its checkpoints hold the epochs before",
            m.loss, at.epoch, at.step
        ),
    ))
}

/// Trains the registered method `cfg.method` with `cfg`, writing into `out`; with `resume`,
/// continues the run in `out` from its last complete checkpoint.
pub fn train(cfg: &TrainConfig, out: &Path, resume: bool, opts: &RunOptions) -> Result<Summary> {
    train_with(registry::find(&cfg.method)?, cfg, out, resume, opts)
}

/// [`train`] with a method given by its spec (a method of your own, not in the registry).
///
/// The options are checked first, then the folder is taken (created, locked, and refused when a
/// new run would share it: see [`RunOptions::overwrite`]). A new run that fails before its
/// first checkpoint removes what it wrote.
pub fn train_with(
    spec: &MethodSpec,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
    opts: &RunOptions,
) -> Result<Summary> {
    let start = Instant::now();
    crate::checks::check_config(cfg)?;
    let claim = match (resume, opts.overwrite) {
        (true, _) => Claim::Resume,
        (false, true) => Claim::Overwrite,
        (false, false) => Claim::New,
    };
    let folder = RunFolder::claim(out, claim)?;
    let result = train_in(spec, cfg, out, resume, opts, start);
    if result.is_err() && !resume && !out.join(LAST).is_file() {
        folder.discard();
    }
    result
}

/// The run in its claimed folder.
fn train_in(
    spec: &MethodSpec,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
    opts: &RunOptions,
    start: Instant,
) -> Result<Summary> {
    let mut run = setup(spec, cfg, 2)?;
    let phases = run.method.phases(&run.info);
    if phases.is_empty() && run.training == Training::Required {
        return Err(Error::invalid("train", format!("method {} planned no training phase", spec.name)));
    }
    phase::check_phases(&run, &phases)?;
    let total_epochs: usize = phases.iter().map(|p| p.epochs).sum();
    let spe = run.info.steps_per_epoch;
    let (mut pos, mut history, mut best) = (Position::default(), Vec::new(), Best::default());
    if resume {
        let path = out.join(LAST);
        let saved = read_saved(&path)?.ok_or_else(|| {
            Error::invalid("--resume", format!("{}: not a checkpoint of this trainer's runs", path.display()))
        })?;
        resume::check_resumable(&run, &saved, &phases)?;
        run.method.load_state(&saved.method)?;
        if saved.position.phase < phases.len() {
            run.method.restore_phase(&mut run.model, &run.info, saved.position.phase)?;
        }
        run.model.convert(DType::F32, run.device)?;
        load_checkpoint(&path, run.model.as_ref(), None, None)?;
        (pos, history, best) = (saved.position, saved.history, saved.best);
        write_metrics(out, &history)?;
    }
    // On --resume: the configuration continued with (--epochs may have extended the run).
    run.cfg.save(out)?;
    let (mut images, mut train_secs) = (0usize, 0.0f64);
    for m in &history {
        images += (m.images_per_second * m.train_seconds).round() as usize;
        train_secs += m.train_seconds;
    }
    // A resumed run continues inside its phase, or starts the next one. (A new run starts
    // at phase 0 even when it has no epochs: its start_phase still runs.)
    let (mut p, mut e0) = (pos.phase, pos.phase_epoch);
    if resume && p < phases.len() && e0 >= phases[p].epochs {
        (p, e0) = (p + 1, 0);
    }
    let last_phase = phases.len().saturating_sub(1);
    while p < phases.len() {
        let phase = &phases[p];
        let at0 = Progress { phase: p, epoch: pos.epoch, phase_epoch: e0, step: pos.step };
        if e0 == 0 {
            let ctx = PhaseContext { run: &run.info, at: at0, phase, data: &run.data };
            rng::with_seed(phase_seed(run.cfg.seed, p), || run.method.start_phase(&mut run.model, &ctx))?;
            run.model.convert(DType::F32, run.device)?;
        }
        let (mut opt, mut sched) = phase_optimizer(&mut run, phase, at0)?;
        if e0 > 0 {
            load_checkpoint(&out.join(LAST), run.model.as_ref(), Some(opt.as_mut()), Some(&mut sched))?;
            sched.apply(opt.as_mut())?;
        }
        for e in e0..phase.epochs {
            let at = Progress { phase: p, epoch: pos.epoch, phase_epoch: e, step: pos.step };
            rng::manual_seed(epoch_seed(run.cfg.seed, at.epoch));
            let label = if phases.len() > 1 {
                format!("{} {}/{} (epoch {}/{total_epochs})", phase.name, e + 1, phase.epochs, at.epoch + 1)
            } else {
                format!("epoch {}/{total_epochs}", at.epoch + 1)
            };
            let t0 = Instant::now();
            let train = step::train_epoch(&mut run, opt.as_mut(), &mut sched, at, label, opts.quiet)?;
            let secs = t0.elapsed().as_secs_f64();
            pos = Position { phase: p, phase_epoch: e + 1, epoch: at.epoch + 1, step: at.step + spe };
            run.method.end_epoch(&mut run.model, opt.as_mut(), Progress { step: pos.step, ..at })?;
            let every = run.cfg.test_every;
            let with_test = every > 0 && (pos.epoch % every == 0 || pos.epoch == total_epochs);
            let (val, test) = evaluate_run(&mut run, with_test)?;
            // A diverged epoch is never selected nor checkpointed.
            for (split, m) in [("validation", &val), ("test", &test)] {
                if let Some(m) = m {
                    check_finite(split, m, pos)?;
                }
            }
            let n = run.data.train.dataset().len();
            images += n;
            train_secs += secs;
            let m = EpochMetrics {
                epoch: pos.epoch,
                phase: phase.name.clone(),
                phase_epoch: e + 1,
                train,
                val,
                test,
                lr: opt.lrs().first().copied().unwrap_or(0.0),
                train_seconds: secs,
                images_per_second: n as f64 / secs.max(1e-9),
            };
            if p == last_phase && val.is_none_or(|v| v.acc > best.val_acc) {
                best = Best { val_acc: val.map_or(-1.0, |v| v.acc), epoch: pos.epoch };
                save_best(out, &run, pos)?;
            }
            if !opts.quiet {
                let v = val.map(|v| format!("  val {:.2}%", 100.0 * v.acc)).unwrap_or_default();
                let t = test.map(|t| format!("  test {:.2}%", 100.0 * t.acc)).unwrap_or_default();
                let name = if phases.len() > 1 { format!(" [{}]", phase.name) } else { String::new() };
                crate::outln!(
                    "epoch {:>3}/{total_epochs}{name}  loss {:.4}  train {:.2}%{v}{t}  {:.0} img/s  {:.1} s",
                    pos.epoch,
                    train.loss,
                    100.0 * train.acc,
                    m.images_per_second,
                    secs
                );
            }
            history.push(m);
            // The checkpoint first: it holds the history too, so a kill between the two writes
            // loses nothing.
            save_last(out, &run, opt.as_ref(), &sched, pos, &history, best)?;
            write_metrics(out, &history)?;
            if let Some(f) = &opts.on_epoch {
                f(pos.epoch, total_epochs);
            }
            interrupt::check()?;
        }
        (p, e0) = (p + 1, 0);
    }
    if best.epoch == 0 {
        // Nothing trained in the last phase (a method without training): the model as it is.
        save_best(out, &run, pos)?;
        best.epoch = pos.epoch;
    }
    let selection = if best.epoch == 0 {
        "no training".to_string()
    } else if run.data.val.is_some() {
        let name = phases.last().map(|p| p.name.as_str()).unwrap_or("train");
        if phases.len() > 1 {
            format!("best validation accuracy in phase {name}")
        } else {
            "best validation accuracy".to_string()
        }
    } else {
        "last epoch: no validation split".to_string()
    };
    // The selected weights and the method state that goes with them.
    let best_path = out.join(BEST);
    if let Some(saved) = read_saved(&best_path)? {
        run.method.load_state(&saved.method)?;
    }
    load_checkpoint(&best_path, run.model.as_ref(), None, None)?;
    let mut extra = std::mem::take(&mut run.notes);
    extra.extend(run.method.finish(&mut run.model, &run.info)?);
    let trained_test = evaluate(run.model.as_ref(), &run.data.test, run.device)?;
    let trained = form_report(run.model.as_ref(), trained_test, &run)?;
    let inference = match inference_form(&mut run)? {
        Some(form) => {
            let test = evaluate(form.as_ref(), &run.data.test, run.device)?;
            save_module(form.as_ref(), &out.join("inference.safetensors"))?;
            Some(form_report(form.as_ref(), test, &run)?)
        }
        None => None,
    };
    let shown = inference.unwrap_or(trained);
    let steps = history.len() * spe;
    let summary = Summary {
        method: run.cfg.method.clone(),
        model: run.cfg.model.clone(),
        dataset: run.cfg.dataset.clone(),
        test: shown.test,
        trained,
        inference,
        best_epoch: best.epoch,
        selection,
        params: shown.params,
        macs: shown.macs,
        wall_seconds: start.elapsed().as_secs_f64(),
        images_per_second: images as f64 / train_secs.max(1e-9),
        step_ms: if steps == 0 { 0.0 } else { 1e3 * train_secs / steps as f64 },
        extra,
        out: out.to_path_buf(),
    };
    write_atomic(&out.join("summary.json"), summary.to_json()?.as_bytes())?;
    Ok(summary)
}

/// What `--eval-only` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Test metrics.
    pub test: SplitMetrics,
    /// The dataset evaluated (its test split).
    pub dataset: String,
    /// The number of test images evaluated.
    pub images: usize,
    /// `"inference form"` when the method converted the model, else `"trained model"`.
    pub form: &'static str,
}

/// Errors unless `path` is a file: a missing path or a folder is named as the problem (not the
/// `config.json` that would be looked for beside it).
pub fn check_checkpoint_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::invalid(
            "--eval-only",
            format!("{} is a folder; give a checkpoint file, such as {}", path.display(), path.join(BEST).display()),
        ));
    }
    if !path.is_file() {
        return Err(Error::invalid("--eval-only", format!("{}: no such file", path.display())));
    }
    Ok(())
}

/// Evaluates a checkpoint (`best.safetensors`, `last.safetensors` or a plain state dict) on the
/// test set, in the method's inference form. The configuration comes from `cfg` or, when `None`,
/// from `config.json` beside the checkpoint.
pub fn evaluate_checkpoint(path: &Path, cfg: Option<&TrainConfig>, opts: &RunOptions) -> Result<EvalReport> {
    check_checkpoint_path(path)?;
    let cfg = match cfg {
        Some(c) => c.clone(),
        None => TrainConfig::load(path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| Error::invalid("--eval-only", format!("{e} (or pass --model and --dataset)")))?,
    };
    evaluate_checkpoint_with(registry::find(&cfg.method)?, path, &cfg, opts)
}

/// [`evaluate_checkpoint`] for a method given by its spec.
pub fn evaluate_checkpoint_with(
    spec: &MethodSpec,
    path: &Path,
    cfg: &TrainConfig,
    _opts: &RunOptions,
) -> Result<EvalReport> {
    check_checkpoint_path(path)?;
    let mut run = setup(spec, cfg, 2)?;
    let ctx = |e: Error| Error::invalid("--eval-only", format!("{}: {e}", path.display()));
    match read_saved(path).map_err(ctx)? {
        Some(saved) => {
            run.method.load_state(&saved.method)?;
            if saved.position.phase < run.method.phases(&run.info).len() {
                run.method.restore_phase(&mut run.model, &run.info, saved.position.phase)?;
            }
            run.model.convert(DType::F32, run.device)?;
            load_checkpoint(path, run.model.as_ref(), None, None).map_err(ctx)?;
        }
        None => {
            let file = load_tensors(path).map_err(ctx)?;
            let weights: Vec<_> = file.tensors.into_iter().filter(|(n, _)| !is_training_state(n)).collect();
            load_state_dict(run.model.as_ref(), &weights, Strictness::Strict).map_err(ctx)?;
        }
    }
    let form = inference_form(&mut run)?;
    let m: &dyn Module = form.as_deref().unwrap_or(run.model.as_ref());
    Ok(EvalReport {
        test: evaluate(m, &run.data.test, run.device)?,
        dataset: cfg.dataset.clone(),
        images: run.data.test.dataset().len(),
        form: if form.is_some() { "inference form" } else { "trained model" },
    })
}
