//! The registry entries `wc` (fixed `(a, b)` from the paper's table) and `wc-learned` (one
//! learned `(a, b)` per layer from `a = 0.5, b = 1.0`): reparameterize in `prepare`, place weight
//! decay in `configure_optimizer` and `loss`, fold in `inference_form`.

use autograd::{Error, Result, Tensor};
use layers::models::{build_with, ModelOptions};
use layers::optim::ParamGroup;
use layers::state_dict::{load_state_dict, Strictness};
use layers::Module;

use super::{compand, companders, folded_state_dict, Compander, WcSettings};
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::{PAPER_CIFAR10_R18, SMALL_PROTOCOL};
use crate::registry::{Method, MethodSpec, Preset, Progress, RunInfo, StepLoss, Training, SMALL_DEFAULTS};

/// The paper's `(a, b)` for `model` trained on `num_classes` classes (its Table: CIFAR-10 and
/// CIFAR-100 per model, TinyImageNet and ImageNet ResNet-50), and for models it did not tune
/// ResNet-18's CIFAR-10 values `(1.0, 0.6)`.
pub fn paper_ab(model: &str, num_classes: usize) -> (f64, f64) {
    let family =
        ["resnet18", "resnet34", "resnet50", "vgg16", "vgg19", "wrn"].into_iter().find(|f| model.starts_with(f));
    let c100 = num_classes == 100;
    match (family, num_classes) {
        (Some("resnet50"), 200) => (0.7, 0.8),
        (Some("resnet50"), 1000) => (0.6, 0.7),
        (Some("resnet18"), _) if c100 => (0.6, 0.6),
        (Some("resnet34"), _) if c100 => (0.7, 0.8),
        (Some("resnet34"), _) => (0.8, 0.5),
        (Some("resnet50"), _) if c100 => (1.0, 0.8),
        (Some("resnet50"), _) => (1.0, 0.6),
        (Some("vgg16"), _) if c100 => (0.7, 1.0),
        (Some("vgg16"), _) => (0.7, 0.7),
        (Some("vgg19"), _) if c100 => (0.7, 0.8),
        (Some("vgg19"), _) => (0.5, 0.7),
        (Some("wrn"), _) => (0.7, 0.7),
        _ => (1.0, 0.6),
    }
}

const A: HparamSpec = HparamSpec {
    key: "a",
    default: "auto",
    help: "a of w = a*f(v/b); auto = the paper's table for the model and classes",
};
const B: HparamSpec = HparamSpec { key: "b", default: "auto", help: "b of w = a*f(v/b); auto = the paper's table" };
const A_LEARNED: HparamSpec = HparamSpec { key: "a", default: "0.5", help: "initial a of every layer (learned)" };
const B_LEARNED: HparamSpec = HparamSpec { key: "b", default: "1.0", help: "initial b of every layer (learned)" };
const COMPANDER: HparamSpec = HparamSpec {
    key: "compander",
    default: "arctan",
    help: "f of w = a*f(v/b): arctan (the paper) | arsinh | erf (its tested alternatives)",
};

const WC_HPARAMS: &[HparamSpec] = &[A, B, COMPANDER];
const WC_LEARNED_HPARAMS: &[HparamSpec] = &[A_LEARNED, B_LEARNED, COMPANDER];

/// The hooks of `wc` and `wc-learned`.
///
/// Weight decay (the spec's placement): with fixed `(a, b)` it applies to `w = ψ(v)`, as the
/// loss term `(λ/2)·Σ‖ψ(v)‖²` with `λ` the run's weight decay (so `∂/∂w = λw`, what SGD's decay
/// does to a plain weight, and `∂/∂v = λ·ψ(v)·ψ'(v)`), while `v` is moved to a group without the
/// optimizer's decay; with learned `(a, b)` it applies to `v` only, through the optimizer (the
/// trainer's default groups already decay `v` and leave the `[1]`-shaped `a`, `b` alone).
pub struct WeightCompanderMethod {
    /// Reparameterization settings (`a`, `b` resolved).
    pub settings: WcSettings,
    /// `λ` of the loss term (0 until `configure_optimizer`, and for the learned variant).
    pub decay: f64,
    paths: Vec<String>,
    clamped: usize,
}

