//! Fused batch norm (`batch_norm_train`, `batch_norm_relu_train`, `channel_affine`): forward
//! against a naive reference,
//! f64 gradchecks under proptest over shapes and views, second-order gradchecks through the
//! recorded backward, f32 agreement, and errors.

mod common;

use autograd::strategies::{f64_tensor, make_view, view_kind};
use autograd::{DType, Tensor};
use common::{grad_norm, prop_f32_agrees_with_f64, prop_gradcheck as grad_ok, weighting};
use proptest::prelude::*;

/// `[N, C, ...]` shapes of rank 2-4 with at least two elements per channel.
fn bn_shape() -> impl Strategy<Value = Vec<usize>> {
    (1usize..4, 1usize..4, proptest::collection::vec(1usize..4, 0..=2)).prop_map(|(n, c, rest)| {
        let mut s = vec![n + 1, c];
        s.extend(rest);
        s
    })
}

/// A tensor of shape `[c]` with values in `[lo, hi)`.
fn vector(c: usize, lo: f64, hi: f64) -> impl Strategy<Value = Tensor> {
    f64_tensor(vec![c], lo, hi)
}

/// Per-element naive batch norm with the statistics of each channel, in row-major order.
fn naive_bn(x: &Tensor, w: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
    let v = x.to_f64_vec().unwrap();
    let c = x.shape()[1];
    let s: usize = x.shape()[2..].iter().product();
    let chan = |i: usize| (i / s) % c;
    let mut out = vec![0.0; v.len()];
    for k in 0..c {
        let xs: Vec<f64> = (0..v.len()).filter(|&i| chan(i) == k).map(|i| v[i]).collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
        for i in (0..v.len()).filter(|&i| chan(i) == k) {
            out[i] = (v[i] - m) / (var + eps).sqrt() * w[k] + b[k];
        }
    }
    out
}

/// `batch_norm_train` (eps 1e-3), or `batch_norm_relu_train` when `relu`: the output.
fn bn_maybe_relu(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>, relu: bool) -> autograd::Result<Tensor> {
    Ok(if relu { x.batch_norm_relu_train(w, b, 1e-3)?.0 } else { x.batch_norm_train(w, b, 1e-3)?.0 })
}

