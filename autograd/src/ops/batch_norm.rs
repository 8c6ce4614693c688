//! Batch normalization as fused ops: [`Tensor::batch_norm_train`] (batch statistics), with
//! ReLU ([`Tensor::batch_norm_relu_train`]), ReLU6 ([`Tensor::batch_norm_relu6_train`]) or a
//! residual add and ReLU ([`Tensor::batch_norm_add_relu_train`]) in the same pass, and
//! [`Tensor::channel_affine`] (a per-channel scale and shift, which is batch norm in eval mode).
//!
//! Forward and first-order backward run the backend's fused per-channel kernels
//! ([`backends::Backend::channel_stats`], `channel_sums`, `channel_fma`): two reads of the input
//! and one write per pass, no temporaries the size of the input. A backward pass recorded for
//! higher-order gradients (`create_graph`) instead builds its gradients from differentiable
//! tensor ops, so Hessian-vector products through batch norm stay exact.

use backends::ops::{BinaryOp, CmpOp, UnaryOp};
use backends::{Layout, Storage};

use crate::graph::record_fn;
use crate::{is_grad_enabled, no_grad, Error, Result, Tensor};

/// The reduced axes (all but the channel axis 1) and the broadcast shape `[1, C, 1, ...]`.
fn axes_and_bshape(x: &Tensor) -> (Vec<usize>, Vec<usize>) {
    let axes: Vec<usize> = std::iter::once(0).chain(2..x.ndim()).collect();
    let mut bshape = vec![1; x.ndim()];
    bshape[1] = x.shape()[1];
    (axes, bshape)
}

/// Checks that `x` is `[N, C, ...]` and that each per-channel vector is `[C]` of `x`'s dtype and
/// device; returns `C`.
pub(super) fn check(op: &'static str, x: &Tensor, vectors: &[(&str, Option<&Tensor>)]) -> Result<usize> {
    if x.ndim() < 2 {
        return Err(Error::invalid(op, format!("expected an input [N, C, ...] of rank >= 2, got {:?}", x.shape())));
    }
    let c = x.shape()[1];
    for (what, v) in vectors {
        let Some(v) = v else { continue };
        if v.shape() != [c] {
            return Err(Error::invalid(
                op,
                format!("{what} must have shape [{c}] for an input {:?}, got {:?}", x.shape(), v.shape()),
            ));
        }
        check_like(op, x, v)?;
    }
    Ok(c)
}

/// Checks that a normalization parameter `p` has the input `x`'s dtype and device.
pub(super) fn check_like(op: &'static str, x: &Tensor, p: &Tensor) -> Result<()> {
    if p.dtype() != x.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: x.dtype(), rhs: p.dtype() });
    }
    if p.device() != x.device() {
        return Err(Error::DeviceMismatch { op, lhs: x.device(), rhs: p.device() });
    }
    Ok(())
}

/// A buffer holding exactly the elements of a `[C]` tensor, in order (a small copy).
pub(super) fn exact(v: &Tensor) -> Result<Storage> {
    v.storage().contiguous(v.layout())
}

/// A tensor of `x`'s shape from a kernel result.
fn like(s: Storage, x: &Tensor) -> Tensor {
    Tensor::from_storage(s, Layout::contiguous(x.shape()))
}

/// A `[C]` tensor from a kernel result.
fn vector(s: Storage, c: usize) -> Tensor {
    Tensor::from_storage(s, Layout::contiguous(&[c]))
}

/// What follows batch norm in training mode.
#[derive(Clone, Copy)]
enum Act<'a> {
    /// Nothing.
    None,
    /// ReLU.
    Relu,
    /// ReLU6.
    Relu6,
    /// A residual add, then ReLU.
    AddRelu(&'a Tensor),
}

impl Act<'_> {
    /// The op's name (in errors and profiles).
    fn op(&self) -> &'static str {
        match self {
            Act::None => "batch_norm",
            Act::Relu => "batch_norm_relu",
            Act::Relu6 => "batch_norm_relu6",
            Act::AddRelu(_) => "batch_norm_add_relu",
        }
    }
}

/// Where the backward pass of a batch norm followed by ReLU or ReLU6 takes the mask from.
enum Mask {
    /// No activation.
    None,
    /// The saved output (`y > 0`).
    Output(Tensor),
    /// The pre-activation `p = x·scale + shift`, recomputed from the forward pass's scale and
    /// shift (the same kernel, so the same mask): `p > 0`, and `p < 6` when the flag (ReLU6)
    /// is set.
    Gate((Storage, Storage), bool),
}