impl WeightCompanderMethod {
    /// The method with `settings`.
    pub fn new(settings: WcSettings) -> WeightCompanderMethod {
        WeightCompanderMethod { settings, decay: 0.0, paths: Vec::new(), clamped: 0 }
    }
}

/// `Σ‖w‖²` over every compander's weight (the weights of this step's forward pass when kept).
pub fn weight_energy(model: &dyn Module) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for (_, c) in companders(model) {
        let s = c.take_weight()?.square()?.sum_all()?;
        total = Some(match total {
            Some(t) => t.add(&s)?,
            None => s,
        });
    }
    Ok(total)
}

impl Method for WeightCompanderMethod {
    fn prepare(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<()> {
        self.paths = compand(model.as_mut(), &self.settings, None)?;
        self.clamped = companders(model.as_ref()).iter().map(|(_, c)| c.clamped()).sum();
        if self.clamped > 0 {
            eprintln!(
                "wc: {} initial weights lay beyond (1 - {})·a·sup|f| and were clamped before inverting (a = {})",
                self.clamped,
                super::CLAMP_MARGIN,
                self.settings.a
            );
        }
        Ok(())
    }

    fn configure_optimizer(
        &mut self,
        model: &dyn Module,
        groups: Vec<ParamGroup>,
        _at: Progress,
    ) -> Result<Vec<ParamGroup>> {
        if self.settings.learned {
            return Ok(groups);
        }
        let vs: Vec<_> = companders(model).into_iter().map(|(_, c)| c.v.clone()).collect();
        let mut decay = None;
        let mut moved = Vec::new();
        let mut out = Vec::new();
        for mut g in groups {
            let (v, rest): (Vec<_>, Vec<_>) = g.params.into_iter().partition(|(_, p)| vs.iter().any(|v| v.ptr_eq(p)));
            if !v.is_empty() {
                // A group without an explicit decay takes the optimizer's default, which the
                // trainer never sets: 0.
                let wd = g.weight_decay.unwrap_or(0.0);
                if decay.is_some_and(|d| d != wd) {
                    return Err(Error::invalid(
                        "wc",
                        "the weights v sit in parameter groups with different weight decays; the loss term needs one",
                    ));
                }
                decay = Some(wd);
                moved.extend(v);
            }
            g.params = rest;
            if !g.params.is_empty() {
                out.push(g);
            }
        }
        out.push(ParamGroup::new(moved).weight_decay(0.0));
        self.decay = decay.unwrap_or(0.0);
        for (_, c) in companders(model) {
            c.keep_weight(self.decay > 0.0);
        }
        Ok(out)
    }

    fn loss(&mut self, step: StepLoss<'_>) -> Result<Tensor> {
        if self.decay == 0.0 {
            return Ok(step.task_loss);
        }
        match weight_energy(step.model)? {
            Some(e) => step.task_loss.add(&e.mul_scalar(self.decay / 2.0)?),
            None => Ok(step.task_loss),
        }
    }

    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        let opts =
            ModelOptions { num_classes: run.num_classes, in_channels: run.input_shape[0], seed: 0, width: run.width };
        let plain = build_with(&run.model, &opts)?;
        load_state_dict(plain.as_ref(), &folded_state_dict(model)?, Strictness::Strict)?;
        Ok(Some(plain))
    }

