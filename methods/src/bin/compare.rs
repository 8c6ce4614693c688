//! `compare`: runs methods x seeds one after the other and writes the comparison.
//!
//! ```text
//! cargo run --release --bin compare -- --methods baseline,swd,swd2d,sfd --seeds 3 --preset small \
//!     --data-dir ../shared/data/cifar-10 --out methods/results/swd-small
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use methods::cli::RunArgs;
use methods::compare::{parse_methods, plan, run_sweep};
use methods::trainer::interrupt;
use methods::{errln, outln};

/// Compare methods over several seeds: every method x seed trained one after the other (all
/// cores each), resumable, summarized in results.md, results.json and results.svg.
#[derive(Parser, Debug)]
#[command(name = "compare", version)]
struct Cli {
    /// Methods to compare, comma-separated; each may carry its own hyperparameters in brackets:
    /// `baseline,swd,snip[sparsity=0.9],snip[sparsity=0.98]`. The first is the reference of the
    /// table's differences.
    #[arg(long, required = true)]
    methods: String,
    /// Number of seeds per method.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// The first seed (seeds are FIRST, FIRST+1, ...).
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Output folder: results.md, results.json, results.svg and the runs in runs/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Number of CPU threads for the kernels (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print only the final table.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// The most seeds a sweep may run (a guard against typos: each seed is a full run per method).
const MAX_SEEDS: u64 = 10_000;

fn shell_quote(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c)) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

fn run(cli: Cli) -> autograd::Result<()> {
    if let Some(n) = cli.threads {
        methods::trainer::set_threads(n)?;
    }
    interrupt::install()?;
    if cli.seeds == 0 || cli.seeds > MAX_SEEDS {
        return Err(autograd::Error::invalid("--seeds", format!("between 1 and {MAX_SEEDS}, got {}", cli.seeds)));
    }
    let entries = parse_methods(&cli.methods)?;
    let end = cli.first_seed.checked_add(cli.seeds).ok_or_else(|| {
        autograd::Error::invalid(
            "--first-seed",
            format!("{} + {} seeds passes the largest seed", cli.first_seed, cli.seeds),
        )
    })?;
    let seeds: Vec<u64> = (cli.first_seed..end).collect();
    let out = match &cli.out {
        Some(o) => o.clone(),
        None => methods::trainer::default_out_dir("compare")?,
    };
    let result = sweep(&cli, &entries, &seeds, &out);
    if result.is_err() && cli.out.is_none() {
        // The fresh default folder, if the sweep wrote nothing into it.
        let _ = std::fs::remove_dir(&out);
    }
    result
}

fn sweep(cli: &Cli, entries: &[methods::compare::Entry], seeds: &[u64], out: &std::path::Path) -> autograd::Result<()> {
    let mut args = cli.run.clone();
    let sets = std::mem::take(&mut args.set);
    let runs = plan(&args, entries, seeds, &sets, out)?;
    let command = std::iter::once("compare".to_string())
        .chain(std::env::args().skip(1).map(|a| shell_quote(&a)))
        .collect::<Vec<_>>()
        .join(" ");
    let results = run_sweep(&runs, out, &command, cli.quiet)?;
    let labels: Vec<String> = entries.iter().map(|e| e.label.clone()).collect();
    let table = methods::compare::results::markdown(&methods::compare::results::aggregate(&labels, &results), &command);
    outln!("{}", table.trim_end());
    outln!("written to {}", out.join("results.md").display());
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if interrupt::requested() => {
            errln!(
                "interrupted; run the same compare command again to continue: finished runs are kept, the interrupted one resumes from its last complete epoch"
            );
            ExitCode::from(interrupt::EXIT_STATUS)
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
