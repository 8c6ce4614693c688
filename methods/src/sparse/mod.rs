//! Dimensionality-reduced training (Wimmer, Mehnert, Condurache, *Dimensionality Reduced
//! Training by Pruning and Freezing Parts of a Deep Neural Network, a Survey*, arXiv 2205.08099):
//! pruning at initialization (SNIP, GraSP, SynFlow, magnitude, random), lottery tickets (IMP with
//! rewinding), dynamic sparse training (SET, DSR, RigL) and freezing (FreezeNet) on one engine.
//!
//! # The engine
//!
//! Every prunable weight is a masked parameter `θ = P(m ⊙ φ + (1 − m) ⊙ f)` ([`MaskedLayer`]):
//! trainable values `φ`, a 0/1 mask `m`, a fixed part `f` (0 for pruning, the seeded random
//! initialization for freezing) and a parametrization `P` (the identity here; a filter basis
//! times coefficients for interspace pruning, where `φ` are the coefficients). The effective
//! weight is built in the forward pass, so gradients at masked coordinates are exactly 0;
//! [`engine::apply_masks`] zeroes masked values and multiplies the optimizer's state by the
//! mask, so momentum, Adam's moments and weight decay (SGD's coupled `wd·φ`, AdamW's decoupled
//! `lr·wd·φ`: both 0 at `φ = 0`) never revive a masked coordinate. Every method is then a
//! scoring rule ([`score`]) and a schedule ([`schedule`]) on this engine, with a density
//! allocation ([`allocation`]: global top-k, uniform, ER, ERK).
//!
//! # Names and checkpoints
//!
//! A masked layer keeps its module path; its trainable tensor keeps the name `weight`
//! (`layer1.0.conv1.weight`: optimizer state, weight-decay groups and dense checkpoints see the
//! usual names), its mask is the buffer `weight_mask`, a frozen layer's fixed part the buffer
//! `weight_init`. The run's checkpoints (`last`/`best.safetensors`) therefore hold masks and
//! resume exactly; the compact format ([`compact`]) stores each masked weight as a bitmap plus
//! its kept values, and a frozen one's fixed part as its seed only.
//!
//! # Choices where the spec is silent
//!
//! Stated in each file: [`allocation`] (exact integer counts, tie-breaking), [`score`]
//! (scoring sample, modes), [`schedule::imp`] (rounds, rewind point), [`schedule::rigl`]
//! (update steps), [`schedule::set`], [`schedule::dsr`] (reconstructed hyperparameters),
//! [`masked::Fixed`] (FreezeNet's frozen weights are He-normal from per-layer seeds derived
//! from one 32-bit network seed), [`exec`] (how the execution path is chosen). Which layers are
//! prunable is the `layers` hyperparameter ([`engine::Prunable`]), every convolution and linear
//! layer by default (BatchNorm parameters and biases never are).
//!
//! # Reproducing
//!
//! The issue's comparison (ResNet-18 of the small protocol on CIFAR-10, 90 % and 98 % sparsity,
//! SNIP, GraSP, SynFlow, RigL, SET, LTH with 2 rounds and FreezeNet against the dense baseline,
//! 3 seeds; one table with test accuracy, sparsity and compact checkpoint size, and the
//! accuracy-vs-sparsity plot) has not been run yet; it is one resumable command (45 runs, see
//! `methods/REPRODUCING.md` for the time it takes and a two-process split):
//!
//! ```text
//! cargo run --release --bin compare -- --seeds 3 --preset small --data-dir ../shared/data/cifar-10 \
//!     --methods 'baseline,snip[sparsity=0.9],grasp[sparsity=0.9],synflow[sparsity=0.9],rigl[sparsity=0.9],set[sparsity=0.9],lth[sparsity=0.9,rounds=2],freezenet[freezing_rate=0.9],snip[sparsity=0.98],grasp[sparsity=0.98],synflow[sparsity=0.98],rigl[sparsity=0.98],set[sparsity=0.98],lth[sparsity=0.98,rounds=2],freezenet[freezing_rate=0.98]' \
//!     --out methods/results/drt-small
//! ```
//!
//! The sparse execution path's speed: `RAYON_NUM_THREADS=2 cargo bench -p methods --bench
//! sparse_layers`, figures and crossover densities in `methods/results/sparse-execution/` and
//! in [`exec`].

pub mod allocation;
pub mod compact;
pub mod engine;
pub mod exec;
pub mod masked;
pub mod method;
pub mod schedule;
pub mod score;
mod specs;

pub use masked::{Fixed, IdentityParam, MaskedLayer, Parametrization};
pub use method::{Kind, SparseConfig, SparseMethod};
pub use specs::{
    DSR, FREEZENET, GRASP, LTH, MAGNITUDE, PAPER, PAPER_CIFAR10_R20, RANDOM, RIGL, SET, SNIP, SPECS, SYNFLOW,
};

#[cfg(test)]
mod tests;