/// Whether every batch-norm output (eps 1e-3, before any ReLU) is at least 1e-3 from zero.
/// ReLU has no derivative at 0 (a constant channel normalizes to exactly 0), so neither finite
/// differences nor f32 rounding can be compared with the analytic gradient there: the ReLU
/// cases draw their inputs off that kink, as PyTorch's gradcheck requires.
fn off_the_kink(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>) -> bool {
    let f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
    let (w, b) = (w.map(f64), b.map(f64));
    let y = f64(x).batch_norm_train(w.as_ref(), b.as_ref(), 1e-3).unwrap().0;
    y.to_f64_vec().unwrap().iter().all(|v| v.abs() >= 1e-3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn forward_matches_a_naive_reference(
        x in bn_shape().prop_flat_map(|s| f64_tensor(s, -3.0, 3.0)),
        seed in 0u64..1000,
    ) {
        let c = x.shape()[1];
        let w: Vec<f64> = (0..c).map(|k| 0.5 + ((seed + k as u64) % 5) as f64 * 0.3).collect();
        let b: Vec<f64> = (0..c).map(|k| ((seed * 3 + k as u64) % 7) as f64 - 3.0).collect();
        let (wt, bt) = (Tensor::from_vec(w.clone(), &[c]).unwrap(), Tensor::from_vec(b.clone(), &[c]).unwrap());
        let (y, mean, var) = x.batch_norm_train(Some(&wt), Some(&bt), 1e-5).unwrap();
        let want = naive_bn(&x, &w, &b, 1e-5);
        for (g, e) in y.to_f64_vec().unwrap().iter().zip(&want) {
            prop_assert!((g - e).abs() < 1e-10 * (1.0 + e.abs()), "{g} vs {e}");
        }
        prop_assert_eq!(mean.shape(), &[c]);
        prop_assert_eq!(var.shape(), &[c]);
        // Eval form: the folded affine of the same statistics gives the same output.
        let inv = var.add_scalar(1e-5).unwrap().rsqrt().unwrap();
        let scale = inv.mul(&wt).unwrap();
        let shift = bt.sub(&mean.mul(&scale).unwrap()).unwrap();
        let y2 = x.channel_affine(&scale, &shift).unwrap();
        for (g, e) in y2.to_f64_vec().unwrap().iter().zip(&want) {
            prop_assert!((g - e).abs() < 1e-10 * (1.0 + e.abs()));
        }
    }

    #[test]
    fn batch_norm_gradcheck(
        (x, w, b) in bn_shape().prop_flat_map(|s| {
            let c = s[1];
            (f64_tensor(s, -2.0, 2.0), vector(c, 0.5, 2.0), vector(c, -1.0, 1.0))
        }),
        affine in any::<bool>(),
        relu in any::<bool>(),
    ) {
        prop_assume!(!relu || off_the_kink(&x, affine.then_some(&w), affine.then_some(&b)));
        let r = weighting(x.shape());
        let what = format!("batch_norm (affine {affine}, relu {relu})");
        let bn = |x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>| bn_maybe_relu(x, w, b, relu);
        if affine {
            grad_ok(&what, |t| bn(&t[0], Some(&t[1]), Some(&t[2]))?.mul(&r)?.sum_all(), &[x, w, b])?;
        } else {
            grad_ok(&what, |t| bn(&t[0], None, None)?.mul(&r)?.sum_all(), &[x])?;
        }
    }

    #[test]
    fn batch_norm_relu_matches_batch_norm_then_relu(
        x in bn_shape().prop_flat_map(|s| f64_tensor(s, -3.0, 3.0)),
        kind in view_kind(),
    ) {
        let c = x.shape()[1];
        let x = make_view(x.shape(), kind, &x.to_f64_vec().unwrap());
        let (w, b) = (Tensor::from_vec(vec![1.5; c], &[c]).unwrap(), Tensor::from_vec(vec![-0.25; c], &[c]).unwrap());
        let (y, mean, var) = x.batch_norm_relu_train(Some(&w), Some(&b), 1e-5).unwrap();
        let (z, mean2, var2) = x.batch_norm_train(Some(&w), Some(&b), 1e-5).unwrap();
        let want: Vec<f64> = naive_bn(&x, &vec![1.5; c], &vec![-0.25; c], 1e-5).iter().map(|v| v.max(0.0)).collect();
        prop_assert_eq!(y.to_f64_vec().unwrap(), z.relu().unwrap().to_f64_vec().unwrap());
        for (g, e) in y.to_f64_vec().unwrap().iter().zip(&want) {
            prop_assert!((g - e).abs() < 1e-10 * (1.0 + e.abs()), "{g} vs {e}");
        }
        prop_assert_eq!(mean.to_f64_vec().unwrap(), mean2.to_f64_vec().unwrap());
        prop_assert_eq!(var.to_f64_vec().unwrap(), var2.to_f64_vec().unwrap());
    }

    #[test]
    fn channel_affine_gradcheck(
        (x, s, b) in bn_shape().prop_flat_map(|s| {
            let c = s[1];
            (f64_tensor(s, -2.0, 2.0), vector(c, -2.0, 2.0), vector(c, -1.0, 1.0))
        }),
    ) {
        let r = weighting(x.shape());
        grad_ok("channel_affine", |t| t[0].channel_affine(&t[1], &t[2])?.square()?.mul(&r)?.sum_all(), &[x, s, b])?;
    }

    /// Second order: the squared gradient norm, recorded with `create_graph`, is itself
    /// gradchecked (Hessian-vector products through batch norm).
    #[test]
    fn batch_norm_second_order_gradcheck(
        (x, w, b) in bn_shape().prop_flat_map(|s| {
            let c = s[1];
            (f64_tensor(s, -2.0, 2.0), vector(c, 0.5, 2.0), vector(c, -1.0, 1.0))
        }),
        relu in any::<bool>(),
    ) {
        prop_assume!(!relu || off_the_kink(&x, Some(&w), Some(&b)));
        let r = weighting(x.shape());
        grad_ok(&format!("batch_norm double backward (relu {relu})"), |t| grad_norm(t, |u| {
            bn_maybe_relu(&u[0], Some(&u[1]), Some(&u[2]), relu)?.tanh()?.mul(&r)?.sum_all()
        }), &[x, w, b])?;
    }

    #[test]
    fn channel_affine_second_order_gradcheck(
        (x, s, b) in bn_shape().prop_flat_map(|s| {
            let c = s[1];
            (f64_tensor(s, -2.0, 2.0), vector(c, -2.0, 2.0), vector(c, -1.0, 1.0))
        }),
    ) {
        let r = weighting(x.shape());
        grad_ok("channel_affine double backward", |t| grad_norm(t, |u| {
            u[0].channel_affine(&u[1], &u[2])?.tanh()?.mul(&r)?.sum_all()
        }), &[x, s, b])?;
    }

    #[test]
    fn f32_agrees_with_f64(
        x in bn_shape().prop_flat_map(|s| f64_tensor(s, -3.0, 3.0)),
        kind in view_kind(),
        relu in any::<bool>(),
    ) {
        let c = x.shape()[1];
        let vals = x.to_f64_vec().unwrap();
        let x = make_view(x.shape(), kind, &vals);
        let w = Tensor::full(&[c], 1.5);
        let b = Tensor::full(&[c], -0.25);
        prop_assume!(!relu || off_the_kink(&x, Some(&w), Some(&b)));
        let r = weighting(x.shape());
        prop_f32_agrees_with_f64(&x, &w, &b, &r, |x, w, b| bn_maybe_relu(x, Some(w), Some(b), relu))?;
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_op() {
    let x = Tensor::zeros(&[4, 3, 2]);
    let err = x.batch_norm_train(Some(&Tensor::ones(&[2])), None, 1e-5).unwrap_err().to_string();
    assert!(err.contains("batch_norm") && err.contains("[3]") && err.contains("[2]"), "{err}");
    let err = Tensor::zeros(&[4]).batch_norm_train(None, None, 1e-5).unwrap_err().to_string();
    assert!(err.contains("batch_norm") && err.contains("rank"), "{err}");
    let err = x.channel_affine(&Tensor::ones(&[3]), &Tensor::ones(&[4])).unwrap_err().to_string();
    assert!(err.contains("channel_affine") && err.contains("shift"), "{err}");
    let w32 = Tensor::ones(&[3]).to_dtype(DType::F32).unwrap();
    let x64 = x.to_dtype(DType::F64).unwrap();
    assert!(x64.batch_norm_train(Some(&w32), None, 1e-5).is_err());
}
