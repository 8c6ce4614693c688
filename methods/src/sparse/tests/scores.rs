//! Scoring rules against independent references.

use autograd::{BackwardOptions, DType, Tensor};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::{Flatten, Linear, Mode, Module, ModuleExt, ReLU, Sequential, Tanh};

use super::super::allocation::{keep_count, masks_from_scores, Allocation};
use super::super::engine::{counts, masked_layers, wrap, Prunable};
use super::super::masked::Fixed;
use super::super::score::{grasp_hg, sample_loss, snip_scores, synflow_prune, synflow_scores, trainable_leaves};
use super::{conv_net, f64s, masked_conv_net, sample};

#[test]
fn snip_is_the_absolute_weight_times_gradient_and_keeps_exactly_k() {
    let model = masked_conv_net(3);
    let s = sample(8, 1);
    let stats_before: Vec<Vec<f64>> = model.named_buffers().iter().map(|(_, b)| f64s(&b.get())).collect();
    let scores = snip_scores(model.as_ref(), std::slice::from_ref(&s)).unwrap();
    let stats_after: Vec<Vec<f64>> = model.named_buffers().iter().map(|(_, b)| f64s(&b.get())).collect();
    assert_eq!(stats_before, stats_after, "scoring leaves the BatchNorm statistics as they were");
    // The reference: the same network unmasked, its gradient by plain autograd.
    let plain = conv_net(3);
    let loss = cross_entropy(&plain.forward(&s.0, Mode::Train).unwrap(), &s.1, CrossEntropyOptions::default()).unwrap();
    loss.backward().unwrap();
    let weights: Vec<_> =
        plain.named_parameters().into_iter().filter(|(n, _)| n.ends_with("weight") && !n.starts_with("1.")).collect();
    assert_eq!(weights.len(), scores.len());
    for ((name, w), got) in weights.iter().zip(&scores) {
        let (wv, gv) = (f64s(&w.leaf()), f64s(&w.grad().unwrap()));
        assert_eq!(got.len(), wv.len(), "{name}");
        for i in 0..wv.len() {
            let want = (wv[i] * gv[i]).abs();
            assert!((got[i] - want).abs() <= 1e-6 * want.max(1e-12), "{name}[{i}]: {} vs {want}", got[i]);
        }
    }
    let geoms: Vec<_> = masked_layers(model.as_ref()).iter().map(|(_, l)| l.geometry()).collect();
    let n: usize = scores.iter().map(Vec::len).sum();
    let masks = masks_from_scores(Allocation::Global, &scores, &geoms, 0.3).unwrap();
    assert_eq!(masks.iter().flatten().filter(|&&m| m != 0.0).count(), keep_count(0.3, n));
    for (m, s) in masks.iter().zip(&scores) {
        assert_eq!(m.len(), s.len(), "a mask per weight");
    }
    // The kept ones are the largest scores.
    let flat: Vec<f64> = scores.iter().flatten().copied().collect();
    let kept_min =
        flat.iter().zip(masks.iter().flatten()).filter(|(_, &m)| m != 0.0).map(|(s, _)| *s).fold(f64::MAX, f64::min);
    let dropped_max =
        flat.iter().zip(masks.iter().flatten()).filter(|(_, &m)| m == 0.0).map(|(s, _)| *s).fold(0.0, f64::max);
    assert!(kept_min >= dropped_max);
}

fn smooth_net() -> Box<dyn Module> {
    let mut m: Box<dyn Module> = layers::rng::with_seed(5, || {
        Box::new(Sequential::new().push(Linear::new(4, 6, true)).push(Tanh).push(Linear::new(6, 3, true)))
            as Box<dyn Module>
    });
    wrap(m.as_mut(), &Prunable::All, &|_, _| Fixed::Zero).unwrap();
    m.convert(DType::F64, autograd::Device::Cpu).unwrap();
    m
}

fn grads_at(model: &dyn Module, s: &(Tensor, Tensor), t: f64) -> Vec<Vec<f64>> {
    let leaves = trainable_leaves(model).unwrap();
    let g = sample_loss(model, s, t).unwrap().backward_with(BackwardOptions::default()).unwrap();
    leaves.iter().map(|l| f64s(g.get(l).unwrap())).collect()
}

