//! The layer and whole models: init identity, the bound, gradchecks for `v`, `a`, `b` against
//! the spec's formulas, folding.

use autograd::{gradcheck, DType, Device, GradcheckOptions, Tensor};
use layers::{models, Conv2d, Conv2dOptions, Linear, Mode, Module, ModuleExt, Param};

use super::{max_diff, randn64};
use crate::wc::{compand, companders, fold, folded_state_dict, Compander, Scale, WcSettings, WeightCompander};

const ALL: [Compander; 3] = [Compander::Arctan, Compander::Arsinh, Compander::Erf];

fn learned(v: f64) -> Scale {
    Scale::Learned(Param::new(Tensor::from_vec(vec![v], &[1]).unwrap()))
}

/// Spec test 1: `ψ(ψ⁻¹(w₀)) == w₀` (f64, every compander, conv and linear), and a network's
/// logits at step 0 are those of the plain network.
#[test]
fn init_is_the_identity() {
    for c in ALL {
        let conv = Conv2d::new(3, 5, 3, Conv2dOptions::default().padding(1)).unwrap();
        conv.weight.set_data(&conv.weight.leaf().mul_scalar(2.0).unwrap()).unwrap();
        let w0 = conv.weight.leaf().to_dtype(DType::F64).unwrap();
        let wc = WeightCompander::wrap(Box::new(conv), c, Scale::Fixed(0.5), Scale::Fixed(0.7)).unwrap();
        wc.v.convert(DType::F64, Device::Cpu).unwrap();
        // The f64 round trip is exact to rounding (v itself was stored in f32, so compare at
        // f32 precision of v's inverse).
        let w = wc.weight().unwrap();
        assert!(max_diff(&w, &w0) < 1e-6, "{c:?}: {}", max_diff(&w, &w0));
        assert_eq!(wc.clamped(), 0);
    }
    for model in ["resnet8", "vgg11-bn", "mobilenetv2-cifar"] {
        let mut net = models::build(model, 10, 3, 0).unwrap();
        net.convert(DType::F64, Device::Cpu).unwrap();
        let x = randn64(&[2, 3, 32, 32], 1);
        let plain = net.forward(&x, Mode::Eval).unwrap();
        let s = WcSettings { compander: Compander::Arctan, a: 0.5, b: 1.0, learned: false };
        compand(net.as_mut(), &s, None).unwrap();
        net.convert(DType::F64, Device::Cpu).unwrap();
        let wc = net.forward(&x, Mode::Eval).unwrap();
        // v was computed in f64 then stored as f32 before the conversion: logits agree to f32
        // precision of the weights.
        let scale = plain.abs().unwrap().max(&[0, 1], false).unwrap().item().unwrap();
        assert!(max_diff(&wc, &plain) < 1e-5 * scale.max(1.0), "{model}: {}", max_diff(&wc, &plain));
    }
}

/// In f64 throughout (v computed from an f64 weight), the identity is exact to rounding.
#[test]
fn init_identity_in_f64_is_exact_to_rounding() {
    for c in ALL {
        let fc = Linear::from_tensors(randn64(&[6, 9], 3).mul_scalar(0.15).unwrap(), Some(randn64(&[6], 4)));
        let w0 = fc.weight.leaf();
        let wc = WeightCompander::wrap(Box::new(fc), c, Scale::Fixed(0.8), Scale::Fixed(0.5)).unwrap();
        assert_eq!(wc.clamped(), 0);
        assert!(max_diff(&wc.weight().unwrap(), &w0) < 1e-14, "{c:?}");
    }
}

/// Spec test 2: `|w| < a·π/2` (arctan) and `|w| < a` (erf) whatever `v` is, even for huge `v`.
#[test]
fn weights_stay_within_the_bound() {
    for (c, sup) in [(Compander::Arctan, std::f64::consts::FRAC_PI_2), (Compander::Erf, 1.0)] {
        let fc = Linear::new(4, 4, false);
        let wc = WeightCompander::wrap(Box::new(fc), c, Scale::Fixed(0.7), Scale::Fixed(0.6)).unwrap();
        wc.v.convert(DType::F64, Device::Cpu).unwrap();
        wc.v.set_data(&randn64(&[4, 4], 5).mul_scalar(1e6).unwrap()).unwrap();
        let w = wc.weight().unwrap().to_f64_vec().unwrap();
        assert!(w.iter().all(|w| w.abs() <= 0.7 * sup), "{c:?}");
        assert!(w.iter().any(|w| w.abs() > 0.69 * sup), "{c:?}: saturates");
        assert!((wc.bound().unwrap() - 0.7 * sup).abs() < 1e-15);
    }
}

