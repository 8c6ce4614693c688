//! 2-D pooling over NCHW tensors (max, average, adaptive average) and their backward passes,
//! each a differentiable op.
//!
//! Every pooling backward is linear in the output gradient, and its adjoint is the forward pass
//! at fixed windows: the derivative of `avg_pool2d_backward` is `avg_pool2d`, that of
//! `adaptive_avg_pool2d_backward` is `adaptive_avg_pool2d`, and that of `max_pool2d_backward` is
//! a gather at the saved argmax positions. So double backward works through pooling.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::ops::Pool2dParams;
use backends::Layout;

fn check_grad_shape(op: &'static str, g: &Tensor, expected: &[usize]) -> Result<()> {
    if g.shape() != expected {
        return Err(Error::invalid(op, format!("output gradient has shape {:?}, expected {expected:?}", g.shape())));
    }
    Ok(())
}

impl Tensor {
    /// Max pooling over `[N, C, H, W]` (as `torch.nn.functional.max_pool2d`, padding counts as
    /// −∞). The gradient goes to the first maximum of each window.
    ///
    /// ```
    /// use autograd::{Pool2dParams, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 2.0], &[1, 1, 2, 2]).unwrap();
    /// assert_eq!(x.max_pool2d(Pool2dParams::square(2)).unwrap().to_vec::<f32>().unwrap(), vec![5.0]);
    /// ```
    pub fn max_pool2d(&self, params: Pool2dParams) -> Result<Tensor> {
        Ok(self.max_pool2d_with_indices(params)?.0)
    }

    /// [`Tensor::max_pool2d`] and the `i64` flat index (`h * W + w`) of each maximum within its
    /// input plane.
    pub fn max_pool2d_with_indices(&self, params: Pool2dParams) -> Result<(Tensor, Tensor)> {
        let op = "max_pool2d";
        let out_shape = params.output_shape(op, self.shape())?;
        let (v, i) = crate::profile::forward(op, self.device(), || self.storage().max_pool2d(self.layout(), &params))?;
        let idx = Tensor::from_storage(i, Layout::contiguous(&out_shape));
        let y = Tensor::from_storage(v, Layout::contiguous(&out_shape));
        let saved = idx.clone();
        let in_shape = self.shape().to_vec();
        let y = record_fn(y, op, &[self], move || {
            move |g: &Tensor| Ok(vec![Some(g.max_pool2d_backward(&saved, &in_shape)?)])
        });
        Ok((y, idx))
    }

