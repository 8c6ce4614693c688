//! The CIFAR ResNets of He et al. 2016 (§4.2): ResNet-8/20/32/44/56/110, `6n + 2` layers in
//! three stages of 16, 32 and 64 channels on 32x32 inputs.
//!
//! Names and init follow the widely used reference implementation (Yerlan Idelbayev's
//! `pytorch_resnet_cifar10`): `conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.bn1`, ...,
//! `layer3.2.bn2`, `linear`; convolutions and the linear weight drawn from
//! `kaiming_normal_` (fan-in, gain √2), BatchNorm weight 1 and bias 0, the linear bias PyTorch's
//! default. With the paper's option A shortcuts (parameter-free) ResNet-20 has 269,722
//! parameters for 10 classes; option B (1x1 convolution + BN projections where the shape
//! changes) adds 2,752 and gives 272,474.

use autograd::{Error, Result, Tensor};

use super::common::{conv, conv_bn_relu};
use super::resnet::BasicBlock;
use super::{scale_channels, ModelOptions};
use crate::init::{default_bias, kaiming_normal, FanMode, Nonlinearity};
use crate::rng::with_seed;
use crate::{children, BatchNorm2d, Identity, Linear, Mode, Module, Sequential};

/// How a block's shortcut matches a change of resolution and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Option A of the paper: subsample by striding and zero-pad the new channels (no parameters).
    A,
    /// Option B: a strided 1x1 convolution and BatchNorm (`shortcut.0`, `shortcut.1`).
    B,
}

/// Option A's shortcut: `x[:, :, ::2, ::2]` with zero channels added before and after (the
/// reference pads `planes / 4` on each side; at other widths the odd channel goes after).
pub struct SubsamplePad {
    /// Zero channels added before the input's.
    pub before: usize,
    /// Zero channels added after the input's.
    pub after: usize,
}

impl SubsamplePad {
    /// The shortcut from `in_planes` to `planes >= in_planes` channels.
    pub fn new(in_planes: usize, planes: usize) -> SubsamplePad {
        let pad = planes.saturating_sub(in_planes);
        SubsamplePad { before: pad / 2, after: pad - pad / 2 }
    }
}

impl Module for SubsamplePad {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.ndim() != 4 {
            return Err(Error::invalid("SubsamplePad", format!("expected [N, C, H, W], got {:?}", x.shape())));
        }
        let (h, w) = (x.shape()[2], x.shape()[3]);
        x.slice(2, 0, h, 2)?.slice(3, 0, w, 2)?.pad(&[(0, 0), (self.before, self.after), (0, 0), (0, 0)], 0.0)
    }
}

fn block(in_planes: usize, planes: usize, stride: usize, kind: Shortcut) -> Result<BasicBlock> {
    let shortcut: Box<dyn Module> = if stride == 1 && in_planes == planes {
        Box::new(Identity)
    } else {
        match kind {
            Shortcut::A => Box::new(SubsamplePad::new(in_planes, planes)),
            Shortcut::B => Box::new(
                Sequential::new()
                    .push(conv(in_planes, planes, 1, stride, 1, false, FanMode::FanIn)?)
                    .push(BatchNorm2d::new(planes)),
            ),
        }
    };
    let conv3x3 = |i, o, s| -> Result<Box<dyn Module>> { Ok(Box::new(conv(i, o, 3, s, 1, false, FanMode::FanIn)?)) };
    let parts = [
        conv3x3(in_planes, planes, stride)?,
        Box::new(BatchNorm2d::new(planes)) as Box<dyn Module>,
        conv3x3(planes, planes, 1)?,
        Box::new(BatchNorm2d::new(planes)),
    ];
    Ok(BasicBlock::from_parts(parts, shortcut, "shortcut"))
}

/// A CIFAR ResNet of depth `6n + 2`, at width multiplier `w` with stages of
/// [`scale_channels`]`(16, w)`, `(32, w)` and `(64, w)` channels ([`CifarResNet::with_options`]).
///
/// ```
/// use layers::models::resnet_cifar::{CifarResNet, Shortcut};
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let net = CifarResNet::new(20, Shortcut::A, 10, 3, 0).unwrap();
/// assert_eq!(net.num_parameters(), 269_722);
/// let y = net.forward(&Tensor::zeros(&[2, 3, 32, 32]), Mode::Eval).unwrap();
/// assert_eq!(y.shape(), &[2, 10]);
/// ```
pub struct CifarResNet {
    /// 3x3 stem convolution to 16 channels.
    pub conv1: Box<dyn Module>,
    /// BatchNorm after the stem.
    pub bn1: Box<dyn Module>,
    /// `n` blocks at 16 channels.
    pub layer1: Box<dyn Module>,
    /// `n` blocks at 32 channels (the first strides by 2).
    pub layer2: Box<dyn Module>,
    /// `n` blocks at 64 channels (the first strides by 2).
    pub layer3: Box<dyn Module>,
    /// The classifier `Linear(64, num_classes)` after global average pooling.
    pub linear: Box<dyn Module>,
}

impl CifarResNet {
    /// A ResNet of `depth` layers (`6n + 2`: 8, 20, 32, 44, 56, 110, ...), built from `seed`.
    pub fn new(
        depth: usize,
        shortcut: Shortcut,
        num_classes: usize,
        in_channels: usize,
        seed: u64,
    ) -> Result<CifarResNet> {
        CifarResNet::with_options(depth, shortcut, &ModelOptions::new(num_classes, in_channels, seed))
    }