/// ReLU's fused backward kernel: `g` where the second operand is positive.
fn relu_backward() -> BinaryOp {
    UnaryOp::Relu.backward_op().expect("ReLU has a fused backward kernel")
}

impl Tensor {
    /// Batch normalization with batch statistics (training mode) over an `[N, C, ...]` input:
    /// `y = (x − mean_c) / sqrt(var_c + eps) · weight_c + bias_c`, where `mean_c` and the biased
    /// `var_c` are taken over every axis but 1. Returns `(y, mean, var)`; the statistics are
    /// detached `[C]` tensors (for running averages). `weight` and `bias` are optional `[C]`
    /// tensors. Differentiable in `x`, `weight` and `bias`, to any order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 10.0, 20.0], &[2, 2]).unwrap();
    /// let (y, mean, var) = x.batch_norm_train(None, None, 0.0).unwrap();
    /// assert_eq!(mean.to_vec::<f64>().unwrap(), vec![5.5, 11.5]);
    /// assert_eq!(var.to_vec::<f64>().unwrap(), vec![20.25, 72.25]);
    /// let y = y.to_vec::<f64>().unwrap();
    /// assert!(y.iter().zip([-1.0, -1.0, 1.0, 1.0]).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    pub fn batch_norm_train(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        self.batch_norm_train_act(weight, bias, eps, Act::None)
    }

    /// [`Tensor::batch_norm_train`] followed by ReLU, in one pass over the input:
    /// `relu(batch_norm(x))`, with the same statistics returned. The backward pass masks the
    /// gradient where the output is zero (as ReLU's backward does), then runs batch norm's; at
    /// first order the mask is recomputed from `x` inside the batch-norm backward kernels
    /// ([`backends::Backend::channel_sums_gated`], `channel_fma_gated`), so neither the output
    /// nor a masked gradient is read or written. Differentiable in `x`, `weight` and `bias`, to
    /// any order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 10.0, 20.0], &[2, 2]).unwrap();
    /// let (y, _, _) = x.batch_norm_relu_train(None, None, 0.0).unwrap();
    /// let y = y.to_vec::<f64>().unwrap();
    /// assert!(y.iter().zip([0.0, 0.0, 1.0, 1.0]).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    pub fn batch_norm_relu_train(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        self.batch_norm_train_act(weight, bias, eps, Act::Relu)
    }

    /// [`Tensor::batch_norm_train`] followed by ReLU6 (`min(max(·, 0), 6)`, MobileNetV2's
    /// activation), in one pass over the input, as [`Tensor::batch_norm_relu_train`]: the
    /// backward pass recomputes the mask `0 < x·scale + shift < 6` inside the batch-norm
    /// backward kernels at first order. Differentiable in `x`, `weight` and `bias`, to any
    /// order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 10.0, 20.0], &[2, 2]).unwrap();
    /// let w = Tensor::from_vec(vec![8.0f64, 2.0], &[2]).unwrap();
    /// let (y, _, _) = x.batch_norm_relu6_train(Some(&w), None, 0.0).unwrap();
    /// let y = y.to_vec::<f64>().unwrap();
    /// assert!(y.iter().zip([0.0, 0.0, 6.0, 2.0]).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    pub fn batch_norm_relu6_train(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        self.batch_norm_train_act(weight, bias, eps, Act::Relu6)
    }

    /// `relu(batch_norm(x) + residual)` in training mode, in one pass over the input and the
    /// residual (a residual block's second batch norm, its shortcut add and the ReLU after
    /// it): [`Tensor::batch_norm_train`]'s statistics are returned as `(y, mean, var)`. The
    /// residual has `x`'s shape; its gradient is the ReLU-masked output gradient. Differentiable
    /// in `x`, `weight`, `bias` and `residual`, to any order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 10.0, 20.0], &[2, 2]).unwrap();
    /// let r = Tensor::from_vec(vec![0.5f64, 2.0, -3.0, 0.5], &[2, 2]).unwrap();
    /// let (y, _, _) = x.batch_norm_add_relu_train(None, None, 0.0, &r).unwrap();
    /// let y = y.to_vec::<f64>().unwrap();
    /// assert!(y.iter().zip([0.0, 1.0, 0.0, 1.5]).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    pub fn batch_norm_add_relu_train(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
        residual: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        self.batch_norm_train_act(weight, bias, eps, Act::AddRelu(residual))
    }

    /// Batch norm in training mode, followed by `act`.
    fn batch_norm_train_act(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
        act: Act<'_>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = act.op();
        let c = check(op, self, &[("weight", weight), ("bias", bias)])?;
        if self.numel() == 0 {
            return Err(Error::invalid(op, format!("needs a non-empty input, got {:?}", self.shape())));
        }
        let residual = match act {
            Act::AddRelu(r) => {
                if r.shape() != self.shape() {
                    return Err(Error::shape(op, self.shape(), r.shape()));
                }
                check_like(op, self, r)?;
                Some(r)
            }
            _ => None,
        };
        // One profiled region: the two kernels and the small per-channel vector ops between them.
        let (y, mean, var, inv, gate) = crate::profile::forward(op, self.device(), || -> Result<_> {
            let (ms, vs) = self.storage().channel_stats(self.layout())?;
            let (mean, var) = (vector(ms, c), vector(vs, c));
            no_grad(|| {
                let inv = var.add_scalar(eps)?.rsqrt()?;
                let scale = match weight {
                    Some(w) => inv.mul(&w.detach())?,
                    None => inv.clone(),
                };
                let mut shift = mean.mul(&scale)?.neg()?;
                if let Some(b) = bias {
                    shift = shift.add(&b.detach())?;
                }
                let (sc, sh) = (exact(&scale)?, exact(&shift)?);
                let y = match act {
                    Act::None => self.storage().channel_fma(self.layout(), &sc, &sh, None)?,
                    Act::Relu => self.storage().channel_fma_relu(self.layout(), &sc, &sh, None, false)?,
                    Act::Relu6 => self.storage().channel_fma_relu(self.layout(), &sc, &sh, None, true)?,
                    Act::AddRelu(r) => self.storage().channel_fma_relu(
                        self.layout(),
                        &sc,
                        &sh,
                        Some((&r.storage(), r.layout())),
                        false,
                    )?,
                };
                Ok((like(y, self), mean, var, inv, (sc, sh)))
            })
        })?;
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        inputs.extend(residual);
        let (x, w) = (self.clone(), weight.cloned());
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        let (saved_mean, saved_inv) = (mean.clone(), inv);
        // The activation's mask: after a residual add, the output before recording (no graph
        // node, so no cycle); without one, recomputed from `x` and the forward pass's scale and
        // shift.
        let mask = match act {
            Act::None => Mask::None,
            Act::Relu => Mask::Gate(gate, false),
            Act::Relu6 => Mask::Gate(gate, true),
            Act::AddRelu(_) => Mask::Output(y.clone()),
        };
        let y = record_fn(y, op, &inputs, move || {
            move |g: &Tensor| {
                // The activation's second derivative is zero: a constant mask is exact to any
                // order.
                let masked = match &mask {
                    Mask::Output(y) if is_grad_enabled() => Some(g.mul(&y.mask_scalar(0.0, CmpOp::Gt)?)?),
                    Mask::Output(y) => Some(g.binary_raw(y, relu_backward())?),
                    Mask::Gate((sc, sh), relu6) if is_grad_enabled() => {
                        let pre = like(x.storage().channel_fma(x.layout(), sc, sh, None)?, &x);
                        let mut m = pre.mask_scalar(0.0, CmpOp::Gt)?;
                        if *relu6 {
                            m = m.mul(&pre.mask_scalar(6.0, CmpOp::Lt)?)?;
                        }
                        Some(g.mul(&m)?)
                    }
                    // Fused below: the gated kernels mask `g` as they read it.
                    Mask::Gate(..) | Mask::None => None,
                };
                let g = masked.as_ref().unwrap_or(g);
                let (gx, gw, gb) = match &mask {
                    _ if is_grad_enabled() => bn_backward_composite(&x, w.as_ref(), g, eps)?,
                    Mask::Gate(gate, relu6) => {
                        bn_backward_fused(&x, w.as_ref(), g, &saved_mean, &saved_inv, Some((gate, *relu6)))?
                    }
                    _ => bn_backward_fused(&x, w.as_ref(), g, &saved_mean, &saved_inv, None)?,
                };
                let mut grads = affine_grads(gx, gw, gb, has_w, has_b);
                if matches!(mask, Mask::Output(_)) {
                    grads.push(Some(g.clone()));
                }
                Ok(grads)
            }
        });
        Ok((y, mean, var))
    }

    /// `x · scale_c + shift_c` over an `[N, C, ...]` input with `[C]` vectors `scale` and `shift`
    /// (batch normalization with fixed statistics, folded). Differentiable in all three, to any
    /// order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let s = Tensor::from_vec(vec![10.0f64, -1.0], &[2]).unwrap();
    /// let b = Tensor::from_vec(vec![0.5f64, 0.0], &[2]).unwrap();
    /// assert_eq!(x.channel_affine(&s, &b).unwrap().to_vec::<f64>().unwrap(), vec![10.5, -2.0, 30.5, -4.0]);
    /// ```
    pub fn channel_affine(&self, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        let op = "channel_affine";
        let c = check(op, self, &[("scale", Some(scale)), ("shift", Some(shift))])?;
        let (sc, sh) = (exact(scale)?, exact(shift)?);
        let y =
            crate::profile::forward(op, self.device(), || self.storage().channel_fma(self.layout(), &sc, &sh, None))?;
        let y = like(y, self);
        let (x, sc) = (self.clone(), scale.clone());
        Ok(record_fn(y, op, &[self, scale, shift], move || {
            move |g: &Tensor| {
                let zeros = Tensor::zeros_like(&sc)?;
                if is_grad_enabled() {
                    let (axes, _) = axes_and_bshape(&x);
                    let gx = g.channel_affine(&sc, &zeros)?;
                    let gs = g.mul(&x)?.sum(&axes, false)?;
                    let gb = g.sum(&axes, false)?;
                    return Ok(vec![Some(gx), Some(gs), Some(gb)]);
                }
                let (sg, sgx) = g.storage().channel_sums(g.layout(), &x.storage(), x.layout(), &exact(&zeros)?)?;
                let gx = like(g.storage().channel_fma(g.layout(), &exact(&sc)?, &exact(&zeros)?, None)?, g);
                Ok(vec![Some(gx), Some(vector(sgx, c)), Some(vector(sg, c))])
            }
        }))
    }

    /// `relu(x · scale_c + shift_c)`, or `relu(x · scale_c + shift_c + residual)`: batch
    /// normalization with fixed statistics followed by ReLU (or by a residual add and ReLU), the
    /// evaluation-mode tail of a convolution block. When no gradient is recorded it is one pass
    /// (the backend's `channel_fma_relu`); otherwise it is [`Tensor::channel_affine`], the add and
    /// [`Tensor::relu`], differentiable in every input.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let s = Tensor::from_vec(vec![10.0f64, -1.0], &[2]).unwrap();
    /// let b = Tensor::from_vec(vec![0.5f64, 0.0], &[2]).unwrap();
    /// let r = Tensor::from_vec(vec![0.0f64, 3.0, -40.0, 1.0], &[2, 2]).unwrap();
    /// let y = autograd::no_grad(|| x.channel_affine_relu(&s, &b, Some(&r))).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![10.5, 1.0, 0.0, 0.0]);
    /// ```
    pub fn channel_affine_relu(&self, scale: &Tensor, shift: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        self.channel_affine_act("channel_affine_relu", scale, shift, residual, false)
    }

    /// `relu6(x · scale_c + shift_c)`: batch normalization with fixed statistics followed by
    /// ReLU6 (MobileNetV2's evaluation-mode tail), one pass when no gradient is recorded, as
    /// [`Tensor::channel_affine_relu`]; otherwise [`Tensor::channel_affine`] and
    /// [`Tensor::relu6`], differentiable in every input.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let s = Tensor::from_vec(vec![10.0f64, -1.0], &[2]).unwrap();
    /// let b = Tensor::from_vec(vec![-5.5f64, 7.0], &[2]).unwrap();
    /// let y = autograd::no_grad(|| x.channel_affine_relu6(&s, &b)).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![4.5, 5.0, 6.0, 3.0]);
    /// ```
    pub fn channel_affine_relu6(&self, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        self.channel_affine_act("channel_affine_relu6", scale, shift, None, true)
    }

    /// [`Tensor::channel_affine_relu`], or with ReLU6 when `relu6`, named `op` in errors.
    fn channel_affine_act(
        &self,
        op: &'static str,
        scale: &Tensor,
        shift: &Tensor,
        residual: Option<&Tensor>,
        relu6: bool,
    ) -> Result<Tensor> {
        check(op, self, &[("scale", Some(scale)), ("shift", Some(shift))])?;
        if let Some(r) = residual {
            if r.shape() != self.shape() {
                return Err(Error::shape(op, self.shape(), r.shape()));
            }
            check_like(op, self, r)?;
        }
        let recorded = is_grad_enabled()
            && (self.requires_grad()
                || scale.requires_grad()
                || shift.requires_grad()
                || residual.is_some_and(|r| r.requires_grad()));
        if recorded {
            let y = self.channel_affine(scale, shift)?;
            let y = match residual {
                Some(r) => y.add(r)?,
                None => y,
            };
            return if relu6 { y.relu6() } else { y.relu() };
        }
        let (sc, sh) = (exact(scale)?, exact(shift)?);
        let r = residual.map(|r| (r.storage(), r.layout()));
        let y = crate::profile::forward(op, self.device(), || {
            self.storage().channel_fma_relu(self.layout(), &sc, &sh, r.as_ref().map(|(s, l)| (&**s, *l)), relu6)
        })?;
        Ok(like(y, self))
    }
}

