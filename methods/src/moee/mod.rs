//! MoEE: mixture-of-experts extraction from trained Vision Transformers (spec
//! `../shared/papers/moe-extraction.md`, a reconstruction of arXiv 2505.15414), and the
//! MoEfication baseline (Zhang et al. 2022) at the same MACs.
//!
//! Registry entries (`train --method NAME`): `moee` and `moefication` ([`SPECS`]), two phases:
//!
//! 1. `extract` (no epochs): evaluate the dense model on the test set; run it on calibration
//!    images (the first training batches; no gradients) and sample every block's MLP tokens
//!    ([`capture`]); cluster each block's hidden activations ([`crate::cluster::hdbscan`]);
//!    extract one expert per cluster ([`extract_experts`]) and replace the MLP by a
//!    [`layers::moe::MoeMlp`] over the union of the experts (unused neurons removed; blocks with
//!    fewer than two clusters stay dense); evaluate again. `moefication` splits the same blocks'
//!    neurons into equal experts instead ([`parameter_split`]), at MoEE's MACs.
//! 2. `finetune` (`--epochs`, the run's optimizer and learning rate): everything trains except
//!    the routing (keys are buffers, routes are computed without gradient).
//!
//! The summary shows the dense accuracy, the extracted accuracy before fine-tuning and (as the
//! test accuracy) after it, with MACs and parameters; the structure is method state, so
//! `--resume` and `--eval-only` rebuild it. The inference form copies the experts' gathered
//! weights once, so inference does no gathering.
//!
//! # Reconstruction choices (the spec, §1.2 and §1.5)
//!
//! - Clustering input: the post-GELU hidden activations `y ∈ R^D` of each token, Euclidean, no
//!   dimension reduction; HDBSCAN with scikit-learn's definitions, `min_cluster_size` = 1 % of
//!   the sampled tokens and `min_samples` = `min_cluster_size` (scikit-learn's default); no
//!   single cluster allowed (the root is never selected), so `K ≤ 1` means dense. k-means
//!   (`--set clustering=kmeans,k=8`) is an option.
//! - Sampling: 4096 tokens per block (class tokens included) by reservoir sampling over the
//!   tokens of 1024 training images (augmented, as the training loader yields them).
//! - Noise tokens: ignored for the statistics; at inference every token is routed.
//! - Experts: neurons by decreasing in-cluster variance until the cumulative variance reaches
//!   `p` of the total (`p = 0.9` by default; `p = 1` keeps every neuron of nonzero variance);
//!   keys: the cluster's mean input token; top-1 cosine routing, deterministic (ties: lower
//!   expert). Experts may overlap and share the union's weights while fine-tuning.
//! - Fine-tuning: AdamW, lr 1e-4, cosine, weight decay 0.05, 2 epochs on 9,000 CIFAR-10 images
//!   (the spec's "short AdamW fine-tune, routing frozen" at this model's scale).
//! - Bias folding (`--set fold_bias=true`, the spec's own ablation): dropped neurons' cluster
//!   means times their output weights become a per-expert output bias (a buffer, not trained).
//! - MoEfication: see [`parameter_split`] and [`matching_top_k`].
//! - The default starting point is the shipped ViT-Mini/4 ([`shipped`]), loaded when
//!   `--init-from` gave no weights (detected: the model still equals its seed's
//!   initialization); `--set checkpoint=none` turns that off.
//!
//! # Cost
//!
//! Extraction: one forward pass over the calibration images, then per block an `n x n`
//! distance matrix (`n` = 4096 tokens: 128 MiB of `f64`, `O(n² D)` time) and Prim's MST.

mod capture;
mod convert;
mod extract;
mod method;
mod moefication;
pub mod shipped;

pub use capture::{capture, mlp_paths, Capture, CaptureOptions};
pub use convert::{apply_plans, plan_moee, plan_moefication, BlockPlan};
pub use extract::{extract_experts, top_variance, LayerExperts};
pub use method::{
    Clustering, ExtractionReport, MoeeConfig, MoeeMethod, Moefication, FULL, MOEE, MOEE_DEFAULTS, MOEFICATION, SPECS,
};
pub use moefication::{matching_top_k, parameter_split};

#[cfg(test)]
mod tests;
