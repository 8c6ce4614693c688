//! LSQ's fake quantization as one fused op, [`Tensor::lsq_quantize`]: quantization-aware
//! training's activation quantizer without a temporary per elementary step.
//!
//! As a composite of tensor ops (divide, clamp, round with a straight-through gradient,
//! multiply) it takes five passes forward and as many backward, each with a temporary the size
//! of the activations, and the step's gradient comes out of the division's backward, which
//! reduces a broadcast. Here the forward is one pass ([`backends::Fused::lsq_quantize`]) and
//! the backward one pass that writes the input gradient and sums the step's
//! ([`backends::Fused::lsq_quantize_backward`]). A backward pass recorded for higher-order
//! gradients (`create_graph`) builds the same gradients from differentiable tensor ops.

use backends::ops::CmpOp;
use backends::Layout;

use crate::graph::record_fn;
use crate::ops::conv::same_dtype_device;
use crate::{is_grad_enabled, Error, Result, Tensor};

impl Tensor {
    /// LSQ's fake quantization (Esser et al. 2020) of `self` with the step `step` (a
    /// one-element tensor of `self`'s dtype and device): `round(clamp(self / step, lo, hi)) ·
    /// step`, the rounding half to even and passed straight through. Gradients, with `v =
    /// self / step`: to `self`, 1 where `lo ≤ v ≤ hi` and 0 elsewhere; to `step`, the sum of
    /// the output gradient times `round(v) − v` inside the range, `lo` below it and `hi` above
    /// it (LSQ's gradient scale is the caller's: scale `step` before the call).
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![0.26f64, -1.0, 3.0], &[3]).unwrap().requires_grad_();
    /// let s = Tensor::from_vec(vec![0.1f64], &[1]).unwrap().requires_grad_();
    /// let y = x.lsq_quantize(&s, 0.0, 25.0).unwrap();
    /// let v = y.to_vec::<f64>().unwrap();
    /// assert!((v[0] - 0.3).abs() < 1e-12 && v[1] == 0.0 && (v[2] - 2.5).abs() < 1e-12);
    /// y.sum_all().unwrap().backward().unwrap();
    /// // (round(2.6) − 2.6) + (lo = 0) + (hi = 25).
    /// assert!((s.grad().unwrap().to_vec::<f64>().unwrap()[0] - 25.4).abs() < 1e-9);
    /// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0]);
    /// ```
    pub fn lsq_quantize(&self, step: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
        const OP: &str = "lsq_quantize";
        if step.numel() != 1 {
            return Err(Error::invalid(OP, format!("a step of shape {:?}: expected one element", step.shape())));
        }
        same_dtype_device(OP, self, step)?;
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType { op: OP, dtype: self.dtype() });
        }
        // The step as a fresh one-element buffer (a view may sit at an offset of a larger one).
        let one = Layout::contiguous(&[1]);
        let step_buf = Tensor::from_storage(step.storage().contiguous(step.layout())?, one);
        let y = crate::profile::forward(OP, self.device(), || {
            self.storage().lsq_quantize(self.layout(), &step_buf.storage(), (lo, hi))
        })?;
        let y = Tensor::from_storage(y, Layout::contiguous(self.shape()));
        let (x, s) = (self.clone(), step.clone());
        Ok(record_fn(y, OP, &[self, step], move || {
            move |g: &Tensor| {
                if is_grad_enabled() {
                    return lsq_gradients_differentiable(g, &x, &s, lo, hi);
                }
                let (gx, gs) = g.storage().lsq_quantize_backward(
                    g.layout(),
                    &x.storage(),
                    x.layout(),
                    &step_buf.storage(),
                    (lo, hi),
                )?;
                let gx = Tensor::from_storage(gx, Layout::contiguous(x.shape()));
                let gs = Tensor::from_storage(gs, Layout::contiguous(&[1])).reshape(&signed(s.shape()))?;
                Ok(vec![Some(gx), Some(gs)])
            }
        }))
    }
}

/// `shape` as the `isize` list [`Tensor::reshape`] takes.
fn signed(shape: &[usize]) -> Vec<isize> {
    shape.iter().map(|&d| d as isize).collect()
}

/// [`Tensor::lsq_quantize`]'s gradients from differentiable tensor ops (`create_graph`): the
/// range masks are constants, `round(v)` is a constant, `v = x / s` is differentiable.
fn lsq_gradients_differentiable(g: &Tensor, x: &Tensor, s: &Tensor, lo: f64, hi: f64) -> Result<Vec<Option<Tensor>>> {
    let s1 = s.reshape(&[])?;
    let v = x.div(&s1)?;
    let vd = v.detach();
    let (below, above) = (vd.mask_scalar(lo, CmpOp::Lt)?, vd.mask_scalar(hi, CmpOp::Gt)?);
    let inside = vd.mask_scalar(lo, CmpOp::Ge)?.mul(&vd.mask_scalar(hi, CmpOp::Le)?)?;
    let term = vd.round()?.sub(&v)?.mul(&inside)?.add(&below.mul_scalar(lo)?.add(&above.mul_scalar(hi)?)?)?;
    let gs = g.mul(&term)?.sum_all()?.reshape(&signed(s.shape()))?;
    Ok(vec![Some(g.mul(&inside)?), Some(gs)])
}

