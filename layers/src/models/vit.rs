//! The Vision Transformer (Dosovitskiy et al. 2021) with timm's layout, names and init:
//! ViT-Tiny/Small/Base at any patch and image size (`/16` at 224 for ImageNet, `/4` at 32 for
//! CIFAR), and ViT-Mini (D 96, 6 blocks: a ViT small enough to train on CIFAR-10 on a CPU).
//!
//! Names are timm's `VisionTransformer` (class-token pooling): `cls_token` `[1, 1, D]`,
//! `pos_embed` `[1, 1 + patches, D]`, `patch_embed.proj` (a `patch x patch` convolution with
//! stride `patch`), `blocks.N.norm1`, `blocks.N.attn.qkv`, `blocks.N.attn.proj`,
//! `blocks.N.norm2`, `blocks.N.mlp.fc1`, `blocks.N.mlp.fc2`, `norm`, `head`. Init as timm's
//! default: `pos_embed` truncated normal (0.02), `cls_token` normal (1e-6), every linear layer
//! truncated normal (0.02) with zero bias, the patch convolution PyTorch's default, LayerNorms
//! (eps 1e-6) 1 / 0. ViT-Tiny/16 at 224 has 5,717,416 parameters for 1000 classes.

use autograd::{Error, Result, Tensor};

use crate::init::{normal, trunc_normal};
use crate::rng::with_seed;
use crate::{children, vit_linear, Conv2d, Conv2dOptions, EncoderBlock, LayerNorm, Mode, Module, Param, Sequential};

/// The shape of a ViT.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VitConfig {
    /// Side of the (square) input image.
    pub image_size: usize,
    /// Side of a (square) patch.
    pub patch_size: usize,
    /// Token width `D`.
    pub embed_dim: usize,
    /// Number of encoder blocks.
    pub depth: usize,
    /// Attention heads per block.
    pub num_heads: usize,
    /// MLP hidden width over `D`.
    pub mlp_ratio: f64,
}

impl VitConfig {
    /// ViT-Tiny (D 192, 12 blocks, 3 heads).
    pub fn tiny(patch_size: usize, image_size: usize) -> VitConfig {
        VitConfig { image_size, patch_size, embed_dim: 192, depth: 12, num_heads: 3, mlp_ratio: 4.0 }
    }

    /// ViT-Mini, this project's CPU-sized ViT (not a published shape): ViT-Tiny at half width
    /// and half depth (D 96, 6 blocks, 3 heads, MLP ratio 4). At patch 4 on 32x32 inputs it has
    /// 683,242 parameters for 10 classes and trains on CIFAR-10 in hours on two cores; the
    /// `moee` method ships one trained this way.
    pub fn mini(patch_size: usize, image_size: usize) -> VitConfig {
        VitConfig { embed_dim: 96, depth: 6, ..VitConfig::tiny(patch_size, image_size) }
    }

    /// ViT-Small (D 384, 12 blocks, 6 heads).
    pub fn small(patch_size: usize, image_size: usize) -> VitConfig {
        VitConfig { embed_dim: 384, num_heads: 6, ..VitConfig::tiny(patch_size, image_size) }
    }

    /// ViT-Base (D 768, 12 blocks, 12 heads).
    pub fn base(patch_size: usize, image_size: usize) -> VitConfig {
        VitConfig { embed_dim: 768, num_heads: 12, ..VitConfig::tiny(patch_size, image_size) }
    }

    /// This shape at width multiplier `width`: the token width `D` becomes `D · width` rounded
    /// to the nearest multiple of the head count (at least one per head); heads, depth and the MLP
    /// ratio stay, so the MLP's hidden width follows `D`. ViT-Tiny at 0.5 has `D` 96.
    ///
    /// ```
    /// use layers::models::vit::VitConfig;
    /// assert_eq!(VitConfig::tiny(4, 32).with_width(0.5).embed_dim, 96);
    /// assert_eq!(VitConfig::tiny(4, 32).with_width(0.3).embed_dim, 57); // 57.6 -> 19 per head
    /// assert_eq!(VitConfig::small(4, 32).with_width(0.001).embed_dim, 6);
    /// ```
    pub fn with_width(self, width: f64) -> VitConfig {
        let heads = self.num_heads.max(1);
        let per_head = ((self.embed_dim as f64 * width / heads as f64).round() as usize).max(1);
        VitConfig { embed_dim: per_head * heads, ..self }
    }

    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }
}

/// timm's `PatchEmbed`: a strided convolution from `[B, C, H, W]` to `[B, patches, D]` tokens.
pub struct PatchEmbed {
    /// `Conv2d(in, D, patch, stride = patch)` with bias.
    pub proj: Box<dyn Module>,
    image_size: usize,
}

impl Module for PatchEmbed {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if x.ndim() != 4 || x.shape()[2] != self.image_size || x.shape()[3] != self.image_size {
            return Err(Error::invalid(
                "PatchEmbed",
                format!("expected [B, C, {s}, {s}] images, got {:?}", x.shape(), s = self.image_size),
            ));
        }
        self.proj.forward(x, mode)?.flatten(2, 3)?.transpose(1, 2)
    }

    children!(proj);
}

