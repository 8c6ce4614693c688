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
pub mod resnet;
pub mod resnet_cifar;
pub mod vgg;
pub mod vit;

use autograd::{Error, Result};

use crate::Module;
use resnet::Stem;
use resnet_cifar::Shortcut;
use vit::{VisionTransformer, VitConfig};

type Builder = fn(usize, usize, u64) -> Result<Box<dyn Module>>;

fn boxed<M: Module>(m: Result<M>) -> Result<Box<dyn Module>> {
    Ok(Box::new(m?))
}

/// `(name, input side, builder)` of every registered model.
const REGISTRY: &[(&str, usize, Builder)] = &[
    ("resnet8", 32, |k, c, s| boxed(resnet_cifar::CifarResNet::new(8, Shortcut::A, k, c, s))),
    ("resnet20", 32, |k, c, s| boxed(resnet_cifar::CifarResNet::new(20, Shortcut::A, k, c, s))),
    ("resnet32", 32, |k, c, s| boxed(resnet_cifar::CifarResNet::new(32, Shortcut::A, k, c, s))),
    ("resnet44", 32, |k, c, s| boxed(resnet_cifar::CifarResNet::new(44, Shortcut::A, k, c, s))),
    ("resnet56", 32, |k, c, s| boxed(resnet_cifar::CifarResNet::new(56, Shortcut::A, k, c, s))),
    ("resnet110", 32, |k, c, s| boxed(resnet_cifar::CifarResNet::new(110, Shortcut::A, k, c, s))),
    ("resnet18", 224, |k, c, s| boxed(resnet::ResNet::new(18, Stem::ImageNet, k, c, s))),
    ("resnet34", 224, |k, c, s| boxed(resnet::ResNet::new(34, Stem::ImageNet, k, c, s))),
    ("resnet50", 224, |k, c, s| boxed(resnet::ResNet::new(50, Stem::ImageNet, k, c, s))),
    ("resnet101", 224, |k, c, s| boxed(resnet::ResNet::new(101, Stem::ImageNet, k, c, s))),
    ("resnet152", 224, |k, c, s| boxed(resnet::ResNet::new(152, Stem::ImageNet, k, c, s))),
    ("resnet18-cifar", 32, |k, c, s| boxed(resnet::ResNet::new(18, Stem::Cifar, k, c, s))),
    ("resnet34-cifar", 32, |k, c, s| boxed(resnet::ResNet::new(34, Stem::Cifar, k, c, s))),
    ("resnet50-cifar", 32, |k, c, s| boxed(resnet::ResNet::new(50, Stem::Cifar, k, c, s))),
    ("resnet101-cifar", 32, |k, c, s| boxed(resnet::ResNet::new(101, Stem::Cifar, k, c, s))),
    ("resnet152-cifar", 32, |k, c, s| boxed(resnet::ResNet::new(152, Stem::Cifar, k, c, s))),
    ("vgg11-bn", 32, |k, c, s| boxed(vgg::Vgg::new(11, k, c, s))),
    ("vgg13-bn", 32, |k, c, s| boxed(vgg::Vgg::new(13, k, c, s))),
    ("vgg16-bn", 32, |k, c, s| boxed(vgg::Vgg::new(16, k, c, s))),
    ("vgg19-bn", 32, |k, c, s| boxed(vgg::Vgg::new(19, k, c, s))),
    ("mobilenetv2", 224, |k, c, s| boxed(mobilenet::MobileNetV2::new(1.0, false, k, c, s))),
    ("mobilenetv2-cifar", 32, |k, c, s| boxed(mobilenet::MobileNetV2::new(1.0, true, k, c, s))),
    ("mobilenetv2-0.5-cifar", 32, |k, c, s| boxed(mobilenet::MobileNetV2::new(0.5, true, k, c, s))),
    ("vit-tiny-16", 224, |k, c, s| boxed(VisionTransformer::new(VitConfig::tiny(16, 224), k, c, s))),
    ("vit-small-16", 224, |k, c, s| boxed(VisionTransformer::new(VitConfig::small(16, 224), k, c, s))),
    ("vit-base-16", 224, |k, c, s| boxed(VisionTransformer::new(VitConfig::base(16, 224), k, c, s))),
    ("vit-tiny-4", 32, |k, c, s| boxed(VisionTransformer::new(VitConfig::tiny(4, 32), k, c, s))),
    ("vit-small-4", 32, |k, c, s| boxed(VisionTransformer::new(VitConfig::small(4, 32), k, c, s))),
    ("vit-base-4", 32, |k, c, s| boxed(VisionTransformer::new(VitConfig::base(4, 32), k, c, s))),
    ("lenet5", 28, |k, c, s| boxed(lenet::LeNet5::new(k, c, s))),
    ("mlp", 28, |k, c, s| boxed(lenet::Mlp300100::new(k, c, s))),
];

fn entry(op: &'static str, name: &str) -> Result<&'static (&'static str, usize, Builder)> {
    REGISTRY
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| Error::invalid(op, format!("unknown model {name:?}; valid names: {}", names().join(", "))))
}

/// The registered model names (`resnet20`, `resnet18-cifar`, `vit-tiny-4`, ...).
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(n, _, _)| *n).collect()
}

/// Builds the model called `name` for `num_classes` classes and `in_channels` input channels,
/// initialized from `seed` (the same seed gives the same weights). Unknown names are an error
/// listing the valid ones.
pub fn build(name: &str, num_classes: usize, in_channels: usize, seed: u64) -> Result<Box<dyn Module>> {
    (entry("models::build", name)?.2)(num_classes, in_channels, seed)
}

/// The side of the square images the model called `name` is built for (32 for CIFAR models,
/// 224 for ImageNet ones, 28 for the MNIST ones).
pub fn input_size(name: &str) -> Result<usize> {
    Ok(entry("models::input_size", name)?.1)
}