    /// A ResNet of `depth` layers built as `opts` says, its width included.
    pub fn with_options(depth: usize, shortcut: Shortcut, opts: &ModelOptions) -> Result<CifarResNet> {
        let &ModelOptions { num_classes, in_channels, seed, width } = opts;
        opts.check_width("CifarResNet::new")?;
        if depth < 8 || !(depth - 2).is_multiple_of(6) || num_classes == 0 || in_channels == 0 {
            return Err(Error::invalid(
                "CifarResNet::new",
                format!("depth {depth} is not 6n + 2 with n >= 1 (or no classes / input channels)"),
            ));
        }
        let n = (depth - 2) / 6;
        let [c1, c2, c3] = [16, 32, 64].map(|c| scale_channels(c, width));
        with_seed(seed, || {
            let conv1 = conv(in_channels, c1, 3, 1, 1, false, FanMode::FanIn)?;
            let mut in_planes = c1;
            let mut stage = |planes: usize, stride: usize| -> Result<Box<dyn Module>> {
                let mut seq = Sequential::new();
                for i in 0..n {
                    let s = if i == 0 { stride } else { 1 };
                    seq = seq.push(block(in_planes, planes, s, shortcut)?);
                    in_planes = planes;
                }
                Ok(Box::new(seq))
            };
            let (layer1, layer2, layer3) = (stage(c1, 1)?, stage(c2, 2)?, stage(c3, 2)?);
            let w = kaiming_normal(&[num_classes, c3], FanMode::FanIn, Nonlinearity::Relu)?;
            let linear = Linear::from_tensors(w, Some(default_bias(num_classes, c3)?));
            Ok(CifarResNet {
                conv1: Box::new(conv1),
                bn1: Box::new(BatchNorm2d::new(c1)),
                layer1,
                layer2,
                layer3,
                linear: Box::new(linear),
            })
        })
    }
}

impl Module for CifarResNet {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut out = conv_bn_relu(&*self.conv1, &*self.bn1, x, mode)?;
        for stage in [&self.layer1, &self.layer2, &self.layer3] {
            out = stage.forward(&out, mode)?;
        }
        self.linear.forward(&out.mean(&[2, 3], false)?, mode)
    }

    children!(conv1, bn1, layer1, layer2, layer3, linear);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleExt;

    #[test]
    fn parameter_counts_match_the_reference() {
        // Counts of the reference implementation (option A), 10 classes.
        for (depth, count) in
            [(8, 75_290), (20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018), (110, 1_727_962)]
        {
            assert_eq!(CifarResNet::new(depth, Shortcut::A, 10, 3, 0).unwrap().num_parameters(), count, "{depth}");
        }
        assert_eq!(CifarResNet::new(20, Shortcut::B, 10, 3, 0).unwrap().num_parameters(), 272_474);
        assert_eq!(CifarResNet::new(20, Shortcut::A, 100, 3, 0).unwrap().num_parameters(), 269_722 + 90 * 65);
        assert!(CifarResNet::new(21, Shortcut::A, 10, 3, 0).is_err());
        assert!(CifarResNet::new(2, Shortcut::A, 10, 3, 0).is_err());
    }

    #[test]
    fn names_follow_the_reference() {
        let net = CifarResNet::new(8, Shortcut::B, 10, 1, 0).unwrap();
        let names: Vec<String> = net.state_dict().into_iter().map(|(n, _)| n).collect();
        for n in ["conv1.weight", "bn1.running_var", "layer2.0.shortcut.0.weight", "layer3.0.shortcut.1.bias"] {
            assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
        }
        assert_eq!(names.iter().filter(|n| n.starts_with("linear.")).count(), 2);
        assert_eq!(net.get_module("layer1.0.conv1").unwrap().params()[0].1.leaf().shape(), &[16, 16, 3, 3]);
    }

    #[test]
    fn option_a_shortcut_subsamples_and_pads() {
        let x = Tensor::arange(0.0, 32.0, 1.0, autograd::DType::F32).unwrap().reshape_to(&[1, 2, 4, 4]).unwrap();
        let y = SubsamplePad::new(2, 4).forward(&x, Mode::Eval).unwrap();
        assert_eq!(y.shape(), &[1, 4, 2, 2]);
        let v = y.to_vec::<f32>().unwrap();
        assert_eq!(v, [0., 0., 0., 0., 0., 2., 8., 10., 16., 18., 24., 26., 0., 0., 0., 0.]);
        let odd = SubsamplePad::new(2, 5).forward(&x, Mode::Eval).unwrap();
        assert_eq!(odd.shape(), &[1, 5, 2, 2]);
        assert_eq!(odd.to_vec::<f32>().unwrap()[4..12], v[4..12], "one zero channel before, two after");
    }

    #[test]
    fn same_seed_same_model() {
        let a = CifarResNet::new(8, Shortcut::A, 10, 3, 4).unwrap();
        let b = CifarResNet::new(8, Shortcut::A, 10, 3, 4).unwrap();
        let c = CifarResNet::new(8, Shortcut::A, 10, 3, 5).unwrap();
        let v = |m: &CifarResNet| m.parameters()[0].leaf().to_vec::<f32>().unwrap();
        assert_eq!(v(&a), v(&b));
        assert_ne!(v(&a), v(&c));
        // Kaiming normal, fan-in: std sqrt(2 / 27) for the stem.
        let w = v(&a);
        let std = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
        assert!((std - (2.0f32 / 27.0).sqrt()).abs() < 0.05, "{std}");
    }
}
