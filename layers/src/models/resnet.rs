//! torchvision's ResNet-18/34/50/101/152 (He et al. 2016, ImageNet), with the ImageNet stem
//! (7x7 stride-2 convolution and 3x3 max-pool) or a CIFAR stem (3x3 stride-1 convolution, no
//! max-pool) for 32x32 inputs.
//!
//! Names are torchvision's, so its checkpoints load without renaming: `conv1`, `bn1`,
//! `layer1.0.conv1`, `layer1.0.bn1`, ..., `layer2.0.downsample.0` (1x1 convolution) and
//! `layer2.0.downsample.1` (BatchNorm), `fc`. Bottlenecks put the stride on the 3x3 convolution
//! (ResNet v1.5, as torchvision). Init as torchvision: convolutions Kaiming normal (fan-out,
//! ReLU gain), BatchNorm weight 1 and bias 0, `fc` PyTorch's default.

use autograd::{Error, Pool2dParams, Result, Tensor};

use super::common::{conv, conv_bn_add_relu, conv_bn_relu};
use super::{scale_channels, ModelOptions};
use crate::init::FanMode;
use crate::rng::with_seed;
use crate::{children, AdaptiveAvgPool2d, BatchNorm2d, Identity, Linear, MaxPool2d, Mode, Module, Sequential};

/// The first layers of a ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stem {
    /// 7x7 convolution with stride 2 and a 3x3 stride-2 max-pool (224x224 inputs).
    ImageNet,
    /// 3x3 convolution with stride 1 and no max-pool (32x32 inputs).
    Cifar,
}

fn conv_fo(in_c: usize, out_c: usize, k: usize, stride: usize) -> Result<Box<dyn Module>> {
    Ok(Box::new(conv(in_c, out_c, k, stride, 1, false, FanMode::FanOut)?))
}

fn bn(c: usize) -> Box<dyn Module> {
    Box::new(BatchNorm2d::new(c))
}

fn downsample(in_c: usize, out_c: usize, stride: usize) -> Result<Box<dyn Module>> {
    if stride == 1 && in_c == out_c {
        return Ok(Box::new(Identity));
    }
    Ok(Box::new(Sequential::new().push_boxed(conv_fo(in_c, out_c, 1, stride)?).push_boxed(bn(out_c))))
}

/// The two-convolution residual block of ResNet-18/34 (torchvision's `BasicBlock`) and of the
/// CIFAR ResNets: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`. The shortcut child is
/// named `downsample` in torchvision and `shortcut` in the CIFAR reference.
pub struct BasicBlock {
    /// 3x3 convolution (carries the stride).
    pub conv1: Box<dyn Module>,
    /// BatchNorm after `conv1`.
    pub bn1: Box<dyn Module>,
    /// 3x3 convolution.
    pub conv2: Box<dyn Module>,
    /// BatchNorm after `conv2`.
    pub bn2: Box<dyn Module>,
    /// `Identity`, a projection `Sequential(conv1x1, bn)` or a parameter-free shortcut.
    pub shortcut: Box<dyn Module>,
    shortcut_name: &'static str,
}

impl BasicBlock {
    /// Output channels per `planes`.
    pub const EXPANSION: usize = 1;

    fn new(in_c: usize, planes: usize, stride: usize) -> Result<BasicBlock> {
        Ok(BasicBlock::from_parts(
            [conv_fo(in_c, planes, 3, stride)?, bn(planes), conv_fo(planes, planes, 3, 1)?, bn(planes)],
            downsample(in_c, planes, stride)?,
            "downsample",
        ))
    }

    /// A block from `[conv1, bn1, conv2, bn2]` and a shortcut child called `shortcut_name`.
    pub fn from_parts(
        [conv1, bn1, conv2, bn2]: [Box<dyn Module>; 4],
        shortcut: Box<dyn Module>,
        shortcut_name: &'static str,
    ) -> BasicBlock {
        BasicBlock { conv1, bn1, conv2, bn2, shortcut, shortcut_name }
    }
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let out = conv_bn_relu(&*self.conv1, &*self.bn1, x, mode)?;
        conv_bn_add_relu(&*self.conv2, &*self.bn2, &out, &self.shortcut.forward(x, mode)?, mode)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let names = ["conv1", "bn1", "conv2", "bn2", self.shortcut_name];
        let mods: [&dyn Module; 5] = [&*self.conv1, &*self.bn1, &*self.conv2, &*self.bn2, &*self.shortcut];
        names.into_iter().map(String::from).zip(mods).collect()
    }

    fn children_mut(&mut self) -> Vec<(String, &mut Box<dyn Module>)> {
        let names = ["conv1", "bn1", "conv2", "bn2", self.shortcut_name];
        let mods = [&mut self.conv1, &mut self.bn1, &mut self.conv2, &mut self.bn2, &mut self.shortcut];
        names.into_iter().map(String::from).zip(mods).collect()
    }
}