    fn finish(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        let s = &self.settings;
        let mut lines = vec![
            ("compander".into(), s.compander.name().into()),
            ("layers".into(), self.paths.len().to_string()),
            ("clamped initial weights".into(), self.clamped.to_string()),
        ];
        let comps = companders(model.as_ref());
        if s.learned {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for (_, c) in &comps {
                a.push(c.a.value()?);
                b.push(c.b.value()?);
            }
            let range = |v: &[f64]| {
                let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                format!("{lo:.3}..{hi:.3} (first {:.3}, last {:.3})", v[0], v[v.len() - 1])
            };
            lines.push(("learned a".into(), range(&a)));
            lines.push(("learned b".into(), range(&b)));
        } else {
            lines.push(("a, b".into(), format!("{}, {}", s.a, s.b)));
            lines.push(("decay on w (lambda)".into(), self.decay.to_string()));
        }
        // The bound |w| < |a|·sup|f|: the largest ratio over the layers.
        let mut worst: f64 = 0.0;
        for (_, c) in &comps {
            let w = autograd::no_grad(|| c.weight())?.abs()?.max(&(0..c.v.leaf().ndim()).collect::<Vec<_>>(), false)?;
            worst = worst.max(w.item()? / c.bound()?);
        }
        lines.push(("max |w| / bound".into(), format!("{worst:.4}")));
        Ok(lines)
    }
}

fn settings(h: &Hparams, run: &RunInfo, learned: bool) -> Result<WcSettings> {
    let (pa, pb) = paper_ab(&run.model, run.num_classes);
    let value = |key: &str, paper: f64| -> Result<f64> {
        if h.str(key)? == "auto" {
            Ok(paper)
        } else {
            h.f64(key)
        }
    };
    let s = WcSettings {
        compander: Compander::parse(h.str("compander")?)?,
        a: value("a", pa)?,
        b: value("b", pb)?,
        learned,
    };
    if !(s.a > 0.0 && s.b > 0.0) {
        return Err(Error::invalid("--set", format!("a = {} and b = {} must be positive", s.a, s.b)));
    }
    Ok(s)
}

/// `small`, `paper` (the paper's CIFAR-10 ResNet-18 recipe) with `(a, b)` as given.
macro_rules! presets {
    ($a:literal, $b:literal, $what:literal) => {
        &[
            Preset {
                name: "small",
                about: concat!(
                    "the small reproduction protocol (methods/REPRODUCING.md: ResNet-18/0.25 on a CIFAR-10 subset), ",
                    $what
                ),
                defaults: SMALL_PROTOCOL,
                hparams: &[("a", $a), ("b", $b)],
            },
            Preset {
                name: "paper",
                about: concat!("the paper's CIFAR-10 ResNet-18 recipe (200 epochs), ", $what),
                defaults: PAPER_CIFAR10_R18,
                hparams: &[("a", $a), ("b", $b)],
            },
        ]
    };
}

/// `wc`: every conv/linear weight as `w = a·arctan(v/b)` with the paper's fixed `(a, b)` for the
/// model (ResNet-18 on CIFAR-10: `a = 1.0, b = 0.6`), weight decay on `w`.
pub static WC: MethodSpec = MethodSpec {
    name: "wc",
    description: "Weight Compander (Cakaj et al. 2023): w = a*arctan(v/b) with the paper's fixed (a, b), decay on w",
    defaults: SMALL_DEFAULTS,
    presets: presets!("1.0", "0.6", "a = 1.0, b = 0.6 (its ResNet-18 CIFAR-10 values)"),
    training: Training::Required,
    hparams: WC_HPARAMS,
    build: |h, run| Ok(Box::new(WeightCompanderMethod::new(settings(h, run, false)?))),
};

/// `wc-learned`: the "fine" learned variant, one `(a, b)` per layer from `a = 0.5, b = 1.0`,
/// weight decay on `v` only.
pub static WC_LEARNED: MethodSpec = MethodSpec {
    name: "wc-learned",
    description: "Weight Compander with one learned (a, b) per layer from a = 0.5, b = 1.0; decay on v only",
    defaults: SMALL_DEFAULTS,
    presets: presets!("0.5", "1.0", "learned (a, b) per layer from a = 0.5, b = 1.0"),
    training: Training::Required,
    hparams: WC_LEARNED_HPARAMS,
    build: |h, run| Ok(Box::new(WeightCompanderMethod::new(settings(h, run, true)?))),
};

/// The two entries, in registry order.
pub static SPECS: [&MethodSpec; 2] = [&WC, &WC_LEARNED];
