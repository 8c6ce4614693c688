//! The MoD networks: ResNet-MoD (18/26/34/42 with BasicBlocks, 50/75/86/101/152 with
//! Bottlenecks, ImageNet or CIFAR stem) and MobileNetV2-MoD / MobileNetV2-MoD-L. Inside every
//! stage block 0 is a standard block (it carries the stride), then blocks alternate: the blocks
//! with an odd index in their stage are MoD blocks. Depth and layout are the standard models'.

use autograd::{Error, Result};
use layers::models::mobilenet::{make_divisible, MobileNetV2};
use layers::models::resnet::{ResNet, Stem};
use layers::models::vgg::Vgg;
use layers::models::{scale_channels, ModelOptions};
use layers::rng::with_seed;
use layers::{Conv2d, Identity, MaxPool2d, Module, ModuleExt};

use super::block::{BranchKind, ModBlock, Selection};

/// Mixed into the model's seed for the MoD blocks' initialization ("mod" in ASCII), so the
/// standard blocks keep the initialization of the standard model.
const SELECTOR_SEED: u64 = 0x006d_6f64;

/// The selector's reduction ratio `r`.
pub const REDUCTION: usize = 16;
/// `c` for ResNets at full width: the widest input of the first convolution block (64).
pub const C_RESNET: usize = 64;
/// `c` for MobileNetV2 at full width (16).
pub const C_MOBILENET: usize = 16;

/// The paper's `c` for a ResNet of width multiplier `width`: the input width of its first
/// convolution block ([`C_RESNET`] scaled like the network's channels), so that every stage
/// processes the same share of its channels (`k` = 1, 2, 4, 8 for BasicBlock stages) at any
/// width.
pub fn c_resnet(width: f64) -> usize {
    scale_channels(C_RESNET, width)
}

/// The paper's `c` for MobileNetV2 of width multiplier `width`: [`C_MOBILENET`] rounded as the
/// network rounds its channels (the first block's output width).
pub fn c_mobilenet(width: f64) -> usize {
    make_divisible(C_MOBILENET as f64 * width, 8)
}

/// `(bottleneck, blocks per stage)` of ResNet-`depth`-MoD: the standard depths' layouts, and
/// the paper's deeper or shallower variants at about constant cost (26, 42, 75, 86).
pub fn resnet_layout(depth: usize) -> Result<(bool, [usize; 4])> {
    Ok(match depth {
        26 => (false, [2, 2, 3, 4]),
        42 => (false, [3, 3, 6, 6]),
        75 => (true, [3, 4, 14, 3]),
        86 => (true, [3, 4, 18, 3]),
        _ => ResNet::layout(depth).map_err(|_| {
            Error::invalid(
                "resnet_mod",
                format!("depth {depth}: ResNet-MoD depths are 18, 26, 34, 42, 50, 75, 86, 101, 152"),
            )
        })?,
    })
}

/// ResNet-`depth`-MoD with MoD parameter `c` (the paper's 64: [`C_RESNET`]).
///
/// ```
/// use layers::models::{resnet::Stem, ModelOptions};
/// use layers::ModuleExt;
/// let net = methods::cnn_mod::resnet_mod(50, Stem::ImageNet, &ModelOptions::new(1000, 3, 0), 64, methods::cnn_mod::Selection::TopK).unwrap();
/// assert_eq!((net.num_parameters() as f64 / 1e4).round() / 1e2, 18.11); // the paper's 18.11 M
/// ```
pub fn resnet_mod(depth: usize, stem: Stem, opts: &ModelOptions, c: usize, selection: Selection) -> Result<ResNet> {
    let (bottleneck, blocks) = resnet_layout(depth)?;
    let mut net = ResNet::with_layout(bottleneck, blocks, stem, opts)?;
    let (kind, expansion) = if bottleneck { (BranchKind::Bottleneck, 4) } else { (BranchKind::Basic, 1) };
    with_seed(opts.seed ^ SELECTOR_SEED, || -> Result<()> {
        for (s, (&n, planes)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
            let channels = scale_channels(planes, opts.width) * expansion;
            for j in (1..n).step_by(2) {
                let block = ModBlock::new(kind, channels, c.min(channels), REDUCTION, selection)?;
                net.replace_module(&format!("layer{}.{j}", s + 1), Box::new(block))?;
            }
        }
        Ok(())
    })?;
    Ok(net)
}

