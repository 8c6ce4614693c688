//! 2-D convolution and its two backward passes, each a differentiable op.
//!
//! `conv2d(x, w)` is bilinear, and so are its input gradient `conv2d_backward_data(gy, w)` and
//! weight gradient `conv2d_backward_weight(x, gy)`. The three are each other's adjoints:
//!
//! - `d conv2d / dx` is `conv2d_backward_data`, `d conv2d / dw` is `conv2d_backward_weight`;
//! - `d conv2d_backward_data / dgy` is `conv2d`, `/ dw` is `conv2d_backward_weight`;
//! - `d conv2d_backward_weight / dx` is `conv2d_backward_data`, `/ dgy` is `conv2d`.
//!
//! so a backward pass recorded with `create_graph` is differentiable again, to any order.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::ops::{Conv2dParams, ConvPass};
use backends::Layout;

pub(super) fn same_dtype_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.device() != b.device() {
        return Err(Error::DeviceMismatch { op, lhs: a.device(), rhs: b.device() });
    }
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    Ok(())
}

/// `y` (`[N, O, oH, oW]`, the output of convolution `op` of `x` with a weight of shape
/// `weight_shape`) plus `bias` (`[O]`, broadcast over the batch and the plane) if there is one,
/// as a differentiable addition; a bias of another shape, dtype or device is an error of `op`.
pub(super) fn add_channel_bias(
    op: &'static str,
    x: &Tensor,
    y: Tensor,
    bias: Option<&Tensor>,
    weight_shape: &[usize],
) -> Result<Tensor> {
    let Some(b) = bias else { return Ok(y) };
    let o = y.shape()[1];
    same_dtype_device(op, x, b)?;
    if b.shape() != [o] {
        return Err(Error::invalid(
            op,
            format!("bias must have shape [{o}] for weight {weight_shape:?}, got {:?}", b.shape()),
        ));
    }
    y.add(&b.reshape_to(&[1, o, 1, 1])?)
}

/// The name of the algorithm the backend runs for `pass` of the convolution of an input of
/// shape `x` with a weight of shape `w`, operands like `t` (for the profiler).
fn algorithm(pass: ConvPass, t: &Tensor, x: &[usize], w: &[usize], p: &Conv2dParams) -> &'static str {
    t.storage().conv2d_algorithm(pass, x, w, p).unwrap_or("none")
}

