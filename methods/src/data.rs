//! The data side of a training run: train / validation / test loaders for a registered dataset,
//! and host batches turned into tensors on the training device.

use std::path::PathBuf;
use std::sync::Arc;

use autograd::backends::CpuStorage;
use autograd::{Device, Error, Result, Tensor};
use datasets::{
    open, train_val_split, Batch, DataOptions, Dataset, ImageFolderOptions, Loader, LoaderConfig, Split, Subset,
};

/// What [`open_data`] needs.
#[derive(Clone, Debug, PartialEq)]
pub struct DataConfig {
    /// Registry name of the dataset.
    pub dataset: String,
    /// Folder of the dataset's files (`None`: `LAMINA_DATA` or the embedded data).
    pub data_dir: Option<PathBuf>,
    /// Images per training batch.
    pub batch_size: usize,
    /// Seed of the split, the shuffles and the augmentations.
    pub seed: u64,
    /// Fraction of the training set held out for validation (0 disables validation).
    pub val_fraction: f64,
    /// Use only the first `n` training images (before the validation split), for quick runs.
    pub train_limit: Option<usize>,
    /// Use only the first `n` test images.
    pub test_limit: Option<usize>,
    /// Loader worker threads.
    pub workers: usize,
    /// Image size, evaluation resize and unreadable files of an image folder.
    pub image_folder: ImageFolderOptions,
}

/// Loaders of one run.
pub struct Data {
    /// Shuffled, augmented training batches.
    pub train: Loader,
    /// Validation batches (held out from the training set), if any.
    pub val: Option<Loader>,
    /// Test batches.
    pub test: Loader,
    /// Number of classes.
    pub num_classes: usize,
    /// `[C, H, W]` of every image after the pipeline.
    pub input_shape: [usize; 3],
    /// Lines for the run's summary (files an image folder skipped).
    pub notes: Vec<(String, String)>,
}

fn ds_err(e: datasets::DatasetError) -> Error {
    Error::invalid("dataset", e.to_string())
}

fn limited(ds: Arc<dyn Dataset>, limit: Option<usize>) -> Result<Arc<dyn Dataset>> {
    match limit {
        Some(n) if n < ds.len() => Ok(Arc::new(Subset::new(ds, (0..n).collect()).map_err(ds_err)?)),
        _ => Ok(ds),
    }
}

/// An error naming an empty set.
fn empty(set: &str, dataset: &str, why: String) -> Error {
    Error::invalid("dataset", format!("the {set} set of {dataset} is empty: {why}"))
}

/// The number of validation images `fraction` of `n` training images gives: none for 0, else
/// at least one, and fewer than `n`.
fn validation_size(n: usize, fraction: f64, dataset: &str) -> Result<usize> {
    if fraction == 0.0 {
        return Ok(0);
    }
    let n_val = (n as f64 * fraction).round() as usize;
    if n_val == 0 {
        return Err(empty(
            "validation",
            dataset,
            format!("--val-fraction {fraction} of {n} training images rounds to 0 (a larger fraction, or 0 for no validation split)"),
        ));
    }
    if n_val >= n {
        return Err(empty("training", dataset, format!("--val-fraction {fraction} holds out all {n} training images")));
    }
    Ok(n_val)
}

/// Opens the dataset's splits and builds the three loaders. An empty training, validation or
/// test set is an error naming it.
pub fn open_data(cfg: &DataConfig) -> Result<Data> {
    let opts = DataOptions { data_dir: cfg.data_dir.clone(), image_folder: cfg.image_folder.clone() };
    let name = cfg.dataset.as_str();
    let train_all = limited(open(name, Split::Train, &opts).map_err(ds_err)?, cfg.train_limit)?;
    let test = limited(open(name, Split::Test, &opts).map_err(ds_err)?, cfg.test_limit)?;
    if train_all.is_empty() {
        return Err(empty("training", name, format!("--train-limit {:?}", cfg.train_limit)));
    }
    if test.is_empty() {
        return Err(empty("test", name, format!("--test-limit {:?}", cfg.test_limit)));
    }
    let input_shape = train_all.output_shape(false).ok_or_else(|| {
        Error::invalid("dataset", format!("{name} has images of varying size and its pipeline does not fix one"))
    })?;
    if train_all.output_shape(true) != Some(input_shape) {
        return Err(Error::invalid(
            "dataset",
            format!(
                "{name}: the training pipeline's images are {:?} but evaluation's {input_shape:?}",
                train_all.output_shape(true)
            ),
        ));
    }
    let mut notes = Vec::new();
    for (set, ds) in [("training", &train_all), ("test", &test)] {
        if let Some((path, why)) = ds.skipped().first() {
            let line = format!("{} unreadable files skipped (first: {}: {why})", ds.skipped().len(), path.display());
            crate::errln!("warning: {name} {set} set: {line}");
            notes.push((format!("{set} files skipped"), line));
        }
    }
    let train_pipe = train_all.standard_pipeline(true);
    let eval_pipe = train_all.standard_pipeline(false);
    let num_classes = train_all.num_classes();
    let n_val = validation_size(train_all.len(), cfg.val_fraction, name)?;
    let (train, val): (Arc<dyn Dataset>, Option<Arc<dyn Dataset>>) = if n_val > 0 {
        let (t, v) = train_val_split(train_all, n_val, cfg.seed).map_err(ds_err)?;
        (Arc::new(t), Some(Arc::new(v)))
    } else {
        (train_all, None)
    };
    let train_cfg = LoaderConfig {
        batch_size: cfg.batch_size,
        shuffle: true,
        drop_last: false,
        seed: cfg.seed,
        num_workers: cfg.workers,
        prefetch: 4,
    };
    let eval_cfg = LoaderConfig { shuffle: false, batch_size: cfg.batch_size.max(256), ..train_cfg.clone() };
    let train = Loader::new(train, train_pipe, train_cfg).map_err(ds_err)?;
    let val = val.map(|v| Loader::new(v, eval_pipe.clone(), eval_cfg.clone())).transpose().map_err(ds_err)?;
    let test = Loader::new(test, eval_pipe, eval_cfg).map_err(ds_err)?;
    Ok(Data { train, val, test, num_classes, input_shape, notes })
}

/// A host batch as `(images [N, C, H, W] f32, labels [N] i64)` on `device`.
pub fn batch_tensors(b: &Batch, device: Device) -> Result<(Tensor, Tensor)> {
    let x = Tensor::from_host(&CpuStorage::F32(b.images.clone()), &[b.n, b.c, b.h, b.w], device)?;
    let y = Tensor::from_host(&CpuStorage::I64(b.labels.clone()), &[b.n], device)?;
    Ok((x, y))
}
