//! Interspace pruning (Wimmer, Mehnert, Condurache, *Interspace Pruning: Using Adaptive Filter
//! Representations to Improve Training of Sparse CNNs*, CVPR 2022), on the sparse-training
//! engine of [`crate::sparse`].
//!
//! # The method
//!
//! Standard pruning (SP) zeroes spatial weights of a `K x K` filter, fixing it to a coordinate
//! subspace. Interspace pruning (IP) writes every filter in an adaptive filter basis,
//! `h = Σ_n λ_n g⁽ⁿ⁾`, prunes the coefficients `λ` and trains the kept coefficients and the
//! basis jointly, so the kept subspace moves during training and the filters end spatially
//! dense although `λ` is sparse. Here the basis is one more [`Parametrization`] of the engine's
//! masked layers ([`basis::FilterBasis`]): the masked trainable tensor *is* `Λ`, so every
//! scoring rule and schedule of the engine works on coefficients unchanged, through autograd:
//!
//! | method | on coefficients |
//! |---|---|
//! | `ip-magnitude`, `ip-lth` | `\|λ\|`; LTH's rewind restores `Λ` **and the basis** (every parameter but the masks) |
//! | `ip-snip` | `\|λ ⊙ ∂L/∂λ\|` at init, the gradient taken through the basis |
//! | `ip-grasp` | `−λ ⊙ (H_λ g_λ)` (double backward through the basis product) |
//! | `ip-synflow` | `\|λ ⊙ ∂R/∂λ\|` with every parameter, the basis included, linearized to its absolute value |
//! | `ip-set`, `ip-rigl` | drop the smallest `\|λ\|`; grow at random (SET) or by the dense `\|∂L/∂(m ⊙ λ)\|` (RigL) |
//!
//! Densities are allocated over coefficient entries exactly as SP allocates weights (global
//! top-k, ER, ERK by the layer's geometry); sparsity is reported over coefficients, the
//! bases (81 values per 3x3 layer) counted as dense parameters outside the masks.
//!
//! # Choices (the paper's text was not available; the spec marks these as reconstructed)
//!
//! - Which layers: every convolution with a kernel larger than 1x1 gets a basis; 1x1
//!   convolutions and linear layers, whose basis would be a scalar, are pruned as in SP
//!   ([`basis::IpConfig::parametrization`]).
//! - The basis: one per layer (`granularity=layer`, default) or per input channel
//!   (`granularity=channel`); started from the orthonormal 2-D DCT-II (`basis=dct`, default), a
//!   random orthogonal matrix (`basis=random`) or the standard basis (`basis=standard`, which is
//!   SP exactly: the spec's equivalence check); trained (`train_basis=true`, default) or fixed.
//!   The coefficients start as the projection of the usual initialization, `Λ = W₀·Bᵀ`, so the
//!   dense IP network equals the SP one at step 0.
//! - Weight decay: the basis is a 2-D parameter and gets the optimizer's weight decay like the
//!   coefficients (the spec's choice: the scale symmetry `Λ·c, B/c` stays balanced); masked
//!   coefficients stay exactly 0 ([`crate::sparse::engine::apply_masks`]).
//!
//! # Two computation paths
//!
//! Training reconstructs the filters, `W = Λ·B` (one small GEMM per layer), and convolves. The
//! inference form (`sparse_exec=auto`) times, per layer, the reconstructed dense filters
//! against the basis path ([`path::BasisConv2d`]: the basis convolution then a sparse 1x1
//! convolution of the masked coefficients on the engine's sparse kernel) and keeps the faster.
//!
//! # Measured (small protocol, CIFAR-10, ResNet-18/0.25, 3 seeds; baseline 69.45 ± 0.60)
//!
//! `methods/results/ip-small/` (command in `methods/REPRODUCING.md`; test accuracy of each
//! run's inference form, mean ± sd):
//!
//! | sparsity | SNIP (SP) | IP-SNIP | IP − SP | RigL (SP) | IP-RigL | IP − SP |
//! |---:|---:|---:|---:|---:|---:|---:|
//! | 90 % | 66.18 ± 0.60 | 69.90 ± 0.67 | **+3.72** | 66.68 ± 0.70 | 69.12 ± 1.26 | **+2.44** |
//! | 95 % | 63.85 ± 0.30 | 68.67 ± 0.94 | **+4.82** | 63.77 ± 0.61 | 66.65 ± 1.58 | **+2.88** |
//! | 98 % | 59.25 ± 2.36 | 65.33 ± 1.77 | **+6.08** | 58.93 ± 0.72 | 63.41 ± 1.15 | **+4.48** |
//!
//! Readings. The paper's claim holds at this scale: IP beats SP for both methods at every
//! sparsity, by 2.4-6.1 points (3-10 times the baseline's seed spread), and the margin grows
//! with sparsity (SNIP +3.7 → +4.8 → +6.1, RigL +2.4 → +2.9 → +4.5). IP-SNIP at 90 % is as
//! accurate as the dense network (+0.45, within the noise), and at 98 % it loses 4.1 points
//! where SP loses 10.2. Storage is the same (the compact checkpoints differ by the bases, 7 KB);
//! what IP does not keep is SP's inference saving: its trained filters are spatially dense, so
//! its inference form runs 3 % fewer MACs than dense where SP's runs 24-94 % fewer, and in wall
//! time it is 1.15-2.1x slower than SP's at batch 128 and 3.3-4.9x at batch 1, while a training
//! step costs the same (`methods/results/ip-cost/`, `cargo bench -p methods --bench ip_cost`).
//! The `step ms` column of the table mixes runs made under different loads and says nothing
//! about the methods.
//!
//! Registry entries: [`specs`] (`ip-snip`, `ip-grasp`, `ip-synflow`, `ip-magnitude`, `ip-lth`,
//! `ip-set`, `ip-rigl`), the SP method's hyperparameters plus `basis`, `granularity` and
//! `train_basis`.
//!
//! [`Parametrization`]: crate::sparse::Parametrization

pub mod basis;
pub mod path;
pub mod specs;

pub use basis::{BasisInit, FilterBasis, Granularity, IpConfig};
pub use path::BasisConv2d;
pub use specs::SPECS;

#[cfg(test)]
mod tests;
