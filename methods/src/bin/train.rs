//! `train`: trains a model with one of Lamina's methods.
//!
//! ```text
//! cargo run --release --bin train -- --method swd
//! cargo run --release --bin train -- --list-methods
//! cargo run --release --bin train -- --profile --model resnet20 --batch-size 128
//! cargo run --release --bin train -- --method baseline --dataset mnist --data-dir ../shared/data/mnist --model lenet5 --epochs 3
//! cargo run --release --bin train -- --resume runs/baseline-20250101-120000 --epochs 8
//! ```
//!
//! Exit status: 0 on success, 1 on an error (explained on stderr), 2 for a command line clap
//! cannot parse, 130 when stopped by Ctrl-C (the message says how to resume).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use methods::cli::RunArgs;
use methods::config::TrainConfig;
use methods::profiling::{profile_training, ProfileOptions};
use methods::trainer::{check_checkpoint_path, default_out_dir, evaluate_checkpoint, interrupt, train, RunOptions};
use methods::{errln, outln, registry};

/// Train a model with one of Lamina's efficiency and regularization methods.
#[derive(Parser, Debug)]
#[command(name = "train", version)]
struct Cli {
    /// Method to train with (see --list-methods) [default: baseline].
    #[arg(long)]
    method: Option<String>,
    /// Print the registered methods with their descriptions, presets and hyperparameters, then exit.
    #[arg(long)]
    list_methods: bool,
    #[command(flatten)]
    run: RunArgs,
    /// Number of CPU threads for the kernels (default: all cores; more than the cores is capped
    /// at them, with a warning).
    #[arg(long)]
    threads: Option<usize>,
    /// Output folder, new or empty (default: runs/<method>-<time>, a fresh folder).
    #[arg(long, conflicts_with_all = ["resume", "eval_only"])]
    out: Option<PathBuf>,
    /// Let a new run take an --out folder that holds a run: the old run's files are removed first.
    #[arg(long, requires = "out", conflicts_with_all = ["resume", "eval_only", "profile"])]
    overwrite: bool,
    /// Continue the run in this folder from its last complete checkpoint, with its stored
    /// configuration; --epochs (to extend it), --device, --data-dir and --test-every may change, any other
    /// option that differs from the run's is refused.
    #[arg(long, conflicts_with = "eval_only")]
    resume: Option<PathBuf>,
    /// Evaluate a checkpoint on the test set (in the method's inference form) and exit; the
    /// model comes from config.json beside it (--dataset, --data-dir, --test-limit, --device,
    /// --batch-size may change the data), or from --model and the other options without one.
    #[arg(long)]
    eval_only: Option<PathBuf>,
    /// Print only the final summary.
    #[arg(long)]
    quiet: bool,
    /// Profile instead of training: run --profile-warmup steps, then STEPS steps (default 10) under
    /// the op profiler, and print per step the time of every op, forward (fwd) and backward (bwd:
    /// the op's whole backward rule), of the optimizer step (all), and the unattributed rest
    /// ("other": data loading, tape bookkeeping, views), sorted by time; also written to
    /// profile.json in the output folder.
    #[arg(long, value_name = "STEPS", num_args = 0..=1, default_missing_value = "10",
          conflicts_with_all = ["resume", "eval_only"])]
    profile: Option<usize>,
    /// Training steps run before --profile starts measuring [default: 2].
    #[arg(long, value_name = "STEPS", requires = "profile")]
    profile_warmup: Option<usize>,
}

fn list_methods() {
    outln!("{:<12} description", "method");
    for m in registry::all() {
        outln!("{:<12} {}", m.name, m.description);
        let d = m.defaults;
        let width = if d.width == 1.0 { String::new() } else { format!(" (width {})", d.width) };
        outln!(
            "{:<12}   defaults: model {}{width}, dataset {}, {} epochs, batch {}, {} lr {}, schedule {}",
            "",
            d.model,
            d.dataset,
            d.epochs,
            d.batch_size,
            d.optimizer,
            d.lr,
            d.schedule
        );
        for p in m.presets {
            outln!("{:<12}   --preset {}: {}", "", p.name, p.about);
        }
        for h in m.hparams {
            outln!("{:<12}   --set {}={} : {}", "", h.key, h.default, h.help);
        }
    }
}

