//! VGG-11/16/19 with BatchNorm (Simonyan & Zisserman 2015) for 32x32 inputs.
//!
//! `features` is torchvision's `vgg*_bn` feature extractor, index for index: 3x3 convolutions
//! (with bias) followed by `BatchNorm2d` and `ReLU`, and 2x2 max-pools (`features.0.weight`,
//! `features.1.running_mean`, ...). Five max-pools bring a 32x32 image to 1x1x512.
//!
//! The classifier is the CIFAR one of the common reference implementations (kuangliu's
//! `pytorch-cifar`): a single `classifier = Linear(512, num_classes)` on the flattened 1x1 map,
//! instead of torchvision's three 4096-wide layers for 7x7 maps, which would hold ~90% of the
//! parameters for 32x32 inputs. VGG-16-BN then has 14,728,266 parameters for 10 classes.
//! Init as torchvision: convolutions Kaiming normal (fan-out, ReLU gain) with zero bias,
//! BatchNorm 1 / 0, linear weight `N(0, 0.01²)` with zero bias.

use autograd::{Error, Pool2dParams, Result, Tensor};

use super::common::conv;
use super::{scale_channels, ModelOptions};
use crate::init::{normal, zeros, FanMode};
use crate::rng::with_seed;
use crate::{children, BatchNorm2d, Linear, MaxPool2d, Mode, Module, ReLU, Sequential};

/// Channel widths, `0` marking a max-pool (torchvision's configurations A, D and E).
fn config(depth: usize) -> Option<&'static [usize]> {
    Some(match depth {
        11 => &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        13 => &[64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        16 => &[64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
        19 => &[64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0],
        _ => return None,
    })
}

/// VGG-BN for 32x32 inputs.
///
/// ```
/// use layers::models::vgg::Vgg;
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let net = Vgg::new(11, 10, 3, 0).unwrap();
/// assert_eq!(net.forward(&Tensor::zeros(&[1, 3, 32, 32]), Mode::Eval).unwrap().shape(), &[1, 10]);
/// ```
pub struct Vgg {
    /// Convolutions, BatchNorms, ReLUs and max-pools.
    pub features: Box<dyn Module>,
    /// `Linear(512, num_classes)` (512 scaled by the width multiplier).
    pub classifier: Box<dyn Module>,
}

impl Vgg {
    /// VGG-`depth`-BN (11, 13, 16 or 19), built from `seed`.
    pub fn new(depth: usize, num_classes: usize, in_channels: usize, seed: u64) -> Result<Vgg> {
        Vgg::with_options(depth, &ModelOptions::new(num_classes, in_channels, seed))
    }

    /// VGG-`depth`-BN built as `opts` says: at width `w` every convolution of `c` channels has
    /// [`scale_channels`]`(c, w)`, and the classifier reads the last one's.
    pub fn with_options(depth: usize, opts: &ModelOptions) -> Result<Vgg> {
        let &ModelOptions { num_classes, in_channels, seed, width } = opts;
        opts.check_width("Vgg::new")?;
        let Some(cfg) = config(depth) else {
            return Err(Error::invalid("Vgg::new", format!("depth {depth} is not one of 11, 13, 16, 19")));
        };
        if num_classes == 0 || in_channels == 0 {
            return Err(Error::invalid("Vgg::new", "needs at least one class and one input channel"));
        }
        with_seed(seed, || {
            let mut features = Sequential::new();
            let mut c = in_channels;
            for &v in cfg {
                features = if v == 0 {
                    features.push(MaxPool2d(Pool2dParams { stride: (2, 2), ..Pool2dParams::square(2) }))
                } else {
                    let v = scale_channels(v, width);
                    let layer = conv(c, v, 3, 1, 1, true, FanMode::FanOut)?;
                    c = v;
                    features.push(layer).push(BatchNorm2d::new(v)).push(ReLU)
                };
            }
            let fc = Linear::from_tensors(normal(&[num_classes, c], 0.0, 0.01)?, Some(zeros(&[num_classes])));
            Ok(Vgg { features: Box::new(features), classifier: Box::new(fc) })
        })
    }
}

impl Module for Vgg {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let f = self.features.forward(x, mode)?;
        if f.ndim() != 4 || f.shape()[2] * f.shape()[3] != 1 {
            return Err(Error::invalid(
                "Vgg",
                format!(
                    "expects 32x32 inputs (features reach 1x1); input {:?} gives features {:?}",
                    x.shape(),
                    f.shape()
                ),
            ));
        }
        self.classifier.forward(&f.flatten(1, 3)?, mode)
    }

    children!(features, classifier);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleExt;

    #[test]
    fn indices_match_torchvision_features() {
        let net = Vgg::new(16, 10, 3, 0).unwrap();
        let sd = net.state_dict();
        let shape = |name: &str| sd.iter().find(|(n, _)| n == name).map(|(_, t)| t.shape().to_vec());
        // torchvision vgg16_bn: features.0 conv, .1 bn, .2 relu, .3 conv, .6 pool, .7 conv, ...
        assert_eq!(shape("features.0.weight").unwrap(), [64, 3, 3, 3]);
        assert_eq!(shape("features.1.running_var").unwrap(), [64]);
        assert_eq!(shape("features.7.weight").unwrap(), [128, 64, 3, 3]);
        assert_eq!(shape("features.40.weight").unwrap(), [512, 512, 3, 3]);
        assert_eq!(shape("features.41.bias").unwrap(), [512]);
        assert_eq!(shape("classifier.weight").unwrap(), [10, 512]);
        let err = net.forward(&Tensor::zeros(&[1, 3, 64, 64]), Mode::Eval).err().unwrap();
        assert!(err.to_string().contains("32x32"), "{err}");
        assert!(Vgg::new(12, 10, 3, 0).is_err());
    }
}
