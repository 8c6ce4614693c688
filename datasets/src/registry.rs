//! Opening a dataset by name.
//!
//! | name | files under the data directory | classes | shape |
//! |---|---|---|---|
//! | `fashion-mnist-embedded` | none (compiled in: 20,000 train / 10,000 test) | 10 | 1x28x28 |
//! | `mnist` | `mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` | 10 | 1x28x28 |
//! | `fashion-mnist` | `fashion-mnist/` (same names) | 10 | 1x28x28 |
//! | `cifar10` | `cifar-10/data_batch_{1..5}.bin`, `cifar-10/test_batch.bin` | 10 | 3x32x32 |
//! | `cifar100` | `cifar-100/train.bin`, `cifar-100/test.bin` (fine labels) | 100 | 3x32x32 |
//! | `digits` | `sklearn-digits/digits.csv.gz` (seeded 1438/359 split) | 10 | 1x8x8 |
//! | `imagefolder` | `train/<class>/<image>`, `val/<class>/<image>` (the directory is the root) | any | 3xSxS after the pipelines ([`DataOptions::image_folder`]) |
//!
//! The data directory is [`DataOptions::data_dir`], else the `LAMINA_DATA` environment
//! variable. Sub-folders may also be named as the official archives extract
//! (`cifar-10-batches-bin`, `cifar-100-binary`), or the files may sit in the directory
//! itself; IDX and CSV files may be uncompressed.
//!
//! ```
//! use datasets::{open, DataOptions, Split};
//! let ds = open("fashion-mnist-embedded", Split::Test, &DataOptions::default()).unwrap();
//! assert_eq!((ds.len(), ds.num_classes(), ds.image_shape()), (10_000, 10, Some([1, 28, 28])));
//! assert!(open("nope", Split::Test, &DataOptions::default()).is_err());
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cifar::{CifarDataset, CifarLayout};
use crate::dataset::{split_indices, Dataset, Subset};
use crate::digits::DigitsDataset;
use crate::embedded;
use crate::error::{DatasetError, Result};
use crate::idx::{IdxDataset, IdxInfo};
use crate::image_folder::{ImageFolder, ImageFolderOptions};
use crate::transforms::Normalization;

/// Every name [`open`] accepts.
pub const DATASET_NAMES: [&str; 7] =
    ["fashion-mnist-embedded", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagefolder", "digits"];

/// The environment variable naming the default data directory.
pub const DATA_ENV: &str = "LAMINA_DATA";

/// Training or test (validation) part of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The training set.
    Train,
    /// The test set (`val/` for image folders).
    Test,
}

/// Where to look for data, and how datasets with options read it.
#[derive(Clone, Debug, Default)]
pub struct DataOptions {
    /// The data directory; `None` uses `$LAMINA_DATA`.
    pub data_dir: Option<PathBuf>,
    /// Image size, evaluation resize and unreadable files of `imagefolder`.
    pub image_folder: ImageFolderOptions,
}

impl DataOptions {
    /// Options with an explicit data directory.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        DataOptions { data_dir: Some(dir.into()), ..Default::default() }
    }

    /// The data directory in effect: the option, else `$LAMINA_DATA`.
    pub fn resolve_dir(&self) -> Option<PathBuf> {
        self.data_dir.clone().or_else(|| std::env::var_os(DATA_ENV).map(PathBuf::from))
    }
}

/// Finds the first candidate folder (relative to `dir`) holding every file in `names`
/// (each also accepted without its `.gz`), returning the full paths.
fn find_files(dir: &Path, subdirs: &[&str], names: &[&str]) -> Result<Vec<PathBuf>> {
    for sub in subdirs {
        let base = dir.join(sub);
        let found: Option<Vec<PathBuf>> = names
            .iter()
            .map(|n| {
                let p = base.join(n);
                if p.is_file() {
                    return Some(p);
                }
                let plain = n.strip_suffix(".gz").map(|s| base.join(s))?;
                plain.is_file().then_some(plain)
            })
            .collect();
        if let Some(f) = found {
            return Ok(f);
        }
    }
    Err(DatasetError::MissingData {
        dir: dir.to_path_buf(),
        expected: names.iter().map(|n| format!("{}/{n}", subdirs[0])).collect(),
    })
}

/// The files (relative to the data directory) dataset `name` needs for `split`.
pub fn expected_files(name: &str, split: Split) -> Vec<String> {
    let test = split == Split::Test;
    match name {
        "mnist" | "fashion-mnist" => {
            let p = if test { "t10k" } else { "train" };
            vec![format!("{name}/{p}-images-idx3-ubyte.gz"), format!("{name}/{p}-labels-idx1-ubyte.gz")]
        }
        "cifar10" if test => vec!["cifar-10/test_batch.bin".into()],
        "cifar10" => (1..=5).map(|k| format!("cifar-10/data_batch_{k}.bin")).collect(),
        "cifar100" if test => vec!["cifar-100/test.bin".into()],
        "cifar100" => vec!["cifar-100/train.bin".into()],
        "digits" => vec!["sklearn-digits/digits.csv.gz".into()],
        "imagefolder" if test => vec!["val/<class>/<image>".into(), "test/<class>/<image>".into()],
        "imagefolder" => vec!["train/<class>/<image>".into()],
        _ => Vec::new(),
    }
}

