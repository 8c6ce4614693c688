//! Binary cross-entropy over logits (`torch.nn.functional.binary_cross_entropy_with_logits`).

use autograd::{Error, Result, Tensor};

use super::Reduction;

/// `−[y·log σ(x) + (1 − y)·log(1 − σ(x))]` per element, reduced; `target` holds probabilities in
/// `[0, 1]` with the logits' shape.
///
/// Computed as `softplus(x) − x·y`, with `softplus(x) = log(1 + eˣ)` taken as a log-sum-exp of
/// `(0, x)` through `log_softmax`: stable for logits of any size and smooth everywhere (its
/// derivative is exactly `σ(x) − y`, also at `x = 0`), so second derivatives work too.
///
/// ```
/// use layers::loss::{bce_with_logits, Reduction};
/// use autograd::Tensor;
/// let x = Tensor::from_vec(vec![0.0f64, 200.0, -200.0], &[3]).unwrap();
/// let y = Tensor::from_vec(vec![1.0f64, 1.0, 1.0], &[3]).unwrap();
/// let l = bce_with_logits(&x, &y, Reduction::None).unwrap().to_vec::<f64>().unwrap();
/// assert!((l[0] - 2f64.ln()).abs() < 1e-15 && l[1] == 0.0 && l[2] == 200.0);
/// ```
pub fn bce_with_logits(logits: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    const OP: &str = "bce_with_logits";
    if logits.shape() != target.shape() {
        return Err(Error::shape(OP, logits.shape(), target.shape()));
    }
    if !logits.dtype().is_float() || logits.dtype() != target.dtype() {
        return Err(Error::DTypeMismatch { op: OP, lhs: logits.dtype(), rhs: target.dtype() });
    }
    let axis = logits.ndim();
    let zeros = Tensor::full_on(logits.shape(), 0.0, logits.dtype(), logits.device())?;
    // log_softmax([0, x])[0] = −log(1 + eˣ) = −softplus(x).
    let softplus = Tensor::stack(&[&zeros, logits], axis)?.log_softmax(axis)?.select(axis, 0)?.neg()?;
    reduction.apply(softplus.sub(&logits.mul(target)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_and_checks_inputs() {
        let xs = [-3.0f64, -0.5, 0.0, 0.7, 4.0];
        let ys = [0.0f64, 1.0, 0.3, 1.0, 0.0];
        let x = Tensor::from_slice(&xs, &[5]).unwrap();
        let y = Tensor::from_slice(&ys, &[5]).unwrap();
        let got = bce_with_logits(&x, &y, Reduction::None).unwrap().to_vec::<f64>().unwrap();
        for i in 0..5 {
            let s = 1.0 / (1.0 + (-xs[i]).exp());
            let expect = -(ys[i] * s.ln() + (1.0 - ys[i]) * (1.0 - s).ln());
            assert!((got[i] - expect).abs() < 1e-12, "{i}: {} vs {expect}", got[i]);
        }
        let g = {
            let x = x.detach().requires_grad_();
            bce_with_logits(&x, &y, Reduction::Sum).unwrap().backward().unwrap().get(&x).unwrap().to_vec::<f64>()
        }
        .unwrap();
        assert!((g[2] - (0.5 - 0.3)).abs() < 1e-15, "derivative at 0 is σ(0) − y: {}", g[2]);
        let e = bce_with_logits(&x, &y.reshape_to(&[5, 1]).unwrap(), Reduction::Mean).unwrap_err().to_string();
        assert!(e.contains("bce_with_logits"), "{e}");
        let e = bce_with_logits(&x, &y.to_dtype(autograd::DType::F32).unwrap(), Reduction::Mean).unwrap_err();
        assert!(e.to_string().contains("bce_with_logits"), "{e}");
    }
}
