//! Interspace pruning in the standard basis is standard pruning; the DCT start is the dense
//! network.

use autograd::Tensor;
use layers::{Mode, Module, ModuleExt};

use super::super::basis::{dct_1d, dct_2d, random_orthogonal, BasisInit, Granularity};
use super::ip_net;
use crate::sparse::allocation::{masks_from_scores, Allocation};
use crate::sparse::engine::{apply_masks, current_masks, masked_layers, to_f32};
use crate::sparse::schedule::imp::imp_masks;
use crate::sparse::schedule::rigl::rigl_layer_update;
use crate::sparse::schedule::set::set_layer_update;
use crate::sparse::schedule::{apply_updates, MaskUpdate};
use crate::sparse::score::{
    grasp_scores, magnitude_scores, random_scores, sample_loss, snip_scores, synflow_prune, trainable_values,
};
use crate::sparse::tests::{f64s, masked_conv_net, sample};

fn sp_and_ip(seed: u64) -> (Box<dyn Module>, Box<dyn Module>) {
    (masked_conv_net(seed), ip_net(seed, BasisInit::Standard, Granularity::Layer, false))
}

fn geoms(m: &dyn Module) -> Vec<crate::sparse::masked::LayerGeometry> {
    masked_layers(m).iter().map(|(_, l)| l.geometry()).collect()
}

/// Outputs, loss gradients of the trainable tensors and dense gradients of the two models, all
/// equal as values (`==`: +0 and -0 alike).
fn assert_same_forward_backward(sp: &dyn Module, ip: &dyn Module, what: &str) {
    let s = sample(6, 9);
    for (_, l) in masked_layers(sp).into_iter().chain(masked_layers(ip)) {
        l.keep_dense_grad(true);
    }
    let (ya, yb) = (sp.forward(&s.0, Mode::Train).unwrap(), ip.forward(&s.0, Mode::Train).unwrap());
    assert_eq!(f64s(&ya), f64s(&yb), "{what}: outputs");
    for m in [sp, ip] {
        sample_loss(m, &s, 1.0).unwrap().backward().unwrap();
    }
    for ((p, a), (_, b)) in masked_layers(sp).iter().zip(masked_layers(ip).iter()) {
        let (ga, gb) = (a.values().leaf().grad().unwrap(), b.values().leaf().grad().unwrap());
        assert_eq!(f64s(&ga), f64s(&gb), "{what}: gradient of {p}");
        assert_eq!(f64s(&a.dense_grad().unwrap()), f64s(&b.dense_grad().unwrap()), "{what}: dense gradient of {p}");
        a.keep_dense_grad(false);
        b.keep_dense_grad(false);
    }
}

#[test]
fn the_fixed_standard_basis_reproduces_standard_pruning_for_every_score() {
    type Rule = fn(&dyn Module) -> Vec<Vec<f64>>;
    let rules: [(&str, Rule); 5] = [
        ("snip", |m| snip_scores(m, &[sample(12, 3)]).unwrap()),
        ("grasp", |m| grasp_scores(m, &[sample(6, 3), sample(6, 4)], 200.0).unwrap()),
        ("magnitude", |m| magnitude_scores(m).unwrap()),
        ("random", |m| random_scores(m, 77).unwrap()),
        ("synflow", |m| {
            synflow_prune(m, [2, 6, 6], 0.3, 10).unwrap();
            current_masks(m).unwrap().into_iter().map(|v| v.into_iter().map(f64::from).collect()).collect()
        }),
    ];
    for (name, rule) in rules {
        let (sp, ip) = sp_and_ip(21);
        let (a, b) = (rule(sp.as_ref()), rule(ip.as_ref()));
        assert_eq!(a, b, "{name}: scores");
        let ma = masks_from_scores(Allocation::Global, &a, &geoms(sp.as_ref()), 0.3).unwrap();
        let mb = masks_from_scores(Allocation::Global, &b, &geoms(ip.as_ref()), 0.3).unwrap();
        assert_eq!(ma, mb, "{name}: masks");
        apply_masks(sp.as_ref(), &ma, None).unwrap();
        apply_masks(ip.as_ref(), &mb, None).unwrap();
        assert_same_forward_backward(sp.as_ref(), ip.as_ref(), name);
    }
}

