//! Tests trained `sr` runs with and without their SR block (`methods::sr::evaluate_without_block`)
//! and prints a Markdown table: per run the test accuracy and loss with the block, without it,
//! and the difference; then the mean ± sd per entry (the run folder's name without `-s<seed>`).
//! Folders that are not `sr` runs with a block (other methods, `block=off`) are skipped with a
//! note on stderr.
//!
//! ```text
//! cargo run --release -p methods --example sr_ablation -- methods/results/sr-small/runs/sr-s*
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 { (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (m, sd)
}

fn main() -> ExitCode {
    let dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        eprintln!("usage: sr_ablation RUN_DIR...");
        return ExitCode::FAILURE;
    }
    println!("| run | test acc. % with the block | without | Δ (points) | test loss with | without |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for dir in &dirs {
        let a = match methods::sr::evaluate_without_block(dir) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("skipped {}: {e}", dir.display());
                continue;
            }
        };
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (w, wo) = (100.0 * a.with_block.acc, 100.0 * a.without_block.acc);
        println!(
            "| {name} | {w:.2} | {wo:.2} | {:+.2} | {:.4} | {:.4} |",
            wo - w,
            a.with_block.loss,
            a.without_block.loss
        );
        let entry = name.rsplit_once("-s").map_or(name.clone(), |(e, _)| e.to_string());
        groups.entry(entry).or_default().push(wo - w);
    }
    if groups.is_empty() {
        eprintln!("no sr run with a block among the folders given");
        return ExitCode::FAILURE;
    }
    println!();
    for (entry, d) in groups {
        let (m, sd) = mean_sd(&d);
        println!(
            "{entry}: removing the block changes test accuracy by {m:+.2} ± {sd:.2} points over {} run(s)",
            d.len()
        );
    }
    ExitCode::SUCCESS
}
