//! Spectral batch norm (`spectral_batch_norm_train`, `spectral_batch_norm_eval`): the fused
//! closed form against a literal `rfft2` / `irfft2` implementation of Algorithm 1 (odd and even
//! sizes, strided inputs), f64 gradchecks under proptest in both modes, second order through the
//! recorded backward, f32 agreement, and errors. (The NumPy reference of the whole layer is in
//! `methods/src/sbn/tests/`.)

mod common;

use autograd::strategies::{f64_tensor, make_view, view_kind};
use autograd::{DType, Result, Tensor};
use common::{grad_norm, prop_f32_agrees_with_f64, prop_gradcheck as grad_ok};
use proptest::prelude::*;

/// `[B, C, H, W]` with B·H·(W/2+1) ≥ 2 complex samples per channel.
fn sbn_shape() -> impl Strategy<Value = Vec<usize>> {
    (1usize..4, 1usize..3, 1usize..5, 1usize..6)
        .prop_map(|(b, c, h, w)| vec![if b * h * (w / 2 + 1) < 2 { b + 1 } else { b }, c, h, w])
}

/// Algorithm 1 literally, from `rfft2`, complex statistics over batch and bins and `irfft2`:
/// `(y, mean_re, mean_im, var)`.
fn literal(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let (c, h, wd) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let xh = x.rfft2()?; // [B, C, H, Wr, 2]
    let mean = xh.mean(&[0, 2, 3], true)?;
    let d = xh.sub(&mean)?;
    let var = d.square()?.sum(&[4], true)?.mean(&[0, 2, 3], true)?;
    let mut yh = d.div(&var.add_scalar(eps)?.sqrt()?)?;
    if let Some(w) = w {
        yh = yh.mul(&w.reshape_to(&[1, c, 1, 1, 1])?)?;
    }
    if let Some(b) = b {
        let b2 = Tensor::stack(&[b, &Tensor::zeros_like(b)?], 1)?.reshape_to(&[1, c, 1, 1, 2])?;
        yh = yh.add(&b2)?;
    }
    let y = yh.irfft2((h, wd))?;
    let mean = mean.reshape_to(&[c, 2])?;
    Ok((y, mean.select(1, 0)?, mean.select(1, 1)?, var.reshape_to(&[c])?))
}

/// Algorithm 1's steps 4-6 literally with fixed statistics.
fn literal_eval(x: &Tensor, stats: [&Tensor; 3], w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    let [mr, mi, var] = stats;
    let (c, h, wd) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let mean = Tensor::stack(&[mr, mi], 1)?.reshape_to(&[1, c, 1, 1, 2])?;
    let mut yh = x.rfft2()?.sub(&mean)?.div(&var.add_scalar(eps)?.sqrt()?.reshape_to(&[1, c, 1, 1, 1])?)?;
    if let Some(w) = w {
        yh = yh.mul(&w.reshape_to(&[1, c, 1, 1, 1])?)?;
    }
    if let Some(b) = b {
        yh = yh.add(&Tensor::stack(&[b, &Tensor::zeros_like(b)?], 1)?.reshape_to(&[1, c, 1, 1, 2])?)?;
    }
    yh.irfft2((h, wd))
}

fn close(a: &Tensor, b: &Tensor, tol: f64) -> std::result::Result<(), TestCaseError> {
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    prop_assert_eq!(a.len(), b.len());
    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
        prop_assert!((p - q).abs() <= tol * (1.0 + q.abs()), "element {}: {} vs {}", i, p, q);
    }
    Ok(())
}

