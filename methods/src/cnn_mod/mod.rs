//! CNN Mixture-of-Depths (Cakaj, Mehnert & Yang, ACCV 2024, arXiv 2409.17016): the `mod` method.
//!
//! - [`ModBlock`]: a bias-free SE-style selector (`C → C/16 → C`, ReLU, sigmoid) scores the
//!   channels, the top `k = ⌊C/c⌋` of each sample (descending score, ties to the lower index) go
//!   through a reduced residual branch ([`reduced_branch`]: BasicBlock, Bottleneck with width
//!   `k/4`, or inverted residual), the output is scaled by the selected scores and added to the
//!   first `k` channel positions; the rest pass unchanged. Indices are constants: the selector
//!   learns through the score scaling only. Static shapes.
//! - [`resnet_mod`], [`mobilenet_mod`], [`vgg_mod`], [`build_mod`]: ResNet-18/26/34/42/50/75/86/
//!   101/152-MoD, MobileNetV2-MoD(-L) and VGG-11/13/16/19-BN-MoD, the odd blocks (VGG: layers)
//!   of every stage replaced; parameter counts equal the paper's (tests; VGG: the paper's
//!   difference between VGG-BN and its MoD version, since our CIFAR VGG has one classifier
//!   layer where the paper's has three).
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
//! # Results (AMD EPYC Zen 4; `methods/REPRODUCING.md` has the commands)
//!
//! - Small protocol (`methods/results/mod-small/`): ResNet-18/0.25-MoD 67.54 ± 0.74 % against
//!   the baseline's 69.45 ± 0.60 (−1.91 points, beyond the baseline's seed spread) with 53.6 %
//!   fewer MACs and 55 % fewer parameters; the paper's full-width ResNet18 on CIFAR-10 loses
//!   1.67 points at 54 % fewer MACs, so the trade reproduces at this scale. Timed in one run
//!   (`mod_speed`, 2 threads, batch 128) the MoD model's training step is x1.55 faster and its
//!   inference x1.45.
//! - Speed over ResNet50 (`methods/results/mod-speed/`): ResNet50-MoD x1.63-1.86 at batch 1,
//!   x1.37-1.57 at batch 32 (short of the paper's x1.48 at 224x224: x1.37 inference, x1.45
//!   training; batch size not given in the paper); ResNet75-MoD x1.08-1.21 (the paper: x1.25,
//!   above its MAC ratio of x1.19 by our count). PyTorch running the same blocks gets x1.30-1.44
//!   and x0.92-1.19. At batch 32 the MoD blocks' leftover work (the
//!   selector's pooling and the fusion's pass over the map) costs about what a standard
//!   block's element-wise ops cost, which keeps the speed-up below the MAC ratio.
//!
//! The routing runs as two fused ops on the CPU ([`gather_channels`], [`fuse_first_k`]); their
//! wall time and the speed-ups over ResNet50 are measured by `cargo bench -p methods --bench
//! mod_speed`, beside a PyTorch script of the same networks (`methods/results/mod-speed/`).

mod block;
mod fused;
mod method;
mod models;
#[cfg(test)]
mod tests;

pub use block::{reduced_branch, BranchKind, ModBlock, Routing, Selection};
pub use fused::{fuse_first_k, gather_channels};
pub use method::{Mod, ModConfig, SPECS};
pub use models::{
    build_mod, c_mobilenet, c_resnet, mobilenet_mod, resnet_layout, resnet_mod, vgg_mod, C_MOBILENET, C_RESNET,
    MOBILENET_L_CHANNELS, REDUCTION,
};
