//! Image-folder loader throughput (ImageNet-style): a generated folder of JPEG (3 in 4) and PNG
//! photos-like images of varying sizes around 500x375, decoded on the loader's worker threads,
//! through the standard pipelines at 224 (training: random-resized crop, flip, normalize;
//! evaluation: resize 256, center crop 224, normalize), batch 64.
//!
//! Run: `cargo bench -p datasets --bench image_folder` (`LAMINA_BENCH_IMAGES` images, 512 by
//! default; `LAMINA_BENCH_WORKERS` worker threads, 2 by default).

use std::sync::Arc;
use std::time::Instant;

use datasets::image_folder::{ImageFolder, ImageFolderOptions};
use datasets::{Dataset, Loader, LoaderConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes `n` images into `root/<class>/`, two classes.
fn generate(root: &std::path::Path, n: usize) {
    let mut s = 0x9e37_79b9u64;
    for i in 0..n {
        let class = root.join(if i % 2 == 0 { "a" } else { "b" });
        std::fs::create_dir_all(&class).unwrap();
        let (w, h) = (440 + (i * 37 % 120) as u32, 330 + (i * 53 % 90) as u32);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = (s >> 59) as u32;
            image::Rgb([((x / 3 + y / 5) % 256) as u8, ((y * 2 + noise) % 256) as u8, ((x ^ y) % 256) as u8])
        });
        let (name, format) = if i % 4 == 3 {
            (format!("{i}.png"), image::ImageFormat::Png)
        } else {
            (format!("{i}.jpg"), image::ImageFormat::Jpeg)
        };
        img.save_with_format(class.join(name), format).unwrap();
    }
}

fn main() {
    let n = env("LAMINA_BENCH_IMAGES", 512);
    let workers = env("LAMINA_BENCH_WORKERS", 2);
    let root = std::env::temp_dir().join(format!("lamina-bench-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let t = Instant::now();
    generate(&root, n);
    let bytes: u64 = walk(&root);
    println!("generated {n} images ({:.1} MB) in {:.1} s", bytes as f64 / 1e6, t.elapsed().as_secs_f64());
    let t = Instant::now();
    let folder: Arc<dyn Dataset> = Arc::new(ImageFolder::open_with(&root, &ImageFolderOptions::default()).unwrap());
    println!("opened in {:.3} s", t.elapsed().as_secs_f64());
    for train in [true, false] {
        let cfg = LoaderConfig { batch_size: 64, num_workers: workers, prefetch: 4, seed: 1, ..Default::default() };
        let loader = Loader::new(folder.clone(), folder.standard_pipeline(train), cfg).unwrap();
        let mut rates = Vec::new();
        for epoch in 0..3 {
            let t = Instant::now();
            let mut images = 0usize;
            for b in loader.epoch(epoch) {
                let b = b.unwrap();
                assert_eq!((b.c, b.h, b.w), (3, 224, 224));
                images += b.n;
                loader.recycle(b);
            }
            rates.push(images as f64 / t.elapsed().as_secs_f64());
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let what = if train { "train (random-resized crop 224, flip)" } else { "eval (resize 256, center crop 224)" };
        println!("{what}, {workers} workers: median {:.0} images/s (3 epochs: {rates:.0?})", rates[1]);
    }
    std::fs::remove_dir_all(root).unwrap();
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                std::fs::metadata(&p).unwrap().len()
            }
        })
        .sum()
}
