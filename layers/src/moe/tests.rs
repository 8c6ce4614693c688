//! MoE MLP tests: the degenerate case equals the dense MLP bit for bit; experts equal a dense
//! MLP with a 0/1 mask on the hidden neurons (top-1 and top-2, with the expert bias); routing is
//! deterministic; the MAC formula; gathered weights change nothing; f64 gradchecks.

use autograd::{gradcheck, DType, Device, GradcheckOptions, Tensor};
use proptest::prelude::*;

use super::*;
use crate::mac::count_macs;
use crate::rng::with_seed;
use crate::{Mlp, ModuleExt, Param};

/// An MLP `d -> hidden -> d` with weights of a realistic scale and nonzero biases.
fn mlp(d: usize, hidden: usize, seed: u64) -> Mlp {
    let m = with_seed(seed, || Mlp::new(d, hidden)).unwrap();
    for (i, p) in m.parameters().into_iter().enumerate() {
        let shape = p.leaf().shape().to_vec();
        p.set_data(&Tensor::randn(&shape, seed * 31 + i as u64).unwrap().mul_scalar(0.5).unwrap()).unwrap();
    }
    m
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

fn linear(m: &dyn Module) -> &Linear {
    m.downcast_ref::<Linear>().unwrap()
}

/// `act(x W1ᵀ + b1) ⊙ mask W2ᵀ + b2 (+ bias)` per token, with `mask` the union of the token's
/// chosen experts' neurons (each counted once per choosing expert), over the full hidden layer.
fn masked_dense(m: &Mlp, x: &Tensor, experts: &[Vec<usize>], routes: &[usize], top_k: usize) -> Vec<f64> {
    let (fc1, fc2) = (linear(m.fc1.as_ref()), linear(m.fc2.as_ref()));
    let (d, hidden) = fc1.features();
    let t = x.numel() / d;
    let h = vals(&fc1.forward(&x.reshape_to(&[t, d]).unwrap(), Mode::Eval).unwrap().gelu().unwrap());
    let (w2, b2) = (vals(&fc2.weight.leaf()), vals(&fc2.bias.as_ref().unwrap().leaf()));
    let mut out = vec![0.0; t * d];
    for i in 0..t {
        let mut count = vec![0.0; hidden];
        for &e in &routes[i * top_k..(i + 1) * top_k] {
            for &j in &experts[e] {
                count[j] += 1.0;
            }
        }
        for o in 0..d {
            out[i * d + o] =
                b2[o] + (0..hidden).map(|j| count[j] * h[i * hidden + j] * w2[o * hidden + j]).sum::<f64>();
        }
    }
    out
}

#[test]
fn one_expert_with_every_neuron_is_the_dense_mlp_exactly() {
    let m = mlp(8, 24, 1);
    let x = Tensor::randn(&[3, 7, 8], 2).unwrap();
    let dense = m.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
    let keys = Tensor::randn(&[1, 8], 3).unwrap();
    let mut moe = MoeMlp::from_mlp(&m, &[(0..24).collect()], keys, Routing::Cosine, 1).unwrap();
    assert_eq!(moe.hidden(), 24);
    let y = moe.forward(&x, Mode::Eval).unwrap();
    assert_eq!(y.shape(), x.shape());
    assert_eq!(y.to_vec::<f32>().unwrap(), dense, "per-call gathering");
    moe.gather_experts().unwrap();
    assert_eq!(moe.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), dense, "gathered");
}

#[test]
fn experts_equal_a_masked_dense_mlp() {
    let m = mlp(6, 16, 4);
    let x = Tensor::randn(&[2, 9, 6], 5).unwrap();
    // Overlapping experts; neurons 14 and 15 belong to none and are removed.
    let experts = vec![vec![0, 1, 2, 3, 4, 5], vec![4, 5, 6, 7, 8, 9, 10], vec![0, 11, 12, 13]];
    for (routing, top_k) in [(Routing::Cosine, 1), (Routing::Dot, 1), (Routing::Cosine, 2)] {
        let keys = Tensor::randn(&[3, 6], 6).unwrap();
        let mut moe = MoeMlp::from_mlp(&m, &experts, keys, routing, top_k).unwrap();
        assert_eq!(moe.hidden(), 14);
        let routes = moe.routes(&x).unwrap();
        assert_eq!(routes.len(), 18 * top_k);
        let want = masked_dense(&m, &x, &experts, &routes, top_k);
        for gathered in [false, true] {
            if gathered {
                moe.gather_experts().unwrap();
            }
            let got = vals(&moe.forward(&x, Mode::Eval).unwrap());
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-5, "{routing:?} top-{top_k} gathered {gathered}: max error {err}");
        }
    }
}

#[test]
fn the_expert_bias_is_added_per_chosen_expert() {
    let m = mlp(4, 8, 7);
    let x = Tensor::randn(&[5, 4], 8).unwrap();
    let experts = vec![vec![0, 1, 2], vec![3, 4, 5, 6, 7]];
    let keys = Tensor::randn(&[2, 4], 9).unwrap();
    let bias = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0], &[2, 4]).unwrap();
    let plain = MoeMlp::from_mlp(&m, &experts, keys.clone(), Routing::Cosine, 1).unwrap();
    let biased = MoeMlp::from_mlp(&m, &experts, keys, Routing::Cosine, 1).unwrap().with_expert_bias(bias).unwrap();
    let routes = plain.routes(&x).unwrap();
    assert!(routes.contains(&0) && routes.contains(&1), "both experts are used: {routes:?}");
    let (a, b) = (vals(&plain.forward(&x, Mode::Eval).unwrap()), vals(&biased.forward(&x, Mode::Eval).unwrap()));
    for (i, &e) in routes.iter().enumerate() {
        for o in 0..4 {
            let want = if e == 0 { (o + 1) as f64 } else { -((o + 1) as f64) };
            assert!((b[i * 4 + o] - a[i * 4 + o] - want).abs() < 1e-5);
        }
    }
    assert_eq!(biased.buffers()[1].0, "expert_bias");
}

