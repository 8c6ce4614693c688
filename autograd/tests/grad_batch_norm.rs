//! Fused batch norm (`batch_norm_train`, `batch_norm_relu_train`, `batch_norm_relu6_train`,
//! `batch_norm_add_relu_train`, `channel_affine`, `channel_affine_relu`, `channel_affine_relu6`):
//! forward
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

/// What follows batch norm in a case.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tail {
    /// `batch_norm_train`.
    None,
    /// `batch_norm_relu_train`.
    Relu,
    /// `batch_norm_relu6_train`.
    Relu6,
    /// `batch_norm_add_relu_train` with a residual.
    AddRelu,
}

fn tail() -> impl Strategy<Value = Tail> {
    prop_oneof![Just(Tail::None), Just(Tail::Relu), Just(Tail::Relu6), Just(Tail::AddRelu)]
}

impl Tail {
    /// The weight of the fixed-weight cases: large enough with ReLU6 that some outputs pass 6.
    fn weight(self) -> f64 {
        if self == Tail::Relu6 {
            4.0
        } else {
            1.5
        }
    }
}

/// Batch norm (eps 1e-3) followed by `tail` (the residual `r` is used by `AddRelu` only): the
/// output.
fn bn_tail(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>, r: &Tensor, tail: Tail) -> autograd::Result<Tensor> {
    Ok(match tail {
        Tail::None => x.batch_norm_train(w, b, 1e-3)?.0,
        Tail::Relu => x.batch_norm_relu_train(w, b, 1e-3)?.0,
        Tail::Relu6 => x.batch_norm_relu6_train(w, b, 1e-3)?.0,
        Tail::AddRelu => x.batch_norm_add_relu_train(w, b, 1e-3, r)?.0,
    })
}

/// The same from separate ops: batch norm, then the add and ReLU (or ReLU6).
fn bn_then_tail(
    x: &Tensor,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    r: &Tensor,
    tail: Tail,
) -> autograd::Result<Tensor> {
    let y = x.batch_norm_train(w, b, 1e-3)?.0;
    match tail {
        Tail::None => Ok(y),
        Tail::Relu => y.relu(),
        Tail::Relu6 => y.relu6(),
        Tail::AddRelu => y.add(r)?.relu(),
    }
}

