//! 2-D convolution with a sparse weight (a [`SparsePattern`] and a `[nnz]` tensor of the stored
//! values) and its two backward passes, each a differentiable op.
//!
//! As the dense [`Tensor::conv2d`] family, the three are bilinear and each other's adjoints:
//!
//! - `d sparse_conv2d / dx` is `sparse_conv2d_backward_data`, `/ dvalues` is
//!   `sparse_conv2d_backward_weight`;
//! - `d sparse_conv2d_backward_data / dgy` is `sparse_conv2d`, `/ dvalues` is
//!   `sparse_conv2d_backward_weight`;
//! - `d sparse_conv2d_backward_weight / dx` is `sparse_conv2d_backward_data`, `/ dgy` is
//!   `sparse_conv2d`;
//!
//! so every order of derivative is available. The values' gradient is the dense weight
//! gradient's entries on the pattern only: coordinates outside it do not exist for this op.

use std::sync::Arc;

use super::conv::{add_channel_bias, same_dtype_device};
use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::ops::Conv2dParams;
use backends::ops::SparsePattern;
use backends::Layout;

fn check_values(op: &'static str, values: &Tensor, pattern: &SparsePattern) -> Result<()> {
    if values.shape() != [pattern.nnz()] {
        return Err(Error::invalid(
            op,
            format!("values of shape {:?} for a pattern of {} entries", values.shape(), pattern.nnz()),
        ));
    }
    Ok(())
}

impl Tensor {
    /// 2-D convolution of `self` (`[N, C, H, W]`) with a sparse weight: the stored `values`
    /// (`[nnz]`) at the coordinates of `pattern` (of a `[O, C/groups, kH, kW]` weight), plus an
    /// optional bias `[O]`. Equal to [`Tensor::conv2d`] with the densified weight, computed from
    /// the stored entries only (see `backends::cpu` for the CPU kernel).
    ///
    /// Differentiable in the input, the values and the bias, to any order.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use autograd::{Conv2dParams, Tensor};
    /// use autograd::backends::ops::SparsePattern;
    /// // A 1 -> 1 channel 3x3 kernel with only its centre stored: the identity.
    /// let mut mask = vec![0.0f32; 9];
    /// mask[4] = 1.0;
    /// let pattern = Arc::new(SparsePattern::from_mask([1, 1, 3, 3], &mask).unwrap());
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect::<Vec<_>>(), &[1, 1, 4, 4]).unwrap();
    /// let p = Conv2dParams { padding: (1, 1), ..Default::default() };
    /// let y = x.sparse_conv2d(&Tensor::ones(&[1]), &pattern, None, p).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    /// ```
    pub fn sparse_conv2d(
        &self,
        values: &Tensor,
        pattern: &Arc<SparsePattern>,
        bias: Option<&Tensor>,
        params: Conv2dParams,
    ) -> Result<Tensor> {
        let op = "sparse_conv2d";
        same_dtype_device(op, self, values)?;
        check_values(op, values, pattern)?;
        let out_shape = params.output_shape(self.shape(), &pattern.shape)?;
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().sparse_conv2d(self.layout(), &values.storage(), values.layout(), pattern, &params)
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(&out_shape));
        let saved_v = self.requires_grad().then(|| values.clone());
        let saved_x = values.requires_grad().then(|| self.clone());
        let input_hw = (self.shape()[2], self.shape()[3]);
        let pat = pattern.clone();
        let y = record_fn(y, op, &[self, values], move || {
            move |g: &Tensor| {
                let gx = match &saved_v {
                    Some(v) => Some(g.sparse_conv2d_backward_data(v, &pat, params, input_hw)?),
                    None => None,
                };
                let gv = match &saved_x {
                    Some(x) => Some(x.sparse_conv2d_backward_weight(g, &pat, params)?),
                    None => None,
                };
                Ok(vec![gx, gv])
            }
        });
        add_channel_bias(op, self, y, bias, &pattern.shape)
    }

    /// The gradient of [`Tensor::sparse_conv2d`] with respect to its input: `self` is the output
    /// gradient `[N, O, oH, oW]`, the result `[N, C, H, W]` with `(H, W) = input_hw`.
    /// Differentiable in `self` (derivative [`Tensor::sparse_conv2d`]) and `values`
    /// (derivative [`Tensor::sparse_conv2d_backward_weight`]).
    pub fn sparse_conv2d_backward_data(
        &self,
        values: &Tensor,
        pattern: &Arc<SparsePattern>,
        params: Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Tensor> {
        let op = "sparse_conv2d_backward_data";
        same_dtype_device(op, self, values)?;
        check_values(op, values, pattern)?;
        if self.ndim() != 4 {
            return Err(Error::invalid(op, format!("expected a 4-D output gradient, got {:?}", self.shape())));
        }
        let in_shape = [self.shape()[0], pattern.shape[1] * params.groups, input_hw.0, input_hw.1];
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().sparse_conv2d_backward_data(
                self.layout(),
                &values.storage(),
                values.layout(),
                pattern,
                &params,
                input_hw,
            )
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(&in_shape));
        let saved_v = self.requires_grad().then(|| values.clone());
        let saved_gy = values.requires_grad().then(|| self.clone());
        let pat = pattern.clone();
        Ok(record_fn(y, op, &[self, values], move || {
            move |gg: &Tensor| {
                let d_gy = match &saved_v {
                    Some(v) => Some(gg.sparse_conv2d(v, &pat, None, params)?),
                    None => None,
                };
                let d_v = match &saved_gy {
                    Some(gy) => Some(gg.sparse_conv2d_backward_weight(gy, &pat, params)?),
                    None => None,
                };
                Ok(vec![d_gy, d_v])
            }
        }))
    }

    /// The gradient of [`Tensor::sparse_conv2d`] with respect to its stored values: `self` is
    /// the convolution's input `[N, C, H, W]`, `grad_output` `[N, O, oH, oW]`, the result
    /// `[nnz]`. Differentiable in `self` (derivative [`Tensor::sparse_conv2d_backward_data`])
    /// and `grad_output` (derivative [`Tensor::sparse_conv2d`]).
    pub fn sparse_conv2d_backward_weight(
        &self,
        grad_output: &Tensor,
        pattern: &Arc<SparsePattern>,
        params: Conv2dParams,
    ) -> Result<Tensor> {
        let op = "sparse_conv2d_backward_weight";
        same_dtype_device(op, self, grad_output)?;
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().sparse_conv2d_backward_weight(
                self.layout(),
                &grad_output.storage(),
                grad_output.layout(),
                pattern,
                &params,
            )
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(&[pattern.nnz()]));
        let saved_gy = self.requires_grad().then(|| grad_output.clone());
        let saved_x = grad_output.requires_grad().then(|| self.clone());
        let input_hw = (self.shape()[2], self.shape()[3]);
        let pat = pattern.clone();
        Ok(record_fn(y, op, &[self, grad_output], move || {
            move |gg: &Tensor| {
                let d_x = match &saved_gy {
                    Some(gy) => Some(gy.sparse_conv2d_backward_data(gg, &pat, params, input_hw)?),
                    None => None,
                };
                let d_gy = match &saved_x {
                    Some(x) => Some(x.sparse_conv2d(gg, &pat, None, params)?),
                    None => None,
                };
                Ok(vec![d_x, d_gy])
            }
        }))
    }
}
