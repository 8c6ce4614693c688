//! The SR block against an independent reference, the spec's properties (identity at
//! initialization, mixing weights on the simplex, the overhead formula, zero selector gradients
//! on the first step, deterministic evaluation), f64 gradchecks, other input sizes.

use autograd::strategies::f64_tensor;
use autograd::{gradcheck, DType, Device, GradcheckOptions, Tensor};
use layers::{models, Mode, Module, ModuleExt, Param};
use proptest::prelude::*;

use crate::sr::{insert_at_stage_output, interpolation_matrix, Activation, SqueezeRemember};

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec().unwrap()
}

fn param(m: &dyn Module, name: &str) -> Param {
    m.named_parameters().into_iter().find(|(n, _)| n == name).unwrap().1
}

/// A block in f64 with a random memory.
fn block_f64(shape: [usize; 3], p: usize, u: usize, act: Activation, seed: u64) -> SqueezeRemember {
    let b = layers::rng::with_seed(seed, || SqueezeRemember::new(shape, p, u, act)).unwrap();
    b.convert(DType::F64, Device::Cpu).unwrap();
    let [c, h, w] = shape;
    let q = Tensor::randn(&[p, c, h, w], seed + 1).unwrap().to_dtype(DType::F64).unwrap();
    b.memory.set_data(&q).unwrap();
    b
}

/// The block's output by naive loops, from its parameters.
fn naive(b: &SqueezeRemember, x: &[f64], n: usize) -> Vec<f64> {
    let [c, h, w] = b.shape();
    let hw = h * w;
    let (ws, bs) = (f64s(&param(b, "squeeze.weight").leaf()), f64s(&param(b, "squeeze.bias").leaf())[0]);
    let (wa, ba) = (f64s(&param(b, "fc1.weight").leaf()), f64s(&param(b, "fc1.bias").leaf()));
    let (wb, bb) = (f64s(&param(b, "fc2.weight").leaf()), f64s(&param(b, "fc2.bias").leaf()));
    let q = f64s(&b.memory.leaf());
    let (u, p) = (ba.len(), bb.len());
    let phi = |v: f64| match b.activation {
        Activation::Relu => v.max(0.0),
        Activation::Identity => v,
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Activation::Gelu => unreachable!("not used here"),
    };
    let mut y = x.to_vec();
    for i in 0..n {
        let s: Vec<f64> =
            (0..hw).map(|j| bs + (0..c).map(|ch| ws[ch] * x[(i * c + ch) * hw + j]).sum::<f64>()).collect();
        let z: Vec<f64> = (0..u).map(|k| phi(ba[k] + (0..hw).map(|j| wa[k * hw + j] * s[j]).sum::<f64>())).collect();
        let a: Vec<f64> = (0..p).map(|m| bb[m] + (0..u).map(|k| wb[m * u + k] * z[k]).sum::<f64>()).collect();
        let mx = a.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = a.iter().map(|v| (v - mx).exp()).collect();
        let total: f64 = e.iter().sum();
        for m in 0..p {
            for k in 0..c * hw {
                y[i * c * hw + k] += e[m] / total * q[m * c * hw + k];
            }
        }
    }
    y
}

#[test]
fn forward_matches_naive_loops() {
    for (shape, p, u, act) in [
        ([3, 4, 5], 2, 3, Activation::Relu),
        ([1, 2, 2], 5, 1, Activation::Identity),
        ([4, 3, 3], 3, 4, Activation::Tanh),
        ([2, 1, 6], 1, 2, Activation::Sigmoid),
    ] {
        let b = block_f64(shape, p, u, act, 7);
        let [c, h, w] = shape;
        let x = Tensor::randn(&[3, c, h, w], 11).unwrap().to_dtype(DType::F64).unwrap();
        let y = f64s(&b.forward(&x, Mode::Train).unwrap());
        let want = naive(&b, &f64s(&x), 3);
        for (a, e) in y.iter().zip(&want) {
            assert!((a - e).abs() < 1e-12, "{shape:?} P {p} U {u} {act:?}: {a} vs {e}");
        }
    }
}