fn needs_dir(name: &str, split: Split, opts: &DataOptions) -> Result<PathBuf> {
    opts.resolve_dir().ok_or_else(|| {
        let files = expected_files(name, split);
        // The files as this checkout's shared data holds them, if it does.
        let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        let hint = files
            .first()
            .and_then(|f| f.rsplit_once('/'))
            .map(|(sub, _)| shared.join(sub))
            .filter(|d| d.is_dir())
            .and_then(|d| d.canonicalize().ok())
            .map(|d| format!("; this checkout has them: --data-dir {}", d.display()))
            .unwrap_or_default();
        DatasetError::invalid(format!(
            "dataset {name:?} needs its files: pass --data-dir DIR (train, compare) or set {DATA_ENV}=DIR, \
             where DIR holds {} (or those files directly){hint}",
            files.join(", ")
        ))
    })
}

fn open_idx(name: &str, sub: &str, split: Split, opts: &DataOptions, info: IdxInfo) -> Result<Arc<dyn Dataset>> {
    let dir = needs_dir(name, split, opts)?;
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let img = format!("{prefix}-images-idx3-ubyte.gz");
    let lab = format!("{prefix}-labels-idx1-ubyte.gz");
    let f = find_files(&dir, &[sub, ""], &[&img, &lab])?;
    Ok(Arc::new(IdxDataset::open(&f[0], &f[1], info)?))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Opens dataset `name` (one of [`DATASET_NAMES`]) for `split`.
pub fn open(name: &str, split: Split, opts: &DataOptions) -> Result<Arc<dyn Dataset>> {
    match name {
        "fashion-mnist-embedded" => Ok(match split {
            Split::Train => embedded::train()?,
            Split::Test => embedded::test()?,
        }),
        "mnist" => open_idx(
            name,
            "mnist",
            split,
            opts,
            IdxInfo {
                name: name.into(),
                class_names: (0..10).map(|d| d.to_string()).collect(),
                normalization: Normalization::mnist(),
            },
        ),
        "fashion-mnist" => open_idx(
            name,
            "fashion-mnist",
            split,
            opts,
            IdxInfo {
                name: name.into(),
                class_names: strings(&embedded::FASHION_CLASSES),
                normalization: Normalization::fashion_mnist(),
            },
        ),
        "cifar10" => {
            let dir = needs_dir(name, split, opts)?;
            let names: Vec<String> = match split {
                Split::Train => (1..=5).map(|k| format!("data_batch_{k}.bin")).collect(),
                Split::Test => vec!["test_batch.bin".into()],
            };
            let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            let files = find_files(&dir, &["cifar-10", "cifar-10-batches-bin", ""], &refs)?;
            let ds = CifarDataset::open(name, &files, CifarLayout::Cifar10, Some(10_000))?;
            let meta = files[0].with_file_name("batches.meta.txt");
            let ds = match std::fs::read_to_string(&meta) {
                Ok(text) => {
                    let classes: Vec<String> =
                        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
                    ds.with_class_names(classes).map_err(|_| DatasetError::Decode {
                        path: meta.clone(),
                        message: "expected 10 class names, one per line".into(),
                    })?
                }
                Err(_) => ds,
            };
            Ok(Arc::new(ds))
        }
        "cifar100" => {
            let dir = needs_dir(name, split, opts)?;
            let (file, n) = match split {
                Split::Train => ("train.bin", 50_000),
                Split::Test => ("test.bin", 10_000),
            };
            let files = find_files(&dir, &["cifar-100", "cifar-100-binary", ""], &[file])?;
            Ok(Arc::new(CifarDataset::open(name, &files, CifarLayout::Cifar100Fine, Some(n))?))
        }
        "digits" => {
            let dir = needs_dir(name, split, opts)?;
            let f = find_files(&dir, &["sklearn-digits", ""], &["digits.csv.gz"])?;
            let all: Arc<dyn Dataset> = Arc::new(DigitsDataset::open(&f[0])?);
            let n_test = all.len() / 5;
            if n_test == 0 {
                return Err(DatasetError::CountMismatch {
                    path: f[0].clone(),
                    message: format!(
                        "{} records are too few for the train/test split (a fifth is the test set): at least 5 are needed",
                        all.len()
                    ),
                });
            }
            let (train, test) = split_indices(all.len(), n_test, 0)?;
            let idx = match split {
                Split::Train => train,
                Split::Test => test,
            };
            Ok(Arc::new(Subset::new(all, idx)?))
        }
        "imagefolder" => {
            let dir = needs_dir(name, split, opts)?;
            let subs: &[&str] = match split {
                Split::Train => &["train"],
                Split::Test => &["val", "test"],
            };
            let root =
                subs.iter().map(|s| dir.join(s)).find(|p| p.is_dir()).ok_or_else(|| DatasetError::MissingData {
                    dir: dir.clone(),
                    expected: subs.iter().map(|s| format!("{s}/<class>/<image>")).collect(),
                })?;
            Ok(Arc::new(ImageFolder::open_with(&root, &opts.image_folder)?))
        }
        _ => Err(DatasetError::UnknownDataset { name: name.to_string(), valid: strings(&DATASET_NAMES) }),
    }
}
