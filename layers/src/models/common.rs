//! Building blocks shared by the model families: convolutions with the Kaiming-normal init the
//! reference implementations use, and the `conv -> BN -> activation` triple.

use autograd::{Error, Result, Tensor};

use crate::init::{kaiming_normal, zeros, FanMode, Nonlinearity};
use crate::{BatchNorm2d, Conv2d, Conv2dOptions, Mode, Module, Sequential};

/// A square convolution with "same" padding `(k - 1) / 2`, weight drawn from Kaiming normal
/// (gain √2, the given fan) and, if any, a zero bias: torchvision's init with `FanOut`, the CIFAR
/// ResNet reference's (`kaiming_normal_` defaults) with `FanIn`.
pub(crate) fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    bias: bool,
    fan: FanMode,
) -> Result<Conv2d> {
    if groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) || kernel == 0 {
        return Err(Error::invalid(
            "models::conv",
            format!("in {in_channels} and out {out_channels} channels must divide by groups {groups}; kernel {kernel}"),
        ));
    }
    let opts = Conv2dOptions::default().stride(stride).padding((kernel - 1) / 2).groups(groups);
    let weight = kaiming_normal(&[out_channels, in_channels / groups, kernel, kernel], fan, Nonlinearity::Relu)?;
    Ok(Conv2d::from_tensors(weight, bias.then(|| zeros(&[out_channels])), opts.params))
}

/// torchvision's `Conv2dNormActivation`: `Sequential(conv, BatchNorm2d, activation)` with a
/// bias-free convolution (names `0.weight`, `1.weight`, `1.running_mean`, ...).
pub(crate) fn conv_bn_act(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    act: impl Module,
) -> Result<Sequential> {
    Ok(Sequential::new()
        .push(conv(in_channels, out_channels, kernel, stride, groups, false, FanMode::FanOut)?)
        .push(BatchNorm2d::new(out_channels))
        .push(act))
}

/// `relu(bn(conv(x)))`, the ReLU fused into the norm where it can be
/// ([`Module::forward_relu`]).
pub(crate) fn conv_bn_relu(conv: &dyn Module, bn: &dyn Module, x: &Tensor, mode: Mode) -> Result<Tensor> {
    bn.forward_relu(&conv.forward(x, mode)?, mode)
}

/// `relu(bn(conv(x)) + residual)`, the add and the ReLU fused into the norm where they can be
/// ([`Module::forward_add_relu`]).
pub(crate) fn conv_bn_add_relu(
    conv: &dyn Module,
    bn: &dyn Module,
    x: &Tensor,
    residual: &Tensor,
    mode: Mode,
) -> Result<Tensor> {
    bn.forward_add_relu(&conv.forward(x, mode)?, residual, mode)
}
