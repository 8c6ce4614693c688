//! The training loop behind the `train` binary: data, model, method hooks, optimizer and
//! schedule; evaluation on validation and test sets each epoch; best-on-validation and last
//! checkpoints; metrics, curves and a final summary.
//!
//! Determinism: the data order of epoch `e` depends only on `(seed, e)`, and the per-thread seed
//! generator (dropout masks) is reseeded from `(seed, e)` at the start of each epoch, so a run
//! resumed from the checkpoint of epoch `e` continues exactly like an uninterrupted one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use autograd::{no_grad, profile, DType, Error, Result, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use layers::checkpoint::{load_checkpoint, save_checkpoint, TrainingState};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::mac::{count_macs, human};
use layers::metrics::top1_correct;
use layers::optim::{split_weight_decay, Adam, AdamOptions, Optimizer, Sgd, SgdOptions};
use layers::schedule::{Interval, Scheduler};
use layers::state_dict::{load_state_dict, load_tensors, Strictness};
use layers::{models, rng, Mode, Module, ModuleExt};

use crate::config::TrainConfig;
use crate::data::{batch_tensors, open_data, Data, DataConfig};
use crate::metrics::{write_metrics, EpochMetrics, SplitMetrics};
use crate::registry::{self, Method, Progress, RunInfo};
use crate::schedule_spec::parse_schedule;
use datasets::Batch;

/// Presentation options of a run (they do not change its results).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Print only the final summary.
    pub quiet: bool,
}

/// The outcome of a run, printed as a table.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Method name.
    pub method: String,
    /// Model name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// Test metrics of the selected (best on validation) model after the method's final hook.
    pub test: SplitMetrics,
    /// Epoch (1-based) of the selected checkpoint.
    pub best_epoch: usize,
    /// Number of parameters.
    pub params: usize,
    /// MACs of one forward pass of one image.
    pub macs: u64,
    /// Wall time of the whole run in seconds.
    pub wall_seconds: f64,
    /// Mean training throughput.
    pub images_per_second: f64,
    /// Lines added by the method.
    pub extra: Vec<(String, String)>,
    /// The run folder.
    pub out: PathBuf,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<(String, String)> = vec![
            ("method".into(), self.method.clone()),
            ("model".into(), self.model.clone()),
            ("dataset".into(), self.dataset.clone()),
            ("test accuracy".into(), format!("{:.2}%", 100.0 * self.test.acc)),
            ("test loss".into(), format!("{:.4}", self.test.loss)),
            ("selected epoch".into(), self.best_epoch.to_string()),
            ("parameters".into(), format!("{} ({})", self.params, human(self.params as f64))),
            ("MACs / image".into(), human(self.macs as f64)),
            ("wall time".into(), format!("{:.1} s", self.wall_seconds)),
            ("train images/s".into(), format!("{:.0}", self.images_per_second)),
        ];
        rows.extend(self.extra.iter().cloned());
        rows.push(("output".into(), self.out.display().to_string()));
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            writeln!(f, "{k:<w$}  {v}")?;
        }
        Ok(())
    }
}

/// Sets the number of kernel threads (once per process).
pub fn set_threads(n: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| Error::invalid("--threads", e.to_string()))
}