/// A weight beyond the range is clamped (and counted) before inverting.
#[test]
fn out_of_range_initial_weights_are_clamped() {
    let fc = Linear::from_tensors(Tensor::from_vec(vec![0.1f64, 2.0, -3.0, 0.0], &[2, 2]).unwrap(), None);
    let wc = WeightCompander::wrap(Box::new(fc), Compander::Arctan, Scale::Fixed(1.0), Scale::Fixed(1.0)).unwrap();
    assert_eq!(wc.clamped(), 2);
    let w = wc.weight().unwrap().to_f64_vec().unwrap();
    assert!((w[0] - 0.1).abs() < 1e-12 && w[1] < std::f64::consts::FRAC_PI_2 && w[2] > -std::f64::consts::FRAC_PI_2);
    assert!(WeightCompander::wrap(Box::new(layers::ReLU), Compander::Arctan, Scale::Fixed(1.0), Scale::Fixed(1.0))
        .err()
        .unwrap()
        .to_string()
        .contains("ReLU"));
}

/// Spec test 3: float64 finite differences of a loss through the layer with respect to `v`, `a`
/// and `b` (learned scales, every compander, conv and linear), and the gradients equal the
/// spec's formulas `∂L/∂v = ∂L/∂w·ψ'(v)`, `∂L/∂a = Σ ∂L/∂w·f(v/b)`,
/// `∂L/∂b = −Σ ∂L/∂w·a·f'(v/b)·v/b²` (for arctan: `−a·v/(b² + v²)`).
#[test]
fn gradients_of_v_a_b_match_finite_differences_and_the_formulas() {
    for c in ALL {
        for conv in [true, false] {
            let layer: Box<dyn Module> = if conv {
                Box::new(Conv2d::new(2, 3, 3, Conv2dOptions::default().padding(1)).unwrap())
            } else {
                Box::new(Linear::new(5, 3, true))
            };
            let wc = WeightCompander::wrap(layer, c, learned(0.5), learned(1.0)).unwrap();
            wc.convert(DType::F64, Device::Cpu).unwrap();
            let x = if conv { randn64(&[2, 2, 4, 4], 6) } else { randn64(&[4, 5], 6) };
            let r = randn64(wc.forward(&x, Mode::Train).unwrap().shape(), 7);
            let (Scale::Learned(a), Scale::Learned(b)) = (&wc.a, &wc.b) else { unreachable!() };
            let (v0, a0, b0) = (wc.v.leaf().mul_scalar(1.3).unwrap(), a.leaf(), b.leaf().mul_scalar(0.8).unwrap());
            let f = |t: &[Tensor]| {
                wc.v.bind(t[0].clone());
                a.bind(t[1].clone());
                b.bind(t[2].clone());
                wc.forward(&x, Mode::Train)?.mul(&r)?.sum_all()
            };
            gradcheck(f, &[v0.clone(), a0.clone(), b0.clone()], &GradcheckOptions::default())
                .unwrap_or_else(|e| panic!("{c:?} conv {conv}: {e}"));
            // The formulas, from dL/dw of the plain layer with w = ψ(v).
            let (v, av, bv) = (v0.requires_grad_(), a0.requires_grad_(), b0.requires_grad_());
            let g = f(&[v.clone(), av.clone(), bv.clone()]).unwrap().backward().unwrap();
            let plain = wc.plain().unwrap();
            let wp = plain.params()[0].1.leaf().requires_grad_();
            plain.params()[0].1.bind(wp.clone());
            let gw = plain.forward(&x, Mode::Train).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            let gw = gw.get(&wp).unwrap().to_f64_vec().unwrap();
            let (a_, b_) = (av.item().unwrap(), bv.item().unwrap());
            let vs = v.to_f64_vec().unwrap();
            let gv = g.get(&v).unwrap().to_f64_vec().unwrap();
            let (mut ga, mut gb) = (0.0, 0.0);
            for i in 0..vs.len() {
                let u = vs[i] / b_;
                let want = gw[i] * a_ / b_ * c.unit_derivative(u);
                assert!((gv[i] - want).abs() < 1e-10 * (1.0 + want.abs()), "{c:?} dv");
                ga += gw[i] * c.unit(u);
                gb -= gw[i] * a_ * c.unit_derivative(u) * vs[i] / (b_ * b_);
                if c == Compander::Arctan {
                    let spec = -a_ * vs[i] / (b_ * b_ + vs[i] * vs[i]);
                    assert!((a_ * c.unit_derivative(u) * -vs[i] / (b_ * b_) - spec).abs() < 1e-12);
                }
            }
            assert!((g.get(&av).unwrap().item().unwrap() - ga).abs() < 1e-9 * (1.0 + ga.abs()), "{c:?} da");
            assert!((g.get(&bv).unwrap().item().unwrap() - gb).abs() < 1e-9 * (1.0 + gb.abs()), "{c:?} db");
        }
    }
}