#[test]
fn grasp_hessian_gradient_product_matches_finite_differences() {
    let model = smooth_net();
    let x = Tensor::randn(&[10, 4], 3).unwrap().to_dtype(DType::F64).unwrap();
    let y = Tensor::from_vec((0..10i64).map(|i| i % 3).collect::<Vec<_>>(), &[10]).unwrap();
    let s = (x, y);
    for t in [1.0, 200.0] {
        let (g, hg) = grasp_hg(model.as_ref(), std::slice::from_ref(&s), t).unwrap();
        let g: Vec<Vec<f64>> = g.iter().map(f64s).collect();
        let norm = g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
        let eps = 1e-4 / norm;
        let leaves = trainable_leaves(model.as_ref()).unwrap();
        let orig: Vec<Vec<f64>> = leaves.iter().map(f64s).collect();
        let shift = |sign: f64| {
            for ((l, o), gi) in leaves.iter().zip(&orig).zip(&g) {
                let v: Vec<f64> = o.iter().zip(gi).map(|(o, g)| o + sign * eps * g).collect();
                l.set_data(&Tensor::from_vec(v, l.shape()).unwrap()).unwrap();
            }
        };
        shift(1.0);
        let plus = grads_at(model.as_ref(), &s, t);
        shift(-1.0);
        let minus = grads_at(model.as_ref(), &s, t);
        shift(0.0);
        let fd: Vec<f64> =
            plus.iter().flatten().zip(minus.iter().flatten()).map(|(p, m)| (p - m) / (2.0 * eps)).collect();
        let hg: Vec<f64> = hg.iter().flat_map(f64s).collect();
        let scale = fd.iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(scale > 0.0);
        for (i, (a, b)) in hg.iter().zip(&fd).enumerate() {
            assert!((a - b).abs() <= 1e-5 * scale, "T = {t}: Hg[{i}] = {a}, finite difference {b}");
        }
    }
}

fn chain() -> Box<dyn Module> {
    let mut m: Box<dyn Module> = layers::rng::with_seed(9, || {
        Box::new(
            Sequential::new()
                .push(Flatten::default())
                .push(Linear::new(5, 8, false))
                .push(ReLU)
                .push(Linear::new(8, 6, false))
                .push(ReLU)
                .push(Linear::new(6, 3, false)),
        ) as Box<dyn Module>
    });
    wrap(m.as_mut(), &Prunable::All, &|_, _| Fixed::Zero).unwrap();
    m
}

#[test]
fn synflow_scores_sum_to_the_same_flow_in_every_layer_and_end_at_the_exact_density() {
    let model = chain();
    let before: Vec<Vec<f64>> = model.named_parameters().iter().map(|(_, p)| f64s(&p.leaf())).collect();
    let scores = synflow_scores(model.as_ref(), [1, 1, 5]).unwrap();
    let after: Vec<Vec<f64>> = model.named_parameters().iter().map(|(_, p)| f64s(&p.leaf())).collect();
    assert_eq!(before, after, "signs and values restored");
    // R = 1ᵀ|W3||W2||W1|1 by hand.
    let abs = |i: usize| -> Vec<f64> { before[i].iter().map(|v| v.abs()).collect() };
    let mut h = vec![1.0f64; 5];
    for (l, (fin, fout)) in [(5usize, 8usize), (8, 6), (6, 3)].into_iter().enumerate() {
        let w = abs(l);
        h = (0..fout).map(|o| (0..fin).map(|i| w[o * fin + i] * h[i]).sum()).collect();
    }
    let r: f64 = h.iter().sum();
    for (l, s) in scores.iter().enumerate() {
        let sum: f64 = s.iter().sum();
        assert!((sum - r).abs() <= 1e-9 * r, "layer {l}: Σ score {sum} vs R {r}");
    }
    let n: usize = scores.iter().map(Vec::len).sum();
    synflow_prune(model.as_ref(), [1, 1, 5], 0.1, 100).unwrap();
    assert_eq!(counts(model.as_ref()).unwrap().active(), keep_count(0.1, n));
    assert_eq!(model.parameters()[0].leaf().dtype(), DType::F32, "back in f32");
}
