//! Helpers shared by the gradient tests.
#![allow(dead_code)]

use autograd::{BackwardOptions, DType, Result, Tensor};

/// `Σ_i sum((df/dx_i)²)` with the gradients recorded (`create_graph`), so that `gradcheck`
/// differentiates through the backward pass (second order). Recording is forced on, since
/// gradcheck evaluates its finite differences under `no_grad`.
pub fn grad_norm(xs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) -> Result<Tensor> {
    autograd::enable_grad(|| {
        let xs: Vec<Tensor> =
            xs.iter().map(|x| if x.requires_grad() { x.clone() } else { x.detach().requires_grad_() }).collect();
        let y = f(&xs)?;
        let g = y.backward_with(BackwardOptions { create_graph: true, ..Default::default() })?;
        let mut total: Option<Tensor> = None;
        for x in &xs {
            if let Some(gx) = g.get(x) {
                let s = gx.square()?.sum_all()?;
                total = Some(match total {
                    Some(t) => t.add(&s)?,
                    None => s,
                });
            }
        }
        Ok(total.expect("some gradient"))
    })
}

/// A fixed random f64 tensor (standard normal) of `shape`.
pub fn randn64(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, seed).unwrap().to_dtype(DType::F64).unwrap()
}

/// Asserts that two f64 vectors agree within f32 precision (relative to the larger magnitude).
pub fn assert_f32_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (p, q)) in a.iter().zip(b).enumerate() {
        assert!((p - q).abs() <= 1e-4 * scale, "{what}: element {i}: f64 {p} vs f32 {q}");
    }
}

/// `gradcheck` of `f` at `inputs` as a proptest assertion naming `name` and the input shapes.
pub fn prop_gradcheck(
    name: &str,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
) -> std::result::Result<(), proptest::test_runner::TestCaseError> {
    let r = autograd::gradcheck(f, inputs, &autograd::GradcheckOptions::default());
    proptest::prop_assert!(
        r.is_ok(),
        "{name} on {:?}: {}",
        inputs.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>(),
        r.unwrap_err()
    );
    Ok(())
}

/// Runs `op(x, w, b)` in f32 and in f64 (all three converted and requiring gradients), back-
/// propagates `Σ op(x, w, b)·r`, and asserts that the outputs and the three gradients agree
/// within 1e-4 of the largest f64 magnitude (the normalization ops' f32 check).
pub fn prop_f32_agrees_with_f64(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    r: &Tensor,
    op: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
) -> std::result::Result<(), proptest::test_runner::TestCaseError> {
    let run = |dt: DType| -> Result<Vec<f64>> {
        let [x, w, b] = [x, w, b].map(|t| t.to_dtype(dt).map(Tensor::requires_grad_));
        let (x, w, b) = (x?, w?, b?);
        let y = op(&x, &w, &b)?;
        let g = y.mul(&r.to_dtype(dt)?)?.sum_all()?.backward()?;
        let mut out = y.to_f64_vec()?;
        for t in [&x, &w, &b] {
            out.extend(g.get(t).expect("a gradient").to_f64_vec()?);
        }
        Ok(out)
    };
    let (a, e) = (run(DType::F32).unwrap(), run(DType::F64).unwrap());
    let scale = e.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (a, e) in a.iter().zip(&e) {
        proptest::prop_assert!((a - e).abs() < 1e-4 * scale, "{a} vs {e}");
    }
    Ok(())
}

/// A fixed weighting of an output of `shape` (values in about [-1.6, 1.6]), so that the checked
/// scalar `Σ y·r` has a non-trivial gradient (`Σ y` alone is constant under normalization).
pub fn weighting(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| ((i * 7919 % 23) as f64 - 11.0) / 7.0).collect();
    Tensor::from_vec(v, shape).unwrap()
}