/// torchvision's `Bottleneck` (ResNet-50/101/152): 1x1 reduce, 3x3 (strided), 1x1 expand by 4.
pub struct Bottleneck {
    /// 1x1 convolution to `planes`.
    pub conv1: Box<dyn Module>,
    /// BatchNorm after `conv1`.
    pub bn1: Box<dyn Module>,
    /// 3x3 convolution (carries the stride).
    pub conv2: Box<dyn Module>,
    /// BatchNorm after `conv2`.
    pub bn2: Box<dyn Module>,
    /// 1x1 convolution to `4 · planes`.
    pub conv3: Box<dyn Module>,
    /// BatchNorm after `conv3`.
    pub bn3: Box<dyn Module>,
    /// `Identity` or `Sequential(conv1x1, bn)` where the shape changes.
    pub downsample: Box<dyn Module>,
}

impl Bottleneck {
    /// Output channels per `planes`.
    pub const EXPANSION: usize = 4;

    fn new(in_c: usize, planes: usize, stride: usize) -> Result<Bottleneck> {
        let out = planes * Self::EXPANSION;
        Ok(Bottleneck {
            conv1: conv_fo(in_c, planes, 1, 1)?,
            bn1: bn(planes),
            conv2: conv_fo(planes, planes, 3, stride)?,
            bn2: bn(planes),
            conv3: conv_fo(planes, out, 1, 1)?,
            bn3: bn(out),
            downsample: downsample(in_c, out, stride)?,
        })
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let out = conv_bn_relu(&*self.conv1, &*self.bn1, x, mode)?;
        let out = conv_bn_relu(&*self.conv2, &*self.bn2, &out, mode)?;
        conv_bn_add_relu(&*self.conv3, &*self.bn3, &out, &self.downsample.forward(x, mode)?, mode)
    }

    children!(conv1, bn1, conv2, bn2, conv3, bn3, downsample);
}

/// A torchvision ResNet.
///
/// ```
/// use layers::models::resnet::{ResNet, Stem};
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let net = ResNet::new(18, Stem::Cifar, 10, 3, 0).unwrap();
/// assert_eq!(net.num_parameters(), 11_173_962);
/// assert_eq!(net.forward(&Tensor::zeros(&[1, 3, 32, 32]), Mode::Eval).unwrap().shape(), &[1, 10]);
/// ```
pub struct ResNet {
    /// Stem convolution to 64 channels.
    pub conv1: Box<dyn Module>,
    /// BatchNorm after the stem.
    pub bn1: Box<dyn Module>,
    /// 3x3 stride-2 max-pool (ImageNet stem) or `Identity` (CIFAR stem).
    pub maxpool: Box<dyn Module>,
    /// Stage at 64 · expansion channels.
    pub layer1: Box<dyn Module>,
    /// Stage at 128 · expansion channels (stride 2).
    pub layer2: Box<dyn Module>,
    /// Stage at 256 · expansion channels (stride 2).
    pub layer3: Box<dyn Module>,
    /// Stage at 512 · expansion channels (stride 2).
    pub layer4: Box<dyn Module>,
    /// Global average pooling.
    pub avgpool: Box<dyn Module>,
    /// The classifier.
    pub fc: Box<dyn Module>,
}

impl ResNet {
    /// ResNet-`depth` (18, 34, 50, 101 or 152) with the given stem, built from `seed`.
    pub fn new(depth: usize, stem: Stem, num_classes: usize, in_channels: usize, seed: u64) -> Result<ResNet> {
        ResNet::with_options(depth, stem, &ModelOptions::new(num_classes, in_channels, seed))
    }

    /// ResNet-`depth` built as `opts` says: at width `w` the stem and the stages have
    /// [`scale_channels`]`(64, w)`, `(128, w)`, `(256, w)` and `(512, w)` planes (times the
    /// bottleneck's expansion of 4 at their outputs).
    pub fn with_options(depth: usize, stem: Stem, opts: &ModelOptions) -> Result<ResNet> {
        let (bottleneck, blocks) = ResNet::layout(depth)?;
        ResNet::with_layout(bottleneck, blocks, stem, opts)
    }

    /// `(bottleneck, blocks per stage)` of torchvision's ResNet-`depth` (18, 34, 50, 101, 152).
    pub fn layout(depth: usize) -> Result<(bool, [usize; 4])> {
        Ok(match depth {
            18 => (false, [2, 2, 2, 2]),
            34 => (false, [3, 4, 6, 3]),
            50 => (true, [3, 4, 6, 3]),
            101 => (true, [3, 4, 23, 3]),
            152 => (true, [3, 8, 36, 3]),
            _ => {
                return Err(Error::invalid("ResNet::new", format!("depth {depth} is not one of 18, 34, 50, 101, 152")))
            }
        })
    }