/// `runs/<method>-<YYYYmmdd-HHMMSS>` (UTC).
pub fn default_out_dir(method: &str) -> PathBuf {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    PathBuf::from("runs").join(format!(
        "{method}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

pub(crate) fn build_optimizer(cfg: &TrainConfig, model: &dyn Module) -> Result<Box<dyn Optimizer>> {
    let params: Vec<_> = model.named_parameters().into_iter().filter(|(_, p)| p.is_trainable()).collect();
    let groups = split_weight_decay(params, cfg.weight_decay);
    Ok(match cfg.optimizer.as_str() {
        "sgd" => Box::new(Sgd::new(groups, SgdOptions::new(cfg.lr).momentum(cfg.momentum))?),
        "adam" => Box::new(Adam::new(groups, AdamOptions::adam(cfg.lr).betas(cfg.momentum, 0.999))?),
        "adamw" => Box::new(Adam::new(groups, AdamOptions::adamw(cfg.lr).betas(cfg.momentum, 0.999))?),
        other => {
            return Err(Error::invalid("--optimizer", format!("unknown optimizer {other:?}; valid: sgd, adam, adamw")))
        }
    })
}

/// Evaluates `model` on every batch of `loader` (eval mode, no gradient).
pub fn evaluate(model: &dyn Module, loader: &datasets::Loader, device: autograd::Device) -> Result<SplitMetrics> {
    let (mut loss, mut correct, mut n) = (0.0f64, 0usize, 0usize);
    no_grad(|| -> Result<()> {
        for batch in loader.epoch(0) {
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

/// A run's configuration, data, model and method, ready to train.
pub(crate) struct Run {
    pub(crate) cfg: TrainConfig,
    pub(crate) data: Data,
    pub(crate) info: RunInfo,
    pub(crate) model: Box<dyn Module>,
    pub(crate) method: Box<dyn Method>,
    pub(crate) device: autograd::Device,
}

/// Opens the data and builds the model and the method of `cfg` (with `workers` loader threads).
pub(crate) fn setup(cfg: &TrainConfig, workers: usize) -> Result<Run> {
    let spec = registry::find(&cfg.method)?;
    let mut hp = spec.default_hparams();
    for (k, v) in &cfg.hparams {
        hp.set(&format!("{k}={v}"))?;
    }
    let device = cfg.device()?;
    if cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(Error::invalid("train", "epochs and batch size must be positive"));
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
    })?;
    let info = RunInfo {
        model: cfg.model.clone(),
        dataset: cfg.dataset.clone(),
        num_classes: data.num_classes,
        input_shape: data.input_shape,
        epochs: cfg.epochs,
        steps_per_epoch: data.train.len(),
    };
    let mut model = models::build(&cfg.model, data.num_classes, data.input_shape[0], cfg.seed)?;
    let mut method = (spec.build)(&hp, &info)?;
    rng::with_seed(cfg.seed ^ 0x5EED, || method.prepare(&mut model, &info))?;
    model.convert(DType::F32, device)?;
    Ok(Run { cfg: cfg.clone(), data, info, model, method, device })
}

const LAST: &str = "last.safetensors";
const BEST: &str = "best.safetensors";

fn json_err(e: serde_json::Error) -> Error {
    Error::invalid("checkpoint", e.to_string())
}

/// Writes the run state after the epochs in `history`: model, optimizer and scheduler through
/// [`save_checkpoint`], with the history, the best validation score and the configuration as
/// its user data, atomically.
fn save_last(
    dir: &Path,
    run: &Run,
    opt: &dyn Optimizer,
    sched: &Scheduler,
    history: &[EpochMetrics],
    best: (f64, usize),
) -> Result<()> {
    let state = TrainingState {
        epoch: history.len() as u64,
        step: (history.len() * run.info.steps_per_epoch) as u64,
        user: serde_json::json!({ "history": history, "best_val_acc": best.0, "best_epoch": best.1, "config": run.cfg }),
    };
    save_checkpoint(&dir.join(LAST), run.model.as_ref(), Some(opt), Some(sched), &state)
}

/// Trains with `cfg`, writing into `out`; with `resume`, continues the run in `out` from its
/// last complete checkpoint.
pub fn train(cfg: &TrainConfig, out: &Path, resume: bool, opts: &RunOptions) -> Result<Summary> {
    let start = Instant::now();
    let mut run = setup(cfg, 2)?;
    std::fs::create_dir_all(out)
        .map_err(|e| Error::invalid("train", format!("{}: cannot create: {e}", out.display())))?;
    let spe = run.info.steps_per_epoch;
    let mut opt = build_optimizer(&run.cfg, run.model.as_ref())?;
    let schedule = parse_schedule(&run.cfg.schedule, run.cfg.epochs, spe)?;
    let mut sched = Scheduler::new(schedule, Interval::Step, opt.as_mut())?;
    let (mut first_epoch, mut best, mut history) = (0usize, (-1.0f64, 0usize), Vec::new());
    if resume {
        let path = out.join(LAST);
        if !path.is_file() {
            return Err(Error::invalid(
                "--resume",
                format!("{} holds no complete checkpoint yet ({LAST}); start a new run", out.display()),
            ));
        }
        let state = load_checkpoint(&path, run.model.as_ref(), Some(opt.as_mut()), Some(&mut sched))?;
        sched.apply(opt.as_mut())?;
        first_epoch = state.epoch as usize;
        let bad = || Error::invalid("--resume", format!("{}: the checkpoint's run data is incomplete", path.display()));
        best = (
            state.user["best_val_acc"].as_f64().ok_or_else(bad)?,
            state.user["best_epoch"].as_u64().ok_or_else(bad)? as usize,
        );
        history = serde_json::from_value(state.user["history"].clone()).map_err(json_err)?;
        write_metrics(out, &history)?;
    } else {
        run.cfg.save(out)?;
    }
    let macs = {
        let [c, h, w] = run.info.input_shape;
        count_macs(run.model.as_ref(), &Tensor::zeros(&[1, c, h, w]).to_device(run.device)?)?.total_macs
    };
    let (mut images, mut train_secs) = (0usize, 0.0f64);
    for m in &history {
        images += (m.images_per_second * m.train_seconds) as usize;
        train_secs += m.train_seconds;
    }
    for epoch in first_epoch..run.cfg.epochs {
        rng::manual_seed(epoch_seed(run.cfg.seed, epoch));
        let t0 = Instant::now();
        let train = train_epoch(&mut run, opt.as_mut(), &mut sched, epoch, opts)?;
        let secs = t0.elapsed().as_secs_f64();
        run.method.end_epoch(&mut run.model, Progress { epoch, step: (epoch + 1) * spe })?;
        let val = run.data.val.as_ref().map(|v| evaluate(run.model.as_ref(), v, run.device)).transpose()?;
        let test = evaluate(run.model.as_ref(), &run.data.test, run.device)?;
        let n = run.data.train.dataset().len();
        images += n;
        train_secs += secs;
        let m = EpochMetrics {
            epoch: epoch + 1,
            train,
            val,
            test,
            lr: opt.lrs().first().copied().unwrap_or(0.0),
            train_seconds: secs,
            images_per_second: n as f64 / secs.max(1e-9),
        };
        let score = val.map(|v| v.acc).unwrap_or(test.acc);
        if score > best.0 {
            best = (score, epoch + 1);
            layers::state_dict::save_module(run.model.as_ref(), &out.join(BEST))?;
        }
        if !opts.quiet {
            let v = val.map(|v| format!("  val {:.2}%", 100.0 * v.acc)).unwrap_or_default();
            println!(
                "epoch {:>3}/{}  loss {:.4}  train {:.2}%{v}  test {:.2}%  {:.0} img/s  {:.1} s",
                epoch + 1,
                run.cfg.epochs,
                train.loss,
                100.0 * train.acc,
                100.0 * test.acc,
                m.images_per_second,
                secs
            );
        }
        history.push(m);
        // The checkpoint first: it holds the history too, so a kill between the two writes
        // loses nothing.
        save_last(out, &run, opt.as_ref(), &sched, &history, best)?;
        write_metrics(out, &history)?;
    }
    // Select the best-on-validation weights, then let the method finish (compression, conversion).
    let best_file = load_tensors(&out.join(BEST))?;
    load_state_dict(run.model.as_ref(), &best_file.tensors, Strictness::Strict)?;
    let extra = run.method.finish(&mut run.model, &run.info)?;
    let test = evaluate(run.model.as_ref(), &run.data.test, run.device)?;
    let summary = Summary {
        method: run.cfg.method.clone(),
        model: run.cfg.model.clone(),
        dataset: run.cfg.dataset.clone(),
        test,
        best_epoch: best.1,
        params: run.model.num_parameters(),
        macs,
        wall_seconds: start.elapsed().as_secs_f64(),
        images_per_second: images as f64 / train_secs.max(1e-9),
        extra,
        out: out.to_path_buf(),
    };
    let json = serde_json::json!({
        "test_acc": test.acc, "test_loss": test.loss, "best_epoch": best.1, "params": summary.params,
        "macs": macs, "wall_seconds": summary.wall_seconds, "images_per_second": summary.images_per_second,
        "extra": summary.extra.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
    });
    layers::state_dict::write_atomic(&out.join("summary.json"), json.to_string().as_bytes())?;
    Ok(summary)
}

fn progress_bar(len: usize, epoch: usize, epochs: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{prefix} [{bar:28.cyan/blue}] {pos}/{len} {msg} {per_sec} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
    pb
}

fn train_epoch(
    run: &mut Run,
    opt: &mut dyn Optimizer,
    sched: &mut Scheduler,
    epoch: usize,
    opts: &RunOptions,
) -> Result<SplitMetrics> {
    let spe = run.info.steps_per_epoch;
    let pb = progress_bar(spe, epoch, run.cfg.epochs, opts.quiet);
    let (mut loss_sum, mut correct, mut n) = (0.0f64, 0usize, 0usize);
    let t0 = Instant::now();
    let ce = CrossEntropyOptions::default().label_smoothing(run.cfg.label_smoothing);
    for (i, batch) in run.data.train.epoch(epoch as u64).enumerate() {
        let batch = batch.map_err(|e| Error::invalid("dataset", e.to_string()))?;
        let (task_loss, right) = train_step(run, opt, sched, &batch, Progress { epoch, step: epoch * spe + i }, ce)?;
        correct += right;
        loss_sum += task_loss * batch.n as f64;
        n += batch.n;
        run.data.train.recycle(batch);
        pb.inc(1);
        if i % 8 == 0 {
            let rate = n as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!(
                "loss {:.4} acc {:.2}% {rate:.0} img/s",
                loss_sum / n as f64,
                100.0 * correct as f64 / n as f64
            ));
        }
    }
    sched.step_epoch(opt)?;
    pb.finish_and_clear();
    Ok(SplitMetrics { loss: loss_sum / n.max(1) as f64, acc: correct as f64 / n.max(1) as f64 })
}

/// One training step on `batch` at `at`: forward, loss (with the method's extra term), backward,
/// optimizer and schedule steps, the method's `after_step` hook. Returns the task loss and the
/// number of top-1 correct predictions.
pub(crate) fn train_step(
    run: &mut Run,
    opt: &mut dyn Optimizer,
    sched: &mut Scheduler,
    batch: &Batch,
    at: Progress,
    ce: CrossEntropyOptions,
) -> Result<(f64, usize)> {
    let (x, y) = batch_tensors(batch, run.device)?;
    let logits = run.model.forward(&x, Mode::Train)?;
    let mut loss = cross_entropy(&logits, &y, ce)?;
    let task_loss = loss.item()?;
    if let Some(extra) = run.method.extra_loss(run.model.as_ref(), at)? {
        loss = loss.add(&extra)?;
    }
    if !task_loss.is_finite() {
        let i = at.step - at.epoch * run.info.steps_per_epoch;
        return Err(Error::invalid("train", format!("the loss became {task_loss} at epoch {} step {i}", at.epoch + 1)));
    }
    loss.backward()?;
    drop(loss);
    profile::scope("optimizer_step", run.device, || {
        opt.step()?;
        opt.zero_grad();
        sched.step_batch(opt)
    })?;
    run.method.after_step(&mut run.model, Progress { step: at.step + 1, ..at })?;
    Ok((task_loss, top1_correct(&logits.detach(), &y)?))
}

/// Evaluates a checkpoint (`best.safetensors`, `last.safetensors` or a plain state dict) on the
/// test set. The configuration comes from `cfg` or, when `None`, from `config.json` beside the
/// checkpoint.
pub fn evaluate_checkpoint(path: &Path, cfg: Option<&TrainConfig>, _opts: &RunOptions) -> Result<SplitMetrics> {
    let cfg = match cfg {
        Some(c) => c.clone(),
        None => TrainConfig::load(path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| Error::invalid("--eval-only", format!("{e} (or pass --model and --dataset)")))?,
    };
    let run = setup(&cfg, 2)?;
    let file = load_tensors(path)?;
    let weights: Vec<_> =
        file.tensors.into_iter().filter(|(n, _)| !n.starts_with(layers::checkpoint::OPTIM_PREFIX)).collect();
    load_state_dict(run.model.as_ref(), &weights, Strictness::Strict)
        .map_err(|e| Error::invalid("--eval-only", format!("{}: {e}", path.display())))?;
    evaluate(run.model.as_ref(), &run.data.test, run.device)
}