    /// The gradient of max pooling as a differentiable op: routes `self` (the output gradient)
    /// to the positions `indices` (from [`Tensor::max_pool2d_with_indices`]) of an input of
    /// shape `input_shape`, adding where windows share a maximum.
    ///
    /// Its derivative with respect to `self` gathers the incoming gradient at `indices`.
    pub fn max_pool2d_backward(&self, indices: &Tensor, input_shape: &[usize]) -> Result<Tensor> {
        let op = "max_pool2d_backward";
        check_grad_shape(op, self, indices.shape())?;
        if input_shape.len() != 4 || self.ndim() != 4 || input_shape[..2] != self.shape()[..2] {
            return Err(Error::invalid(op, format!("gradient {:?} does not pool input {input_shape:?}", self.shape())));
        }
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().max_pool2d_backward(self.layout(), &indices.storage(), indices.layout(), input_shape)
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(input_shape));
        let idx = indices.clone();
        let (n, c, h, w) = (input_shape[0], input_shape[1], input_shape[2], input_shape[3]);
        Ok(record_fn(y, op, &[self], move || {
            move |gg: &Tensor| {
                let (oh, ow) = (idx.shape()[2], idx.shape()[3]);
                let flat_idx = idx.reshape_to(&[n, c, oh * ow])?;
                let picked = gg.reshape_to(&[n, c, h * w])?.gather(2, &flat_idx)?;
                Ok(vec![Some(picked.reshape_to(&[n, c, oh, ow])?)])
            }
        }))
    }

    /// Average pooling over `[N, C, H, W]` (as `torch.nn.functional.avg_pool2d`, with
    /// `ceil_mode` and `count_include_pad` from `params`).
    pub fn avg_pool2d(&self, params: Pool2dParams) -> Result<Tensor> {
        let op = "avg_pool2d";
        let out_shape = params.output_shape(op, self.shape())?;
        let s = crate::profile::forward(op, self.device(), || self.storage().avg_pool2d(self.layout(), &params))?;
        let y = Tensor::from_storage(s, Layout::contiguous(&out_shape));
        let in_shape = self.shape().to_vec();
        Ok(record_fn(y, op, &[self], move || {
            move |g: &Tensor| Ok(vec![Some(g.avg_pool2d_backward(params, &in_shape)?)])
        }))
    }

    /// The gradient of [`Tensor::avg_pool2d`] as a differentiable op: `self` is the output
    /// gradient; the result has shape `input_shape`. Its derivative is `avg_pool2d`.
    pub fn avg_pool2d_backward(&self, params: Pool2dParams, input_shape: &[usize]) -> Result<Tensor> {
        let op = "avg_pool2d_backward";
        check_grad_shape(op, self, &params.output_shape(op, input_shape)?)?;
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().avg_pool2d_backward(self.layout(), &params, input_shape)
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(input_shape));
        Ok(record_fn(y, op, &[self], move || move |gg: &Tensor| Ok(vec![Some(gg.avg_pool2d(params)?)])))
    }

    /// Adaptive average pooling of `[N, C, H, W]` to `[N, C, oH, oW]` with `out_hw = (oH, oW)`
    /// (PyTorch's window rule).
    pub fn adaptive_avg_pool2d(&self, out_hw: (usize, usize)) -> Result<Tensor> {
        let op = "adaptive_avg_pool2d";
        if self.ndim() != 4 {
            return Err(Error::invalid(op, format!("expected a 4-D NCHW input, got {:?}", self.shape())));
        }
        if out_hw.0 == 0 || out_hw.1 == 0 {
            return Err(Error::invalid(op, format!("output size {out_hw:?} must be positive")));
        }
        let s =
            crate::profile::forward(op, self.device(), || self.storage().adaptive_avg_pool2d(self.layout(), out_hw))?;
        let sh = self.shape();
        let y = Tensor::from_storage(s, Layout::contiguous(&[sh[0], sh[1], out_hw.0, out_hw.1]));
        let in_shape = sh.to_vec();
        Ok(record_fn(y, op, &[self], move || {
            move |g: &Tensor| Ok(vec![Some(g.adaptive_avg_pool2d_backward(&in_shape)?)])
        }))
    }

    /// The gradient of [`Tensor::adaptive_avg_pool2d`] as a differentiable op: `self` is the
    /// output gradient `[N, C, oH, oW]`; the result has shape `input_shape`. Its derivative is
    /// `adaptive_avg_pool2d` to `(oH, oW)`.
    pub fn adaptive_avg_pool2d_backward(&self, input_shape: &[usize]) -> Result<Tensor> {
        let op = "adaptive_avg_pool2d_backward";
        if self.ndim() != 4 || input_shape.len() != 4 || input_shape[..2] != self.shape()[..2] {
            return Err(Error::invalid(op, format!("gradient {:?} does not pool input {input_shape:?}", self.shape())));
        }
        let out_hw = (self.shape()[2], self.shape()[3]);
        let s = crate::profile::forward(op, self.device(), || {
            self.storage().adaptive_avg_pool2d_backward(self.layout(), input_shape)
        })?;
        let y = Tensor::from_storage(s, Layout::contiguous(input_shape));
        Ok(record_fn(y, op, &[self], move || move |gg: &Tensor| Ok(vec![Some(gg.adaptive_avg_pool2d(out_hw)?)])))
    }
}