#[test]
fn the_fixed_standard_basis_reproduces_lth_set_and_rigl_updates() {
    let (sp, ip) = sp_and_ip(22);
    let masks =
        masks_from_scores(Allocation::Erk, &random_scores(sp.as_ref(), 5).unwrap(), &geoms(sp.as_ref()), 0.4).unwrap();
    for m in [&sp, &ip] {
        apply_masks(m.as_ref(), &masks, None).unwrap();
    }
    assert_same_forward_backward(sp.as_ref(), ip.as_ref(), "erk");
    // RigL: drop by |value|, grow by the dense gradient of the backward pass above.
    let rigl = |m: &dyn Module| -> Vec<MaskUpdate> {
        masked_layers(m)
            .iter()
            .map(|(_, l)| {
                let v = to_f32(&l.values().leaf()).unwrap();
                let dense = f64s(&l.dense_grad().unwrap());
                rigl_layer_update(&v, &to_f32(&l.mask()).unwrap(), &dense, 0.3, &vec![0.0; v.len()])
            })
            .collect()
    };
    for (_, l) in masked_layers(sp.as_ref()).into_iter().chain(masked_layers(ip.as_ref())) {
        l.keep_dense_grad(true);
    }
    let s = sample(6, 1);
    for m in [&sp, &ip] {
        sample_loss(m.as_ref(), &s, 1.0).unwrap().backward().unwrap();
    }
    let (ua, ub) = (rigl(sp.as_ref()), rigl(ip.as_ref()));
    assert_eq!(ua.iter().map(|u| &u.mask).collect::<Vec<_>>(), ub.iter().map(|u| &u.mask).collect::<Vec<_>>());
    assert!(ua.iter().any(|u| u.fresh.iter().any(|&f| f)), "RigL grew nothing: the check could not fail");
    apply_updates(sp.as_ref(), &ua, None).unwrap();
    apply_updates(ip.as_ref(), &ub, None).unwrap();
    // SET: drop by |value|, grow at random (same seed).
    let set = |m: &dyn Module| -> Vec<Vec<f32>> {
        masked_layers(m)
            .iter()
            .enumerate()
            .map(|(i, (_, l))| {
                let v = to_f32(&l.values().leaf()).unwrap();
                set_layer_update(&v, &to_f32(&l.mask()).unwrap(), 0.3, 40 + i as u64).unwrap().mask
            })
            .collect()
    };
    assert_eq!(set(sp.as_ref()), set(ip.as_ref()), "SET masks");
    // LTH: a magnitude round on the trained values.
    let keep = current_masks(sp.as_ref()).unwrap().iter().flatten().filter(|&&m| m != 0.0).count() / 2;
    let la = imp_masks(&trainable_values(sp.as_ref()).unwrap(), &current_masks(sp.as_ref()).unwrap(), keep);
    let lb = imp_masks(&trainable_values(ip.as_ref()).unwrap(), &current_masks(ip.as_ref()).unwrap(), keep);
    assert_eq!(la, lb, "LTH masks");
    apply_masks(sp.as_ref(), &la, None).unwrap();
    apply_masks(ip.as_ref(), &lb, None).unwrap();
    assert_same_forward_backward(sp.as_ref(), ip.as_ref(), "lth");
}

#[test]
fn an_orthonormal_start_equals_the_dense_network() {
    let dense = crate::sparse::tests::conv_net(31);
    let x = sample(4, 2).0;
    let want = f64s(&dense.forward(&x, Mode::Eval).unwrap());
    let w0: Vec<Vec<f64>> = dense.parameters().iter().map(|p| f64s(&p.leaf())).collect();
    for (init, gran) in [
        (BasisInit::Dct, Granularity::Layer),
        (BasisInit::Dct, Granularity::InputChannel),
        (BasisInit::RandomOrthogonal, Granularity::Layer),
        (BasisInit::RandomOrthogonal, Granularity::InputChannel),
    ] {
        let ip = ip_net(31, init, gran, true);
        let layers = masked_layers(ip.as_ref());
        for (k, (p, l)) in layers.iter().enumerate() {
            let w = f64s(&l.effective_weight().unwrap());
            // The dense net's parameters: conv1 weight, BN (2), conv2 weight, bias, linear w, b.
            let reference = &w0[[0, 3, 5][k]];
            assert!(w.iter().zip(reference).all(|(a, b)| (a - b).abs() < 1e-6), "{init:?}/{gran:?}: {p} weight");
            if k < 2 {
                // In a non-trivial basis the coefficients are not the weights.
                let v = f64s(&l.values().leaf());
                assert!(v.iter().zip(reference).any(|(a, b)| (a - b).abs() > 1e-3), "{init:?}: {p} coefficients");
            }
        }
        let got = f64s(&ip.forward(&x, Mode::Eval).unwrap());
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "{init:?}/{gran:?}: outputs");
    }
}

#[test]
fn the_dct_basis_is_the_orthonormal_dct_ii() {
    // n = 2: [[1, 1], [1, -1]] / √2.
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let d2 = dct_1d(2);
    assert!(d2.iter().zip([h, h, h, -h]).all(|(a, b)| (a - b).abs() < 1e-15), "{d2:?}");
    // n = 3, row 1: √(2/3)·cos(π(2k+1)/6) = [1/√2, 0, -1/√2].
    let d3 = dct_1d(3);
    assert!(d3[3..6].iter().zip([h, 0.0, -h]).all(|(a, b)| (a - b).abs() < 1e-15), "{d3:?}");
    for (kh, kw) in [(3, 3), (2, 3), (5, 5), (1, 3)] {
        let k2 = kh * kw;
        let b = dct_2d(kh, kw);
        for r in 0..k2 {
            for s in 0..k2 {
                let dot: f64 = (0..k2).map(|c| b[r * k2 + c] * b[s * k2 + c]).sum();
                assert!((dot - if r == s { 1.0 } else { 0.0 }).abs() < 1e-12, "{kh}x{kw}: rows {r}, {s}");
            }
        }
        // Row 0 is the constant filter 1/√(kh·kw).
        assert!(b[..k2].iter().all(|v| (v - 1.0 / (k2 as f64).sqrt()).abs() < 1e-15));
    }
    let q = random_orthogonal(9, 3).unwrap();
    assert_eq!(q, random_orthogonal(9, 3).unwrap(), "seeded");
    assert_ne!(q, random_orthogonal(9, 4).unwrap());
    let t = Tensor::from_vec(q, &[9, 9]).unwrap();
    let qqt = f64s(&t.matmul(&t.t().unwrap()).unwrap());
    assert!(qqt.iter().enumerate().all(|(i, v)| (v - if i / 9 == i % 9 { 1.0 } else { 0.0 }).abs() < 1e-12));
}