/// Spec test 4: folding `w = ψ(v)` into plain layers gives bit-identical eval outputs, in place
/// and as a state dict loaded into a freshly built plain model (the trainer's inference form).
#[test]
fn folding_gives_bit_identical_outputs() {
    for (model, learned) in [("resnet8", false), ("resnet8", true), ("vgg11-bn", false)] {
        let mut net = models::build(model, 10, 3, 0).unwrap();
        let s = WcSettings { compander: Compander::Arctan, a: 1.0, b: 0.6, learned };
        let paths = compand(net.as_mut(), &s, None).unwrap();
        // Move v away from its start so that ψ(v) is not the plain initialization.
        for (_, c) in companders(net.as_ref()) {
            c.v.set_data(&c.v.leaf().mul_scalar(1.7).unwrap()).unwrap();
        }
        let x = Tensor::randn(&[3, 3, 32, 32], 2).unwrap();
        net.forward(&x, Mode::Train).unwrap(); // running statistics move
        let y = net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
        let fresh = models::build(model, 10, 3, 9).unwrap();
        let sd = folded_state_dict(net.as_ref()).unwrap();
        layers::state_dict::load_state_dict(fresh.as_ref(), &sd, layers::state_dict::Strictness::Strict).unwrap();
        assert_eq!(fresh.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), y, "{model} rebuilt");
        assert_eq!(fold(net.as_mut()).unwrap(), paths);
        assert!(companders(net.as_ref()).is_empty());
        assert_eq!(net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), y, "{model} in place");
    }
}

/// Any model, not only the registered ones: a hand-built one, a selection of its layers, a layer
/// already wrapped by other surgery.
#[test]
fn wraps_any_model_and_selections() {
    use layers::surgery::{insert_after, Select};
    use layers::{ReLU, Sequential};
    let mut net: Box<dyn Module> = Box::new(
        Sequential::new()
            .push(Conv2d::new(1, 4, 3, Conv2dOptions::default()).unwrap())
            .push(ReLU)
            .push(layers::Flatten::default())
            .push(Linear::new(4 * 4 * 4, 3, true)),
    );
    insert_after(net.as_mut(), "0", "act", Box::new(ReLU)).unwrap();
    let s = WcSettings { compander: Compander::Erf, a: 0.5, b: 0.5, learned: true };
    let only_linear = Select::all().path("3").unwrap();
    assert_eq!(compand(net.as_mut(), &s, Some(&only_linear)).unwrap(), ["3"]);
    assert_eq!(compand(net.as_mut(), &s, Some(&Select::all().path("0").unwrap())).unwrap(), ["0"]);
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["0.weight_v", "0.weight_a", "0.weight_b", "0.bias", "3.weight_v", "3.weight_a", "3.weight_b", "3.bias"]
    );
    let y = net.forward(&Tensor::randn(&[2, 1, 6, 6], 0).unwrap(), Mode::Train).unwrap();
    assert_eq!(y.shape(), &[2, 3]);
}
