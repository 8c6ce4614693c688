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
//! times coefficients for interspace pruning, [`crate::ip`], where `φ` are the coefficients). The effective
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
//! The comparison (ResNet-18/0.25 of the small protocol on CIFAR-10, SNIP, GraSP,
//! SynFlow, RigL, SET, LTH with 2 rounds and FreezeNet against the dense baseline, 3 seeds; test
//! accuracy, sparsity and compact checkpoint size, and the accuracy-vs-sparsity plot) runs as
//! two resumable commands, one per sparsity (`methods/REPRODUCING.md`): `methods/results/
//! drt-small-90/` and `methods/results/drt-small-98/` (single-thread runs), and both in one
//! table with the accuracy-vs-sparsity plot in `methods/results/drt-small/`.
//!
//! # Measured at 90 % sparsity (test accuracy, mean ± sd of 3 seeds; baseline 69.45 ± 0.60)
//!
//! | method | accuracy | Δ | MACs of the inference form |
//! |---|---:|---:|---:|
//! | LTH, 2 rounds (rewind to epoch 2) | 72.66 ± 0.57 | +3.21 | −30.9 % |
//! | RigL (ERK) | 66.68 ± 0.70 | −2.77 | −41.0 % |
//! | SNIP | 66.18 ± 0.60 | −3.27 | −24.4 % |
//! | SET (ER) | 65.91 ± 0.64 | −3.55 | −47.2 % |
//! | GraSP | 64.79 ± 1.33 | −4.66 | −37.7 % |
//! | SynFlow | 64.54 ± 1.10 | −4.91 | −37.9 % |
//! | FreezeNet (90 % frozen) | 62.74 ± 0.73 | −6.71 | 0 |
//!
//! Readings. Every method's compact checkpoint is 400 KB against the dense 2.83 MB (7.1x).
//! The lottery tickets beat the dense network by 3.2 points, beyond the seed noise (about 1
//! point), the direction of the LTH papers; but a ticket trains three times as long (a dense
//! run, then two pruned runs of 40 epochs each), so the gain cannot be credited to the sparse
//! ticket alone. Among the methods with one run's budget the dynamic
//! one, RigL, loses least (−2.8), SNIP and SET follow within a point of it, GraSP and SynFlow
//! lose 1.4-1.6 points more than SNIP (beyond the seed noise). FreezeNet, which trains only 10 %
//! of the weights and keeps the rest at their random values, loses most: its paper reports it
//! beating SNIP on CIFAR-10; here it does not (−6.7 against −3.3). The MACs are those of the
//! automatic execution form, which keeps a layer dense where the dense kernel is
//! faster, so they fall by 24-47 %, not by 90 %.
//!
//! # Measured at 98 % sparsity (same protocol and baseline)
//!
//! | method | accuracy | Δ | MACs of the inference form |
//! |---|---:|---:|---:|
//! | LTH, 2 rounds (rewind to epoch 2) | 68.32 ± 0.32 | −1.13 | −81.6 % |
//! | GraSP | 59.32 ± 1.53 | −10.13 | −75.1 % |
//! | SNIP | 59.25 ± 2.36 | −10.20 | −62.3 % |
//! | RigL (ERK) | 58.93 ± 0.72 | −10.52 | −94.0 % |
//! | SET (ER) | 58.52 ± 1.00 | −10.93 | −93.9 % |
//! | SynFlow | 56.53 ± 1.61 | −12.92 | −63.5 % |
//! | FreezeNet (98 % frozen) | 51.47 ± 1.70 | −17.98 | 0 |
//!
//! Readings. Compact checkpoints are 176 KB (16x smaller than dense). From 90 % to 98 % every
//! one-run method loses 6-11 points more and they bunch together: GraSP, SNIP, RigL and SET
//! are within a point of each other (about the seed spread, which grows to 1-2.4 points), so
//! the 90 % ordering does not carry over; SynFlow, designed against layer collapse at extreme
//! sparsity, is last of them here. The lottery tickets stay
//! within 1.1 points of dense at 98 % (three times the training again). RigL and SET run their
//! sparse layers at 94 % fewer MACs (ERK/ER put density where the sparse kernel pays); the
//! global-score methods keep more layers dense. FreezeNet, training 2 % of the weights, loses
//! 18 points.
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
pub(crate) mod specs;

pub use masked::{Fixed, IdentityParam, MaskedLayer, Parametrization};
pub use method::{Kind, SparseConfig, SparseMethod};
pub use specs::{
    DSR, FREEZENET, GRASP, LTH, MAGNITUDE, PAPER, PAPER_CIFAR10_R20, RANDOM, RIGL, SET, SNIP, SPECS, SYNFLOW,
};

#[cfg(test)]
pub(crate) mod tests;
