//! Packed multi-head self-attention (`Tensor::packed_self_attention`): forward against the same
//! attention built from views and elementary ops, f64 gradchecks under proptest over shapes and
//! views, a second-order gradcheck through the recorded backward, and errors.

mod common;

use autograd::strategies::f64_tensor;
use autograd::{Result, Tensor};
use common::{grad_norm, prop_gradcheck as grad_ok, weighting};
use proptest::prelude::*;

/// The same attention from elementary differentiable ops: split, per-head softmax, merge.
fn composite(qkv: &Tensor, h: usize, scale: f64) -> Result<Tensor> {
    let (b, n, c3) = (qkv.shape()[0], qkv.shape()[1], qkv.shape()[2]);
    let d = c3 / (3 * h);
    let t = qkv.reshape_to(&[b, n, 3, h, d])?.permute(&[2, 0, 3, 1, 4])?;
    let (q, k, v) = (t.select(0, 0)?, t.select(0, 1)?, t.select(0, 2)?);
    let p = q.matmul(&k.transpose(2, 3)?)?.mul_scalar(scale)?.softmax(3)?;
    p.matmul(&v)?.transpose(1, 2)?.reshape_to(&[b, n, h * d])
}

/// `(qkv, heads)` with batch 1-2, 1-4 tokens, 1-2 heads of width 1-3.
fn case() -> impl Strategy<Value = (Tensor, usize)> {
    (1usize..3, 1usize..5, 1usize..3, 1usize..4)
        .prop_flat_map(|(b, n, h, d)| (f64_tensor(vec![b, n, 3 * h * d], -1.5, 1.5), Just(h)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn forward_matches_the_composite((x, h) in case()) {
        let got = x.packed_self_attention(h, 0.7).unwrap().to_f64_vec().unwrap();
        let want = composite(&x, h, 0.7).unwrap().to_f64_vec().unwrap();
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((g - w).abs() < 1e-12 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    #[test]
    fn packed_attention_gradcheck((x, h) in case()) {
        let r = weighting(&[x.shape()[0], x.shape()[1], x.shape()[2] / 3]);
        grad_ok("packed_self_attention", |t| t[0].packed_self_attention(h, 0.7)?.mul(&r)?.sum_all(), &[x])?;
    }

    /// The gradient equals the composite's (same function, different backward rules).
    #[test]
    fn gradient_matches_the_composite((x, h) in case()) {
        let r = weighting(&[x.shape()[0], x.shape()[1], x.shape()[2] / 3]);
        let grad = |f: &dyn Fn(&Tensor) -> Result<Tensor>| {
            let x = x.detach().requires_grad_();
            let g = f(&x).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            g.get(&x).unwrap().to_f64_vec().unwrap()
        };
        let (a, b) = (grad(&|x| x.packed_self_attention(h, 0.7)), grad(&|x| composite(x, h, 0.7)));
        for (a, b) in a.iter().zip(&b) {
            prop_assert!((a - b).abs() < 1e-10 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    /// Second order: the squared gradient norm, recorded with `create_graph`, is gradchecked.
    #[test]
    fn packed_attention_second_order_gradcheck((x, h) in case()) {
        let r = weighting(&[x.shape()[0], x.shape()[1], x.shape()[2] / 3]);
        grad_ok("packed_self_attention double backward", |t| grad_norm(t, |u| {
            u[0].packed_self_attention(h, 0.7)?.tanh()?.mul(&r)?.sum_all()
        }), &[x])?;
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_op() {
    for (shape, heads) in [(vec![2, 3, 10], 2), (vec![2, 12], 2), (vec![2, 3, 12], 0), (vec![2, 3, 0], 1)] {
        let err = Tensor::zeros(&shape).packed_self_attention(heads, 1.0).unwrap_err().to_string();
        assert!(err.contains("packed_self_attention") && err.contains(&format!("{shape:?}")), "{err}");
    }
}
