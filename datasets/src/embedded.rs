//! The embedded default dataset: Fashion-MNIST's first 20,000 training images and its full
//! 10,000-image test set, compiled into the binary (about 13 MB of gzip), so training works
//! with no download and no data directory. Registry name: `fashion-mnist-embedded`.
//!
//! Fashion-MNIST is Copyright (c) 2017 Zalando SE, MIT licence; see
//! `datasets/data/fashion-mnist-embedded/` for the licence text and how the files were made.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::error::Result;
use crate::idx::{IdxDataset, IdxInfo};
use crate::transforms::Normalization;

/// Registry name of the embedded dataset.
pub const NAME: &str = "fashion-mnist-embedded";
/// Number of embedded training images (the first 20,000 of the official 60,000).
pub const TRAIN_LEN: usize = 20_000;
/// Number of embedded test images (the full official test set).
pub const TEST_LEN: usize = 10_000;

const TRAIN_IMAGES: &[u8] = include_bytes!("../data/fashion-mnist-embedded/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../data/fashion-mnist-embedded/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../data/fashion-mnist-embedded/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../data/fashion-mnist-embedded/t10k-labels-idx1-ubyte.gz");

/// Fashion-MNIST's class names, by class id.
pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

fn info() -> IdxInfo {
    IdxInfo {
        name: NAME.into(),
        class_names: FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
        normalization: Normalization::fashion_mnist(),
    }
}

fn load(images: &'static [u8], img_name: &str, labels: &'static [u8], lab_name: &str) -> Result<IdxDataset> {
    IdxDataset::from_bytes(
        images.to_vec(),
        &Path::new("<embedded>").join(img_name),
        labels.to_vec(),
        &Path::new("<embedded>").join(lab_name),
        info(),
    )
}

/// The embedded training set (20,000 images), decompressed once and shared.
pub fn train() -> Result<Arc<IdxDataset>> {
    static CELL: OnceLock<Arc<IdxDataset>> = OnceLock::new();
    if let Some(d) = CELL.get() {
        return Ok(d.clone());
    }
    let d = Arc::new(load(TRAIN_IMAGES, "train-images-idx3-ubyte.gz", TRAIN_LABELS, "train-labels-idx1-ubyte.gz")?);
    Ok(CELL.get_or_init(|| d).clone())
}

/// The embedded test set (10,000 images), decompressed once and shared.
pub fn test() -> Result<Arc<IdxDataset>> {
    static CELL: OnceLock<Arc<IdxDataset>> = OnceLock::new();
    if let Some(d) = CELL.get() {
        return Ok(d.clone());
    }
    let d = Arc::new(load(TEST_IMAGES, "t10k-images-idx3-ubyte.gz", TEST_LABELS, "t10k-labels-idx1-ubyte.gz")?);
    Ok(CELL.get_or_init(|| d).clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::sha256_hex;
    use crate::dataset::{class_histogram, Dataset};
    use crate::read::read_file;

    const TRAIN_IMAGES_SHA: &str = "58e4771950337033c6f5665c995cab5743ed89bf7399fd5c583cf4de053257d1";
    const TRAIN_LABELS_SHA: &str = "9096aaf5e84faa7a18c04a6f597e5adc34d95d60b46296a4a1bb09c2e49d9d15";
    const TEST_IMAGES_SHA: &str = "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a";
    const TEST_LABELS_SHA: &str = "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9";

    #[test]
    fn payloads_match_official_prefixes() {
        let tr = train().unwrap();
        let te = test().unwrap();
        assert_eq!((tr.len(), te.len()), (TRAIN_LEN, TEST_LEN));
        assert_eq!(tr.image_shape(), Some([1, 28, 28]));
        let got = [sha256_hex(tr.pixels()), sha256_hex(tr.labels()), sha256_hex(te.pixels()), sha256_hex(te.labels())];
        assert_eq!(got, [TRAIN_IMAGES_SHA, TRAIN_LABELS_SHA, TEST_IMAGES_SHA, TEST_LABELS_SHA]);
        assert_eq!(class_histogram(&*te).unwrap(), vec![1000; 10]);
        assert_eq!(class_histogram(&*tr).unwrap(), vec![1935, 2025, 1982, 2011, 1967, 2010, 2068, 2003, 1971, 2028]);

        // Against the official files, when present.
        let Some(dir) = crate::testdata::data_dir() else {
            eprintln!("skipping official-prefix comparison: no shared data directory");
            return;
        };
        let dir = dir.join("fashion-mnist");
        let payload = |name: &str, header: usize, len: usize| -> Option<String> {
            let bytes = read_file(&dir.join(name)).ok()?;
            Some(sha256_hex(&bytes[header..header + len]))
        };
        let Some(a) = payload("train-images-idx3-ubyte.gz", 16, TRAIN_LEN * 784) else {
            eprintln!("skipping official-prefix comparison: {} absent", dir.display());
            return;
        };
        assert_eq!(a, TRAIN_IMAGES_SHA);
        assert_eq!(payload("train-labels-idx1-ubyte.gz", 8, TRAIN_LEN).unwrap(), TRAIN_LABELS_SHA);
        assert_eq!(payload("t10k-images-idx3-ubyte.gz", 16, TEST_LEN * 784).unwrap(), TEST_IMAGES_SHA);
        assert_eq!(payload("t10k-labels-idx1-ubyte.gz", 8, TEST_LEN).unwrap(), TEST_LABELS_SHA);
    }
}
