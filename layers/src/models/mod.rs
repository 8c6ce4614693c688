//! Model families, one file each, and a registry that builds them by name.
//!
//! Every model takes its number of classes and input channels, is built reproducibly from a
//! seed, and names its parameters exactly as its reference implementation (torchvision, timm,
//! the CIFAR ResNet reference), so their checkpoints load by name
//! ([`crate::state_dict::load_module`]).
//!
//! ```
//! use layers::{models, Mode, Module, ModuleExt};
//! use autograd::Tensor;
//! let net = models::build("resnet20", 10, 3, 0).unwrap();
//! assert_eq!(net.num_parameters(), 269_722);
//! let size = models::input_size("resnet20").unwrap();
//! let y = net.forward(&Tensor::zeros(&[1, 3, size, size]), Mode::Eval).unwrap();
//! assert_eq!(y.shape(), &[1, 10]);
//! assert!(models::build("resnet21", 10, 3, 0).err().unwrap().to_string().contains("resnet56"));
//! ```

mod common;
pub mod lenet;
pub mod mobilenet;
mod options;
pub mod resnet;
pub mod resnet_cifar;
pub mod vgg;
pub mod vit;

use autograd::{Error, Result};

use crate::Module;
use resnet::{ResNet, Stem};
use resnet_cifar::{CifarResNet, Shortcut};
use vgg::Vgg;
use vit::{VisionTransformer, VitConfig};

pub use options::{scale_channels, ModelOptions};

type Builder = fn(&ModelOptions) -> Result<Box<dyn Module>>;

fn boxed<M: Module>(m: Result<M>) -> Result<Box<dyn Module>> {
    Ok(Box::new(m?))
}

/// A registered model: its name, input side, whether it has a width multiplier, its builder.
struct Entry(&'static str, usize, bool, Builder);

fn vit(config: VitConfig, o: &ModelOptions) -> Result<Box<dyn Module>> {
    boxed(VisionTransformer::new(config.with_width(o.width), o.num_classes, o.in_channels, o.seed))
}

fn mobilenet(width: f64, cifar: bool, o: &ModelOptions) -> Result<Box<dyn Module>> {
    boxed(mobilenet::MobileNetV2::new(width * o.width, cifar, o.num_classes, o.in_channels, o.seed))
}

/// Every registered model.
const REGISTRY: &[Entry] = &[
    Entry("resnet8", 32, true, |o| boxed(CifarResNet::with_options(8, Shortcut::A, o))),
    Entry("resnet20", 32, true, |o| boxed(CifarResNet::with_options(20, Shortcut::A, o))),
    Entry("resnet32", 32, true, |o| boxed(CifarResNet::with_options(32, Shortcut::A, o))),
    Entry("resnet44", 32, true, |o| boxed(CifarResNet::with_options(44, Shortcut::A, o))),
    Entry("resnet56", 32, true, |o| boxed(CifarResNet::with_options(56, Shortcut::A, o))),
    Entry("resnet110", 32, true, |o| boxed(CifarResNet::with_options(110, Shortcut::A, o))),
    Entry("resnet18", 224, true, |o| boxed(ResNet::with_options(18, Stem::ImageNet, o))),
    Entry("resnet34", 224, true, |o| boxed(ResNet::with_options(34, Stem::ImageNet, o))),
    Entry("resnet50", 224, true, |o| boxed(ResNet::with_options(50, Stem::ImageNet, o))),
    Entry("resnet101", 224, true, |o| boxed(ResNet::with_options(101, Stem::ImageNet, o))),
    Entry("resnet152", 224, true, |o| boxed(ResNet::with_options(152, Stem::ImageNet, o))),
    Entry("resnet18-cifar", 32, true, |o| boxed(ResNet::with_options(18, Stem::Cifar, o))),
    Entry("resnet34-cifar", 32, true, |o| boxed(ResNet::with_options(34, Stem::Cifar, o))),
    Entry("resnet50-cifar", 32, true, |o| boxed(ResNet::with_options(50, Stem::Cifar, o))),
    Entry("resnet101-cifar", 32, true, |o| boxed(ResNet::with_options(101, Stem::Cifar, o))),
    Entry("resnet152-cifar", 32, true, |o| boxed(ResNet::with_options(152, Stem::Cifar, o))),
    Entry("vgg11-bn", 32, true, |o| boxed(Vgg::with_options(11, o))),
    Entry("vgg13-bn", 32, true, |o| boxed(Vgg::with_options(13, o))),
    Entry("vgg16-bn", 32, true, |o| boxed(Vgg::with_options(16, o))),
    Entry("vgg19-bn", 32, true, |o| boxed(Vgg::with_options(19, o))),
    Entry("mobilenetv2", 224, true, |o| mobilenet(1.0, false, o)),
    Entry("mobilenetv2-cifar", 32, true, |o| mobilenet(1.0, true, o)),
    Entry("mobilenetv2-0.5-cifar", 32, true, |o| mobilenet(0.5, true, o)),
    Entry("vit-tiny-16", 224, true, |o| vit(VitConfig::tiny(16, 224), o)),
    Entry("vit-small-16", 224, true, |o| vit(VitConfig::small(16, 224), o)),
    Entry("vit-base-16", 224, true, |o| vit(VitConfig::base(16, 224), o)),
    Entry("vit-mini-4", 32, true, |o| vit(VitConfig::mini(4, 32), o)),
    Entry("vit-tiny-4", 32, true, |o| vit(VitConfig::tiny(4, 32), o)),
    Entry("vit-small-4", 32, true, |o| vit(VitConfig::small(4, 32), o)),
    Entry("vit-base-4", 32, true, |o| vit(VitConfig::base(4, 32), o)),
    Entry("lenet5", 28, false, |o| boxed(lenet::LeNet5::new(o.num_classes, o.in_channels, o.seed))),
    Entry("mlp", 28, false, |o| boxed(lenet::Mlp300100::new(o.num_classes, o.in_channels, o.seed))),
];

fn entry(op: &'static str, name: &str) -> Result<&'static Entry> {
    REGISTRY
        .iter()
        .find(|e| e.0 == name)
        .ok_or_else(|| Error::invalid(op, format!("unknown model {name:?}; valid names: {}", names().join(", "))))
}

/// The registered model names (`resnet20`, `resnet18-cifar`, `vit-tiny-4`, ...).
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.0).collect()
}

