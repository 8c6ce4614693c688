//! The method's hooks: weight decay on `w` (fixed) or `v` (learned) through the optimizer groups
//! and the loss term, the bound after training, the inference form, presets and errors.

use autograd::Tensor;
use layers::optim::split_weight_decay;
use layers::{Linear, Mode, Module, ModuleExt, Sequential};

use crate::config::TrainConfig;
use crate::registry::{self, Method, MethodSpec, Progress, StepLoss};
use crate::testing::run_info;
use crate::trainer::{train_with, RunOptions, Summary};
use crate::wc::{companders, paper_ab, Compander, WcSettings, WeightCompanderMethod, WC, WC_LEARNED};

const AT: Progress = Progress { phase: 0, epoch: 0, phase_epoch: 0, step: 0 };

/// Spec test 5: with fixed `(a, b)` the decay gradient on `v` is `2·(λ/2)·ψ(v)·ψ'(v)` (λ the
/// run's weight decay), not `λ·v`: `v` leaves the optimizer's decayed group and the loss gains
/// `(λ/2)‖ψ(v)‖²`, built from the weights of the step's own forward pass.
#[test]
fn fixed_variant_decays_w_through_the_loss() {
    let mut model: Box<dyn Module> =
        Box::new(Sequential::new().push(Linear::new(6, 4, true)).push(Linear::new(4, 3, false)));
    let s = WcSettings { compander: Compander::Arctan, a: 0.7, b: 0.6, learned: false };
    let mut m = WeightCompanderMethod::new(s);
    m.prepare(&mut model, &run_info("mlp")).unwrap();
    // Move v off its start so that ψ'(v) is not ~constant.
    for (_, c) in companders(model.as_ref()) {
        c.v.set_data(&c.v.leaf().mul_scalar(4.0).unwrap()).unwrap();
    }
    let lambda = 5e-4;
    let groups = split_weight_decay(model.named_parameters(), lambda);
    let groups = m.configure_optimizer(model.as_ref(), groups, AT).unwrap();
    assert_eq!(m.decay, lambda);
    for g in &groups {
        for (name, _) in &g.params {
            if name.ends_with("weight_v") {
                assert_eq!(g.weight_decay, Some(0.0), "{name} must not get the optimizer's decay");
            }
        }
    }
    let x = Tensor::randn(&[5, 6], 0).unwrap();
    let logits = model.forward(&x, Mode::Train).unwrap();
    let labels = Tensor::from_vec(vec![0i64; 5], &[5]).unwrap();
    let zero_task = logits.sum_all().unwrap().mul_scalar(0.0).unwrap();
    let loss = m
        .loss(StepLoss {
            model: model.as_ref(),
            images: &x,
            labels: &labels,
            logits: &logits,
            task_loss: zero_task,
            at: AT,
        })
        .unwrap();
    loss.backward().unwrap();
    for (name, c) in companders(model.as_ref()) {
        let v = c.v.leaf().to_f64_vec().unwrap();
        let g = c.v.grad().unwrap().to_f64_vec().unwrap();
        let (a, b) = (0.7, 0.6);
        let mut differs_from_plain_l2 = false;
        for (vi, gi) in v.iter().zip(&g) {
            let psi = a * (vi / b).atan();
            let dpsi = a / b / (1.0 + (vi / b).powi(2));
            let want = 2.0 * (lambda / 2.0) * psi * dpsi;
            assert!((gi - want).abs() < 1e-6 * want.abs() + 1e-12, "{name}: {gi} vs {want}");
            differs_from_plain_l2 |= (gi - lambda * vi).abs() > 10.0 * (1e-6 * want.abs() + 1e-12);
        }
        assert!(differs_from_plain_l2, "{name}: the gradient must not be λ·v");
    }
}

/// With learned `(a, b)` the decay stays on `v` in the optimizer (the default groups), `a` and
/// `b` get none, and the loss is the task loss.
#[test]
fn learned_variant_decays_v_only() {
    let mut model: Box<dyn Module> = Box::new(Sequential::new().push(Linear::new(6, 4, true)));
    let s = WcSettings { compander: Compander::Arctan, a: 0.5, b: 1.0, learned: true };
    let mut m = WeightCompanderMethod::new(s);
    m.prepare(&mut model, &run_info("mlp")).unwrap();
    let groups = m.configure_optimizer(model.as_ref(), split_weight_decay(model.named_parameters(), 1e-4), AT).unwrap();
    let decay_of = |name: &str| groups.iter().find(|g| g.params.iter().any(|(n, _)| n == name)).unwrap().weight_decay;
    assert_eq!(decay_of("0.weight_v"), Some(1e-4));
    assert_eq!((decay_of("0.weight_a"), decay_of("0.weight_b"), decay_of("0.bias")), (Some(0.0), Some(0.0), Some(0.0)));
    assert_eq!(m.decay, 0.0);
    let x = Tensor::randn(&[2, 6], 0).unwrap();
    let logits = model.forward(&x, Mode::Train).unwrap();
    let task = logits.sum_all().unwrap();
    let labels = Tensor::from_vec(vec![0i64; 2], &[2]).unwrap();
    let t = task.item().unwrap();
    let loss = m.loss(StepLoss {
        model: model.as_ref(),
        images: &x,
        labels: &labels,
        logits: &logits,
        task_loss: task,
        at: AT,
    });
    assert_eq!(loss.unwrap().item().unwrap(), t);
}

