//! `train --profile`: a few training steps of a run under the op profiler
//! ([`autograd::profile`]), summarized per step as a table and as `profile.json`.
//!
//! The steps are the trainer's own ([`crate::trainer`]): same model, data, method hooks, optimizer
//! and schedule. The measured window starts after the warm-up steps and covers whole steps,
//! fetching the batch included, so the op entries, the `optimizer_step` scope (the optimizer and
//! schedule updates with every op they run) and `other` (data loading, tape bookkeeping, views,
//! the method's host-side work) add up to the measured step time. Below the table, each
//! convolution pass is broken down by the algorithm the backend ran for it (`winograd4`,
//! `im2col`, ...), with its own calls and time (inside the conv2d rows, not added to them).

use std::fmt;
use std::path::Path;

use autograd::profile::{self, AlgorithmTime, OpTime, Report};
use autograd::{Error, Result};
use layers::loss::CrossEntropyOptions;
use layers::optim::Optimizer;
use layers::schedule::Scheduler;
use layers::{rng, ModuleExt};
use serde_json::json;

use crate::config::TrainConfig;
use crate::registry::{self, Phase, PhaseContext, Progress};
use crate::trainer::{epoch_seed, phase_optimizer, setup, train_step, Run};

/// How many steps to run and profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileOptions {
    /// Steps run before profiling starts (caches, allocator and kernel selection settle).
    pub warmup: usize,
    /// Steps profiled.
    pub steps: usize,
}

/// The per-step profile of a run's training steps.
#[derive(Clone, Debug)]
pub struct StepProfile {
    /// Method name.
    pub method: String,
    /// Model name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// Training batch size.
    pub batch_size: usize,
    /// Kernel threads.
    pub threads: usize,
    /// Device name.
    pub device: String,
    /// Steps run before the measurement.
    pub warmup: usize,
    /// Steps measured.
    pub steps: usize,
    /// What the profiler measured over all measured steps.
    pub report: Report,
}

impl StepProfile {
    /// Measured wall time of one step, in milliseconds.
    pub fn step_ms(&self) -> f64 {
        self.per_step_ms(self.report.elapsed)
    }

    fn per_step_ms(&self, d: std::time::Duration) -> f64 {
        d.as_secs_f64() * 1e3 / self.steps as f64
    }

    fn share(&self, d: std::time::Duration) -> f64 {
        d.as_secs_f64() / self.report.elapsed.as_secs_f64().max(1e-12)
    }

    fn row(&self, o: &OpTime) -> serde_json::Value {
        json!({
            "op": o.name,
            "pass": o.pass.short_name(),
            "calls_per_step": o.calls as f64 / self.steps as f64,
            "ms_per_step": self.per_step_ms(o.time),
            "share": self.share(o.time),
        })
    }

    fn algorithm_row(&self, a: &AlgorithmTime) -> serde_json::Value {
        json!({
            "op": a.op,
            "algorithm": a.algorithm,
            "calls_per_step": a.calls as f64 / self.steps as f64,
            "ms_per_step": self.per_step_ms(a.time),
            "share": self.share(a.time),
        })
    }

