//! Descriptions of the primitives: op kinds and their parameters.

use crate::{Error, Result};

mod elementwise;
mod sparse;
pub use elementwise::{BinaryOp, CmpOp, UnaryOp};
pub use sparse::SparsePattern;

/// A reduction over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Arithmetic mean (floats only).
    Mean,
    /// Maximum (NaN propagates).
    Max,
    /// Minimum (NaN propagates).
    Min,
    /// Variance `Σ(x−mean)² / (n − correction)` (floats only; `correction` 1 is unbiased).
    Var {
        /// Bessel's correction: 0 for the population variance, 1 for the sample variance.
        correction: usize,
    },
}

impl ReduceOp {
    /// The reduction's name in error messages (`sum`, `mean`, `max`, `min`, `var`).
    pub fn name(&self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Var { .. } => "var",
        }
    }
}

/// A reduction to the index of an extreme value along one axis (ties go to the lowest index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgReduceOp {
    /// Index of the maximum.
    ArgMax,
    /// Index of the minimum.
    ArgMin,
}

impl ArgReduceOp {
    /// `argmax` or `argmin`.
    pub fn name(&self) -> &'static str {
        match self {
            ArgReduceOp::ArgMax => "argmax",
            ArgReduceOp::ArgMin => "argmin",
        }
    }
}

/// Parameters of a 2-D convolution (NCHW input, `[C_out, C_in / groups, kH, kW]` weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Vertical and horizontal stride.
    pub stride: (usize, usize),
    /// Zero padding added on both sides (top/bottom, left/right).
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
    /// Number of groups (`groups == C_in == C_out` is depthwise).
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams { stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1 }
    }
}

/// Output length of a convolution or pooling window along one axis, or `None` if nothing fits.
pub fn conv_out_len(input: usize, kernel: usize, stride: usize, pad: usize, dilation: usize) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation * (kernel - 1) + 1;
    let padded = input + 2 * pad;
    if padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

impl Conv2dParams {
    /// Checks the input `[N, C, H, W]` and weight `[O, C/groups, kH, kW]` shapes and returns the
    /// output shape `[N, O, oH, oW]`, or an error naming both shapes.
    pub fn output_shape(&self, x: &[usize], w: &[usize]) -> Result<Vec<usize>> {
        let op = "conv2d";
        if x.len() != 4 || w.len() != 4 {
            return Err(Error::invalid(op, format!("expected 4-D input and weight, got input {x:?} and weight {w:?}")));
        }
        let g = self.groups;
        if g == 0 || self.stride.0 == 0 || self.stride.1 == 0 || self.dilation.0 == 0 || self.dilation.1 == 0 {
            return Err(Error::invalid(op, format!("stride, dilation and groups must be positive: {self:?}")));
        }
        if x[1] != w[1] * g || !w[0].is_multiple_of(g) {
            return Err(Error::invalid(
                op,
                format!("input {x:?} and weight {w:?} do not agree for groups={g} (need C_in = weight[1] * groups and C_out divisible by groups)"),
            ));
        }
        let oh = conv_out_len(x[2], w[2], self.stride.0, self.padding.0, self.dilation.0);
        let ow = conv_out_len(x[3], w[3], self.stride.1, self.padding.1, self.dilation.1);
        match (oh, ow) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(vec![x[0], w[0], oh, ow]),
            _ => Err(Error::invalid(
                op,
                format!("kernel of weight {w:?} is larger than the padded input {x:?} ({self:?})"),
            )),
        }
    }
}

/// One of the three passes of a convolution: each has its own kernels and its own choice of
/// algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// `conv2d`: input and weight to output.
    Forward,
    /// `conv2d_backward_data`: output gradient and weight to input gradient.
    BackwardData,
    /// `conv2d_backward_weight`: input and output gradient to weight gradient.
    BackwardWeight,
}

impl ConvPass {
    /// The op's name (`conv2d`, `conv2d_backward_data`, `conv2d_backward_weight`).
    pub fn op_name(self) -> &'static str {
        match self {
            ConvPass::Forward => "conv2d",
            ConvPass::BackwardData => "conv2d_backward_data",
            ConvPass::BackwardWeight => "conv2d_backward_weight",
        }
    }
}

/// Parameters of a 2-D pooling window over NCHW input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Window height and width.
    pub kernel: (usize, usize),
    /// Vertical and horizontal stride.
    pub stride: (usize, usize),
    /// Implicit padding on both sides (−∞ for max, 0 for average).
    pub padding: (usize, usize),
    /// Round the output size up instead of down (PyTorch's `ceil_mode`).
    pub ceil_mode: bool,
    /// For average pooling: whether padded zeros count in the divisor.
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// A `k`x`k` window with stride `k` and no padding.
    pub fn square(k: usize) -> Self {
        Pool2dParams { kernel: (k, k), stride: (k, k), padding: (0, 0), ceil_mode: false, count_include_pad: true }
    }

    /// Output length along one axis, following PyTorch (in ceil mode, the last window must start
    /// inside the input or left padding).
    pub fn out_len(input: usize, k: usize, s: usize, p: usize, ceil: bool) -> Option<usize> {
        if k == 0 || s == 0 || input + 2 * p < k {
            return None;
        }
        let num = input + 2 * p - k;
        let mut out = if ceil { num.div_ceil(s) + 1 } else { num / s + 1 };
        if ceil && (out - 1) * s >= input + p {
            out -= 1;
        }
        Some(out)
    }

    /// Checks an NCHW input shape and returns the output shape.
    pub fn output_shape(&self, op: &'static str, x: &[usize]) -> Result<Vec<usize>> {
        if x.len() != 4 {
            return Err(Error::invalid(op, format!("expected a 4-D NCHW input, got {x:?}")));
        }
        if self.padding.0 * 2 > self.kernel.0 || self.padding.1 * 2 > self.kernel.1 {
            return Err(Error::invalid(
                op,
                format!("padding {:?} must be at most half the kernel {:?}", self.padding, self.kernel),
            ));
        }
        let oh = Self::out_len(x[2], self.kernel.0, self.stride.0, self.padding.0, self.ceil_mode);
        let ow = Self::out_len(x[3], self.kernel.1, self.stride.1, self.padding.1, self.ceil_mode);
        match (oh, ow) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(vec![x[0], x[1], oh, ow]),
            _ => Err(Error::invalid(op, format!("window {self:?} does not fit input {x:?}"))),
        }
    }
}

/// A distribution for seeded random fills.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high)`.
    Uniform {
        /// Inclusive lower bound.
        low: f64,
        /// Exclusive upper bound.
        high: f64,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// 1 with probability `p`, else 0.
    Bernoulli {
        /// Probability of a 1.
        p: f64,
    },
}