/// Builds the model called `name` for `num_classes` classes and `in_channels` input channels,
/// initialized from `seed` (the same seed gives the same weights), at width 1.0. Unknown names
/// are an error listing the valid ones.
pub fn build(name: &str, num_classes: usize, in_channels: usize, seed: u64) -> Result<Box<dyn Module>> {
    build_with(name, &ModelOptions::new(num_classes, in_channels, seed))
}

/// Builds the model called `name` as `opts` says. The width multiplier `w` scales the channels
/// of the ResNets (both families) and VGGs ([`scale_channels`]), MobileNetV2's width (times the
/// entry's own: `mobilenetv2-0.5-cifar` at `w` is MobileNetV2 at `0.5 · w`, channels in
/// multiples of 8) and ViT's token width ([`VitConfig::with_width`]); parameter names never
/// change with the width, and width 1.0 is [`build`] bit for bit. A width that is not a
/// positive finite number is an error, and so is a width other than 1 for a model without a
/// multiplier ([`supports_width`]).
///
/// ```
/// use layers::models::{build_with, ModelOptions};
/// use layers::ModuleExt;
/// let opts = ModelOptions::new(10, 3, 0).width(0.25);
/// let net = build_with("resnet18-cifar", &opts).unwrap();
/// assert_eq!(net.get_module("layer4.1.conv2").unwrap().params()[0].1.leaf().shape(), &[128, 128, 3, 3]);
/// assert!(build_with("lenet5", &ModelOptions::new(10, 1, 0).width(0.5)).is_err());
/// ```
pub fn build_with(name: &str, opts: &ModelOptions) -> Result<Box<dyn Module>> {
    let op = "models::build";
    let e = entry(op, name)?;
    opts.check_width(op)?;
    if !e.2 && opts.width != 1.0 {
        let with: Vec<&str> = REGISTRY.iter().filter(|e| e.2).map(|e| e.0).collect();
        return Err(Error::invalid(
            op,
            format!(
                "model {name:?} has no width multiplier (width {} asked); models with one: {}",
                opts.width,
                with.join(", ")
            ),
        ));
    }
    (e.3)(opts)
}

/// Whether the model called `name` has a width multiplier ([`build_with`]); `false` for unknown
/// names.
pub fn supports_width(name: &str) -> bool {
    REGISTRY.iter().any(|e| e.0 == name && e.2)
}

/// The side of the square images the model called `name` is built for (32 for CIFAR models,
/// 224 for ImageNet ones, 28 for the MNIST ones).
pub fn input_size(name: &str) -> Result<usize> {
    Ok(entry("models::input_size", name)?.1)
}
