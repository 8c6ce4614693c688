//! Lamina's `methods`: the paper methods, the method [`registry`], the [`trainer`] behind the
//! `train` binary, and its outputs ([`metrics`], [`plot`], [`profiling`]).
//!
//! ```
//! let names: Vec<&str> = methods::registry::all().iter().map(|m| m.name).collect();
//! assert!(names.contains(&"baseline"));
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod hparams;
pub mod metrics;
pub mod plot;
pub mod profiling;
pub mod registry;
pub mod schedule_spec;
pub mod swd;
pub mod trainer;

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
