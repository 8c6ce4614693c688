//! The [`Dataset`] trait every reader implements, the [`Sample`] it returns, and
//! [`Subset`] (a view on some indices of another dataset, as a train/validation split gives).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{DatasetError, Result};
use crate::rng::SampleRng;
use crate::transforms::{Normalization, Pipeline};

/// One labelled image as stored: `u8` pixels in CHW order (`shape = [c, h, w]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// `c * h * w` pixels, channel planes one after another, rows top first.
    pub pixels: Cow<'a, [u8]>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// The class id (`0..num_classes`).
    pub label: i64,
}

/// A labelled image-classification dataset held on the host.
///
/// Implementations are cheap to share across threads (`Send + Sync`); the loader calls
/// [`Dataset::get`] from its worker threads.
pub trait Dataset: Send + Sync {
    /// The registry name (`"cifar10"`, `"mnist"`, ...).
    fn name(&self) -> &str;
    /// Number of samples.
    fn len(&self) -> usize;
    /// True when the dataset holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of classes.
    fn num_classes(&self) -> usize;
    /// Class names by class id.
    fn class_names(&self) -> &[String];
    /// `[c, h, w]` of every image, or `None` when sizes vary (image folders).
    fn image_shape(&self) -> Option<[usize; 3]>;
    /// `[c, h, w]` of every image after [`Dataset::standard_pipeline`]`(train)`, or `None`
    /// when it varies. The default follows the stored shape through the pipeline; a dataset
    /// of varying image sizes whose pipelines resize and crop to a fixed size (image folders)
    /// says so here.
    fn output_shape(&self, train: bool) -> Option<[usize; 3]> {
        self.image_shape().map(|s| self.standard_pipeline(train).output_shape(s))
    }
    /// The value of a full-intensity pixel: 255, or 16 for the sklearn digits. Conversion to
    /// `f32` divides by it, so images enter the transforms in `[0, 1]`.
    fn pixel_max(&self) -> f32 {
        255.0
    }
    /// The default per-channel normalization statistics (on `[0, 1]` pixels).
    fn normalization(&self) -> Normalization;
    /// The sample at `index` (`0..len`).
    fn get(&self, index: usize) -> Result<Sample<'_>>;
    /// The label of sample `index`; implementations override it to skip pixel work.
    fn label(&self, index: usize) -> Result<i64> {
        Ok(self.get(index)?.label)
    }
    /// The standard augmentation pipeline for this dataset: for training (`train = true`)
    /// or evaluation.
    fn standard_pipeline(&self, train: bool) -> Pipeline;
    /// Files left out when the dataset was opened, and why (an image folder's unreadable
    /// files, when it skips them); none by default.
    fn skipped(&self) -> &[(PathBuf, String)] {
        &[]
    }
}

/// Errors unless `index < ds.len()`.
pub fn check_index<D: Dataset + ?Sized>(ds: &D, index: usize) -> Result<()> {
    if index >= ds.len() {
        return Err(DatasetError::invalid(format!(
            "index {index} out of range for dataset {} of {} samples",
            ds.name(),
            ds.len()
        )));
    }
    Ok(())
}

/// The number of samples of each class.
pub fn class_histogram(ds: &dyn Dataset) -> Result<Vec<usize>> {
    let mut h = vec![0usize; ds.num_classes()];
    for i in 0..ds.len() {
        let l = ds.label(i)?;
        match h.get_mut(l as usize) {
            Some(c) if l >= 0 => *c += 1,
            _ => {
                return Err(DatasetError::invalid(format!(
                    "dataset {} gave label {l} for sample {i} but has {} classes",
                    ds.name(),
                    ds.num_classes()
                )))
            }
        }
    }
    Ok(h)
}

/// Splits `0..n` into `(train, validation)` index lists, deterministically for a seed:
/// `n_val` indices drawn at random become the validation set (both lists come back
/// sorted). The papers' CIFAR protocol is `split_indices(50_000, 5_000, seed)`.
pub fn split_indices(n: usize, n_val: usize, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if n_val > n {
        return Err(DatasetError::invalid(format!("validation size {n_val} exceeds dataset size {n}")));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    SampleRng::new(seed ^ 0x5eed_5b11_7000_0000).shuffle(&mut idx);
    let mut val = idx.split_off(n - n_val);
    idx.sort_unstable();
    val.sort_unstable();
    Ok((idx, val))
}

/// Splits a dataset into `(train, validation)` subsets with [`split_indices`]: e.g.
/// `train_val_split(cifar10_train, 5_000, seed)` gives the papers' 45k/5k split.
pub fn train_val_split(ds: Arc<dyn Dataset>, n_val: usize, seed: u64) -> Result<(Subset, Subset)> {
    let (train, val) = split_indices(ds.len(), n_val, seed)?;
    Ok((Subset::new(ds.clone(), train)?, Subset::new(ds, val)?))
}

/// The samples of another dataset at some indices, in the given order.
#[derive(Clone)]
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// A view of `inner` at `indices` (each must be below `inner.len()`).
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(DatasetError::invalid(format!(
                "subset index {bad} out of range for dataset {} of {} samples",
                inner.name(),
                inner.len()
            )));
        }
        Ok(Subset { inner, indices })
    }

    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Dataset for Subset {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn image_shape(&self) -> Option<[usize; 3]> {
        self.inner.image_shape()
    }
    fn output_shape(&self, train: bool) -> Option<[usize; 3]> {
        self.inner.output_shape(train)
    }
    fn pixel_max(&self) -> f32 {
        self.inner.pixel_max()
    }
    fn normalization(&self) -> Normalization {
        self.inner.normalization()
    }
    fn get(&self, index: usize) -> Result<Sample<'_>> {
        check_index(self, index)?;
        self.inner.get(self.indices[index])
    }
    fn label(&self, index: usize) -> Result<i64> {
        check_index(self, index)?;
        self.inner.label(self.indices[index])
    }
    fn standard_pipeline(&self, train: bool) -> Pipeline {
        self.inner.standard_pipeline(train)
    }
    fn skipped(&self) -> &[(PathBuf, String)] {
        self.inner.skipped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_deterministic_and_disjoint() {
        let (t, v) = split_indices(50_000, 5_000, 1).unwrap();
        assert_eq!((t.len(), v.len()), (45_000, 5_000));
        let (t2, v2) = split_indices(50_000, 5_000, 1).unwrap();
        assert_eq!((&t, &v), (&t2, &v2));
        let (_, v3) = split_indices(50_000, 5_000, 2).unwrap();
        assert_ne!(v, v3);
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..50_000).collect::<Vec<_>>());
        assert!(split_indices(3, 4, 0).is_err());
        let ds: Arc<dyn Dataset> = crate::embedded::test().unwrap();
        let (tr, va) = train_val_split(ds.clone(), 1_000, 4).unwrap();
        assert_eq!((tr.len(), va.len()), (9_000, 1_000));
        assert_eq!(va.get(0).unwrap(), ds.get(va.indices()[0]).unwrap());
    }
}
