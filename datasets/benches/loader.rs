//! Loader throughput for CIFAR-style training: 32x32 pad-4 random crop + horizontal flip +
//! normalize, batch 128, 2 worker threads. Uses the real CIFAR-10 training set when found
//! (`$LAMINA_DATA` or `shared/data` beside the workspace), else synthetic 50,000 images.
//!
//! Run: `cargo bench -p datasets --bench loader`

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use datasets::{open, DataOptions, Dataset, Loader, LoaderConfig, Normalization, Pipeline, Result, Sample, Split};

/// 50,000 random-looking 3x32x32 images in memory.
struct Synthetic(Vec<u8>);

impl Dataset for Synthetic {
    fn name(&self) -> &str {
        "synthetic-cifar"
    }
    fn len(&self) -> usize {
        self.0.len() / 3072
    }
    fn num_classes(&self) -> usize {
        10
    }
    fn class_names(&self) -> &[String] {
        &[]
    }
    fn image_shape(&self) -> Option<[usize; 3]> {
        Some([3, 32, 32])
    }
    fn normalization(&self) -> Normalization {
        Normalization::cifar10()
    }
    fn get(&self, i: usize) -> Result<Sample<'_>> {
        Ok(Sample {
            pixels: Cow::Borrowed(&self.0[i * 3072..(i + 1) * 3072]),
            shape: [3, 32, 32],
            label: (i % 10) as i64,
        })
    }
    fn standard_pipeline(&self, _train: bool) -> Pipeline {
        Pipeline::new()
    }
}

fn dataset() -> Arc<dyn Dataset> {
    let dir = std::env::var_os("LAMINA_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    match open("cifar10", Split::Train, &DataOptions::with_dir(&dir)) {
        Ok(d) => {
            println!("dataset: real CIFAR-10 train ({} images) from {}", d.len(), dir.display());
            d
        }
        Err(e) => {
            println!("dataset: synthetic 50,000 x 3x32x32 ({e})");
            let mut s = 0x12345u64;
            let px = (0..50_000 * 3072)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (s >> 56) as u8
                })
                .collect();
            Arc::new(Synthetic(px))
        }
    }
}

fn main() {
    let ds = dataset();
    let pipeline = Pipeline::new().random_crop(32, 4).horizontal_flip(0.5).normalize(Normalization::cifar10());
    for (workers, recycle) in [(2, true), (2, false), (1, true)] {
        let cfg = LoaderConfig { batch_size: 128, num_workers: workers, prefetch: 4, seed: 1, ..Default::default() };
        let loader = Loader::new(ds.clone(), pipeline.clone(), cfg).unwrap();
        let mut rates = Vec::new();
        for epoch in 0..3 {
            let t = Instant::now();
            let mut n = 0usize;
            let mut checksum = 0f64;
            for b in loader.epoch(epoch) {
                let b = b.unwrap();
                n += b.n;
                checksum += b.images[0] as f64;
                if recycle {
                    loader.recycle(b);
                }
            }
            let dt = t.elapsed().as_secs_f64();
            rates.push(n as f64 / dt);
            println!(
                "workers={workers} recycle={recycle} epoch {epoch}: {n} images in {dt:.3} s = {:.0} images/s (checksum {checksum:.3})",
                n as f64 / dt
            );
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("workers={workers} recycle={recycle}: median {:.0} images/s", rates[1]);
    }
}
