//! `Conv2d`: 2-D convolution over NCHW inputs with stride, padding, dilation, groups and bias.

use autograd::{Conv2dParams, Error, Result, Tensor};

use crate::init::{default_bias, kaiming_uniform, FanMode, Nonlinearity};
use crate::{mac, Mode, Module, Param};

/// Options of a [`Conv2d`] beyond its channels and kernel size (PyTorch's defaults: stride 1,
/// no padding, no dilation, one group, with bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Stride, dilation, padding and groups.
    pub params: Conv2dParams,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions { params: Conv2dParams::default(), bias: true }
    }
}

impl Conv2dOptions {
    /// Same stride along both axes.
    pub fn stride(mut self, s: usize) -> Self {
        self.params.stride = (s, s);
        self
    }
    /// Same zero padding along both axes.
    pub fn padding(mut self, p: usize) -> Self {
        self.params.padding = (p, p);
        self
    }
    /// Same dilation along both axes.
    pub fn dilation(mut self, d: usize) -> Self {
        self.params.dilation = (d, d);
        self
    }
    /// Number of groups (`groups == in == out` is depthwise).
    pub fn groups(mut self, g: usize) -> Self {
        self.params.groups = g;
        self
    }
    /// With or without bias.
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
}

/// A 2-D convolution (`torch.nn.Conv2d`): weight `[out, in / groups, kH, kW]`, optional bias
/// `[out]`, PyTorch's default initialization.
///
/// ```
/// use layers::{Conv2d, Conv2dOptions, Mode, Module};
/// use autograd::Tensor;
/// let conv = Conv2d::new(3, 8, 3, Conv2dOptions::default().stride(2).padding(1)).unwrap();
/// let y = conv.forward(&Tensor::ones(&[2, 3, 9, 9]), Mode::Eval).unwrap();
/// assert_eq!(y.shape(), &[2, 8, 5, 5]);
/// ```
pub struct Conv2d {
    /// Weight `[out, in / groups, kH, kW]`.
    pub weight: Param,
    /// Bias `[out]`, if any.
    pub bias: Option<Param>,
    /// Stride, padding, dilation, groups.
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A square-kernel convolution with PyTorch's default init.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, opts: Conv2dOptions) -> Result<Conv2d> {
        let g = opts.params.groups;
        if g == 0 || !in_channels.is_multiple_of(g) || !out_channels.is_multiple_of(g) || kernel == 0 {
            return Err(Error::invalid(
                "Conv2d::new",
                format!("in {in_channels} and out {out_channels} channels must divide by groups {g}; kernel {kernel}"),
            ));
        }
        let shape = [out_channels, in_channels / g, kernel, kernel];
        let w = kaiming_uniform(&shape, FanMode::FanIn, Nonlinearity::LeakyRelu(5f64.sqrt()))?;
        let b = if opts.bias { Some(default_bias(out_channels, shape[1] * kernel * kernel)?) } else { None };
        Ok(Conv2d::from_tensors(w, b, opts.params))
    }

    /// A convolution with the given weight, bias and geometry.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>, params: Conv2dParams) -> Conv2d {
        Conv2d { weight: Param::new(weight), bias: bias.map(Param::new), params }
    }

    /// `[out, in / groups, kH, kW]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        self.weight.leaf().shape().to_vec()
    }

    /// The kernel's `(height, width)`.
    ///
    /// ```
    /// use layers::{Conv2d, Conv2dOptions};
    /// let c = Conv2d::new(4, 8, 3, Conv2dOptions::default().stride(2).padding(1).groups(2)).unwrap();
    /// assert_eq!((c.kernel_size(), c.in_channels(), c.out_channels()), ((3, 3), 4, 8));
    /// assert_eq!((c.params.stride, c.params.padding, c.params.groups), ((2, 2), (1, 1), 2));
    /// ```
    pub fn kernel_size(&self) -> (usize, usize) {
        let s = self.weight_shape();
        (s[2], s[3])
    }

    /// Input channels (`in / groups` per group times the groups).
    pub fn in_channels(&self) -> usize {
        self.weight_shape()[1] * self.params.groups
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight_shape()[0]
    }

    /// The convolution with an explicit weight (wrappers that transform the weight use this).
    pub fn forward_with_weight(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let b = self.bias.as_ref().map(|b| b.tensor());
        let y = x.conv2d(weight, b.as_ref(), self.params)?;
        let w = weight.shape();
        let macs = y.numel() as u64 * (w[1] * w[2] * w[3]) as u64;
        mac::record(Some(&self.weight), "conv2d", macs, x.shape(), y.shape());
        Ok(y)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        self.forward_with_weight(x, &self.weight.tensor())
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }
}
