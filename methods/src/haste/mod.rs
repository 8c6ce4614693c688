//! HASTE (Meiner, Mehnert & Condurache, VISAPP 2025, arXiv 2309.17211): data-free, training-free
//! compression of trained convolutions by locality-sensitive hashing of their input channels.
//!
//! - [`Projection`], [`Centering`], [`buckets`]: the hash. Sparse ternary hyperplanes (`L` of
//!   them, zero entries with probability `s`, drawn from a seed per layer) give each centered
//!   channel vector of a patch an `L`-bit code; channels with equal codes form a bucket.
//! - [`HasteConv2d`]: the replacement of a trained [`layers::Conv2d`]. Per image and patch, the
//!   channels of a bucket are averaged and the matching filter slices summed
//!   (`Σ_{c∈S} X_c ⋆ W_c ≈ mean_{c∈S} X_c ⋆ Σ_{c∈S} W_c`, exact for identical channels), and the
//!   reduced window is convolved with the reduced filters on the backend's dense kernels.
//! - [`PatchCost`]: the operation count the paper reports, convolution plus overhead
//!   (centering, hashing, input and filter merging); the layer records it with the MAC counter,
//!   so `MACs / image` of a HASTE model is what it ran, and [`HasteStats`] keeps the sums.
//! - [`compress`] and the registry entry `haste`: every KxK convolution from stage `start`
//!   (default 2) on, optionally the 1x1 ones, in ResNets, VGG-BN and other staged CNNs. Used as
//!   `train --method haste --init-from CHECKPOINT --epochs 0`; `compare` over
//!   `haste[hyperplanes=...]` entries gives the accuracy-vs-MACs curve, with `start=none` as the
//!   dense reference row.
//!
//! # Choices where the paper is silent (marked RECONSTRUCTED in the spec)
//!
//! - Centering: the patch's mean channel is subtracted (`centering=channels`); each channel's
//!   own mean (`spatial`) and none are switches. Centering is for hashing only.
//! - Patch: the whole output map by default (`patch=0`); `patch=p` tiles the output into `p x p`
//!   patches whose input windows overlap by `k − stride`. Small patches find more collisions
//!   but run many small convolutions.
//! - Where: every KxK convolution (K > 1) from stage 2 on; the stem and 3-channel inputs never.
//! - `bit = [⟨r, x̃⟩ > 0]` (an all-zero centered vector codes as all zeros); no projection
//!   scaling (it does not change signs).
//! - Each layer's hyperplanes come from the run's seed and the layer's path, so `--seed` (and
//!   `compare --seeds`) draws new hyperplanes: the paper's mean ± sd over hyperplane draws.
//! - With epochs (`--epochs N`), the dense model is trained or fine-tuned first and HASTE
//!   applies to the result: HASTE itself never trains.
//! - HASTE runs on the CPU: on another device the layer copies its input to the host and back.
//! - Operation count: additions count one each, like a multiply-add; centering costs `2·C·D`
//!   (mean and subtraction), hashing `C · nnz(R)`, input merging `C · D_patch` when a patch
//!   merges anything, filter merging `C_out · (C − C') · k²`.

mod conv;
mod cost;
mod hash;
mod method;
#[cfg(test)]
mod tests;

pub use conv::{HasteConv2d, HasteSettings, HasteStats};
pub use cost::{dense_macs, reduction, PatchCost};
pub use hash::{buckets, center, Centering, Projection, MAX_HYPERPLANES};
pub use method::{compress, haste_layers, Haste, HasteConfig, SPECS};
