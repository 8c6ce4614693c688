//! One training step and one epoch of them, with the method's per-step hooks at their points:
//! forward, task loss, [`Method::loss`](crate::registry::Method::loss), backward,
//! [`after_backward`](crate::registry::Method::after_backward), optimizer step,
//! [`after_step`](crate::registry::Method::after_step), gradients cleared, schedule step.

use std::time::Instant;

use autograd::{profile, Error, Result};
use datasets::Batch;
use indicatif::{ProgressBar, ProgressStyle};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::metrics::top1_correct;
use layers::optim::Optimizer;
use layers::schedule::Scheduler;
use layers::{Mode, ModuleExt};

use super::setup::Run;
use crate::data::batch_tensors;
use crate::metrics::SplitMetrics;
use crate::registry::{Progress, StepLoss};

fn non_finite(what: &str, value: f64, at: Progress, steps_per_epoch: usize) -> Error {
    let i = at.step - at.epoch * steps_per_epoch;
    Error::invalid(
        "train",
        format!("the {what} became {value} at epoch {} step {i}: training diverged (lower --lr?)", at.epoch + 1),
    )
}

/// One training step on `batch` at `at`. Returns the task loss and the number of top-1 correct
/// predictions.
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
    let task = cross_entropy(&logits, &y, ce)?;
    let task_loss = task.item()?;
    let spe = run.info.steps_per_epoch;
    if !task_loss.is_finite() {
        return Err(non_finite("training loss", task_loss, at, spe));
    }
    let loss = run.method.loss(StepLoss {
        model: run.model.as_ref(),
        images: &x,
        labels: &y,
        logits: &logits,
        task_loss: task,
        at,
    })?;
    let total = loss.item()?;
    if !total.is_finite() {
        return Err(non_finite("method's loss", total, at, spe));
    }
    loss.backward()?;
    drop(loss);
    run.method.after_backward(run.model.as_ref(), opt, at)?;
    profile::scope("optimizer_step", run.device, || opt.step())?;
    run.method.after_step(&mut run.model, opt, Progress { step: at.step + 1, ..at })?;
    run.model.zero_grad();
    sched.step_batch(opt)?;
    Ok((task_loss, top1_correct(&logits.detach(), &y)?))
}

fn progress_bar(len: usize, label: String, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{prefix} [{bar:28.cyan/blue}] {pos}/{len} {msg} {per_sec} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(label);
    pb
}

/// One epoch of training steps from `at` (its first step); returns the epoch's running task
/// loss and accuracy.
pub(crate) fn train_epoch(
    run: &mut Run,
    opt: &mut dyn Optimizer,
    sched: &mut Scheduler,
    at: Progress,
    label: String,
    quiet: bool,
) -> Result<SplitMetrics> {
    let pb = progress_bar(run.info.steps_per_epoch, label, quiet);
    let (mut loss_sum, mut correct, mut n) = (0.0f64, 0usize, 0usize);
    let t0 = Instant::now();
    let ce = CrossEntropyOptions::default().label_smoothing(run.cfg.label_smoothing);
    let batches = run.data.train.epoch(at.epoch as u64);
    for (i, batch) in batches.enumerate() {
        super::interrupt::check()?;
        let batch = batch.map_err(|e| Error::invalid("dataset", e.to_string()))?;
        let (task_loss, right) = train_step(run, opt, sched, &batch, Progress { step: at.step + i, ..at }, ce)?;
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