    /// A ResNet of `blocks[i]` blocks in stage `i + 1`, Bottlenecks if `bottleneck` else
    /// BasicBlocks (the layouts of deeper or shallower variants, such as the `[2, 2, 3, 4]` of a
    /// ResNet-26), otherwise as [`ResNet::with_options`].
    ///
    /// ```
    /// use layers::models::{resnet::{ResNet, Stem}, ModelOptions};
    /// use layers::ModuleExt;
    /// let r50 = ResNet::with_layout(true, [3, 4, 6, 3], Stem::ImageNet, &ModelOptions::new(1000, 3, 0)).unwrap();
    /// assert_eq!(r50.num_parameters(), 25_557_032);
    /// ```
    pub fn with_layout(bottleneck: bool, blocks: [usize; 4], stem: Stem, opts: &ModelOptions) -> Result<ResNet> {
        let &ModelOptions { num_classes, in_channels, seed, width } = opts;
        opts.check_width("ResNet::new")?;
        if num_classes == 0 || in_channels == 0 {
            return Err(Error::invalid("ResNet::new", "needs at least one class and one input channel"));
        }
        if blocks.contains(&0) {
            return Err(Error::invalid("ResNet::new", format!("every stage needs a block, got {blocks:?}")));
        }
        let expansion = if bottleneck { Bottleneck::EXPANSION } else { BasicBlock::EXPANSION };
        let [c1, c2, c3, c4] = [64, 128, 256, 512].map(|c| scale_channels(c, width));
        with_seed(seed, || {
            let (conv1, maxpool): (Box<dyn Module>, Box<dyn Module>) = match stem {
                Stem::ImageNet => (
                    conv_fo(in_channels, c1, 7, 2)?,
                    Box::new(MaxPool2d(Pool2dParams { stride: (2, 2), padding: (1, 1), ..Pool2dParams::square(3) })),
                ),
                Stem::Cifar => (conv_fo(in_channels, c1, 3, 1)?, Box::new(Identity)),
            };
            let mut in_c = c1;
            let mut stage = |planes: usize, n: usize, stride: usize| -> Result<Box<dyn Module>> {
                let mut seq = Sequential::new();
                for i in 0..n {
                    let s = if i == 0 { stride } else { 1 };
                    seq = if bottleneck {
                        seq.push(Bottleneck::new(in_c, planes, s)?)
                    } else {
                        seq.push(BasicBlock::new(in_c, planes, s)?)
                    };
                    in_c = planes * expansion;
                }
                Ok(Box::new(seq))
            };
            let layer1 = stage(c1, blocks[0], 1)?;
            let layer2 = stage(c2, blocks[1], 2)?;
            let layer3 = stage(c3, blocks[2], 2)?;
            let layer4 = stage(c4, blocks[3], 2)?;
            Ok(ResNet {
                conv1,
                bn1: bn(c1),
                maxpool,
                layer1,
                layer2,
                layer3,
                layer4,
                avgpool: Box::new(AdaptiveAvgPool2d((1, 1))),
                fc: Box::new(Linear::new(c4 * expansion, num_classes, true)),
            })
        })
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut out = conv_bn_relu(&*self.conv1, &*self.bn1, x, mode)?;
        out = self.maxpool.forward(&out, mode)?;
        for stage in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            out = stage.forward(&out, mode)?;
        }
        let pooled = self.avgpool.forward(&out, mode)?;
        self.fc.forward(&pooled.flatten(1, 3)?, mode)
    }

    children!(conv1, bn1, maxpool, layer1, layer2, layer3, layer4, avgpool, fc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleExt;

    #[test]
    fn small_stages_have_the_torchvision_names_and_shapes() {
        let net = ResNet::new(50, Stem::ImageNet, 1000, 3, 0).unwrap();
        let sd = net.state_dict();
        let shape = |name: &str| sd.iter().find(|(n, _)| n == name).map(|(_, t)| t.shape().to_vec());
        assert_eq!(shape("conv1.weight").unwrap(), [64, 3, 7, 7]);
        assert_eq!(shape("layer1.0.downsample.0.weight").unwrap(), [256, 64, 1, 1]);
        assert_eq!(shape("layer2.0.conv2.weight").unwrap(), [128, 128, 3, 3]);
        assert_eq!(shape("layer4.2.bn3.running_mean").unwrap(), [2048]);
        assert_eq!(shape("fc.weight").unwrap(), [1000, 2048]);
        assert!(shape("layer1.1.downsample.0.weight").is_none());
        assert!(ResNet::new(20, Stem::ImageNet, 10, 3, 0).is_err());
    }

    #[test]
    fn convolutions_use_fan_out_kaiming_normal() {
        let net = ResNet::new(18, Stem::Cifar, 10, 3, 1).unwrap();
        let w = net.get_module("layer3.1.conv2").unwrap().params()[0].1.leaf().to_f64_vec().unwrap();
        let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
        let expect = (2.0f64 / (256.0 * 9.0)).sqrt();
        assert!((std - expect).abs() / expect < 0.01, "{std} vs {expect}");
    }
}