#[test]
fn the_block_is_the_identity_at_initialization() {
    let b = SqueezeRemember::new([16, 8, 8], 10, 8, Activation::Relu).unwrap();
    assert!(f64s(&b.memory.leaf()).iter().all(|&v| v == 0.0));
    let x = Tensor::randn(&[4, 16, 8, 8], 3).unwrap();
    for mode in [Mode::Train, Mode::Eval] {
        assert_eq!(b.forward(&x, mode).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    }
    // A whole network with the block gives the plain network's logits, bit for bit.
    let opts = models::ModelOptions::new(10, 3, 5).width(0.25);
    let plain = models::build_with("resnet18-cifar", &opts).unwrap();
    let mut with = models::build_with("resnet18-cifar", &opts).unwrap();
    insert_at_stage_output(with.as_mut(), 3, "sr", [3, 32, 32], |s| {
        Ok(Box::new(SqueezeRemember::new(s, 10, 8, Activation::Relu)?))
    })
    .unwrap();
    let x = Tensor::randn(&[2, 3, 32, 32], 9).unwrap();
    for mode in [Mode::Train, Mode::Eval] {
        let (a, b) = (plain.forward(&x, mode).unwrap(), with.forward(&x, mode).unwrap());
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "{mode:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn mixing_weights_lie_on_the_simplex(
        (c, h, w, p, u, n, seed) in (1usize..5, 1usize..5, 1usize..5, 1usize..8, 1usize..6, 1usize..5, 0u64..1000)
    ) {
        let b = block_f64([c, h, w], p, u, Activation::Relu, seed);
        let x = Tensor::randn(&[n, c, h, w], seed).unwrap().to_dtype(DType::F64).unwrap().mul_scalar(3.0).unwrap();
        let wts = b.mixing_weights(&x, Mode::Eval).unwrap();
        prop_assert_eq!(wts.shape(), &[n, p]);
        for row in f64s(&wts).chunks(p) {
            prop_assert!(row.iter().all(|&v| v >= 0.0));
            prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn block_gradcheck(
        (x, p, u, act, other_size) in (1usize..3, 1usize..4, 1usize..4, 1usize..4)
            .prop_flat_map(|(n, c, h, w)| (f64_tensor(vec![n, c, h, w], -1.0, 1.0), 1usize..4, 1usize..4, 0usize..3, any::<bool>()))
    ) {
        let [c, h, w] = [x.shape()[1], x.shape()[2], x.shape()[3]];
        let act = [Activation::Relu, Activation::Identity, Activation::Tanh][act];
        // Built for another size than the input's: the pooling and resizing path.
        let shape = if other_size { [c, h + 1, (w + 2) / 2] } else { [c, h, w] };
        let b = block_f64(shape, p, u, act, (h * 7 + w) as u64);
        let params: Vec<Param> = b.parameters();
        let mut inputs = vec![x];
        inputs.extend(params.iter().map(|q| q.leaf().detach()));
        let f = |t: &[Tensor]| {
            for (q, v) in params.iter().zip(&t[1..]) {
                q.bind(v.clone());
            }
            b.forward(&t[0], Mode::Train)
        };
        let r = gradcheck(f, &inputs, &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    }
}

#[test]
fn equal_memories_make_the_output_independent_of_the_selector() {
    let b = block_f64([3, 4, 4], 5, 4, Activation::Relu, 2);
    let one = Tensor::randn(&[1, 3, 4, 4], 8).unwrap().to_dtype(DType::F64).unwrap();
    b.memory.set_data(&one.repeat(&[5, 1, 1, 1]).unwrap()).unwrap();
    let x = Tensor::randn(&[6, 3, 4, 4], 4).unwrap().to_dtype(DType::F64).unwrap();
    let y0 = f64s(&b.forward(&x, Mode::Eval).unwrap());
    for name in ["squeeze.weight", "fc1.weight", "fc2.bias"] {
        let q = param(&b, name);
        q.set_data(&q.leaf().mul_scalar(-3.0).unwrap().add_scalar(0.5).unwrap()).unwrap();
    }
    let y1 = f64s(&b.forward(&x, Mode::Eval).unwrap());
    assert!(y0.iter().zip(&y1).all(|(a, b)| (a - b).abs() < 1e-12));
    // With distinct memories the selector matters.
    b.memory.set_data(&Tensor::randn(&[5, 3, 4, 4], 1).unwrap().to_dtype(DType::F64).unwrap()).unwrap();
    let y2 = f64s(&b.forward(&x, Mode::Eval).unwrap());
    assert!(y2.iter().zip(&y1).any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn the_parameter_count_follows_the_formula_and_the_paper_s_resnet50_overheads() {
    for (shape, p, u) in [([1024, 14, 14], 2, 16), ([64, 8, 8], 10, 8), ([3, 1, 5], 1, 1)] {
        let b = SqueezeRemember::new(shape, p, u, Activation::Relu).unwrap();
        // The paper's count plus the biases of the squeeze conv (1), fc1 (U) and fc2 (P).
        assert_eq!(b.num_parameters(), SqueezeRemember::overhead(shape, p, u) + 1 + u + p, "{shape:?}");
    }
    // ResNet-50 (ImageNet): stage 3 (conv4_x) ends in 1024x14x14 maps for 224x224 inputs.
    let mut r50 = models::build("resnet50", 1000, 3, 0).unwrap();
    let base = r50.num_parameters();
    assert_eq!(base, 25_557_032);
    let (path, shape) = insert_at_stage_output(r50.as_mut(), 3, "sr", [3, 224, 224], |s| {
        Ok(Box::new(SqueezeRemember::new(s, 2, 16, Activation::Relu)?))
    })
    .unwrap();
    assert_eq!((path.as_str(), shape), ("layer3", [1024, 14, 14]));
    assert_eq!(r50.num_parameters() - base, SqueezeRemember::overhead(shape, 2, 16) + 1 + 16 + 2);
    let pct = |p: usize| format!("{:.2}", 100.0 * SqueezeRemember::overhead(shape, p, 16) as f64 / base as f64);
    // The paper's table gives 15.73% for P = 20; the formula gives 15.724% (a rounding difference).
    assert_eq!([pct(2), pct(10), pct(20)], ["1.59", "7.87", "15.72"]);
}

#[test]
fn the_selector_gets_zero_gradients_on_the_first_step_and_non_zero_ones_after() {
    let b = SqueezeRemember::new([4, 3, 3], 3, 5, Activation::Relu).unwrap();
    let x = Tensor::randn(&[6, 4, 3, 3], 1).unwrap();
    let r = Tensor::randn(&[6, 4, 3, 3], 2).unwrap();
    let selector = ["squeeze.weight", "squeeze.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];
    let step = || {
        for q in b.parameters() {
            q.zero_grad();
        }
        b.forward(&x, Mode::Train).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let grads: Vec<(String, Vec<f32>)> = b
            .named_parameters()
            .into_iter()
            .map(|(n, q)| (n, q.grad().map(|g| g.to_vec::<f32>().unwrap()).unwrap_or_default()))
            .collect();
        // Plain SGD step.
        for q in b.parameters() {
            if let Some(g) = q.grad() {
                q.set_data(&q.leaf().sub(&g.mul_scalar(0.1).unwrap()).unwrap()).unwrap();
            }
        }
        grads
    };
    let nonzero = |g: &[f32]| g.iter().any(|&v| v != 0.0);
    for (name, g) in step() {
        if selector.contains(&name.as_str()) {
            assert!(g.iter().all(|&v| v == 0.0), "{name}: {g:?}");
        } else {
            assert_eq!(name, "memory");
            assert!(nonzero(&g), "the memory learns on the first step");
        }
    }
    for (name, g) in step() {
        assert!(nonzero(&g), "{name} on the second step");
    }
}

#[test]
fn evaluation_is_deterministic_and_equals_training() {
    let b = block_f64([5, 4, 3], 4, 3, Activation::Relu, 3);
    let x = Tensor::randn(&[3, 5, 4, 3], 6).unwrap().to_dtype(DType::F64).unwrap();
    let e1 = f64s(&b.forward(&x, Mode::Eval).unwrap());
    let e2 = f64s(&b.forward(&x, Mode::Eval).unwrap());
    let t = f64s(&b.forward(&x, Mode::Train).unwrap());
    assert_eq!(e1, e2);
    assert_eq!(e1, t);
}

#[test]
fn interpolation_matches_pytorch_s_bilinear_rule() {
    // F.interpolate(torch.tensor([[[0., 1., 2.]]]), size=5, mode="linear") = [0, .4, 1, 1.6, 2].
    let m = interpolation_matrix(5, 3);
    let y: Vec<f64> = m.chunks(3).map(|r| r[1] + 2.0 * r[2]).collect();
    let want = [0.0, 0.4, 1.0, 1.6, 2.0];
    assert!(y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{y:?}");
    // Halving averages pairs; every row sums to 1 (constants are kept); same size is the identity.
    assert_eq!(interpolation_matrix(2, 4), [0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
    for (o, i) in [(7, 3), (3, 7), (1, 5), (5, 1)] {
        assert!(interpolation_matrix(o, i).chunks(i).all(|r| (r.iter().sum::<f64>() - 1.0).abs() < 1e-12));
    }
    assert_eq!(interpolation_matrix(3, 3), [1., 0., 0., 0., 1., 0., 0., 0., 1.]);
}

#[test]
fn other_input_sizes_pool_the_squeeze_and_resize_the_memory() {
    let b = block_f64([2, 4, 4], 3, 2, Activation::Relu, 5);
    // A memory constant over space stays constant at any size.
    let q = Tensor::randn(&[3, 2, 1, 1], 2).unwrap().to_dtype(DType::F64).unwrap();
    b.memory.set_data(&q.repeat(&[1, 1, 4, 4]).unwrap()).unwrap();
    for (h, w) in [(8, 8), (2, 3), (4, 4), (9, 5)] {
        let x = Tensor::randn(&[2, 2, h, w], 1).unwrap().to_dtype(DType::F64).unwrap();
        let added = f64s(&b.forward(&x, Mode::Eval).unwrap().sub(&x).unwrap());
        assert_eq!(added.len(), 2 * 2 * h * w);
        for map in added.chunks(h * w) {
            assert!(map.iter().all(|v| (v - map[0]).abs() < 1e-12), "{h}x{w}");
        }
    }
    // An input twice the size pools 2x2 squeezed pixels into each FCN input: equal to the block
    // on the input average-pooled first (the squeeze is linear), with the memory upsampled.
    let b = block_f64([2, 3, 3], 2, 3, Activation::Tanh, 6);
    let x = Tensor::randn(&[2, 2, 6, 6], 3).unwrap().to_dtype(DType::F64).unwrap();
    let small = x.avg_pool2d(autograd::Pool2dParams::square(2)).unwrap();
    let (wa, wb) = (b.mixing_weights(&x, Mode::Eval).unwrap(), b.mixing_weights(&small, Mode::Eval).unwrap());
    assert!(f64s(&wa).iter().zip(f64s(&wb)).all(|(a, b)| (a - b).abs() < 1e-12));
    let bad = b.forward(&Tensor::ones(&[1, 3, 3, 3]).to_dtype(DType::F64).unwrap(), Mode::Eval).unwrap_err();
    assert!(bad.to_string().contains("[B, 2, H, W]"), "{bad}");
}
