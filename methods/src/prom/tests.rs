//! The spec's tests of the quantizers (levels per channel, straight-through gradients, LSQ's
//! and PACT's learned-parameter gradients against their closed forms) and of the estimator
//! (the MobileNetV2 breakdown and ratios of the spec's hand computation).

use std::collections::BTreeSet;

use autograd::{DType, Tensor};
use layers::models;
use proptest::prelude::*;

use super::*;

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec().unwrap()
}

fn randn64(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, seed).unwrap().to_dtype(DType::F64).unwrap()
}

/// `Σ r · f(w)` backpropagated: `(value of f(w), dL/dw)`.
fn grad_of(w: &Tensor, r: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> (Vec<f64>, Vec<f64>) {
    let w = w.detach().requires_grad_();
    let q = f(&w);
    q.mul(r).unwrap().sum_all().unwrap().backward().unwrap();
    (f64s(&q), f64s(&w.grad().unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Ternary layers take only `{−γ_o, 0, +γ_o}` per output channel (`γ_o` the channel's absmean,
    /// TWN's `α_o` the mean of the kept magnitudes), and the latent weight gets the quantized
    /// weight's gradient unchanged.
    #[test]
    fn ternary_levels_and_straight_through_gradients(o in 1usize..6, c in 1usize..5, k in 1usize..4, seed in 0u64..500) {
        let w = randn64(&[o, c, k, k], seed);
        let r = randn64(&[o, c, k, k], seed + 1);
        let per = c * k * k;
        let wv = f64s(&w);
        for twn in [false, true] {
            let (q, g) = grad_of(&w, &r, |w| if twn { ternary_twn(w).unwrap() } else { ternary_absmean(w).unwrap() });
            prop_assert_eq!(&g, &f64s(&r));
            for ch in 0..o {
                let row = &wv[ch * per..(ch + 1) * per];
                let mean = row.iter().map(|v| v.abs()).sum::<f64>() / per as f64;
                let scale = if twn {
                    let kept: Vec<f64> = row.iter().map(|v| v.abs()).filter(|a| *a > 0.7 * mean).collect();
                    kept.iter().sum::<f64>() / kept.len().max(1) as f64
                } else {
                    mean
                };
                for (i, &v) in q[ch * per..(ch + 1) * per].iter().enumerate() {
                    prop_assert!(v == 0.0 || (v.abs() - scale).abs() < 1e-12 * scale.max(1.0), "channel {ch}: {v} vs {scale}");
                    prop_assert!(v == 0.0 || v.signum() == row[i].signum());
                }
            }
        }
    }

    /// int8 layers: at most 255 levels per channel, the channel's largest magnitude kept, every
    /// value within half a step, gradients straight through.
    #[test]
    fn int8_levels_and_gradients(o in 1usize..5, per in 1usize..400, seed in 0u64..500) {
        let w = randn64(&[o, per], seed);
        let (q, g) = grad_of(&w, &randn64(&[o, per], seed + 1), |w| int8_weight(w).unwrap());
        prop_assert_eq!(g, f64s(&randn64(&[o, per], seed + 1)));
        let wv = f64s(&w);
        for ch in 0..o {
            let row = &wv[ch * per..(ch + 1) * per];
            let qrow = &q[ch * per..(ch + 1) * per];
            let max = row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let step = max / 127.0;
            let levels: BTreeSet<i64> = qrow.iter().map(|v| (v / step).round() as i64).collect();
            prop_assert!(levels.len() <= 255 && levels.iter().all(|l| l.abs() <= 127));
            prop_assert!((qrow.iter().fold(0.0f64, |m, v| m.max(v.abs())) - max).abs() < 1e-12);
            for (a, b) in row.iter().zip(qrow) {
                prop_assert!((a - b).abs() <= 0.5 * step + 1e-12);
            }
        }
    }

    /// LSQ: values on the grid `k·s`, `k ∈ [−Q_N, Q_P]`; `∂/∂x` 1 inside the range, 0 outside;
    /// the step's gradient equal to LSQ's closed form `g · Σ r · (round(v) − v | −Q_N | Q_P)`.
    #[test]
    fn lsq_values_and_step_gradient(n in 1usize..200, s in 0.01f64..0.5, signed in any::<bool>(), seed in 0u64..500) {
        let (qn, qp) = if signed { (128.0, 127.0) } else { (0.0, 255.0) };
        let x = randn64(&[n], seed).mul_scalar(20.0 * s).unwrap().requires_grad_();
        let r = randn64(&[n], seed + 1);
        let step = Tensor::from_vec(vec![s], &[1]).unwrap().requires_grad_();
        let g = 1.0 / ((n as f64) * qp).sqrt();
        let y = lsq(&x, &step, qn, qp, g).unwrap();
        y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let (xv, yv, rv) = (f64s(&x), f64s(&y), f64s(&r));
        let gx = f64s(&x.grad().unwrap());
        let mut want = 0.0;
        for i in 0..n {
            let v = xv[i] / s;
            let k = (yv[i] / s).round();
            prop_assert!((yv[i] - k * s).abs() < 1e-9 && k >= -qn && k <= qp);
            let (d, inside) = if v < -qn { (-qn, false) } else if v > qp { (qp, false) } else { (v.round_ties_even() - v, true) };
            want += rv[i] * d;
            // (x / s) · s: 1 up to rounding inside the range, exactly 0 outside.
            let want_gx = if inside { rv[i] } else { 0.0 };
            prop_assert!((gx[i] - want_gx).abs() <= 1e-12 * (1.0 + rv[i].abs()), "{} vs {want_gx}", gx[i]);
        }
        let got = f64s(&step.grad().unwrap())[0];
        prop_assert!((got - g * want).abs() < 1e-9 * (1.0 + want.abs()), "{got} vs {}", g * want);
    }

    /// PACT: values on the `α / (2^b − 1)` grid in `[0, α]`; `∂/∂α = Σ r` over `x ≥ α`; `∂/∂x = r`
    /// inside `[0, α)`. A fixed range: grid and clipped gradient.
    #[test]
    fn pact_and_fixed_range(n in 1usize..100, a in 0.5f64..6.0, bits in 2u32..9, seed in 0u64..500) {
        let x = randn64(&[n], seed).mul_scalar(a).unwrap().requires_grad_();
        let r = randn64(&[n], seed + 1);
        let alpha = Tensor::from_vec(vec![a], &[1]).unwrap().requires_grad_();
        let y = pact(&x, &alpha, bits).unwrap();
        y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let (xv, yv, rv, gx) = (f64s(&x), f64s(&y), f64s(&r), f64s(&x.grad().unwrap()));
        let levels = f64::from((1u32 << bits) - 1);
        let mut want = 0.0;
        for i in 0..n {
            let k = yv[i] * levels / a;
            prop_assert!((k - k.round()).abs() < 1e-9 && yv[i] >= 0.0 && yv[i] <= a + 1e-12);
            if xv[i] >= a { want += rv[i]; }
            let inside = xv[i] > 0.0 && xv[i] < a;
            prop_assert_eq!(gx[i], if inside { rv[i] } else { 0.0 });
        }
        prop_assert!((f64s(&alpha.grad().unwrap())[0] - want).abs() < 1e-9);
        let x2 = x.detach().requires_grad_();
        let y2 = fixed_range(&x2, 0.0, 6.0, bits).unwrap();
        y2.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let (y2v, g2) = (f64s(&y2), f64s(&x2.grad().unwrap()));
        for i in 0..n {
            let k = y2v[i] * levels / 6.0;
            prop_assert!((k - k.round()).abs() < 1e-9);
            prop_assert_eq!(g2[i], if xv[i] >= 0.0 && xv[i] <= 6.0 { rv[i] } else { 0.0 });
        }
    }
}

/// TTQ: the two learned scales get the summed gradients of their regions, the latent weight
/// its gradient scaled by the region's scale.
#[test]
fn ttq_scales_and_latent_gradients() {
    let w = randn64(&[4, 3, 3, 3], 3).requires_grad_();
    let r = randn64(&[4, 3, 3, 3], 4);
    let (wp, wn) = (
        Tensor::from_vec(vec![0.7f64], &[1]).unwrap().requires_grad_(),
        Tensor::from_vec(vec![0.4f64], &[1]).unwrap().requires_grad_(),
    );
    let q = ternary_ttq(&w, &wp, &wn, 0.05).unwrap();
    q.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let (wv, qv, rv, gw) = (f64s(&w), f64s(&q), f64s(&r), f64s(&w.grad().unwrap()));
    let delta = 0.05 * wv.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let (mut gp, mut gn) = (0.0, 0.0);
    for i in 0..wv.len() {
        let (want_q, scale) = if wv[i] > delta {
            gp += rv[i];
            (0.7, 0.7)
        } else if wv[i] < -delta {
            gn -= rv[i];
            (-0.4, 0.4)
        } else {
            (0.0, 1.0)
        };
        assert_eq!(qv[i], want_q);
        assert!((gw[i] - rv[i] * scale).abs() < 1e-12);
    }
    assert!((f64s(&wp.grad().unwrap())[0] - gp).abs() < 1e-9);
    assert!((f64s(&wn.grad().unwrap())[0] - gn).abs() < 1e-9);
    assert!(ternary_ttq(&w, &wp, &randn64(&[2], 0), 0.05).is_err());
}

#[test]
fn quantizer_inputs_are_checked() {
    let v = randn64(&[5], 0);
    assert!(ternary_absmean(&v).unwrap_err().to_string().contains("ternary_absmean"));
    assert!(lsq(&v, &randn64(&[2], 1), 0.0, 255.0, 1.0).is_err());
    assert!(pact(&v, &randn64(&[1], 1), 0).is_err());
    assert!(fixed_range(&v, 1.0, 1.0, 8).is_err());
    assert!((lsq_init(&Tensor::from_vec(vec![1.0f64, -3.0], &[2]).unwrap(), 4.0).unwrap() - 2.0).abs() < 1e-12);
}

/// The estimator on MobileNetV2 (224, 1000 classes) reproduces the spec's hand computation:
/// 300.8 M MACs, 3.47 M weights, the per-group breakdown, and the energy and storage ratios.
#[test]
fn mobilenet_v2_energy_matches_the_hand_computation() {
    let net = models::build("mobilenetv2", 1000, 3, 0).unwrap();
    let costs = layer_costs(net.as_ref(), &[1, 3, 224, 224]).unwrap();
    let pointwise = block_pointwise_convs(net.as_ref());
    assert_eq!(pointwise.len(), 16 + 17, "expansions of blocks 2-17 and every projection");
    let final_pw = costs.iter().rev().find(|(n, _, _)| n.starts_with("features")).unwrap().0.clone();
    let group = |f: &dyn Fn(&str) -> bool| -> (f64, f64) {
        let sel: Vec<&(String, u64, u64)> = costs.iter().filter(|(n, _, _)| f(n)).collect();
        (sel.iter().map(|c| c.1).sum::<u64>() as f64 / 1e6, sel.iter().map(|c| c.2).sum::<u64>() as f64 / 1e6)
    };
    let (pm, pw) = group(&|n| pointwise.iter().any(|p| p == n));
    let (fm, fw) = group(&|n| n == final_pw);
    let (cm, cw) = group(&|n| n.starts_with("classifier"));
    let (sm, sw) = group(&|n| n == costs[0].0);
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;
    assert!(close(pm, 247.87, 0.01) && close(pw, 1.715, 0.001), "pointwise {pm} M MACs, {pw} M weights");
    assert!(close(fm, 20.07, 0.01) && close(fw, 0.41, 0.001), "final 1x1 {fm} {fw}");
    assert!(close(cm, 1.28, 0.01) && close(cw, 1.281, 0.001), "classifier {cm} {cw}");
    assert!(close(sm, 10.84, 0.01) && close(sw * 1e6, 864.0, 0.5), "stem {sm} {sw}");
    let float16 = estimate(&costs, &|_| Precision::Float16, &EnergyTable::default(), Accumulator::Int8);
    assert!(close(float16.macs as f64 / 1e6, 300.8, 0.1) && close(float16.weights as f64 / 1e6, 3.47, 0.005));
    let prom = |final_ternary: bool, acc: Accumulator| {
        let pw = pointwise.clone();
        let f = final_pw.clone();
        estimate(
            &costs,
            &move |n: &str| {
                if pw.iter().any(|p| p == n) || (final_ternary && n == f) {
                    Precision::Ternary
                } else {
                    Precision::Int8
                }
            },
            &EnergyTable::default(),
            acc,
        )
    };
    let ratio = |r: &EnergyReport| r.energy_ratio(&float16);
    assert!(close(ratio(&prom(false, Accumulator::Int8)), 23.0, 0.05), "{}", ratio(&prom(false, Accumulator::Int8)));
    assert!(close(ratio(&prom(true, Accumulator::Int8)), 28.9, 0.05));
    assert!(close(ratio(&prom(false, Accumulator::Int32)), 19.4, 0.05));
    assert!(close(ratio(&prom(true, Accumulator::Int32)), 25.2, 0.05));
    assert!(close(prom(false, Accumulator::Int8).storage_ratio(&float16), 3.2, 0.05));
    // Per layer: a ternary layer's energy is its MACs times one int8 add.
    let p = prom(false, Accumulator::Int8);
    let l = p.layers.iter().find(|l| l.precision == Precision::Ternary).unwrap();
    assert!((l.pj - l.macs as f64 * 0.03).abs() < 1e-6 && l.bits == 2 * l.weights);
}

mod training {
    use std::path::PathBuf;

    use layers::state_dict::load_tensors;
    use layers::{Mode, ModuleExt};

    use crate::config::TrainConfig;
    use crate::hparams::Hparams;
    use crate::prom::{quantize, ActQuant, PromConfig, QuantLayer, WeightQuant};
    use crate::registry::find;
    use crate::trainer::{train_with, RunOptions};

    fn out_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lamina-prom-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// One epoch of QAT of MobileNetV2-0.5 on 300 embedded images: LSQ's steps are set on the
    /// first batch and saved, the ternary layers hold three levels per channel, the classifier
    /// and the depthwise layers int8.
    #[test]
    fn qat_trains_and_saves_the_quantizers_state() {
        let spec = find("prom").unwrap();
        let mut cfg = TrainConfig::from_defaults(spec);
        let h = Hparams::from_values(spec.name, spec.hparams, &cfg.hparams).unwrap();
        cfg.hparams = h.values().clone();
        cfg.dataset = "fashion-mnist-embedded".into();
        cfg.train_limit = Some(300);
        cfg.test_limit = Some(100);
        cfg.val_fraction = 0.1;
        cfg.test_every = 1;
        cfg.epochs = 1;
        cfg.batch_size = 50;
        let dir = out_dir("qat");
        let s = train_with(spec, &cfg, &dir, false, &RunOptions { quiet: true, ..RunOptions::default() }).unwrap();
        assert!(s.test.loss.is_finite());
        let line = &s.extra.iter().find(|(k, _)| k == "prom").unwrap().1;
        assert!(line.starts_with("33 ternary layers"), "{line}");
        let energy = &s.extra.iter().find(|(k, _)| k == "prom energy").unwrap().1;
        let ratio: f64 = energy.split('x').next().unwrap().parse().unwrap();
        assert!(ratio > 10.0 && energy.contains("storage"), "{energy}");
        // The final test ran the integer model: the same predictions as the fake-quantized one.
        let inf = s.inference.as_ref().expect("the integer inference form");
        assert_eq!(inf.test.acc, s.trained.test.acc, "integer and fake-quantized test accuracy");
        assert!(dir.join("inference.safetensors").is_file());
        let file = load_tensors(&dir.join("best.safetensors")).unwrap();
        let get = |n: &str| file.get(n).unwrap_or_else(|| panic!("{n} missing")).to_f64_vec().unwrap();
        // The stem sees normalized images (signed); a projection sees ReLU6 outputs (unsigned).
        assert_eq!(get("features.0.0.act_signed"), vec![1.0]);
        assert_eq!(get("features.2.conv.2.act_signed"), vec![0.0]);
        assert!(get("features.2.conv.2.act_step")[0] > 0.0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_uninitialized_lsq_step_is_an_error_in_evaluation_and_options_are_checked() {
        let mut net = layers::models::build("mobilenetv2-0.5-cifar", 10, 3, 0).unwrap();
        let cfg = PromConfig { ternary: WeightQuant::TernaryTwn, act: ActQuant::Lsq, final_ternary: true };
        let wrapped = quantize(net.as_mut(), &cfg).unwrap();
        assert_eq!(wrapped.iter().filter(|(_, t)| *t).count(), 34, "the final 1x1 is ternary too");
        let x = autograd::Tensor::randn(&[2, 3, 32, 32], 0).unwrap();
        let e = net.forward(&x, Mode::Eval).unwrap_err().to_string();
        assert!(e.contains("first training batch"), "{e}");
        net.forward(&x, Mode::Train).unwrap();
        net.forward(&x, Mode::Eval).unwrap();
        let q = net.get_module("features.1.conv.1").unwrap().downcast_ref::<QuantLayer>().unwrap();
        assert!(q.weight_quant().is_ternary());
        let spec = find("prom").unwrap();
        for (set, word) in
            [("ternary=bin", "ternary"), ("act=minmax", "act"), ("final=fp16", "final"), ("ttq_t=2", "ttq_t")]
        {
            let mut h = spec.default_hparams();
            h.set(set).unwrap();
            let e = PromConfig::parse(&h).unwrap_err().to_string();
            assert!(e.contains(word), "{set}: {e}");
        }
    }
}