fn quick(spec: &MethodSpec, name: &str, lr: f64) -> Summary {
    let mut cfg = TrainConfig::from_defaults(spec);
    cfg.epochs = 2;
    cfg.batch_size = 50;
    cfg.lr = lr;
    cfg.train_limit = Some(1000);
    cfg.test_limit = Some(200);
    let out = std::env::temp_dir().join(format!("lamina-wc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let s = train_with(spec, &cfg, &out, false, &RunOptions { quiet: true, ..RunOptions::default() }).unwrap();
    assert!(out.join("inference.safetensors").is_file());
    let _ = std::fs::remove_dir_all(&out);
    s
}

fn extra<'a>(s: &'a Summary, key: &str) -> &'a str {
    s.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key}: {:?}", s.extra))
}

/// Both entries train on the embedded data (learning rate 0.2 pushes the weights), every
/// weight stays within the bound after training (spec test 2), and the folded inference form
/// reports exactly the trained model's test metrics (zero-overhead plain layers, same outputs).
#[test]
fn quick_runs_keep_the_bound_and_fold_exactly() {
    for (spec, lr) in [(&WC, 0.2), (&WC_LEARNED, 0.2)] {
        let s = quick(spec, spec.name, lr);
        assert!(s.test.loss.is_finite() && s.test.acc > 0.2, "{}: {:?}", spec.name, s.test);
        let inference = s.inference.as_ref().expect("an inference form");
        assert_eq!(inference.test, s.trained.test, "{}: folding changes nothing", spec.name);
        assert_eq!(inference.params, s.trained.params - if spec.name == "wc-learned" { 16 } else { 0 });
        assert_eq!(extra(&s, "layers"), "8");
        let ratio: f64 = extra(&s, "max |w| / bound").parse().unwrap();
        assert!(ratio > 0.0 && ratio < 1.0, "{}: {ratio}", spec.name);
    }
}

#[test]
fn registry_entries_presets_and_table() {
    for name in ["wc", "wc-learned"] {
        let spec = registry::find(name).unwrap();
        let small = TrainConfig::from_spec(spec, Some("small")).unwrap();
        let protocol = crate::presets::SMALL_PROTOCOL;
        assert_eq!(
            (small.model.as_str(), small.width, small.epochs),
            (protocol.model, protocol.width, protocol.epochs)
        );
        let paper = TrainConfig::from_spec(spec, Some("paper")).unwrap();
        assert_eq!((paper.epochs, paper.weight_decay), (200, 1e-4));
        let ab = (small.hparams["a"].as_str(), small.hparams["b"].as_str());
        assert_eq!(ab, if name == "wc" { ("1.0", "0.6") } else { ("0.5", "1.0") });
    }
    assert_eq!(paper_ab("resnet18-cifar", 10), (1.0, 0.6));
    assert_eq!(paper_ab("resnet18-cifar", 100), (0.6, 0.6));
    assert_eq!(paper_ab("resnet34-cifar", 10), (0.8, 0.5));
    assert_eq!(paper_ab("resnet50", 1000), (0.6, 0.7));
    assert_eq!(paper_ab("resnet50", 200), (0.7, 0.8));
    assert_eq!(paper_ab("vgg16-bn", 100), (0.7, 1.0));
    assert_eq!(paper_ab("vgg19-bn", 10), (0.5, 0.7));
    assert_eq!(paper_ab("resnet8", 10), (1.0, 0.6));
    let mut h = WC.default_hparams();
    h.set("compander=tanh").unwrap();
    assert!((WC.build)(&h, &run_info("resnet8")).err().unwrap().to_string().contains("arctan"));
    let mut h = WC_LEARNED.default_hparams();
    h.set("a=-1").unwrap();
    assert!((WC_LEARNED.build)(&h, &run_info("resnet8")).err().unwrap().to_string().contains("positive"));
}
