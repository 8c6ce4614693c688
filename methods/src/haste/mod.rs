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
//!
//! # Measured (AMD EPYC Zen 4, 2 threads)
//!
//! `methods/results/haste-small/`: the small protocol's baseline seed 0 (ResNet-18/0.25, 16-128
//! channels, 68.87 % test accuracy) compressed with `--epochs 0`, every 3x3 convolution of
//! stages 2-4, whole-map patches, `L` from 6 to 20, three hyperplane seeds each (test
//! accuracy, MACs per image counted with the overhead on the first test batch):
//!
//! | L | 6 | 8 | 10 | 12 | 14 | 16 | 20 |
//! |---|---:|---:|---:|---:|---:|---:|---:|
//! | accuracy Δ (points) | −38.98 | −12.00 | −3.17 | −1.29 | −0.68 | −0.38 | −0.13 |
//! | MACs Δ | −30.4 % | −15.7 % | −7.6 % | −3.7 % | −1.5 % | −0.2 % | +1.2 % |
//!
//! The curve is smooth and the hyperplane seeds agree within 0.1-1.4 points, but at the paper's
//! accuracy cost (−1.25 points) this network saves 3.7 % of its MACs, not the paper's 46.72 %
//! (ResNet-34 at full width, 64-512 channels): a quarter-width network trained on 5,000 images
//! has few redundant channels to merge, and the paper itself finds wider models compress more.
//! Not reproduced at this scale. One seed with 4x4 patches (`patch=4`) did a little better
//! (`L = 12`: −5.6 % MACs for −1.33 points) at 2-3x the evaluation time.
//!
//! Wall time (`cargo bench -p methods --bench haste_infer`, `methods/results/haste-small/speed.md`):
//! at `L = 12`, batch 1 runs x0.63 the dense time and batch 128 x3.08. Against HASTE's own
//! pipeline at no saving (`L = 64`) the merging saves 17 % (batch 1) and 25 % (batch 128); the
//! difference from the dense model is the pipeline's: per-image filters make one small im2col
//! GEMM per image where the dense model runs one batched Winograd kernel per layer (and at
//! batch 1, that Winograd pays its filter transform on every call). Batching the per-image
//! convolutions (grouped, padded to the batch's largest bucket count) is not done.

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
