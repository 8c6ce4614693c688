//! Lamina's `methods`: the paper methods, the method [`registry`] and its lifecycle, the
//! [`trainer`] behind the `train` binary, [`compare`] behind the `compare` binary, and their
//! outputs ([`metrics`], [`plot`], [`profiling`]).
//!
//! ```
//! let names: Vec<&str> = methods::registry::all().iter().map(|m| m.name).collect();
//! assert!(names.contains(&"baseline"));
//! ```
//!
//! # Adding a method
//!
//! A method is one folder and one registry line; it never edits the trainer (if the lifecycle
//! cannot express it, grow the lifecycle once, for every method).
//!
//! 1. **Read its spec** in `../shared/papers/` (equations, defaults, placement, the paper's
//!    numbers, the tests that show a faithful implementation).
//! 2. **The folder** `methods/src/<name>/`: `mod.rs` (module docs: what the paper does, every
//!    choice where it is silent, cost), one file per layer or op with its forward, backward,
//!    docs and tests, `method.rs` with the [`registry::Method`] hooks and the `MethodSpec`
//!    statics, `tests/` for the spec's test list. New differentiable ops get an f64 gradcheck
//!    under proptest; new backend primitives go into the backend contract with CPU and CUDA
//!    kernels (see `backends/README.md`), never into the method.
//! 3. **The hooks** (the table in [`registry`]): structure in `prepare` (through
//!    `layers::surgery`: select modules by path pattern and type, replace, wrap, insert after a
//!    stage), data-dependent starts in `start_phase`, optimizer groups in
//!    `configure_optimizer` (per-parameter state through `layers::optim::Optimizer`), gradient
//!    work in `after_backward`, the converted model in `inference_form`, anything that must
//!    survive `--resume` in `state`/`load_state` (or in buffers of inserted modules).
//! 4. **The registry line**: add the spec(s) to [`registry::all`], with its defaults (a quick
//!    run on the embedded dataset), its presets (`presets::SMALL` for the small protocol, a
//!    `paper` preset with the paper's recipe) and its hyperparameters (`--set`).
//! 5. **Tests** in the suite (under a few seconds each): the spec's list, the method's
//!    lifecycle through `trainer::train_with` on a tiny run, and `train --method NAME` on the
//!    embedded data in `methods/tests/`.
//! 6. **A reproduction**: `compare --methods baseline,NAME --seeds 3 --preset small` (see
//!    `methods/REPRODUCING.md`), judged against the baseline's measured seed spread; commit
//!    `results.md`, `results.json` and `results.svg` under `methods/results/<name>/` with the
//!    exact command, and say honestly whether the paper's direction shows.
//! 7. **A benchmark** of the method's cost (step time or inference time against the
//!    baseline's, from one run) in `methods/benches/`, with the figures and the CPU in the docs.

#![warn(missing_docs)]

pub mod checks;
pub mod cli;
pub mod cluster;
pub mod cnn_mod;
pub mod compare;
pub mod config;
pub mod console;
pub mod data;
pub mod haste;
pub mod hparams;
pub mod ip;
pub mod metrics;
pub mod moee;
pub mod plot;
pub mod presets;
pub mod profiling;
pub mod prom;
pub mod registry;
pub mod sbn;
pub mod schedule_spec;
pub mod sparse;
pub mod sr;
pub mod swd;
#[cfg(test)]
mod testing;
pub mod trainer;
pub mod wc;

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
