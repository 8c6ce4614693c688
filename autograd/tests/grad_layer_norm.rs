//! Fused layer norm (`Tensor::layer_norm`): forward against a naive reference, f64 gradchecks
//! under proptest over shapes, normalized ranks and views, second-order gradchecks through the
//! recorded backward, f32 agreement, and errors.

mod common;

use autograd::strategies::{f64_tensor, make_view, view_kind};
use autograd::{DType, Tensor};
use common::{grad_norm, prop_f32_agrees_with_f64, prop_gradcheck as grad_ok, weighting};
use proptest::prelude::*;

/// `(input shape, normalized rank)`: rank 1-4 inputs normalized over their last 1-2 axes, with
/// at least two elements per row.
fn ln_shape() -> impl Strategy<Value = (Vec<usize>, usize)> {
    (proptest::collection::vec(1usize..4, 0..=2), proptest::collection::vec(1usize..4, 1..=2)).prop_map(
        |(lead, mut norm)| {
            norm[0] += 1;
            let k = norm.len();
            let mut s = lead;
            s.extend(norm);
            (s, k)
        },
    )
}

/// The normalized shape of an input.
fn normalized(shape: &[usize], k: usize) -> Vec<usize> {
    shape[shape.len() - k..].to_vec()
}

/// Per-row naive layer norm in row-major order.
fn naive_ln(x: &Tensor, d: usize, w: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
    let v = x.to_f64_vec().unwrap();
    let mut out = vec![];
    for row in v.chunks(d) {
        let m = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|x| (x - m).powi(2)).sum::<f64>() / d as f64;
        out.extend(row.iter().enumerate().map(|(j, x)| (x - m) / (var + eps).sqrt() * w[j] + b[j]));
    }
    out
}

/// Input, weight and bias for a case.
fn case() -> impl Strategy<Value = (Tensor, usize, Tensor, Tensor)> {
    ln_shape().prop_flat_map(|(s, k)| {
        let ns = normalized(&s, k);
        (f64_tensor(s, -2.0, 2.0), Just(k), f64_tensor(ns.clone(), 0.5, 2.0), f64_tensor(ns, -1.0, 1.0))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn forward_matches_a_naive_reference((x, k, w, b) in case()) {
        let ns = normalized(x.shape(), k);
        let d: usize = ns.iter().product();
        let y = x.layer_norm(&ns, Some(&w), Some(&b), 1e-5).unwrap();
        let want = naive_ln(&x, d, &w.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap(), 1e-5);
        for (g, e) in y.to_f64_vec().unwrap().iter().zip(&want) {
            prop_assert!((g - e).abs() < 1e-10 * (1.0 + e.abs()), "{g} vs {e}");
        }
        let y = x.layer_norm(&ns, None, None, 1e-5).unwrap();
        let want = naive_ln(&x, d, &vec![1.0; d], &vec![0.0; d], 1e-5);
        for (g, e) in y.to_f64_vec().unwrap().iter().zip(&want) {
            prop_assert!((g - e).abs() < 1e-10 * (1.0 + e.abs()), "{g} vs {e}");
        }
    }

    #[test]
    fn layer_norm_gradcheck((x, k, w, b) in case(), affine in 0usize..3) {
        let ns = normalized(x.shape(), k);
        let r = weighting(x.shape());
        match affine {
            0 => grad_ok("layer_norm", |t| t[0].layer_norm(&ns, Some(&t[1]), Some(&t[2]), 1e-3)?.mul(&r)?.sum_all(), &[x, w, b])?,
            1 => grad_ok("layer_norm (weight only)", |t| t[0].layer_norm(&ns, Some(&t[1]), None, 1e-3)?.mul(&r)?.sum_all(), &[x, w])?,
            _ => grad_ok("layer_norm (no affine)", |t| t[0].layer_norm(&ns, None, None, 1e-3)?.mul(&r)?.sum_all(), &[x])?,
        }
    }

    /// Second order: the squared gradient norm, recorded with `create_graph`, is gradchecked.
    #[test]
    fn layer_norm_second_order_gradcheck((x, k, w, b) in case()) {
        let ns = normalized(x.shape(), k);
        let r = weighting(x.shape());
        grad_ok("layer_norm double backward", |t| grad_norm(t, |u| {
            u[0].layer_norm(&ns, Some(&u[1]), Some(&u[2]), 1e-3)?.tanh()?.mul(&r)?.sum_all()
        }), &[x, w, b])?;
    }

    #[test]
    fn f32_agrees_with_f64(((shape, k), kind) in (ln_shape(), view_kind()), seed in 0u64..100) {
        let n: usize = shape.iter().product::<usize>() * 2 + 2;
        let vals: Vec<f64> = (0..n).map(|i| (((i as u64 + seed) * 7919 % 101) as f64 - 50.0) / 17.0).collect();
        let x = make_view(&shape, kind, &vals);
        let ns = normalized(&shape, k);
        let (w, b) = (Tensor::full(&ns, 1.5), Tensor::full(&ns, -0.25));
        let r = weighting(&shape);
        prop_f32_agrees_with_f64(&x, &w, &b, &r, |x, w, b| x.layer_norm(&ns, Some(w), Some(b), 1e-3))?;
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_op() {
    let x = Tensor::zeros(&[4, 3, 2]);
    let err = x.layer_norm(&[3], None, None, 1e-5).unwrap_err().to_string();
    assert!(err.contains("layer_norm") && err.contains("[4, 3, 2]") && err.contains("[3]"), "{err}");
    let err = x.layer_norm(&[3, 2], Some(&Tensor::ones(&[6])), None, 1e-5).unwrap_err().to_string();
    assert!(err.contains("layer_norm") && err.contains("weight") && err.contains("[6]"), "{err}");
    let err = x.layer_norm(&[], None, None, 1e-5).unwrap_err().to_string();
    assert!(err.contains("layer_norm"), "{err}");
    let w32 = Tensor::ones(&[2]).to_dtype(DType::F32).unwrap();
    let x64 = x.to_dtype(DType::F64).unwrap();
    assert!(x64.layer_norm(&[2], Some(&w32), None, 1e-5).is_err());
}