/// A Vision Transformer classifying from the class token.
///
/// ```
/// use layers::models::vit::{VisionTransformer, VitConfig};
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let cfg = VitConfig { image_size: 8, patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2, mlp_ratio: 2.0 };
/// let net = VisionTransformer::new(cfg, 10, 3, 0).unwrap();
/// assert_eq!(net.forward(&Tensor::zeros(&[2, 3, 8, 8]), Mode::Eval).unwrap().shape(), &[2, 10]);
/// assert_eq!(net.named_parameters()[1].0, "pos_embed");
/// ```
pub struct VisionTransformer {
    /// The class token `[1, 1, D]`.
    pub cls_token: Param,
    /// Learned position embeddings `[1, 1 + patches, D]` (the class token's first).
    pub pos_embed: Param,
    /// Image to patch tokens.
    pub patch_embed: Box<dyn Module>,
    /// The encoder blocks.
    pub blocks: Box<dyn Module>,
    /// The final LayerNorm.
    pub norm: Box<dyn Module>,
    /// `Linear(D, num_classes)` on the class token.
    pub head: Box<dyn Module>,
    config: VitConfig,
}

impl VisionTransformer {
    /// A ViT of the given shape, built from `seed`.
    pub fn new(config: VitConfig, num_classes: usize, in_channels: usize, seed: u64) -> Result<VisionTransformer> {
        let VitConfig { image_size, patch_size, embed_dim: d, depth, num_heads, mlp_ratio } = config;
        if patch_size == 0 || image_size % patch_size != 0 || image_size == 0 || num_classes == 0 || in_channels == 0 {
            return Err(Error::invalid(
                "VisionTransformer::new",
                format!("image {image_size} must be a positive multiple of patch {patch_size}; {num_classes} classes, {in_channels} channels"),
            ));
        }
        with_seed(seed, || {
            let proj = Conv2d::new(in_channels, d, patch_size, Conv2dOptions::default().stride(patch_size))?;
            let mut blocks = Sequential::new();
            for _ in 0..depth {
                blocks = blocks.push(EncoderBlock::new(d, num_heads, mlp_ratio)?);
            }
            Ok(VisionTransformer {
                cls_token: Param::new(normal(&[1, 1, d], 0.0, 1e-6)?),
                pos_embed: Param::new(trunc_normal(&[1, 1 + config.num_patches(), d], 0.0, 0.02, -2.0, 2.0)?),
                patch_embed: Box::new(PatchEmbed { proj: Box::new(proj), image_size }),
                blocks: Box::new(blocks),
                norm: Box::new(LayerNorm::new(&[d], 1e-6)),
                head: Box::new(vit_linear(d, num_classes)?),
                config,
            })
        })
    }

    /// The shape of this ViT.
    pub fn config(&self) -> VitConfig {
        self.config
    }
}

impl Module for VisionTransformer {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let tokens = self.patch_embed.forward(x, mode)?;
        let (b, d) = (tokens.shape()[0], self.config.embed_dim);
        let cls = self.cls_token.tensor().expand(&[b, 1, d])?;
        let x = Tensor::cat(&[&cls, &tokens], 1)?.add(&self.pos_embed.tensor())?;
        let x = self.norm.forward(&self.blocks.forward(&x, mode)?, mode)?;
        self.head.forward(&x.select(1, 0)?, mode)
    }

    fn params(&self) -> Vec<(String, Param)> {
        vec![("cls_token".into(), self.cls_token.clone()), ("pos_embed".into(), self.pos_embed.clone())]
    }

    children!(patch_embed, blocks, norm, head);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleExt;

    fn small() -> VisionTransformer {
        let cfg = VitConfig { image_size: 8, patch_size: 4, embed_dim: 8, depth: 1, num_heads: 2, mlp_ratio: 2.0 };
        VisionTransformer::new(cfg, 3, 2, 0).unwrap()
    }

    #[test]
    fn patches_become_tokens_in_row_major_order() {
        let vit = small();
        let pe = vit.patch_embed.downcast_ref::<PatchEmbed>().unwrap();
        let x = Tensor::randn(&[1, 2, 8, 8], 1).unwrap();
        let tokens = pe.forward(&x, Mode::Eval).unwrap();
        assert_eq!(tokens.shape(), &[1, 4, 8]);
        // Token 1 is the top-right patch: the convolution applied to x[:, :, 0:4, 4:8].
        let patch = x.narrow(2, 0, 4).unwrap().narrow(3, 4, 4).unwrap().contiguous().unwrap();
        let direct = pe.proj.forward(&patch, Mode::Eval).unwrap().flatten(1, 3).unwrap();
        let (a, b) = (tokens.select(1, 1).unwrap().to_vec::<f32>().unwrap(), direct.to_vec::<f32>().unwrap());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5));
        assert!(pe.forward(&Tensor::zeros(&[1, 2, 12, 12]), Mode::Eval).is_err());
    }

    #[test]
    fn the_head_reads_the_class_token_only() {
        let vit = small();
        let x = Tensor::randn(&[2, 2, 8, 8], 2).unwrap();
        let y = vit.forward(&x, Mode::Train).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        assert!(vit.parameters().iter().all(|p| p.grad().is_some()));
        // The class token's gradient is nonzero: the head sees it through the final norm.
        let g = vit.cls_token.grad().unwrap().to_f64_vec().unwrap();
        assert!(g.iter().any(|v| v.abs() > 0.0));
        assert_eq!(vit.pos_embed.leaf().shape(), &[1, 5, 8]);
        assert!(VisionTransformer::new(VitConfig::tiny(5, 32), 10, 3, 0).is_err());
    }
}
