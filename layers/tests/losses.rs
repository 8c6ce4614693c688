//! Losses against PyTorch-generated values (forward and input gradients, f64; the generating
//! script is `tests/fixtures/make_optim_fixtures.py`) and finite-difference gradchecks over
//! random shapes.

mod common;

use autograd::strategies::f64_tensor;
use autograd::{gradcheck, GradcheckOptions, Tensor};
use common::{assert_close, f64_tensor as tensor_of, fixtures, i64_tensor};
use layers::loss::{
    bce_with_logits, cross_entropy, cross_entropy_soft, mse_loss, nll_loss, CrossEntropyOptions, Reduction,
};
use proptest::prelude::*;

fn reduction(name: &str) -> Reduction {
    match name {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        other => panic!("unknown reduction {other}"),
    }
}

#[test]
fn losses_match_pytorch() {
    let fx = fixtures();
    let cases = fx["losses"].as_array().unwrap();
    assert_eq!(cases.len(), 23, "cases in the fixture file");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let red = reduction(case["reduction"].as_str().unwrap());
        let x = tensor_of(&case["input"]).requires_grad_();
        let out = match case["loss"].as_str().unwrap() {
            "cross_entropy" => {
                let eps = case["label_smoothing"].as_f64().unwrap();
                let opts = CrossEntropyOptions::default().label_smoothing(eps).reduction(red);
                cross_entropy(&x, &i64_tensor(&case["target"]), opts)
            }
            "cross_entropy_soft" => {
                let eps = case["label_smoothing"].as_f64().unwrap();
                let opts = CrossEntropyOptions::default().label_smoothing(eps).reduction(red);
                cross_entropy_soft(&x, &tensor_of(&case["target"]), opts)
            }
            "nll" => nll_loss(&x, &i64_tensor(&case["target"]), red),
            "mse" => mse_loss(&x, &tensor_of(&case["target"]), red),
            "bce_with_logits" => bce_with_logits(&x, &tensor_of(&case["target"]), red),
            other => panic!("unknown loss {other}"),
        }
        .unwrap();
        let expect = tensor_of(&case["output"]);
        assert_eq!(out.shape(), expect.shape(), "{name}");
        assert_close(&out.to_f64_vec().unwrap(), &expect.to_f64_vec().unwrap(), 1e-12, name);
        let seed = Tensor::ones_like(&out).unwrap();
        let g = out.backward_with(autograd::BackwardOptions { seed: Some(seed), ..Default::default() }).unwrap();
        let gx = g.get(&x).unwrap().to_f64_vec().unwrap();
        assert_close(&gx, &tensor_of(&case["grad"]).to_f64_vec().unwrap(), 1e-12, &format!("{name} grad"));
    }
}

/// `[N, C]` logits in a random view kind with `[N]` targets in `0..C`.
fn logits_and_targets() -> impl Strategy<Value = (Tensor, Tensor)> {
    (1usize..5, 1usize..6).prop_flat_map(|(n, c)| {
        (f64_tensor(vec![n, c], -4.0, 4.0), proptest::collection::vec(0..c as i64, n))
            .prop_map(move |(x, t)| (x, Tensor::from_vec(t, &[n]).unwrap()))
    })
}

fn reductions() -> impl Strategy<Value = Reduction> {
    prop_oneof![Just(Reduction::Mean), Just(Reduction::Sum), Just(Reduction::None)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cross_entropy_gradcheck((x, t) in logits_and_targets(), eps in 0.0f64..1.0, red in reductions()) {
        let opts = CrossEntropyOptions::default().label_smoothing(eps).reduction(red);
        gradcheck(|v| cross_entropy(&v[0], &t, opts), &[x], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn spatial_cross_entropy_gradcheck(n in 1usize..3, c in 1usize..4, l in 1usize..4, eps in 0.0f64..0.5) {
        let x = Tensor::randn(&[n, c, l], (n * 100 + c * 10 + l) as u64).unwrap().to_dtype(autograd::DType::F64).unwrap();
        let t = Tensor::from_vec((0..n * l).map(|i| (i % c) as i64).collect(), &[n, l]).unwrap();
        let opts = CrossEntropyOptions::default().label_smoothing(eps);
        gradcheck(|v| cross_entropy(&v[0], &t, opts), &[x], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn soft_cross_entropy_gradcheck(
        (x, t) in (1usize..4, 1usize..5).prop_flat_map(|(n, c)| (f64_tensor(vec![n, c], -3.0, 3.0), f64_tensor(vec![n, c], 0.0, 1.0))),
        eps in 0.0f64..1.0,
        red in reductions(),
    ) {
        // Differentiated in the logits and in the (soft) targets.
        let opts = CrossEntropyOptions::default().label_smoothing(eps).reduction(red);
        gradcheck(|v| cross_entropy_soft(&v[0], &v[1], opts), &[x, t], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn nll_gradcheck((x, t) in logits_and_targets(), red in reductions()) {
        gradcheck(|v| nll_loss(&v[0], &t, red), &[x], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn mse_gradcheck(
        (x, y) in autograd::strategies::shape(3, 4)
            .prop_flat_map(|s| (f64_tensor(s.clone(), -2.0, 2.0), f64_tensor(s, -2.0, 2.0))),
        red in reductions(),
    ) {
        gradcheck(|v| mse_loss(&v[0], &v[1], red), &[x, y], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn bce_with_logits_gradcheck(
        (x, y) in autograd::strategies::shape(3, 4)
            .prop_flat_map(|s| (f64_tensor(s.clone(), -6.0, 6.0), f64_tensor(s, 0.0, 1.0))),
        red in reductions(),
    ) {
        // Both the logits and the (soft) targets are differentiated.
        gradcheck(|v| bce_with_logits(&v[0], &v[1], red), &[x, y], &GradcheckOptions::default()).unwrap();
    }
}
