//! `train`: trains a model with one of Lamina's methods.
//!
//! ```text
//! cargo run --release --bin train -- --method swd
//! cargo run --release --bin train -- --list-methods
//! cargo run --release --bin train -- --profile --model resnet20 --batch-size 128
//! cargo run --release --bin train -- --method baseline --dataset mnist --data-dir ../shared/data/mnist --model lenet5 --epochs 3
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use methods::cli::RunArgs;
use methods::config::TrainConfig;
use methods::profiling::{profile_training, ProfileOptions};
use methods::registry;
use methods::trainer::{evaluate_checkpoint, train, RunOptions};

/// Train a model with one of Lamina's efficiency and regularization methods.
#[derive(Parser, Debug)]
#[command(name = "train", version, about)]
struct Cli {
    /// Method to train with (see --list-methods).
    #[arg(long, default_value = "baseline")]
    method: String,
    /// Print the registered methods with their descriptions, presets and hyperparameters, then exit.
    #[arg(long)]
    list_methods: bool,
    #[command(flatten)]
    run: RunArgs,
    /// Number of CPU threads for the kernels (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Output folder (default: runs/<method>-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last complete checkpoint.
    #[arg(long, conflicts_with = "eval_only")]
    resume: Option<PathBuf>,
    /// Evaluate a checkpoint on the test set (in the method's inference form) and exit; the
    /// configuration comes from config.json beside it, or from --model and the other options.
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
    /// Training steps run before --profile starts measuring.
    #[arg(long, value_name = "STEPS", default_value_t = 2)]
    profile_warmup: usize,
}

fn list_methods() {
    println!("{:<12} description", "method");
    for m in registry::all() {
        println!("{:<12} {}", m.name, m.description);
        let d = m.defaults;
        let width = if d.width == 1.0 { String::new() } else { format!(" (width {})", d.width) };
        println!(
            "{:<12}   defaults: model {}{width}, dataset {}, {} epochs, batch {}, {} lr {}, schedule {}",
            "", d.model, d.dataset, d.epochs, d.batch_size, d.optimizer, d.lr, d.schedule
        );
        for p in m.presets {
            println!("{:<12}   --preset {}: {}", "", p.name, p.about);
        }
        for h in m.hparams {
            println!("{:<12}   --set {}={} : {}", "", h.key, h.default, h.help);
        }
    }
}

fn run(cli: Cli) -> autograd::Result<()> {
    if cli.list_methods {
        list_methods();
        return Ok(());
    }
    if let Some(n) = cli.threads {
        rayon_threads(n)?;
    }
    let opts = RunOptions { quiet: cli.quiet, ..RunOptions::default() };
    if let Some(ckpt) = &cli.eval_only {
        let cfg = cli.run.config(&cli.method)?;
        let r = evaluate_checkpoint(ckpt, cli.run.model.is_some().then_some(&cfg), &opts)?;
        println!(
            "test accuracy {:.2}%  loss {:.4}  ({}, {} test split, {})",
            100.0 * r.test.acc,
            r.test.loss,
            ckpt.display(),
            r.dataset,
            r.form
        );
        return Ok(());
    }
    if let Some(steps) = cli.profile {
        let cfg = cli.run.config(&cli.method)?;
        let out =
            cli.out.clone().unwrap_or_else(|| methods::trainer::default_out_dir(&format!("{}-profile", cfg.method)));
        let opts = ProfileOptions { warmup: cli.profile_warmup, steps };
        print!("{}", profile_training(&cfg, &out, opts)?);
        println!("written to {}", out.join("profile.json").display());
        return Ok(());
    }
    let summary = match &cli.resume {
        Some(dir) => {
            let cfg = TrainConfig::load(dir)?;
            train(&cfg, dir, true, &opts)?
        }
        None => {
            let cfg = cli.run.config(&cli.method)?;
            let out = cli.out.clone().unwrap_or_else(|| methods::trainer::default_out_dir(&cfg.method));
            train(&cfg, &out, false, &opts)?
        }
    };
    println!("{summary}");
    Ok(())
}

fn rayon_threads(n: usize) -> autograd::Result<()> {
    if n == 0 {
        return Err(autograd::Error::invalid("--threads", "needs at least one thread"));
    }
    methods::trainer::set_threads(n)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
