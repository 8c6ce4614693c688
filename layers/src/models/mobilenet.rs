//! torchvision's MobileNetV2 (Sandler et al. 2018) with a width multiplier, and a CIFAR variant.
//!
//! Names are torchvision's: `features.0.0` (stem convolution), `features.0.1` (its BatchNorm),
//! `features.1.conv.0.0` (first depthwise convolution), `features.2.conv.0.0` (an expansion),
//! ..., `features.18.0` (the final 1x1 convolution to 1280 channels), `classifier.1` (the
//! linear layer after `classifier.0`, a dropout of 0.2). Channel counts are rounded to multiples
//! of 8 as torchvision's `_make_divisible`. Init as torchvision: convolutions Kaiming normal
//! (fan-out, ReLU gain), BatchNorm 1 / 0, linear `N(0, 0.01²)` with zero bias.
//!
//! The CIFAR variant (kuangliu's `pytorch-cifar`) keeps every parameter but strides less for
//! 32x32 inputs: a stride-1 stem and stride 1 in the second stage (24 channels), so the last
//! feature map is 4x4 instead of 1x1.

use autograd::{Error, Result, Tensor};

use super::common::{conv, conv_bn_act};
use crate::init::{normal, zeros, FanMode};
use crate::rng::with_seed;
use crate::{children, Dropout, Linear, Mode, Module, ReLU6, Sequential};

/// torchvision's `_make_divisible`: the nearest multiple of `divisor` (at least `divisor`), not
/// going below 90% of `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// torchvision's `InvertedResidual`: optional 1x1 expansion, 3x3 depthwise, 1x1 linear
/// projection (`conv.0`, `conv.1`, `conv.2`, `conv.3` with an expansion; `conv.0`, `conv.1`,
/// `conv.2` without), with a residual connection when stride is 1 and the width is kept.
///
/// ```
/// use layers::models::mobilenet::InvertedResidual;
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let block = InvertedResidual::new(16, 24, 2, 6).unwrap();
/// assert_eq!(block.forward(&Tensor::zeros(&[1, 16, 8, 8]), Mode::Eval).unwrap().shape(), &[1, 24, 4, 4]);
/// assert_eq!(block.named_parameters()[0].0, "conv.0.0.weight");
/// ```
pub struct InvertedResidual {
    /// The convolutions.
    pub conv: Box<dyn Module>,
    /// Whether the input is added to the output.
    pub use_res_connect: bool,
}

impl InvertedResidual {
    /// A block from `inp` to `oup` channels with the given stride (1 or 2) and expansion ratio.
    pub fn new(inp: usize, oup: usize, stride: usize, expand_ratio: usize) -> Result<InvertedResidual> {
        if !(stride == 1 || stride == 2) || expand_ratio == 0 || inp == 0 || oup == 0 {
            return Err(Error::invalid(
                "InvertedResidual::new",
                format!("stride {stride} must be 1 or 2; channels {inp} -> {oup}, expansion {expand_ratio}"),
            ));
        }
        let hidden = inp * expand_ratio;
        let mut seq = Sequential::new();
        if expand_ratio != 1 {
            seq = seq.push(conv_bn_act(inp, hidden, 1, 1, 1, ReLU6)?);
        }
        let project = conv(hidden, oup, 1, 1, 1, false, FanMode::FanOut)?;
        seq = seq
            .push(conv_bn_act(hidden, hidden, 3, stride, hidden, ReLU6)?)
            .push(project)
            .push(crate::BatchNorm2d::new(oup));
        Ok(InvertedResidual { conv: Box::new(seq), use_res_connect: stride == 1 && inp == oup })
    }
}

impl Module for InvertedResidual {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.conv.forward(x, mode)?;
        if self.use_res_connect {
            x.add(&y)
        } else {
            Ok(y)
        }
    }

    children!(conv);
}

/// MobileNetV2.
///
/// ```
/// use layers::models::mobilenet::MobileNetV2;
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let net = MobileNetV2::new(0.5, true, 10, 3, 0).unwrap();
/// assert_eq!(net.forward(&Tensor::zeros(&[2, 3, 32, 32]), Mode::Eval).unwrap().shape(), &[2, 10]);
/// ```
pub struct MobileNetV2 {
    /// Stem, 17 inverted residual blocks, final 1x1 convolution.
    pub features: Box<dyn Module>,
    /// `Sequential(Dropout(0.2), Linear(last_channel, num_classes))`.
    pub classifier: Box<dyn Module>,
}

impl MobileNetV2 {
    /// MobileNetV2 with width multiplier `width` (1.0 is the paper's), the CIFAR strides if
    /// `cifar`, built from `seed`.
    pub fn new(width: f64, cifar: bool, num_classes: usize, in_channels: usize, seed: u64) -> Result<MobileNetV2> {
        MobileNetV2::with_channels(Self::CHANNELS, width, cifar, num_classes, in_channels, seed)
    }

