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
    /// Print the registered methods with their descriptions and hyperparameters, then exit.
    #[arg(long)]
    list_methods: bool,
    /// Model (e.g. resnet8, resnet20, resnet18-cifar, vgg16-bn, mobilenetv2-cifar, vit-tiny-4, lenet5, mlp).
    #[arg(long)]
    model: Option<String>,
    /// Dataset (fashion-mnist-embedded, mnist, fashion-mnist, cifar10, cifar100, imagefolder, digits).
    #[arg(long)]
    dataset: Option<String>,
    /// Folder holding the dataset's files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Number of epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Training batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimizer: sgd, adam or adamw.
    #[arg(long)]
    optimizer: Option<String>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// SGD momentum (Adam's beta1).
    #[arg(long)]
    momentum: Option<f64>,
    /// Weight decay (not applied to biases and normalization parameters).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// LR schedule: constant, cosine, onecycle, step:EPOCHS:GAMMA, multistep:E1,E2:GAMMA; prefix warmup=N, for N warm-up epochs.
    #[arg(long)]
    schedule: Option<String>,
    /// Label smoothing of the cross-entropy loss.
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Seed of initialization, data order, augmentation and masks.
    #[arg(long)]
    seed: Option<u64>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Number of CPU threads for the kernels (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Fraction of the training set held out for validation and checkpoint selection.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use only the first N test images (quick runs).
    #[arg(long)]
    test_limit: Option<usize>,
    /// Output folder (default: runs/<method>-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last complete checkpoint.
    #[arg(long, conflicts_with = "eval_only")]
    resume: Option<PathBuf>,
    /// Evaluate a checkpoint on the test set and exit (the model comes from config.json beside it, or --model).
    #[arg(long)]
    eval_only: Option<PathBuf>,
    /// A method hyperparameter, key=value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
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
        println!(
            "{:<12}   defaults: model {}, dataset {}, {} epochs, batch {}, {} lr {}, schedule {}",
            "", d.model, d.dataset, d.epochs, d.batch_size, d.optimizer, d.lr, d.schedule
        );
        for h in m.hparams {
            println!("{:<12}   --set {}={} : {}", "", h.key, h.default, h.help);
        }
    }
}

fn config(cli: &Cli) -> autograd::Result<TrainConfig> {
    let spec = registry::find(&cli.method)?;
    let mut cfg = TrainConfig::from_defaults(spec);
    macro_rules! take {
        ($($field:ident),*) => { $(if let Some(v) = &cli.$field { cfg.$field = v.clone().into(); })* };
    }
    take!(
        model,
        dataset,
        epochs,
        batch_size,
        optimizer,
        lr,
        momentum,
        weight_decay,
        schedule,
        label_smoothing,
        seed,
        device,
        val_fraction
    );
    cfg.data_dir = cli.data_dir.clone();
    cfg.train_limit = cli.train_limit;
    cfg.test_limit = cli.test_limit;
    let mut h = spec.default_hparams();
    for s in &cli.set {
        h.set(s)?;
    }
    cfg.hparams = h.values().clone();
    Ok(cfg)
}

fn run(cli: Cli) -> autograd::Result<()> {
    if cli.list_methods {
        list_methods();
        return Ok(());
    }
    if let Some(n) = cli.threads {
        rayon_threads(n)?;
    }
    let opts = RunOptions { quiet: cli.quiet };
    if let Some(ckpt) = &cli.eval_only {
        let cfg = config(&cli)?;
        let m = evaluate_checkpoint(ckpt, cli.model.is_some().then_some(&cfg), &opts)?;
        println!("test accuracy {:.2}%  loss {:.4}  ({})", 100.0 * m.acc, m.loss, ckpt.display());
        return Ok(());
    }
    if let Some(steps) = cli.profile {
        let cfg = config(&cli)?;
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
            let cfg = config(&cli)?;
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