#[test]
fn routing_is_deterministic_top1_cosine() {
    let m = mlp(3, 6, 10);
    // Keys along the axes, the third one long: cosine ignores the length, dot does not.
    let keys = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 9.0], &[3, 3]).unwrap();
    let x = Tensor::from_vec(vec![2.0f32, 1.0, 0.5, 0.1, 3.0, 0.2, 0.3, 0.2, 0.25, 1.0, 1.0, 0.0], &[4, 3]).unwrap();
    let experts = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
    let cos = MoeMlp::from_mlp(&m, &experts, keys.clone(), Routing::Cosine, 1).unwrap();
    // Token 3 ties between experts 0 and 1: the lower index wins.
    assert_eq!(cos.routes(&x).unwrap(), [0, 1, 0, 0]);
    assert_eq!(cos.routes(&x).unwrap(), cos.routes(&x).unwrap());
    let dot = MoeMlp::from_mlp(&m, &experts, keys, Routing::Dot, 1).unwrap();
    assert_eq!(dot.routes(&x).unwrap(), [2, 1, 2, 0]);
    let y1 = cos.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(cos.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap(), y1);
}

#[test]
fn mac_count_is_routing_plus_the_chosen_experts() {
    let (d, hidden) = (6, 12);
    let m = mlp(d, hidden, 11);
    let experts = vec![vec![0, 1, 2], vec![3, 4, 5, 6, 7, 8, 9], vec![9, 10, 11, 0]];
    let keys = Tensor::randn(&[3, d], 12).unwrap();
    let x = Tensor::randn(&[2, 10, d], 13).unwrap();
    for top_k in [1, 2] {
        let moe = MoeMlp::from_mlp(&m, &experts, keys.clone(), Routing::Cosine, top_k).unwrap();
        let routes = moe.routes(&x).unwrap();
        let t = 20;
        let want = (t * 3 * d + routes.iter().map(|&e| 2 * d * experts[e].len()).sum::<usize>()) as u64;
        let report = count_macs(&moe, &x).unwrap();
        assert_eq!(report.total_macs, want, "top-{top_k}");
        assert_eq!((report.rows.len(), report.rows[0].kind.as_str(), report.rows[0].name.as_str()), (1, "moe", "fc1"));
    }
    // The dense MLP costs T · 2·d·D.
    assert_eq!(count_macs(&m, &x).unwrap().total_macs, (20 * 2 * d * hidden) as u64);
}

#[test]
fn names_buffers_and_errors() {
    let m = mlp(4, 8, 14);
    let moe = MoeMlp::from_mlp(&m, &[vec![1, 2], vec![2, 5]], Tensor::randn(&[2, 4], 1).unwrap(), Routing::Cosine, 1)
        .unwrap();
    let names: Vec<String> = moe.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "keys", "expert_neurons", "expert_offsets"]);
    assert_eq!(moe.experts(), [vec![0, 1], vec![1, 2]]);
    assert_eq!(moe.named_buffers()[1].1.get().to_vec::<i64>().unwrap(), [0, 1, 1, 2]);
    assert_eq!(moe.num_parameters(), 3 * 4 + 3 + 4 * 3 + 4);
    let keys = || Tensor::randn(&[2, 4], 1).unwrap();
    assert!(MoeMlp::from_mlp(&m, &[vec![1], vec![9]], keys(), Routing::Cosine, 1).is_err());
    assert!(MoeMlp::from_mlp(&m, &[vec![1], vec![]], keys(), Routing::Cosine, 1).is_err());
    assert!(MoeMlp::from_mlp(&m, &[vec![1], vec![2]], keys(), Routing::Cosine, 3).is_err());
    assert!(MoeMlp::from_mlp(&m, &[vec![1]], keys(), Routing::Cosine, 1).is_err());
    assert!(moe.forward(&Tensor::zeros(&[2, 5]), Mode::Eval).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Gradients to the input and to every weight, through gathered, overlapping experts.
    #[test]
    fn moe_gradcheck(top_k in 1..=2usize, t in 2..=5usize, seed in 0..1000u64) {
        let m = mlp(3, 6, seed);
        let experts = vec![vec![0, 1, 2], vec![2, 3, 4], vec![5, 0]];
        let keys = Tensor::randn(&[3, 3], seed + 1).unwrap();
        let moe = MoeMlp::from_mlp(&m, &experts, keys, Routing::Cosine, top_k).unwrap();
        moe.convert(DType::F64, Device::Cpu).unwrap();
        let params: Vec<Param> = moe.parameters();
        let x = Tensor::randn(&[t, 3], seed + 2).unwrap().to_dtype(DType::F64).unwrap();
        let mut inputs = vec![x];
        inputs.extend(params.iter().map(|p| p.leaf().detach()));
        let r = gradcheck(
            |ts| {
                for (p, v) in params.iter().zip(&ts[1..]) {
                    p.bind(v.clone());
                }
                moe.forward(&ts[0], Mode::Train)
            },
            &inputs,
            &GradcheckOptions::default(),
        );
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}
