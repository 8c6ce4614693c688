//! Layer normalization as one fused op, [`Tensor::layer_norm`].
//!
//! Forward and first-order backward run the backend's row kernels
//! ([`backends::Backend::layer_norm`] and `layer_norm_backward`): the statistics, the normalized
//! and scaled output, and all three gradients without temporaries the size of the input. A
//! backward pass recorded for higher-order gradients (`create_graph`) builds its gradients from
//! differentiable tensor ops instead, as batch norm does.

use backends::Layout;

use super::batch_norm::{affine_grads, check_like, exact};
use crate::graph::record_fn;
use crate::{is_grad_enabled, Error, Result, Tensor};

/// Checks the trailing axes of `x` against `normalized_shape` and the affine tensors against it.
fn check(x: &Tensor, normalized_shape: &[usize], params: &[(&str, Option<&Tensor>)]) -> Result<usize> {
    const OP: &str = "layer_norm";
    let k = normalized_shape.len();
    if k == 0 || x.ndim() < k || x.shape()[x.ndim() - k..] != *normalized_shape {
        return Err(Error::invalid(
            OP,
            format!("input {:?} does not end in the normalized shape {normalized_shape:?}", x.shape()),
        ));
    }
    for (what, p) in params {
        let Some(p) = p else { continue };
        if p.shape() != normalized_shape {
            return Err(Error::invalid(
                OP,
                format!("{what} must have the normalized shape {normalized_shape:?}, got {:?}", p.shape()),
            ));
        }
        check_like(OP, x, p)?;
    }
    let d: usize = normalized_shape.iter().product();
    if d == 0 {
        return Err(Error::invalid(OP, format!("normalized shape {normalized_shape:?} has no elements")));
    }
    Ok(d)
}

impl Tensor {
    /// Layer normalization (`torch.nn.functional.layer_norm`) over the trailing axes given by
    /// `normalized_shape`: `y = (x − mean) / sqrt(var + eps) · weight + bias`, with the mean and
    /// biased variance of each row of those axes. `weight` and `bias` are optional tensors of the
    /// normalized shape. Differentiable in all three, to any order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 10.0, 30.0], &[2, 2]).unwrap();
    /// let y = x.layer_norm(&[2], None, None, 0.0).unwrap().to_vec::<f64>().unwrap();
    /// assert!(y.iter().zip([-1.0, 1.0, -1.0, 1.0]).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        let d = check(self, normalized_shape, &[("weight", weight), ("bias", bias)])?;
        let (ws, bs) = (weight.map(exact).transpose()?, bias.map(exact).transpose()?);
        let (y, mean, rstd) = crate::profile::forward(OP, self.device(), || {
            self.storage().layer_norm(self.layout(), d, ws.as_ref(), bs.as_ref(), eps)
        })?;
        let y = Tensor::from_storage(y, Layout::contiguous(self.shape()));
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let (x, w, shape) = (self.clone(), weight.cloned(), normalized_shape.to_vec());
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        Ok(record_fn(y, OP, &inputs, move || {
            move |g: &Tensor| {
                let (gx, gw, gb) = if is_grad_enabled() {
                    ln_backward_composite(&x, w.as_ref(), g, &shape, eps)?
                } else {
                    let ws = w.as_ref().map(exact).transpose()?;
                    let (gx, gw, gb) = g.storage().layer_norm_backward(
                        g.layout(),
                        &x.storage(),
                        x.layout(),
                        d,
                        &mean,
                        &rstd,
                        ws.as_ref(),
                    )?;
                    let param = |s| Tensor::from_storage(s, Layout::contiguous(&shape));
                    (Tensor::from_storage(gx, Layout::contiguous(x.shape())), param(gw), param(gb))
                };
                Ok(affine_grads(gx, gw, gb, has_w, has_b))
            }
        }))
    }
}

/// Layer-norm gradients from differentiable tensor ops (recorded when `create_graph` is on);
/// the statistics are recomputed from `x` so that the result carries its dependence on `x`.
fn ln_backward_composite(
    x: &Tensor,
    w: Option<&Tensor>,
    g: &Tensor,
    shape: &[usize],
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let nd = x.ndim();
    let axes: Vec<usize> = (nd - shape.len()..nd).collect();
    let lead: Vec<usize> = (0..nd - shape.len()).collect();
    let mean = x.mean(&axes, true)?;
    let rstd = x.var(&axes, 0, true)?.add_scalar(eps)?.rsqrt()?;
    let xhat = x.sub(&mean)?.mul(&rstd)?;
    let over_rows = |t: Tensor| if lead.is_empty() { Ok(t) } else { t.sum(&lead, false) };
    let gb = over_rows(g.clone())?;
    let gw = over_rows(g.mul(&xhat)?)?;
    let gh = match w {
        Some(w) => g.mul(w)?,
        None => g.clone(),
    };
    let centered = gh.sub(&gh.mean(&axes, true)?)?.sub(&xhat.mul(&gh.mul(&xhat)?.mean(&axes, true)?)?)?;
    Ok((centered.mul(&rstd)?, gw, gb))
}