    /// The channel column `c` of the paper's Table 2.
    pub const CHANNELS: [usize; 7] = [16, 24, 32, 64, 96, 160, 320];

    /// [`MobileNetV2::new`] with another channel column (one entry per row of Table 2; the
    /// expansions, repeats and strides stay the paper's).
    pub fn with_channels(
        channels: [usize; 7],
        width: f64,
        cifar: bool,
        num_classes: usize,
        in_channels: usize,
        seed: u64,
    ) -> Result<MobileNetV2> {
        if !(width > 0.0 && width.is_finite()) || num_classes == 0 || in_channels == 0 || channels.contains(&0) {
            return Err(Error::invalid(
                "MobileNetV2::new",
                format!("width {width} must be positive; {num_classes} classes, {in_channels} input channels; channels {channels:?} all positive"),
            ));
        }
        // (expansion t, channels c, repeats n, first stride s) of the paper's Table 2.
        let second_stride = if cifar { 1 } else { 2 };
        let c = channels;
        let setting = [
            (1, c[0], 1, 1),
            (6, c[1], 2, second_stride),
            (6, c[2], 3, 2),
            (6, c[3], 4, 2),
            (6, c[4], 3, 1),
            (6, c[5], 3, 2),
            (6, c[6], 1, 1),
        ];
        with_seed(seed, || {
            let mut c = make_divisible(32.0 * width, 8);
            let last = make_divisible(1280.0 * width.max(1.0), 8);
            let mut features =
                Sequential::new().push(conv_bn_act(in_channels, c, 3, if cifar { 1 } else { 2 }, 1, ReLU6)?);
            for (t, ch, n, s) in setting {
                let out = make_divisible(ch as f64 * width, 8);
                for i in 0..n {
                    features = features.push(InvertedResidual::new(c, out, if i == 0 { s } else { 1 }, t)?);
                    c = out;
                }
            }
            features = features.push(conv_bn_act(c, last, 1, 1, 1, ReLU6)?);
            let fc = Linear::from_tensors(normal(&[num_classes, last], 0.0, 0.01)?, Some(zeros(&[num_classes])));
            let classifier = Sequential::new().push(Dropout::new(0.2)?).push(fc);
            Ok(MobileNetV2 { features: Box::new(features), classifier: Box::new(classifier) })
        })
    }
}

impl Module for MobileNetV2 {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let f = self.features.forward(x, mode)?;
        self.classifier.forward(&f.mean(&[2, 3], false)?, mode)
    }

    children!(features, classifier);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleExt;

    #[test]
    fn make_divisible_matches_torchvision() {
        // torchvision.models._utils._make_divisible(v, 8) for these v.
        let cases = [(16.0, 16), (18.0, 24), (8.0, 8), (4.0, 8), (44.8, 48), (1792.0, 1792), (12.0, 16)];
        for (v, expect) in cases {
            assert_eq!(make_divisible(v, 8), expect, "{v}");
        }
    }

    #[test]
    fn width_multipliers_match_torchvision_counts() {
        // torchvision.models.mobilenet_v2(width_mult=w): parameter counts at 1000 classes.
        for (w, count) in [(0.5, 1_968_680), (0.75, 2_636_424), (1.4, 6_108_776)] {
            assert_eq!(MobileNetV2::new(w, false, 1000, 3, 0).unwrap().num_parameters(), count, "{w}");
        }
        assert!(MobileNetV2::new(0.0, false, 10, 3, 0).is_err());
    }

    #[test]
    fn cifar_variant_keeps_a_4x4_map_and_residuals_are_where_torchvision_puts_them() {
        let net = MobileNetV2::new(1.0, true, 10, 3, 0).unwrap();
        let f = net.features.forward(&Tensor::zeros(&[1, 3, 32, 32]), Mode::Eval).unwrap();
        assert_eq!(f.shape(), &[1, 1280, 4, 4]);
        let imagenet = MobileNetV2::new(1.0, false, 10, 3, 0).unwrap();
        let f = imagenet.features.forward(&Tensor::zeros(&[1, 3, 64, 64]), Mode::Eval).unwrap();
        assert_eq!(f.shape(), &[1, 1280, 2, 2]);
        let residual: Vec<usize> = (1..18)
            .filter(|i| {
                let m = imagenet.get_module(&format!("features.{i}")).unwrap();
                m.downcast_ref::<InvertedResidual>().unwrap().use_res_connect
            })
            .collect();
        assert_eq!(residual, [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]);
        assert!(InvertedResidual::new(8, 8, 3, 6).is_err());
    }
}