    /// The profile as JSON (what `profile.json` holds); shares are fractions of the step time.
    /// `algorithms` breaks the convolution rows of `ops` down by algorithm.
    pub fn to_json(&self) -> serde_json::Value {
        let other = self.report.unattributed();
        json!({
            "method": self.method, "model": self.model, "dataset": self.dataset,
            "batch_size": self.batch_size, "threads": self.threads, "device": self.device,
            "warmup_steps": self.warmup, "steps": self.steps,
            "step_ms": self.step_ms(),
            "other_ms_per_step": self.per_step_ms(other),
            "other_share": self.share(other),
            "ops": self.report.ops.iter().map(|o| self.row(o)).collect::<Vec<_>>(),
            "algorithms": self.report.algorithms.iter().map(|a| self.algorithm_row(a)).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for StepProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "profile: {} {} on {}, batch {}, {} steps after {} warm-up, {} threads, {}",
            self.method, self.model, self.dataset, self.batch_size, self.steps, self.warmup, self.threads, self.device
        )?;
        let w = self.report.ops.iter().map(|o| o.name.len()).max().unwrap_or(0).max("(total step)".len());
        writeln!(f, "{:<w$}  pass  {:>10}  {:>10}  {:>7}", "op", "calls/step", "ms/step", "share")?;
        for o in &self.report.ops {
            let calls = o.calls as f64 / self.steps as f64;
            let (ms, share) = (self.per_step_ms(o.time), 100.0 * self.share(o.time));
            writeln!(f, "{:<w$}  {:<4}  {calls:>10.1}  {ms:>10.3}  {share:>6.1}%", o.name, o.pass)?;
        }
        let other = self.report.unattributed();
        let (ms, share) = (self.per_step_ms(other), 100.0 * self.share(other));
        writeln!(f, "{:<w$}  {:<4}  {:>10}  {ms:>10.3}  {share:>6.1}%", "other", "", "")?;
        writeln!(f, "{:<w$}  {:<4}  {:>10}  {:>10.3}  {:>6.1}%", "(total step)", "", "", self.step_ms(), 100.0)?;
        if self.report.algorithms.is_empty() {
            return Ok(());
        }
        let a = &self.report.algorithms;
        let w = a.iter().map(|a| a.op.len()).max().unwrap_or(0).max("convolution".len());
        let wa = a.iter().map(|a| a.algorithm.len()).max().unwrap_or(0).max("algorithm".len());
        writeln!(
            f,
            "{:<w$}  {:<wa$}  {:>10}  {:>10}  {:>7}",
            "convolution", "algorithm", "calls/step", "ms/step", "share"
        )?;
        for a in a {
            let calls = a.calls as f64 / self.steps as f64;
            let (ms, share) = (self.per_step_ms(a.time), 100.0 * self.share(a.time));
            writeln!(f, "{:<w$}  {:<wa$}  {calls:>10.1}  {ms:>10.3}  {share:>6.1}%", a.op, a.algorithm)?;
        }
        Ok(())
    }
}

/// Runs `opts.warmup` training steps of `cfg`, then `opts.steps` more under the profiler, and
/// writes the result to `out/profile.json`.
pub fn profile_training(cfg: &TrainConfig, out: &Path, opts: ProfileOptions) -> Result<StepProfile> {
    if opts.steps == 0 {
        return Err(Error::invalid("--profile", "needs at least one step to profile"));
    }
    let mut run = setup(registry::find(&cfg.method)?, cfg, 2)?;
    std::fs::create_dir_all(out)
        .map_err(|e| Error::invalid("--profile", format!("{}: cannot create: {e}", out.display())))?;
    // The first phase that trains, as the trainer starts it.
    let phases = run.method.phases(&run.info);
    let Some(index) = phases.iter().position(|p| p.epochs > 0) else {
        return Err(Error::invalid("--profile", format!("method {} trains in no phase of this run", cfg.method)));
    };
    for (i, phase) in phases.iter().enumerate().take(index + 1) {
        let at = Progress { phase: i, epoch: 0, phase_epoch: 0, step: 0 };
        let ctx = PhaseContext { run: &run.info, at, phase, data: &run.data };
        run.method.start_phase(&mut run.model, &ctx)?;
        run.model.convert(autograd::DType::F32, run.device)?;
    }
    let phase: &Phase = &phases[index];
    let (mut opt, mut sched) =
        phase_optimizer(&mut run, phase, Progress { phase: index, epoch: 0, phase_epoch: 0, step: 0 })?;
    let measured = run_steps(&mut run, opt.as_mut(), &mut sched, index, opts);
    profile::disable();
    let report = measured?;
    let p = StepProfile {
        method: run.cfg.method.clone(),
        model: run.cfg.model.clone(),
        dataset: run.cfg.dataset.clone(),
        batch_size: run.cfg.batch_size,
        threads: rayon::current_num_threads(),
        device: run.device.to_string(),
        warmup: opts.warmup,
        steps: opts.steps,
        report,
    };
    let text = serde_json::to_string_pretty(&p.to_json()).map_err(|e| Error::invalid("--profile", e.to_string()))?;
    layers::state_dict::write_atomic(&out.join("profile.json"), text.as_bytes())?;
    Ok(p)
}

/// The warm-up and measured steps, over as many epochs of the training data as they need.
fn run_steps(
    run: &mut Run,
    opt: &mut dyn Optimizer,
    sched: &mut Scheduler,
    phase: usize,
    opts: ProfileOptions,
) -> Result<Report> {
    let spe = run.info.steps_per_epoch;
    let ce = CrossEntropyOptions::default().label_smoothing(run.cfg.label_smoothing);
    let total = opts.warmup + opts.steps;
    let mut done = 0;
    if opts.warmup == 0 {
        profile::enable();
    }
    let mut epoch = 0;
    loop {
        rng::manual_seed(epoch_seed(run.cfg.seed, epoch));
        for (i, batch) in run.data.train.epoch(epoch as u64).enumerate() {
            let batch = batch.map_err(|e| Error::invalid("dataset", e.to_string()))?;
            let at = Progress { phase, epoch, phase_epoch: epoch, step: epoch * spe + i };
            train_step(run, opt, sched, &batch, at, ce)?;
            run.data.train.recycle(batch);
            done += 1;
            if done == opts.warmup {
                profile::enable();
            }
            if done == total {
                return Ok(profile::take_report());
            }
        }
        if spe == 0 {
            return Err(Error::invalid("--profile", "the training set yields no batches"));
        }
        epoch += 1;
    }
}
