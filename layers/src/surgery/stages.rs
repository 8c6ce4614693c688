//! [`stage_scopes`] and [`num_stages`]: the module paths of a model's resolution stages, as
//! methods that act "on stage 3" name them.

use autograd::{Error, Result};

use super::unwrapped;
use crate::models::mobilenet::InvertedResidual;
use crate::models::vit::VisionTransformer;
use crate::{Conv2d, MaxPool2d, Module, ModuleExt};

/// Whether `m` or one of its descendants is a [`Conv2d`] (through wrappers).
fn holds_conv(m: &dyn Module) -> bool {
    m.named_modules().into_iter().any(|(_, c)| unwrapped(c).downcast_ref::<Conv2d>().is_some())
}

/// The largest stride of the convolutions in `m` (1 if none strides).
fn stride_of(m: &dyn Module) -> usize {
    m.named_modules()
        .into_iter()
        .filter_map(|(_, c)| unwrapped(c).downcast_ref::<Conv2d>().map(|c| c.params.stride.0.max(c.params.stride.1)))
        .max()
        .unwrap_or(1)
}

/// Every stage of `model`, each as its module paths (see [`stage_scopes`]).
fn stages(model: &dyn Module) -> Result<Vec<Vec<String>>> {
    let op = "stage_scopes";
    let root = unwrapped(model);
    if root.downcast_ref::<VisionTransformer>().is_some() {
        return Err(Error::invalid(
            op,
            "a Vision Transformer has no stages: its blocks.N all work at one resolution; select blocks by path \
             instead (e.g. \"blocks.*\" or \"blocks.8.**\")",
        ));
    }
    let top = model.children();
    if top.iter().any(|(n, _)| n == "layer1") {
        let layers = (1..).map(|k| format!("layer{k}")).take_while(|n| top.iter().any(|(c, _)| c == n));
        return Ok(layers.map(|n| vec![n]).collect());
    }
    if let Some((_, features)) = top.iter().find(|(n, _)| n == "features") {
        let kids = features.children();
        let is = |m: &dyn Module, f: fn(&dyn Module) -> bool| f(unwrapped(m));
        if kids.iter().any(|(_, m)| is(*m, |m| m.downcast_ref::<MaxPool2d>().is_some())) {
            // VGG: the convolutions between consecutive max-pools.
            let mut out = vec![vec![]];
            for (name, m) in kids {
                if is(m, |m| m.downcast_ref::<MaxPool2d>().is_some()) {
                    out.push(vec![]);
                } else if is(m, |m| m.downcast_ref::<Conv2d>().is_some()) {
                    out.last_mut().expect("starts non-empty").push(format!("features.{name}"));
                }
            }
            out.retain(|s| !s.is_empty());
            return Ok(out);
        }
        if kids.iter().any(|(_, m)| is(*m, |m| m.downcast_ref::<InvertedResidual>().is_some())) {
            // MobileNetV2: the inverted-residual blocks, a new stage at each strided one.
            let mut out: Vec<Vec<String>> = vec![];
            for (name, m) in
                kids.into_iter().filter(|(_, m)| is(*m, |m| m.downcast_ref::<InvertedResidual>().is_some()))
            {
                if out.is_empty() || (stride_of(m) > 1 && !out.last().expect("non-empty").is_empty()) {
                    out.push(vec![]);
                }
                out.last_mut().expect("non-empty").push(format!("features.{name}"));
            }
            return Ok(out);
        }
    }
    Ok(top.into_iter().filter(|(_, m)| holds_conv(*m)).map(|(n, _)| vec![n]).collect())
}

/// The module paths of the 1-based stages `stages` of `model`, in order:
///
/// - ResNets (CIFAR and torchvision; children `layer1`, `layer2`, ...): stage `k` is `layerk`;
/// - VGG (`features` with max-pools): stage `k` is the [`Conv2d`] children of `features` between
///   the `(k−1)`-th and the `k`-th max-pool (VGG-16's stage 4 is `features.24`, `.27`, `.30`);
/// - MobileNetV2 (`features` of inverted-residual blocks): stage `k` is the blocks that work at
///   the `k`-th resolution, a new stage starting at each strided block (the stem `features.0` and
///   the final 1x1 convolution belong to none): ImageNet's 5 stages `features.1`,
///   `features.2..=3`, `.4..=6`, `.7..=13`, `.14..=17`, the CIFAR variant's 4 stages
///   `features.1..=3`, `.4..=6`, `.7..=13`, `.14..=17`;
/// - a Vision Transformer: an error (its blocks are not stages: select them by path);
/// - otherwise (LeNet-5): stage `k` is the `k`-th top-level child that holds a convolution.
///
/// Types are seen through [`Around`](super::Around) wrappers. A model without stages (an MLP)
/// or a stage it does not have is an error naming the stages it has.
///
/// ```
/// use layers::surgery::{num_stages, stage_scopes};
/// use layers::models;
/// let vgg = models::build("vgg16-bn", 10, 3, 0).unwrap();
/// assert_eq!(stage_scopes(vgg.as_ref(), &[4]).unwrap(), ["features.24", "features.27", "features.30"]);
/// assert_eq!(num_stages(vgg.as_ref()), 5);
/// let resnet = models::build("resnet20", 10, 3, 0).unwrap();
/// assert_eq!(stage_scopes(resnet.as_ref(), &[3, 1]).unwrap(), ["layer3", "layer1"]);
/// assert!(stage_scopes(resnet.as_ref(), &[4]).unwrap_err().to_string().contains("1..=3"));
/// ```
pub fn stage_scopes(model: &dyn Module, stages_asked: &[usize]) -> Result<Vec<String>> {
    let available = stages(model)?;
    if available.is_empty() {
        let top: Vec<String> = model.children().into_iter().map(|(n, _)| n).collect();
        return Err(Error::invalid(
            "stage_scopes",
            format!(
                "this model has no convolutional stages (top-level modules {top:?}); stages {stages_asked:?} requested"
            ),
        ));
    }
    let mut out = vec![];
    for &k in stages_asked {
        let Some(scopes) = k.checked_sub(1).and_then(|i| available.get(i)) else {
            return Err(Error::invalid(
                "stage_scopes",
                format!("stage {k} requested; the model has stages 1..={}: {available:?}", available.len()),
            ));
        };
        out.extend(scopes.iter().cloned());
    }
    Ok(out)
}

/// How many stages [`stage_scopes`] finds in `model` (0 for a model without, an MLP or a ViT).
pub fn num_stages(model: &dyn Module) -> usize {
    stages(model).map_or(0, |s| s.len())
}
