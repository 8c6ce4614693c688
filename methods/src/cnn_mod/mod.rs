//! CNN Mixture-of-Depths (Cakaj, Mehnert & Yang, ACCV 2024, arXiv 2409.17016): the `mod` method.
//!
//! - [`ModBlock`]: a bias-free SE-style selector (`C → C/16 → C`, ReLU, sigmoid) scores the
//!   channels, the top `k = ⌊C/c⌋` of each sample (descending score, ties to the lower index) go
//!   through a reduced residual branch ([`reduced_branch`]: BasicBlock, Bottleneck with width
//!   `k/4`, or inverted residual), the output is scaled by the selected scores and added to the
//!   first `k` channel positions; the rest pass unchanged. Indices are constants: the selector
//!   learns through the score scaling only. Static shapes.
//! - [`resnet_mod`], [`mobilenet_mod`], [`build_mod`]: ResNet-18/26/34/42/50/75/86/101/152-MoD and
//!   MobileNetV2-MoD(-L), the odd blocks of every stage replaced; parameter counts equal the
//!   paper's (tests).
//! - Registry entry `mod` (`--set c=...`, `variant=...`, `selection=random`).
//!
//! MACs (the MAC counter: convolutions and linear layers): ResNet50-MoD and ResNet75-MoD within
//! 2 % of the paper's 2.60 and 3.48 GMACs (our counts are about 1 % lower: the paper's counter
//! also counts element-wise operations). For MobileNetV2 that gap is 6 % (300.8 M against the
//! paper's 320.36 M for the plain network: with depthwise and 1x1 convolutions the element-wise
//! work weighs more), so MobileNetV2-MoD (206.0 M) and -MoD-L match the paper only relative to
//! the plain network (within 2 %).
//!
//! Choices where the paper is silent (spec §5.5): ReLU in the selector; the selected channels
//! in descending score order; the block's usual activation after the addition (ReLU for ResNets,
//! none for MobileNetV2); the score scaling after the branch's last BatchNorm; standard
//! BatchNorm in the branch. The branch's convolutions take PyTorch's default initialization.
//!
//! Not built yet (issue 24 stays open): VGG-BN-MoD, fused gather/scatter kernels, the speed
//! benchmarks against ResNet50 and PyTorch, the `compare` runs.

mod block;
mod method;
mod models;
#[cfg(test)]
mod tests;

pub use block::{reduced_branch, BranchKind, ModBlock, Routing, Selection};
pub use method::{Mod, ModConfig, SPECS};
pub use models::{
    build_mod, mobilenet_mod, resnet_layout, resnet_mod, C_MOBILENET, C_RESNET, MOBILENET_L_CHANNELS, REDUCTION,
};
