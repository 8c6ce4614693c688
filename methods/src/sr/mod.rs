//! Squeeze-and-Remember (Cakaj, Mehnert & Yang, ICMLA 2024, arXiv 2410.00823) and the
//! regularizer baselines the paper combines it with.
//!
//! - [`SqueezeRemember`]: the SR block. A 1x1 convolution squeezes the `C x H x W` map to one
//!   channel, a two-layer FCN (`HW → U → P`, nonlinearity [`Activation`]) scores `P` memory
//!   blocks, a softmax turns the scores into mixing weights, and the weighted sum of the learned
//!   memory `Q ∈ R^{P×C×H×W}` (zero at initialization) is added to the input. Training and
//!   evaluation compute the same thing; at initialization the block is exactly the identity.
//! - Placement ([`stage_output`], [`insert_at_stage_output`]): after the output of stage `M` of
//!   ResNets (`layerM`), VGG (the ReLU after the stage's last convolution, before its max-pool),
//!   MobileNetV2 and other staged CNNs; the block is built for the shape of the maps found there
//!   by one forward pass of a zero image.
//! - Baselines ([`Regularizer`], layers in `layers`): dropout before the classifier (`d`),
//!   [`layers::Dropout2d`] (`d2d`) and [`layers::DropBlock2d`] (`db`, linear keep schedule) on
//!   the outputs of stages 3 and 4, [`layers::SqueezeExcitation`] (`se`) and [`layers::Cbam`]
//!   (`cbam`) after the last BatchNorm of every residual branch (before the addition).
//! - Registry entries ([`SPECS`]): `sr` (`--set regularizer=none|d|d2d|db|se|cbam` combines a
//!   baseline with SR, `--set block=off` trains the baseline alone in the same placement),
//!   `dropblock`, `se`, `cbam`; the SWD module's `dropout2d` entry stays as it was.
//! - [`evaluate_without_block`]: a trained `sr` run tested with and without its block.
//!
//! # Choices where the paper is silent (spec §3.5)
//!
//! - `φ` between the FCN's layers: configurable (`--set act=relu|none|tanh|sigmoid|gelu`),
//!   ReLU by default (SE-style; without one the FCN is a rank-`U` linear map).
//! - Biases in the squeeze convolution and both FCN layers (PyTorch's defaults; `1 + U + P`
//!   parameters more than the paper's formula, which the summary reports beside the count).
//!   Initialization: PyTorch's defaults (uniform `±1/√fan_in`, as the paper says); memory zero.
//! - Inputs of another size than the training size: `X̄` is adaptive-average-pooled to the
//!   training `H x W` before flattening, and the memory is resized bilinearly
//!   (`align_corners=False`) to the input's size, through two small interpolation matrices
//!   ([`interpolation_matrix`]) so no backend primitive is needed.
//! - "After module `M`": the stage output (ResNets: `layerM`, after the last block's addition
//!   and ReLU). For VGG the stage's maps at the stage's own resolution, before its max-pool, so
//!   that stage `M` of a VGG and of a ResNet give maps of the same size.
//! - `auto` values ([`paper_choice`]): the paper's `(M, P)` from its tables for the model,
//!   dataset (by class count: CIFAR-10, CIFAR-100, ImageNet) and regularizer; with SE/CBAM (no
//!   `(M, P)` reported) the model's SR-alone values; `U = 8` on CIFAR-sized inputs, 16 on
//!   ImageNet-sized ones; for models the paper did not run, `M = 3` (the last stage of models
//!   with fewer) and `P = 4`. On the small protocol (ResNet-18 CIFAR-10): SR alone `(4, 4)`,
//!   with D2D `(3, 10)`, with D `(3, 6)`, with DB `(4, 6)`.
//! - Weight decay applies to the memory as to every weight tensor (the paper trains with plain
//!   PyTorch SGD, which decays every parameter).
//! - Baselines (spec §3.5): D `p = 0.2` before the classifier; D2D `p = 0.1` on the outputs of
//!   stages 3 and 4; DB block 3 on CIFAR-sized inputs (7 on ImageNet-sized ones), keep
//!   probability 0.9 reached linearly from 1 over all the run's steps, on the outputs of stages 3
//!   and 4; SE and CBAM with `r = 16` (hidden width at least 1). Models with fewer than four
//!   stages (ResNet-8) take the stages 3..4 they have. When a regularizer and the SR block sit at
//!   the same stage output, the regularizer runs first (`layer3 → d2d → sr`): the SR model is
//!   the regularized model with the block inserted after the stage.
//! - The two D2D placements: the SWD module's `dropout2d` entry (the SWD paper's baseline) puts
//!   `Dropout2d` after every convolution of stage 3 (`layer3.*.conv*.drop`), while `sr --set
//!   regularizer=d2d` (and its matched baseline `sr --set regularizer=d2d,block=off`) puts one
//!   on the outputs of stages 3 and 4 (`layer3.d2d`, `layer4.d2d`), as the SR spec proposes.
//! - Removing the block (`--set ablate=remove`): the inference form is a fresh model of the same
//!   structure with the block taken out and every other weight copied; it is refused for
//!   training (per-epoch selection would see the ablated model).
//!
//! # Cost
//!
//! Parameters: `C + HW·U + U·P + P·C·H·W` (+ `1 + U + P` biases): on the small protocol's
//! ResNet-18/0.25 (701,466 parameters) `+8,493` (+1.21 %) for SR alone (`M = 4`, `P = 4`,
//! 128x4x4) and `+41,635` (+5.94 %) with D2D (`M = 3`, `P = 10`, 64x8x8); on the full-width
//! ResNet-18 +0.30 % and +1.47 %. MACs: the squeeze, the FCN and `P·C·H·W` for the recall, under
//! 0.2 % of the network's. Time: `cargo bench -p methods --bench sr_step` (ResNet-18 CIFAR
//! stem, forward + backward + SGD step, `RAYON_NUM_THREADS=2`, interleaved rounds) on the shared
//! 2-core AMD EPYC (Zen 4) development machine under a load average of about 10 (other
//! engineers' builds and sweeps):
//!
//! | model, batch | variant | median step | min step | block alone (fwd + bwd) |
//! |---|---|---:|---:|---:|
//! | width 0.25, 128 (21 rounds) | none | 428.9 ms | 261.9 ms | |
//! | | SR M4 P4 | 415.1 ms (x0.968) | 262.7 ms (+0.3 %) | 1.48 ms = 0.34 % of the step |
//! | | SR M3 P10 | 385.6 ms (x0.899) | 262.5 ms (+0.2 %) | 3.26 ms = 0.76 % |
//! | width 1, 64 (7 rounds) | none | 2913 ms | 2562 ms | |
//! | | SR M4 P4 | 3010 ms (x1.033) | 2744 ms | 8.94 ms = 0.31 % |
//! | | SR M3 P10 | 2973 ms (x1.020) | 2517 ms | 13.60 ms = 0.47 % |
//!
//! Under that load whole-step medians move by ±10 % between variants in both directions (SR
//! "faster" than none at width 0.25), so they cannot resolve a 1 % effect; the fastest steps of
//! the small model agree within 0.3 %, and the block's own forward and backward pass costs
//! 0.3–0.8 % of a plain step — consistent with the paper's under 1 % (377 → 379 ms for
//! ResNet-50 on a GPU). The SGD update of the memory (up to 6 % more parameters on the small
//! model) is not in the block-alone figure; it is part of the whole-step numbers.
//!
//! # The small protocol on CIFAR-10 (3 seeds)
//!
//! ResNet-18 (CIFAR stem) at width 0.25 on 4,000 CIFAR-10 training images, 40 epochs
//! (`--preset small`, see `methods/REPRODUCING.md`), each entry with its registry defaults
//! (SR alone `M = 4, P = 4`; with D2D `M = 3, P = 10`; `U = 8`; D2D `p = 0.1` and DropBlock
//! block 3, keep 0.9, on the outputs of stages 3 and 4); results in `methods/results/sr-small/`:
//!
//! ```sh
//! cargo run --release --bin compare -- --seeds 3 --preset small --data-dir ../shared/data/cifar-10 \
//!     --methods 'baseline,sr[regularizer=d2d,block=off],sr[regularizer=d2d],sr,dropblock' \
//!     --out methods/results/sr-small
//! cargo run --release -p methods --example sr_ablation -- methods/results/sr-small/runs/sr-*
//! ```
//!
//! | entry | seed 0 | seed 1 | seed 2 | test accuracy % (mean ± sd) | Δ | final train acc. % |
//! |---|---:|---:|---:|---:|---:|---:|
//! | baseline | 68.87 | 69.43 | 70.06 | 69.45 ± 0.60 | | 90.2 |
//! | + D2D (`sr[regularizer=d2d,block=off]`) | 67.79 | 69.44 | 67.57 | 68.27 ± 1.02 | −1.19 | 82.8 |
//! | + D2D + SR (`sr[regularizer=d2d]`) | 67.95 | 68.44 | 68.19 | 68.19 ± 0.25 | −1.26 | 82.9 |
//! | + SR (`sr`) | 69.95 | 69.07 | 70.69 | 69.90 ± 0.81 | +0.45 | 90.5 |
//! | DropBlock (`dropblock`) | 68.85 | 69.25 | 68.92 | 69.01 ± 0.21 | −0.45 | 85.7 |
//!
//! Removing the trained block (`sr_ablation`): −0.04, +0.01, −0.02 points for SR alone
//! (mean −0.02 ± 0.03) and +0.01, +0.01, +0.00 with D2D; the test losses agree within 0.0001.
//! (DropBlock's seed 2 rerun with 2 threads instead of 1 ended at 69.80 % instead of 68.92 %:
//! the thread count changes the summation order and with it the trajectory, by as much as a
//! seed does.)
//!
//! Against the protocol's measured seed noise (a difference of two 3-seed means has a standard
//! error of about 0.5 points), SR adds nothing here: SR alone is +0.45 (within noise), D2D + SR
//! equals D2D (−0.08 between them; the paper's D2D → D2D + SR step is +0.52 on ImageNet), and
//! removing the block changes no more than 0.04 points where the paper loses 0.4. The paper's
//! direction does **not** show at this scale. The runs say why: the block stays almost
//! exactly the identity it starts as. The memory's entries end below 0.012 in magnitude (RMS
//! 0.006 for SR alone, 0.0004 with D2D, in `best.safetensors`), so what it adds to the stage's
//! maps is negligible. A plausible reading: with nearly uniform mixing weights the memory acts
//! as one learned spatial bias shared by all images, which the following batch norm (`M = 3`)
//! or the classifier's bias (`M = 4`) already provides, so little gradient reaches it against
//! the weight decay (5e-4). D2D and DropBlock regularize (training accuracy 7 and 4.5 points
//! lower) and cost test accuracy, D2D beyond the noise: this small, quarter-width network has no
//! capacity to spare. The table's step-time and images/s columns come from sweeps run one
//! thread per run beside builds and say nothing about cost: see above.
pub mod ablation;
mod block;
mod method;
mod placement;
mod recipe;
mod regularizer;
mod resize;

pub use ablation::{evaluate_without_block, Ablation};
pub use block::{Activation, SqueezeRemember};
pub use method::{SrMethod, SrOptions, Structure, BLOCK_NAME, CBAM, DROPBLOCK, SE, SPECS, SR};
pub use placement::{insert_at, insert_at_stage_output, remove_inserted, stage_output};
pub use recipe::{paper_choice, PaperChoice, SrSettings};
pub use regularizer::{deep_stages, default_block_size, residual_branch_ends, Regularizer, RegularizerKind};
pub use resize::{interpolation_matrix, resize_bilinear};

#[cfg(test)]
mod tests;
