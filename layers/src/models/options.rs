//! [`ModelOptions`]: what a registered model is built for (classes, input channels, seed, width
//! multiplier), and the channel-rounding rule of the width multiplier.

use autograd::{Error, Result};

/// How to build a registered model ([`super::build_with`]).
///
/// ```
/// use layers::models::{build_with, ModelOptions};
/// use layers::ModuleExt;
/// let half = build_with("resnet20", &ModelOptions::new(10, 3, 0).width(0.5)).unwrap();
/// assert_eq!(half.get_module("layer3.0.conv1").unwrap().params()[0].1.leaf().shape(), &[32, 16, 3, 3]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelOptions {
    /// Number of classes of the classifier.
    pub num_classes: usize,
    /// Channels of the input images.
    pub in_channels: usize,
    /// Seed of the initialization (the same seed gives the same weights).
    pub seed: u64,
    /// Width multiplier of the channels (1.0: the published model; see [`scale_channels`]).
    pub width: f64,
}

impl ModelOptions {
    /// `num_classes` classes, `in_channels` input channels, initialized from `seed`, width 1.0.
    pub fn new(num_classes: usize, in_channels: usize, seed: u64) -> ModelOptions {
        ModelOptions { num_classes, in_channels, seed, width: 1.0 }
    }

    /// With width multiplier `w`.
    pub fn width(self, w: f64) -> ModelOptions {
        ModelOptions { width: w, ..self }
    }

    /// Checks that the width is a positive finite number (an error of `op` naming `width`).
    pub(crate) fn check_width(&self, op: &'static str) -> Result<()> {
        if self.width > 0.0 && self.width.is_finite() {
            Ok(())
        } else {
            Err(Error::invalid(op, format!("width {} must be a positive finite number", self.width)))
        }
    }
}

/// The channel count of a layer of `base` channels at width multiplier `width`:
/// `round(base · width)`, at least 1. The ResNets and VGGs scale every convolution this way
/// (MobileNetV2 keeps torchvision's multiples of 8, ViT rounds to a multiple of its heads).
///
/// ```
/// use layers::models::scale_channels;
/// assert_eq!(scale_channels(64, 0.25), 16);
/// assert_eq!(scale_channels(16, 0.1), 2); // 1.6 rounds to 2
/// assert_eq!(scale_channels(16, 0.01), 1);
/// assert_eq!(scale_channels(64, 1.0), 64);
/// ```
pub fn scale_channels(base: usize, width: f64) -> usize {
    ((base as f64 * width).round() as usize).max(1)
}
