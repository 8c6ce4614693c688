//! The data side of a training run: train / validation / test loaders for a registered dataset,
//! and host batches turned into tensors on the training device.

use std::path::PathBuf;
use std::sync::Arc;

use autograd::backends::CpuStorage;
use autograd::{Device, Error, Result, Tensor};
use datasets::{open, train_val_split, Batch, DataOptions, Dataset, Loader, LoaderConfig, Split, Subset};

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

/// Opens the dataset's splits and builds the three loaders.
pub fn open_data(cfg: &DataConfig) -> Result<Data> {
    let opts = DataOptions { data_dir: cfg.data_dir.clone(), ..Default::default() };
    let train_all = limited(open(&cfg.dataset, Split::Train, &opts).map_err(ds_err)?, cfg.train_limit)?;
    let test = limited(open(&cfg.dataset, Split::Test, &opts).map_err(ds_err)?, cfg.test_limit)?;
    let shape = train_all
        .image_shape()
        .ok_or_else(|| Error::invalid("dataset", format!("{} has images of varying size", cfg.dataset)))?;
    let train_pipe = train_all.standard_pipeline(true);
    let eval_pipe = train_all.standard_pipeline(false);
    let input_shape = eval_pipe.output_shape(shape);
    let num_classes = train_all.num_classes();
    let n_val = (train_all.len() as f64 * cfg.val_fraction).round() as usize;
    let (train, val): (Arc<dyn Dataset>, Option<Arc<dyn Dataset>>) = if n_val > 0 && n_val < train_all.len() {
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
    Ok(Data { train, val, test, num_classes, input_shape })
}

/// A host batch as `(images [N, C, H, W] f32, labels [N] i64)` on `device`.
pub fn batch_tensors(b: &Batch, device: Device) -> Result<(Tensor, Tensor)> {
    let x = Tensor::from_host(&CpuStorage::F32(b.images.clone()), &[b.n, b.c, b.h, b.w], device)?;
    let y = Tensor::from_host(&CpuStorage::I64(b.labels.clone()), &[b.n], device)?;
    Ok((x, y))
}