/// Whether every pre-activation (the batch-norm output, eps 1e-3, plus the residual after
/// `AddRelu`) is at least 1e-3 from zero (and from 6 with ReLU6). ReLU has no derivative at 0
/// (a constant channel normalizes to exactly 0), so neither finite differences nor f32
/// rounding can be compared with the analytic gradient there: the ReLU cases draw their
/// inputs off that kink, as PyTorch's gradcheck requires.
fn off_the_kink(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>, r: &Tensor, tail: Tail) -> bool {
    if tail == Tail::None {
        return true;
    }
    let f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
    let (w, b) = (w.map(f64), b.map(f64));
    let mut y = f64(x).batch_norm_train(w.as_ref(), b.as_ref(), 1e-3).unwrap().0;
    if tail == Tail::AddRelu {
        y = y.add(&f64(r)).unwrap();
    }
    let cap = tail == Tail::Relu6;
    y.to_f64_vec().unwrap().iter().all(|v| v.abs() >= 1e-3 && (!cap || (v - 6.0).abs() >= 1e-3))
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
        (x, w, b, res) in bn_shape().prop_flat_map(|s| {
            let c = s[1];
            // Weights up to 5, so that ReLU6 caps some outputs.
            (f64_tensor(s.clone(), -2.0, 2.0), vector(c, 0.5, 5.0), vector(c, -1.0, 1.0), f64_tensor(s, -1.0, 1.0))
        }),
        affine in any::<bool>(),
        tail in tail(),
    ) {
        prop_assume!(off_the_kink(&x, affine.then_some(&w), affine.then_some(&b), &res, tail));
        let r = weighting(x.shape());
        let what = format!("batch_norm (affine {affine}, {tail:?})");
        // The residual is an input to check only where it is used.
        let mut inputs = if affine { vec![x, w, b] } else { vec![x] };
        if tail == Tail::AddRelu {
            inputs.push(res.clone());
        }
        grad_ok(&what, |t| {
            let (w, b) = if affine { (Some(&t[1]), Some(&t[2])) } else { (None, None) };
            let res = if tail == Tail::AddRelu { &t[t.len() - 1] } else { &res };
            bn_tail(&t[0], w, b, res, tail)?.mul(&r)?.sum_all()
        }, &inputs)?;
    }

    /// The fused ops against batch norm followed by separate ReLU, ReLU6 and add ops, on every
    /// view kind: outputs and statistics to the bit, every input's gradient to rounding (the
    /// fused backward masks the gradient inside the batch-norm kernels).
    #[test]
    fn fused_tails_match_batch_norm_then_relu_and_add(
        (x, res) in bn_shape().prop_flat_map(|s| (f64_tensor(s.clone(), -3.0, 3.0), f64_tensor(s, -1.0, 1.0))),
        (kind, rkind) in (view_kind(), view_kind()),
        tail in tail(),
    ) {
        let c = x.shape()[1];
        let x = make_view(x.shape(), kind, &x.to_f64_vec().unwrap()).requires_grad_();
        let res = make_view(res.shape(), rkind, &res.to_f64_vec().unwrap()).requires_grad_();
        let w = Tensor::from_vec(vec![tail.weight(); c], &[c]).unwrap().requires_grad_();
        let b = Tensor::from_vec(vec![-0.25; c], &[c]).unwrap().requires_grad_();
        let weights = weighting(x.shape());
        let mut runs = vec![];
        for f in [bn_tail, bn_then_tail] {
            let y = f(&x, Some(&w), Some(&b), &res, tail).unwrap();
            let g = y.mul(&weights).unwrap().sum_all().unwrap().backward().unwrap();
            let each = [&x, &w, &b, &res].map(|t| g.get(t).map(|g| g.to_f64_vec().unwrap()));
            runs.push((y.to_f64_vec().unwrap(), each));
        }
        let ((y, fused), (z, plain)) = (&runs[0], &runs[1]);
        prop_assert_eq!(y, z);
        let rv = res.to_f64_vec().unwrap();
        let want: Vec<f64> = naive_bn(&x, &vec![tail.weight(); c], &vec![-0.25; c], 1e-3)
            .iter()
            .zip(&rv)
            .map(|(&v, &r)| match tail {
                Tail::None => v,
                Tail::Relu => v.max(0.0),
                Tail::Relu6 => v.clamp(0.0, 6.0),
                Tail::AddRelu => (v + r).max(0.0),
            })
            .collect();
        for (g, e) in y.iter().zip(&want) {
            prop_assert!((g - e).abs() < 1e-10 * (1.0 + e.abs()), "{g} vs {e}");
        }
        for (i, (a, e)) in fused.iter().zip(plain).enumerate() {
            prop_assert_eq!(a.is_some(), e.is_some(), "input {}", i);
            if let (Some(a), Some(e)) = (a, e) {
                for (g, e) in a.iter().zip(e) {
                    prop_assert!((g - e).abs() < 1e-12 * (1.0 + e.abs()), "input {i}: {g} vs {e}");
                }
            }
        }
        let stats = |t: Tail| {
            let (_, m, v) = match t {
                Tail::None => x.batch_norm_train(Some(&w), Some(&b), 1e-3).unwrap(),
                Tail::Relu => x.batch_norm_relu_train(Some(&w), Some(&b), 1e-3).unwrap(),
                Tail::Relu6 => x.batch_norm_relu6_train(Some(&w), Some(&b), 1e-3).unwrap(),
                Tail::AddRelu => x.batch_norm_add_relu_train(Some(&w), Some(&b), 1e-3, &res).unwrap(),
            };
            (m.to_f64_vec().unwrap(), v.to_f64_vec().unwrap())
        };
        prop_assert_eq!(stats(tail), stats(Tail::None));
    }

    /// `channel_affine_relu` without gradients (the fused pass) against the naive per-element
    /// `relu(x·s + b (+ r))`, over shapes and views, with and without the residual; with
    /// gradients (the composite) it gradchecks in every input away from ReLU's kink.
    #[test]
    fn channel_affine_relu_matches_and_gradchecks(
        (x, s, b, res) in bn_shape().prop_flat_map(|sh| {
            let c = sh[1];
            (f64_tensor(sh.clone(), -2.0, 2.0), vector(c, -2.0, 2.0), vector(c, -1.0, 1.0), f64_tensor(sh, -1.0, 1.0))
        }),
        with_residual in any::<bool>(),
    ) {
        let r = with_residual.then_some(&res);
        let got = autograd::no_grad(|| x.channel_affine_relu(&s, &b, r)).unwrap().to_f64_vec().unwrap();
        let (xv, sv, bv, rv) = (x.to_f64_vec().unwrap(), s.to_f64_vec().unwrap(), b.to_f64_vec().unwrap(), res.to_f64_vec().unwrap());
        let (c, plane) = (x.shape()[1], x.shape()[2..].iter().product::<usize>());
        let pre: Vec<f64> = (0..xv.len())
            .map(|i| xv[i] * sv[(i / plane) % c] + bv[(i / plane) % c] + if with_residual { rv[i] } else { 0.0 })
            .collect();
        for (g, p) in got.iter().zip(&pre) {
            prop_assert!((g - p.max(0.0)).abs() <= 1e-12 * (1.0 + p.abs()), "{} vs relu({})", g, p);
        }
        prop_assume!(pre.iter().all(|p| p.abs() > 1e-3));
        let w = weighting(x.shape());
        grad_ok("channel_affine_relu", |t| {
            let r = if with_residual { Some(&t[3]) } else { None };
            t[0].channel_affine_relu(&t[1], &t[2], r)?.square()?.mul(&w)?.sum_all()
        }, &[x, s, b, res])?;
    }

    /// `channel_affine_relu6` without gradients (the fused pass) against the naive
    /// per-element `clamp(x·s + b, 0, 6)`; with gradients (the composite) it gradchecks in
    /// every input away from the kinks at 0 and 6.
    #[test]
    fn channel_affine_relu6_matches_and_gradchecks(
        (x, s, b) in bn_shape().prop_flat_map(|sh| {
            let c = sh[1];
            (f64_tensor(sh, -2.0, 2.0), vector(c, -5.0, 5.0), vector(c, -1.0, 4.0))
        }),
    ) {
        let got = autograd::no_grad(|| x.channel_affine_relu6(&s, &b)).unwrap().to_f64_vec().unwrap();
        let (xv, sv, bv) = (x.to_f64_vec().unwrap(), s.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
        let (c, plane) = (x.shape()[1], x.shape()[2..].iter().product::<usize>());
        let pre: Vec<f64> = (0..xv.len()).map(|i| xv[i] * sv[(i / plane) % c] + bv[(i / plane) % c]).collect();
        for (g, p) in got.iter().zip(&pre) {
            prop_assert!((g - p.clamp(0.0, 6.0)).abs() <= 1e-12 * (1.0 + p.abs()), "{} vs relu6({})", g, p);
        }
        prop_assume!(pre.iter().all(|p| p.abs() > 1e-3 && (p - 6.0).abs() > 1e-3));
        let w = weighting(x.shape());
        grad_ok("channel_affine_relu6", |t| {
            t[0].channel_affine_relu6(&t[1], &t[2])?.square()?.mul(&w)?.sum_all()
        }, &[x, s, b])?;
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
        (x, w, b, res) in bn_shape().prop_flat_map(|s| {
            let c = s[1];
            (f64_tensor(s.clone(), -2.0, 2.0), vector(c, 0.5, 5.0), vector(c, -1.0, 1.0), f64_tensor(s, -1.0, 1.0))
        }),
        tail in tail(),
    ) {
        prop_assume!(off_the_kink(&x, Some(&w), Some(&b), &res, tail));
        let r = weighting(x.shape());
        grad_ok(&format!("batch_norm double backward ({tail:?})"), |t| grad_norm(t, |u| {
            bn_tail(&u[0], Some(&u[1]), Some(&u[2]), &u[3], tail)?.tanh()?.mul(&r)?.sum_all()
        }), &[x, w, b, res])?;
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
        (x, res) in bn_shape().prop_flat_map(|s| (f64_tensor(s.clone(), -3.0, 3.0), f64_tensor(s, -1.0, 1.0))),
        kind in view_kind(),
        tail in tail(),
    ) {
        let c = x.shape()[1];
        let vals = x.to_f64_vec().unwrap();
        let x = make_view(x.shape(), kind, &vals);
        let w = Tensor::full(&[c], tail.weight());
        let b = Tensor::full(&[c], -0.25);
        prop_assume!(off_the_kink(&x, Some(&w), Some(&b), &res, tail));
        let r = weighting(x.shape());
        // The residual follows the input's dtype (a constant here: its gradient is compared in
        // f64 by the tests above).
        prop_f32_agrees_with_f64(&x, &w, &b, &r, |x, w, b| {
            bn_tail(x, Some(w), Some(b), &res.to_dtype(x.dtype())?, tail)
        })?;
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
    let err = x.batch_norm_add_relu_train(None, None, 1e-5, &Tensor::zeros(&[4, 3])).unwrap_err().to_string();
    assert!(err.contains("batch_norm_add_relu") && err.contains("[4, 3, 2]") && err.contains("[4, 3]"), "{err}");
    let w32 = Tensor::ones(&[3]).to_dtype(DType::F32).unwrap();
    let x64 = x.to_dtype(DType::F64).unwrap();
    assert!(x64.batch_norm_train(Some(&w32), None, 1e-5).is_err());
    let r32 = Tensor::zeros(&[4, 3, 2]).to_dtype(DType::F32).unwrap();
    let err = x64.batch_norm_add_relu_train(None, None, 1e-5, &r32).unwrap_err().to_string();
    assert!(err.contains("batch_norm_add_relu") && err.contains("dtype"), "{err}");
}