#[cfg(test)]
mod tests {
    use crate::strategies::*;
    use crate::{gradcheck, GradcheckOptions, Tensor};
    use proptest::prelude::*;

    /// The op written as the composite it fuses: divide, clamp, round passed straight through,
    /// multiply.
    fn composite(x: &Tensor, s: &Tensor, lo: f64, hi: f64) -> Tensor {
        let v = x.div(&s.reshape(&[]).unwrap()).unwrap().clamp(lo, hi).unwrap();
        let q = v.round().unwrap().detach().add(&v.sub(&v.detach()).unwrap()).unwrap();
        q.mul(&s.reshape(&[]).unwrap()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Values and both gradients equal the composite's on random shapes and non-contiguous
        /// inputs, f64, with a weighted loss (so every element's gradient counts).
        #[test]
        fn matches_the_composite(
            (x, w) in shape(3, 5).prop_flat_map(|sh| (f64_tensor(sh.clone(), -3.0, 3.0), f64_tensor(sh, -1.0, 1.0))),
            s in 0.05f64..0.7,
            signed in any::<bool>(),
        ) {
            let (lo, hi) = if signed { (-8.0, 7.0) } else { (0.0, 15.0) };
            let x = x.requires_grad_();
            let s1 = Tensor::from_vec(vec![s], &[1]).unwrap().requires_grad_();
            let s2 = Tensor::from_vec(vec![s], &[1]).unwrap().requires_grad_();
            let x2 = x.detach().requires_grad_();
            let y = x.lsq_quantize(&s1, lo, hi).unwrap();
            let want = composite(&x2, &s2, lo, hi);
            prop_assert_eq!(y.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
            y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
            want.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
            for (a, b) in x.grad().unwrap().to_vec::<f64>().unwrap().iter().zip(x2.grad().unwrap().to_vec::<f64>().unwrap()) {
                prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{} vs {}", a, b);
            }
            let (a, b) = (s1.grad().unwrap().item().unwrap(), s2.grad().unwrap().item().unwrap());
            prop_assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{} vs {}", a, b);
        }
    }

    /// Inside the range the gradients are straight-through estimates, not derivatives (the
    /// composite test above pins them); outside it the op is `lo·s` or `hi·s`, truly
    /// differentiable, so the f64 gradcheck of both inputs runs on saturated values. Second
    /// order through `create_graph` against the closed form.
    #[test]
    fn gradchecks() {
        let sat = Tensor::from_vec(vec![5.0f64, -4.0, 2.9, -3.3, 7.5, -1.6], &[2, 3]).unwrap();
        let s = Tensor::from_vec(vec![0.3f64], &[1]).unwrap();
        let opts = GradcheckOptions::default();
        gradcheck(|t| t[0].lsq_quantize(&t[1], -4.0, 3.0).map(|y| y.mul(&y).unwrap()), &[sat, s.clone()], &opts)
            .unwrap();
        let x = Tensor::from_vec(vec![0.13f64, -0.71, 2.9, 0.46, -3.3, 1.07], &[2, 3]).unwrap();
        // Second order: d/dx of (dL/ds), with L = Σ (y · x).
        let xr = x.requires_grad_();
        let sr = s.requires_grad_();
        let y = xr.lsq_quantize(&sr, -4.0, 3.0).unwrap().mul(&xr).unwrap().sum_all().unwrap();
        let opts = crate::BackwardOptions { create_graph: true, ..Default::default() };
        let grads = y.backward_with(opts).unwrap();
        let gs = grads.get(&sr).unwrap();
        assert!(gs.requires_grad(), "the step's gradient carries a graph under create_graph");
        // d/dx_i of Σ_j x_j · (round(v_j) − v_j) inside = (round(v_i) − v_i) − x_i / s.
        let gxs = gs.sum_all().unwrap().backward().unwrap();
        let got = gxs.get(&xr).unwrap().to_vec::<f64>().unwrap();
        for (i, &xi) in [0.13f64, -0.71, 2.9, 0.46, -3.3, 1.07].iter().enumerate() {
            let v: f64 = xi / 0.3;
            let want = if v < -4.0 {
                -4.0
            } else if v > 3.0 {
                3.0
            } else {
                v.round_ties_even() - v - xi / 0.3
            };
            assert!((got[i] - want).abs() < 1e-9, "{i}: {} vs {want}", got[i]);
        }
    }

    #[test]
    fn bad_steps_are_errors() {
        let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
        let two = Tensor::from_vec(vec![0.5f32, 0.5], &[2]).unwrap();
        assert!(x.lsq_quantize(&two, -1.0, 1.0).unwrap_err().to_string().contains("one element"));
        let f64_step = Tensor::from_vec(vec![0.5f64], &[1]).unwrap();
        assert!(x.lsq_quantize(&f64_step, -1.0, 1.0).is_err());
        let one = Tensor::from_vec(vec![0.5f32], &[1]).unwrap();
        assert!(x.lsq_quantize(&one, 1.0, -1.0).is_err());
    }
}
