//! Lamina's data pipeline: dataset readers, augmentation and batching, in host memory only.
//!
//! This crate knows nothing of tensors or devices. It reads datasets ([`idx`], [`cifar`],
//! [`image_folder`], [`digits`], and the [`embedded`] Fashion-MNIST subset compiled into the
//! binary), checks them ([`checksum`]), augments samples ([`transforms`]) and yields
//! [`Batch`]es of `f32` CHW images and `i64` labels from a seeded, multi-threaded
//! [`Loader`]. The [`registry`] opens a dataset by name.

pub mod checksum;
pub mod cifar;
pub mod dataset;
pub mod digits;
pub mod embedded;
pub mod error;
pub mod idx;
pub mod loader;
pub mod read;
pub mod rng;
#[cfg(test)]
mod testdata;
pub mod transforms;

pub use dataset::{class_histogram, split_indices, Dataset, Sample, Subset};
pub use error::{DatasetError, Result};
pub use loader::{Batch, EpochIter, Loader, LoaderConfig};
pub use rng::SampleRng;
pub use transforms::{ImageF32, Normalization, Pipeline, Transform};
