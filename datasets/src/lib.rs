//! Lamina's data pipeline: dataset readers, augmentation and batching, in host memory only.
//!
//! This crate knows nothing of tensors or devices. It reads datasets ([`idx`], [`cifar`],
//! [`image_folder`], [`digits`], and the [`embedded`] Fashion-MNIST subset compiled into the
//! binary), checks them ([`checksum`]), augments samples ([`transforms`]) and yields
//! [`Batch`]es of `f32` CHW images and `i64` labels from a seeded, multi-threaded
//! [`Loader`]. The [`registry`] opens a dataset by name.
//!
//! ```
//! use datasets::{open, DataOptions, Loader, LoaderConfig, Split};
//!
//! // Needs no file: the embedded Fashion-MNIST subset is compiled in.
//! let train = open("fashion-mnist-embedded", Split::Train, &DataOptions::default()).unwrap();
//! let pipeline = train.standard_pipeline(true);
//! let config = LoaderConfig { batch_size: 256, seed: 1, ..Default::default() };
//! let loader = Loader::new(train, pipeline, config).unwrap();
//! assert_eq!(loader.len(), 20_000_usize.div_ceil(256));
//! for batch in loader.epoch(0).take(2) {
//!     let batch = batch.unwrap();
//!     assert_eq!((batch.n, batch.c, batch.h, batch.w), (256, 1, 28, 28));
//!     assert_eq!(batch.labels.len(), 256);
//! }
//! ```

#![warn(missing_docs)]

pub mod checksum;
pub mod cifar;
pub mod dataset;
pub mod digits;
pub mod embedded;
pub mod error;
pub mod idx;
pub mod image_folder;
pub mod loader;
pub mod read;
pub mod registry;
pub mod rng;
#[cfg(test)]
mod testdata;
pub mod transforms;

pub use dataset::{class_histogram, split_indices, train_val_split, Dataset, Sample, Subset};
pub use error::{DatasetError, Result};
pub use image_folder::ImageFolderOptions;
pub use loader::{Batch, EpochIter, Loader, LoaderConfig};
pub use registry::{open, DataOptions, Split, DATASET_NAMES};
pub use rng::SampleRng;
pub use transforms::{ImageF32, Normalization, Pipeline, Transform};
