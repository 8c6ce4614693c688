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