/// `--eval-only CHECKPOINT`.
fn eval_only(cli: &Cli, ckpt: &Path, opts: &RunOptions) -> autograd::Result<()> {
    check_checkpoint_path(ckpt)?;
    let beside = ckpt.parent().unwrap_or(Path::new("."));
    let stored = if beside.join("config.json").is_file() { Some(TrainConfig::load(beside)?) } else { None };
    let (cfg, notes) = cli.run.eval_config(cli.method.as_deref(), stored.as_ref())?;
    for n in notes {
        errln!("note: {n}");
    }
    let r = evaluate_checkpoint(ckpt, Some(&cfg), opts)?;
    outln!(
        "test accuracy {:.2}%  loss {:.4}  ({}, {} test split, {} images, {})",
        100.0 * r.test.acc,
        r.test.loss,
        ckpt.display(),
        r.dataset,
        r.images,
        r.form
    );
    Ok(())
}

/// Runs the command; `run_dir` is set to the folder a run trains in, for the Ctrl-C message.
fn run(cli: Cli, run_dir: &mut Option<PathBuf>) -> autograd::Result<()> {
    if cli.list_methods {
        list_methods();
        return Ok(());
    }
    if let Some(n) = cli.threads {
        methods::trainer::set_threads(n)?;
    }
    interrupt::install()?;
    let opts = RunOptions { quiet: cli.quiet, overwrite: cli.overwrite, ..RunOptions::default() };
    if let Some(ckpt) = &cli.eval_only {
        return eval_only(&cli, ckpt, &opts);
    }
    let method = cli.method.clone();
    if let Some(steps) = cli.profile {
        let cfg = cli.run.config(method.as_deref().unwrap_or("baseline"))?;
        let out = match &cli.out {
            Some(o) => o.clone(),
            None => default_out_dir(&format!("{}-profile", cfg.method))?,
        };
        let opts = ProfileOptions { warmup: cli.profile_warmup.unwrap_or(2), steps };
        outln!("{}", profile_training(&cfg, &out, opts)?.to_string().trim_end());
        outln!("written to {}", out.join("profile.json").display());
        return Ok(());
    }
    let summary = match &cli.resume {
        Some(dir) => {
            let stored = TrainConfig::load(dir).map_err(|e| {
                autograd::Error::invalid("--resume", format!("{}: not a run folder ({e})", dir.display()))
            })?;
            let (cfg, notes) = cli.run.resume_config(method.as_deref(), &stored)?;
            for n in notes {
                errln!("note: {n}");
            }
            *run_dir = Some(dir.clone());
            train(&cfg, dir, true, &opts)?
        }
        None => {
            let cfg = cli.run.config(method.as_deref().unwrap_or("baseline"))?;
            let out = match &cli.out {
                Some(o) => o.clone(),
                None => default_out_dir(&cfg.method)?,
            };
            *run_dir = Some(out.clone());
            train(&cfg, &out, false, &opts)?
        }
    };
    outln!("{}", summary.to_string().trim_end());
    Ok(())
}

/// What to tell after Ctrl-C stopped the run in `dir`.
fn interrupted(dir: Option<&Path>) {
    match dir {
        Some(d) if d.join("last.safetensors").is_file() => errln!(
            "interrupted; the last complete epoch is saved in {}. Resume with: train --resume {}",
            d.display(),
            d.display()
        ),
        Some(_) => errln!("interrupted before the first epoch finished: nothing was saved, nothing to resume"),
        None => errln!("interrupted"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut run_dir = None;
    match run(cli, &mut run_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if interrupt::requested() => {
            interrupted(run_dir.as_deref());
            ExitCode::from(interrupt::EXIT_STATUS)
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