/// `[C]` vectors for γ (around 1), β and statistics.
fn vectors(c: usize) -> impl Strategy<Value = (Tensor, Tensor, Tensor, Tensor, Tensor)> {
    (
        f64_tensor(vec![c], 0.5, 1.5),
        f64_tensor(vec![c], -1.0, 1.0),
        f64_tensor(vec![c], -2.0, 2.0),
        f64_tensor(vec![c], -2.0, 2.0),
        f64_tensor(vec![c], 0.5, 4.0),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn train_matches_the_literal_algorithm(
        (x, v) in sbn_shape().prop_flat_map(|s| (f64_tensor(s.clone(), -2.0, 3.0), vectors(s[1]))),
        kind in view_kind(),
    ) {
        let x = make_view(x.shape(), kind, &x.to_f64_vec().unwrap());
        let (y, mr, mi, var) = x.spectral_batch_norm_train(Some(&v.0), Some(&v.1), 1e-5).unwrap();
        let (ye, mre, mie, vare) = literal(&x, Some(&v.0), Some(&v.1), 1e-5).unwrap();
        close(&y, &ye, 1e-9)?;
        close(&mr, &mre, 1e-10)?;
        close(&mi, &mie, 1e-10)?;
        close(&var, &vare, 1e-10)?;
        // Without the affine parameters.
        let (y, ..) = x.spectral_batch_norm_train(None, None, 1e-3).unwrap();
        close(&y, &literal(&x, None, None, 1e-3).unwrap().0, 1e-9)?;
    }

    #[test]
    fn eval_matches_the_literal_algorithm(
        (x, v) in sbn_shape().prop_flat_map(|s| (f64_tensor(s.clone(), -2.0, 3.0), vectors(s[1]))),
    ) {
        let y = x.spectral_batch_norm_eval(&v.2, &v.3, &v.4, Some(&v.0), Some(&v.1), 1e-5).unwrap();
        close(&y, &literal_eval(&x, [&v.2, &v.3, &v.4], Some(&v.0), Some(&v.1), 1e-5).unwrap(), 1e-10)?;
    }

    #[test]
    fn train_gradcheck(
        (x, v, r) in sbn_shape().prop_flat_map(|s| (f64_tensor(s.clone(), -2.0, 3.0), vectors(s[1]), f64_tensor(s, -1.0, 1.0))),
        kind in view_kind(),
    ) {
        let x = make_view(x.shape(), kind, &x.to_f64_vec().unwrap());
        grad_ok(
            "spectral_batch_norm_train",
            |t| t[0].spectral_batch_norm_train(Some(&t[1]), Some(&t[2]), 1e-3)?.0.mul(&r)?.sum_all(),
            &[x.clone(), v.0.clone(), v.1.clone()],
        )?;
        grad_ok(
            "spectral_batch_norm_train (no affine)",
            |t| t[0].spectral_batch_norm_train(None, None, 1e-3)?.0.mul(&r)?.sum_all(),
            &[x],
        )?;
    }

    #[test]
    fn eval_gradcheck(
        (x, v, r) in sbn_shape().prop_flat_map(|s| (f64_tensor(s.clone(), -2.0, 3.0), vectors(s[1]), f64_tensor(s, -1.0, 1.0))),
    ) {
        grad_ok(
            "spectral_batch_norm_eval",
            |t| t[0].spectral_batch_norm_eval(&t[3], &t[4], &t[5], Some(&t[1]), Some(&t[2]), 1e-5)?.mul(&r)?.sum_all(),
            &[x, v.0, v.1, v.2, v.3, v.4],
        )?;
    }

    #[test]
    fn f32_agrees_with_f64(
        (x, v, r) in sbn_shape().prop_flat_map(|s| (f64_tensor(s.clone(), -2.0, 3.0), vectors(s[1]), f64_tensor(s, -1.0, 1.0))),
    ) {
        // f32 agrees with f64 to 1e-4 only where the batch statistics are not near-degenerate:
        // with a spectral variance near 0 (say two nearly equal samples of a 1x1 map), the
        // normalization amplifies f32's rounding of the inputs by 1/std. The f64 tests above
        // cover every input, degenerate ones included.
        let var = x.spectral_batch_norm_train(None, None, 1e-3).unwrap().3;
        prop_assume!(var.to_f64_vec().unwrap().iter().all(|&v| v > 0.05));
        prop_f32_agrees_with_f64(&x, &v.0, &v.1, &r, |x, w, b| Ok(x.spectral_batch_norm_train(Some(w), Some(b), 1e-3)?.0))?;
    }
}

/// Second derivatives through the recorded backward pass (statistics recomputed from `x`).
#[test]
fn second_order_gradcheck() {
    for shape in [[2usize, 2, 3, 4], [3, 1, 2, 3], [2, 2, 1, 2]] {
        let c = shape[1];
        let x = Tensor::randn(&shape, 1).unwrap().to_dtype(DType::F64).unwrap();
        let w = Tensor::from_vec((0..c).map(|i| 0.8 + 0.3 * i as f64).collect::<Vec<_>>(), &[c]).unwrap();
        let b = Tensor::from_vec((0..c).map(|i| 0.2 - 0.5 * i as f64).collect::<Vec<_>>(), &[c]).unwrap();
        let r = Tensor::randn(&shape, 2).unwrap().to_dtype(DType::F64).unwrap();
        let f = |t: &[Tensor]| t[0].spectral_batch_norm_train(Some(&t[1]), Some(&t[2]), 1e-3)?.0.mul(&r)?.sum_all();
        autograd::gradcheck(|t| grad_norm(t, f), &[x, w, b], &autograd::GradcheckOptions::default())
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
    }
}

/// The first-order (fused) backward and the recorded one give the same gradients.
#[test]
fn fused_and_recorded_backward_agree() {
    let x = Tensor::randn(&[3, 4, 5, 6], 3).unwrap().to_dtype(DType::F64).unwrap();
    let r = Tensor::randn(&[3, 4, 5, 6], 4).unwrap().to_dtype(DType::F64).unwrap();
    let w = Tensor::from_vec(vec![1.0f64, 0.5, 2.0, -1.0], &[4]).unwrap();
    let b = Tensor::from_vec(vec![0.1f64, -0.2, 0.3, 0.0], &[4]).unwrap();
    let run = |create_graph: bool| -> Vec<f64> {
        let (x, w, b) = (x.detach().requires_grad_(), w.detach().requires_grad_(), b.detach().requires_grad_());
        let y = x.spectral_batch_norm_train(Some(&w), Some(&b), 1e-5).unwrap().0.mul(&r).unwrap().sum_all().unwrap();
        let g = y.backward_with(autograd::BackwardOptions { create_graph, ..Default::default() }).unwrap();
        [&x, &w, &b].iter().flat_map(|t| g.get(t).unwrap().to_f64_vec().unwrap()).collect()
    };
    let (a, e) = (run(false), run(true));
    for (p, q) in a.iter().zip(&e) {
        assert!((p - q).abs() <= 1e-10 * (1.0 + q.abs()), "{p} vs {q}");
    }
}

#[test]
fn errors_name_the_op_and_shapes() {
    let x = Tensor::zeros(&[2, 3, 4]);
    let e = x.spectral_batch_norm_train(None, None, 1e-5).unwrap_err().to_string();
    assert!(e.contains("spectral_batch_norm") && e.contains("[2, 3, 4]"), "{e}");
    let x = Tensor::zeros(&[2, 3, 4, 4]);
    let w = Tensor::ones(&[2]);
    let e = x.spectral_batch_norm_train(Some(&w), None, 1e-5).unwrap_err().to_string();
    assert!(e.contains("weight") && e.contains("[3]") && e.contains("[2]"), "{e}");
    let v = Tensor::ones(&[3]);
    let e = x.spectral_batch_norm_eval(&v, &v, &w, None, None, 1e-5).unwrap_err().to_string();
    assert!(e.contains("var") && e.contains("[2]"), "{e}");
}