/// VGG-`depth`-BN-MoD (11, 13, 16 or 19; 32x32 inputs) with MoD parameter `c` (the paper's
/// 64, as for ResNets: [`c_resnet`]). A stage is the layers between two max-pools; its layers
/// with an odd index (which keep the width of layer 0) become MoD blocks with a [`BranchKind::Plain`]
/// branch, in place of the layer's convolution (`features.{i}`), its BatchNorm and ReLU
/// (`features.{i+1}`, `features.{i+2}`: [`Identity`]; the block ends in the ReLU).
///
/// ```
/// use layers::models::ModelOptions;
/// use layers::ModuleExt;
/// use methods::cnn_mod::{vgg_mod, Selection};
/// let plain = layers::models::build("vgg16-bn", 10, 3, 0).unwrap();
/// let net = vgg_mod(16, &ModelOptions::new(10, 3, 0), 64, Selection::TopK).unwrap();
/// // The paper's VGG16-BN (15.25 M) and VGG16-BN-MoD (9.83 M) differ by 5.42 M.
/// assert_eq!(((plain.num_parameters() - net.num_parameters()) as f64 / 1e4).round() / 1e2, 5.42);
/// ```
pub fn vgg_mod(depth: usize, opts: &ModelOptions, c: usize, selection: Selection) -> Result<Vgg> {
    let mut net = Vgg::with_options(depth, opts)?;
    // (index in `features`, channels) of the layers to replace.
    let mut targets = Vec::new();
    let mut in_stage = 0;
    for (name, m) in net.features.children() {
        if m.downcast_ref::<MaxPool2d>().is_some() {
            in_stage = 0;
        } else if let Some(conv) = m.downcast_ref::<Conv2d>() {
            let shape = conv.weight.tensor().shape().to_vec();
            if in_stage % 2 == 1 && shape[0] == shape[1] {
                let i: usize =
                    name.parse().map_err(|_| Error::invalid("vgg_mod", format!("features child {name:?}")))?;
                targets.push((i, shape[0]));
            }
            in_stage += 1;
        }
    }
    with_seed(opts.seed ^ SELECTOR_SEED, || -> Result<()> {
        for &(i, channels) in &targets {
            let block = ModBlock::new(BranchKind::Plain, channels, c.min(channels), REDUCTION, selection)?;
            net.features.replace_module(&i.to_string(), Box::new(block))?;
            for j in [i + 1, i + 2] {
                net.features.replace_module(&j.to_string(), Box::new(Identity))?;
            }
        }
        Ok(())
    })?;
    Ok(net)
}

/// The channel column of MobileNetV2-MoD-L (MobileNetV2's is [`MobileNetV2::CHANNELS`]).
pub const MOBILENET_L_CHANNELS: [usize; 7] = [16, 32, 64, 96, 128, 160, 320];

/// MobileNetV2-MoD (`large`: MobileNetV2-MoD-L's wider column) at `width`, CIFAR strides if
/// `cifar`, MoD parameter `c` (the paper's 16: [`C_MOBILENET`]).
pub fn mobilenet_mod(
    large: bool,
    width: f64,
    cifar: bool,
    opts: &ModelOptions,
    c: usize,
    selection: Selection,
) -> Result<MobileNetV2> {
    let channels = if large { MOBILENET_L_CHANNELS } else { MobileNetV2::CHANNELS };
    let mut net = MobileNetV2::with_channels(channels, width, cifar, opts.num_classes, opts.in_channels, opts.seed)?;
    let (expansion, repeats) = ([1, 6, 6, 6, 6, 6, 6], [1, 2, 3, 4, 3, 3, 1]);
    with_seed(opts.seed ^ SELECTOR_SEED, || -> Result<()> {
        let mut index = 1; // features.0 is the stem
        for row in 0..7 {
            let out = make_divisible(channels[row] as f64 * width, 8);
            for i in 0..repeats[row] {
                if i % 2 == 1 {
                    let block = ModBlock::new(
                        BranchKind::Inverted { t: expansion[row] },
                        out,
                        c.min(out),
                        REDUCTION,
                        selection,
                    )?;
                    net.replace_module(&format!("features.{index}"), Box::new(block))?;
                }
                index += 1;
            }
        }
        Ok(())
    })?;
    Ok(net)
}

/// The MoD version of the registered model `name` (`resnet18`, `resnet50-cifar`,
/// `mobilenetv2-cifar`, `vgg16-bn`, ...), or of `variant` when given (`resnet26`, `resnet42`, `resnet75`,
/// `resnet86` with `name`'s stem; `mobilenetv2-l` with `name`'s strides), with MoD parameter `c`
/// (`None`: the paper's for the family at the model's width, [`c_resnet`] or [`c_mobilenet`]).
pub fn build_mod(
    name: &str,
    variant: Option<&str>,
    opts: &ModelOptions,
    c: Option<usize>,
    selection: Selection,
) -> Result<Box<dyn Module>> {
    let cifar = name.ends_with("-cifar");
    let family = variant.unwrap_or(name);
    if let Some(rest) = family.strip_prefix("resnet") {
        let depth: usize = rest.trim_end_matches("-cifar").parse().map_err(|_| unknown(name, variant))?;
        let stem = if cifar { Stem::Cifar } else { Stem::ImageNet };
        return Ok(Box::new(resnet_mod(depth, stem, opts, c.unwrap_or_else(|| c_resnet(opts.width)), selection)?));
    }
    if let Some(depth) = family.strip_prefix("vgg").and_then(|r| r.strip_suffix("-bn")) {
        let depth: usize = depth.parse().map_err(|_| unknown(name, variant))?;
        return Ok(Box::new(vgg_mod(depth, opts, c.unwrap_or_else(|| c_resnet(opts.width)), selection)?));
    }
    if family.starts_with("mobilenetv2") {
        let large = variant == Some("mobilenetv2-l");
        let width = if name.starts_with("mobilenetv2-0.5") { 0.5 } else { opts.width };
        return Ok(Box::new(mobilenet_mod(
            large,
            width,
            cifar,
            opts,
            c.unwrap_or_else(|| c_mobilenet(width)),
            selection,
        )?));
    }
    Err(unknown(name, variant))
}

fn unknown(name: &str, variant: Option<&str>) -> Error {
    Error::invalid(
        "mod",
        format!(
            "no MoD version of model {name:?} (variant {variant:?}): MoD builds ResNet-18/34/50/101/152 (ImageNet or -cifar stem; variants resnet26, resnet42, resnet75, resnet86), MobileNetV2 (variant mobilenetv2-l) and VGG-11/13/16/19-BN"
        ),
    )
}