fn four_d(op: &'static str, what: &str, t: &Tensor) -> Result<()> {
    if t.ndim() != 4 {
        return Err(Error::invalid(op, format!("expected a 4-D {what}, got shape {:?}", t.shape())));
    }
    Ok(())
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as `torch.nn.functional.conv2d`): `self` is the input
    /// `[N, C, H, W]`, `weight` is `[O, C/groups, kH, kW]`, `bias` (optional) is `[O]` and is
    /// broadcast over `[1, O, 1, 1]`. The result is `[N, O, oH, oW]`.
    ///
    /// Differentiable in the input, the weight and the bias, to any order.
    ///
    /// ```
    /// use autograd::{Conv2dParams, Tensor};
    /// let x = Tensor::ones(&[1, 1, 3, 3]);
    /// let w = Tensor::ones(&[1, 1, 2, 2]);
    /// let y = x.conv2d(&w, None, Conv2dParams::default()).unwrap();
    /// assert_eq!(y.shape(), &[1, 1, 2, 2]);
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![4.0; 4]);
    /// ```
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, params: Conv2dParams) -> Result<Tensor> {
        let op = "conv2d";
        same_dtype_device(op, self, weight)?;
        let out_shape = params.output_shape(self.shape(), weight.shape())?;
        let algorithm = || algorithm(ConvPass::Forward, self, self.shape(), weight.shape(), &params);
        let s = crate::profile::forward_by(op, self.device(), algorithm, || {
            self.storage().conv2d(self.layout(), &weight.storage(), weight.layout(), &params)
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(&out_shape));
        // Each input's gradient needs only the other input: save just what will be used.
        let saved_w = self.requires_grad().then(|| weight.clone());
        let saved_x = weight.requires_grad().then(|| self.clone());
        let (input_hw, kernel_hw) = ((self.shape()[2], self.shape()[3]), (weight.shape()[2], weight.shape()[3]));
        let y = record_fn(y, op, &[self, weight], move || {
            move |g: &Tensor| {
                let gx = match &saved_w {
                    Some(w) => Some(g.conv2d_backward_data(w, params, input_hw)?),
                    None => None,
                };
                let gw = match &saved_x {
                    Some(x) => Some(x.conv2d_backward_weight(g, params, kernel_hw)?),
                    None => None,
                };
                Ok(vec![gx, gw])
            }
        });
        add_channel_bias(op, self, y, bias, weight.shape())
    }

    /// The gradient of [`Tensor::conv2d`] with respect to its input, as a differentiable op:
    /// `self` is the output gradient `[N, O, oH, oW]`, `weight` is `[O, C/groups, kH, kW]`, and
    /// the result is `[N, C, H, W]` with `(H, W) = input_hw` (needed because several input sizes
    /// give one output size when the stride exceeds 1).
    ///
    /// Linear in each argument: its derivative with respect to `self` is `conv2d`, with respect
    /// to `weight` it is [`Tensor::conv2d_backward_weight`].
    pub fn conv2d_backward_data(
        &self,
        weight: &Tensor,
        params: Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Tensor> {
        let op = "conv2d_backward_data";
        same_dtype_device(op, self, weight)?;
        four_d(op, "output gradient", self)?;
        four_d(op, "weight", weight)?;
        let in_shape = [self.shape()[0], weight.shape()[1] * params.groups, input_hw.0, input_hw.1];
        let expect = params.output_shape(&in_shape, weight.shape())?;
        if expect != self.shape() {
            return Err(Error::invalid(
                op,
                format!(
                    "output gradient {:?} does not match input {in_shape:?} convolved with weight {:?} (expected {expect:?})",
                    self.shape(),
                    weight.shape()
                ),
            ));
        }
        let algorithm = || algorithm(ConvPass::BackwardData, self, &in_shape, weight.shape(), &params);
        let s = crate::profile::forward_by(op, self.device(), algorithm, || {
            self.storage().conv2d_backward_data(self.layout(), &weight.storage(), weight.layout(), &params, input_hw)
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(&in_shape));
        let saved_w = self.requires_grad().then(|| weight.clone());
        let saved_gy = weight.requires_grad().then(|| self.clone());
        let kernel_hw = (weight.shape()[2], weight.shape()[3]);
        Ok(record_fn(y, op, &[self, weight], move || {
            move |gg: &Tensor| {
                let d_gy = match &saved_w {
                    Some(w) => Some(gg.conv2d(w, None, params)?),
                    None => None,
                };
                let d_w = match &saved_gy {
                    Some(gy) => Some(gg.conv2d_backward_weight(gy, params, kernel_hw)?),
                    None => None,
                };
                Ok(vec![d_gy, d_w])
            }
        }))
    }

    /// The gradient of [`Tensor::conv2d`] with respect to its weight, as a differentiable op:
    /// `self` is the convolution's input `[N, C, H, W]`, `grad_output` is `[N, O, oH, oW]`, and
    /// the result is `[O, C/groups, kH, kW]` with `(kH, kW) = kernel_hw`.
    ///
    /// Linear in each argument: its derivative with respect to `self` is
    /// [`Tensor::conv2d_backward_data`], with respect to `grad_output` it is `conv2d`.
    pub fn conv2d_backward_weight(
        &self,
        grad_output: &Tensor,
        params: Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<Tensor> {
        let op = "conv2d_backward_weight";
        same_dtype_device(op, self, grad_output)?;
        four_d(op, "input", self)?;
        four_d(op, "output gradient", grad_output)?;
        let g = params.groups.max(1);
        let o = grad_output.shape()[1];
        let w_shape = [o, self.shape()[1] / g, kernel_hw.0, kernel_hw.1];
        let expect = params.output_shape(self.shape(), &w_shape)?;
        if expect != grad_output.shape() {
            return Err(Error::invalid(
                op,
                format!(
                    "output gradient {:?} does not match input {:?} convolved with a weight {w_shape:?} (expected {expect:?})",
                    grad_output.shape(),
                    self.shape()
                ),
            ));
        }
        let algorithm = || algorithm(ConvPass::BackwardWeight, self, self.shape(), &w_shape, &params);
        let s = crate::profile::forward_by(op, self.device(), algorithm, || {
            self.storage().conv2d_backward_weight(
                self.layout(),
                &grad_output.storage(),
                grad_output.layout(),
                &params,
                kernel_hw,
            )
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(&w_shape));
        let saved_gy = self.requires_grad().then(|| grad_output.clone());
        let saved_x = grad_output.requires_grad().then(|| self.clone());
        let input_hw = (self.shape()[2], self.shape()[3]);
        Ok(record_fn(y, op, &[self, grad_output], move || {
            move |gg: &Tensor| {
                let d_x = match &saved_gy {
                    Some(gy) => Some(gy.conv2d_backward_data(gg, params, input_hw)?),
                    None => None,
                };
                let d_gy = match &saved_x {
                    Some(x) => Some(x.conv2d(gg, None, params)?),
                    None => None,
                };
                Ok(vec![d_x, d_gy])
            }
        }))
    }
}