/// The gradients of a normalization's inputs `[x, weight?, bias?]`, in the order they were
/// recorded (batch norm and layer norm).
pub(super) fn affine_grads(gx: Tensor, gw: Tensor, gb: Tensor, has_w: bool, has_b: bool) -> Vec<Option<Tensor>> {
    let mut out = vec![Some(gx)];
    if has_w {
        out.push(Some(gw));
    }
    if has_b {
        out.push(Some(gb));
    }
    out
}

/// First-order batch-norm gradients from the fused kernels (no graph): with `M = N·S`,
/// `Σg` and `Σg(x−μ)` per channel, `gx = w·inv·(g − Σg/M − x̂·Σg x̂/M)` as one
/// `channel_fma`, `gw = inv·Σg(x−μ)`, `gb = Σg`. With a `gate` (the forward pass's scale and
/// shift before a ReLU, or a ReLU6 when its flag is set), `g` is first masked where
/// `p = x·scale + shift ≤ 0` (or `p ≥ 6`), inside the kernels.
fn bn_backward_fused(
    x: &Tensor,
    w: Option<&Tensor>,
    g: &Tensor,
    mean: &Tensor,
    inv: &Tensor,
    gate: Option<(&(Storage, Storage), bool)>,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = x.shape()[1];
    let m = (x.numel() / c) as f64;
    let (gs, xs) = (g.storage(), x.storage());
    let (sg, sgx) = match gate {
        Some(((a, d), relu6)) => gs.channel_sums_gated(g.layout(), &xs, x.layout(), &exact(mean)?, (a, d), relu6)?,
        None => gs.channel_sums(g.layout(), &xs, x.layout(), &exact(mean)?)?,
    };
    let (sg, sgx) = (vector(sg, c), vector(sgx, c));
    let wi = match w {
        Some(w) => inv.mul(&w.detach())?,
        None => inv.clone(),
    };
    // gx = g·wi + x·b + d with b = −wi·inv²·Σg(x−μ)/M and d = −wi·Σg/M − μ·b.
    let b = wi.mul(&inv.square()?)?.mul(&sgx)?.mul_scalar(-1.0 / m)?;
    let d = wi.mul(&sg)?.mul_scalar(-1.0 / m)?.sub(&mean.mul(&b)?)?;
    let (b, d, wi) = (exact(&b)?, exact(&d)?, exact(&wi)?);
    let gx = match gate {
        Some(((a, dd), relu6)) => xs.channel_fma_gated(x.layout(), &b, &d, (&gs, g.layout(), &wi), (a, dd), relu6)?,
        None => xs.channel_fma(x.layout(), &b, &d, Some((&gs, g.layout(), &wi)))?,
    };
    Ok((like(gx, x), sgx.mul(inv)?, sg))
}

/// Batch-norm gradients from differentiable tensor ops (recorded when `create_graph` is on):
/// the statistics are recomputed from `x`, so the result carries its dependence on `x` too.
fn bn_backward_composite(x: &Tensor, w: Option<&Tensor>, g: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    let (axes, bshape) = axes_and_bshape(x);
    let mean = x.mean(&axes, true)?;
    let inv = x.var(&axes, 0, true)?.add_scalar(eps)?.rsqrt()?;
    let xhat = x.sub(&mean)?.mul(&inv)?;
    let gb = g.sum(&axes, false)?;
    let gw = g.mul(&xhat)?.sum(&axes, false)?;
    let gxhat = match w {
        Some(w) => g.mul(&w.reshape_to(&bshape)?)?,
        None => g.clone(),
    };
    let centered = gxhat.sub(&gxhat.mean(&axes, true)?)?.sub(&xhat.mul(&gxhat.mul(&xhat)?.mean(&axes, true)?)?)?;
    Ok((centered.mul(&inv)?, gw, gb))
}
