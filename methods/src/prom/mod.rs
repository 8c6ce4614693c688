//! PROM (arXiv 2505.03254), "prioritize reduction of multiplications over lower bit-widths":
//! ternary pointwise convolutions and 8-bit everything else, trained with quantization-aware
//! training. The spec (`shared/papers/prom.md`) is a reconstruction from the abstract; every
//! choice below it marks as such is an option here.
//!
//! What is here:
//!
//! - [`quant`]: the fake quantizers with their straight-through gradients: ternary absmean
//!   (default), TWN and TTQ; symmetric per-channel int8 weights; LSQ (default; one fused pass
//!   each way, `autograd::Tensor::lsq_quantize`), PACT and fixed-range activations.
//!   Reconstructions (the spec's): absmean as the ternary default, LSQ as the activation
//!   default, a signed or unsigned LSQ range chosen by the sign of the first training batch at
//!   each layer's input, BatchNorm kept float during QAT and folded after it.
//! - [`QuantLayer`] and [`quantize`]: PROM's recipe (1x1 convolutions inside inverted-residual
//!   blocks ternary, every other convolution and the classifier int8, 8-bit activations at every
//!   quantized layer's input, BatchNorm float) and the registry entry `prom`, which trains the
//!   fake-quantized model (QAT from `--init-from` a float checkpoint).
//! - [`integer`]: the integer inference form ([`to_integer`], [`IntLayer`]): input codes as QAT
//!   made them, ternary 1x1 convolutions on the backend's add/subtract kernel, int8 x int8 -> i32
//!   elsewhere, BatchNorm folded into the per-channel requantization; accumulators equal to the
//!   fake-quantized model's integer dot products, outputs equal bit for bit to the
//!   fake-quantized model's after BatchNorm folding ([`fold`], [`fold_batch_norms`]; tests, and
//!   on CIFAR-10's whole test set in `methods/results/prom-small/`); integer checkpoints
//!   ([`save_integer`], [`load_integer`]) with 2-bit packed ternary weights, whose weight bytes
//!   are the estimator's storage figure exactly (test). Each layer's float ends are one pass
//!   each (the backend's `quantize_i8` and `requantize`, a following ReLU6 folded in as a
//!   clamp); the int8 GEMM runs on VNNI, the ternary 1x1 convolutions on an AVX-512BW
//!   add/subtract kernel, the depthwise ones on padded-plane loops. Timings in
//!   `methods/results/prom-infer/`. `train --method prom` evaluates and exports the
//!   integer model (`inference=integer`).
//! - [`energy`]: the energy and storage estimator over the MAC counter's layers, with the 45 nm
//!   table as default and the accounting written down; [`block_pointwise_convs`] picks PROM's
//!   ternary layers of a MobileNetV2.
//!
//! # The estimator on MobileNetV2 (width 1.0, 224x224, 1000 classes)
//!
//! 300.8 M MACs and 3.47 M weights, as the spec's hand computation. Against float16 (every MAC
//! an fp16 multiply and add, 16-bit weights), PROM's assignment (block 1x1 convolutions ternary,
//! the rest int8, int8 accumulation) spends 23.0x less energy (28.9x with the final 1x1
//! convolution ternary too; 19.4x / 25.2x with int32 accumulation in the int8 layers) and
//! stores 3.2x fewer bits. The paper reports 23.9x and 2.7x; its accounting is not available,
//! so neither is reproduced exactly (the tests pin the spec's figures).

pub mod energy;
pub mod fold;
pub mod integer;
pub mod layer;
mod method;
pub mod quant;
#[cfg(test)]
mod tests;

pub use energy::{block_pointwise_convs, estimate, layer_costs, Accumulator, EnergyReport, EnergyTable, Precision};
pub use fold::{fold_batch_norms, Fold};
pub use integer::{load_integer, save_integer, to_integer, IntLayer};
pub use layer::{ActQuant, InputCodes, QuantLayer, WeightQuant};
pub use method::{quantize, Prom, PromConfig, SPECS};
pub use quant::{
    fixed_range, int8_weight, lsq, lsq_init, pact, straight_through, ternary_absmean, ternary_ttq, ternary_twn,
};
