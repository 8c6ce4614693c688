//! Loads a dataset by name and prints its size, shape, classes and class histogram.
//!
//! `cargo run -p datasets --release --example inspect -- [NAME] [--data-dir DIR] [--verify]`
//!
//! NAME defaults to `fashion-mnist-embedded` (needs no file). The data directory defaults
//! to `$LAMINA_DATA`. `--verify` also prints the sha256 report of the data directory.

use std::path::PathBuf;

use datasets::checksum::verify_data_dir;
use datasets::{class_histogram, open, DataOptions, Split, DATASET_NAMES};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut name = "fashion-mnist-embedded".to_string();
    let mut opts = DataOptions::default();
    let mut verify = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data-dir" => opts.data_dir = Some(PathBuf::from(args.next().ok_or("--data-dir needs a value")?)),
            "--verify" => verify = true,
            "-h" | "--help" => {
                println!("usage: inspect [NAME] [--data-dir DIR] [--verify]\nnames: {}", DATASET_NAMES.join(", "));
                return Ok(());
            }
            _ => name = a,
        }
    }
    for split in [Split::Train, Split::Test] {
        let ds = open(&name, split, &opts)?;
        let hist = class_histogram(&*ds)?;
        println!("{name} {split:?}: {} images, {} classes, shape {:?}", ds.len(), ds.num_classes(), ds.image_shape());
        println!("  normalization: {:?}", ds.normalization());
        for (c, (n, count)) in ds.class_names().iter().zip(&hist).enumerate() {
            println!("  {c:>3} {n:<24} {count}");
        }
    }
    if verify {
        let dir = opts.resolve_dir().ok_or("--verify needs a data directory")?;
        for r in verify_data_dir(&dir)? {
            println!("{:<45} {}", r.path, r.status);
        }
    }
    Ok(())
}
