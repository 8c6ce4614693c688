//! Model-level Weight Compander: reparameterize every selected `Conv2d` and `Linear` of any
//! model through [`layers::surgery`] ([`compand`]), find the companders ([`companders`]), and
//! fold them back into plain layers ([`fold`] in place, [`folded_state_dict`] for a fresh copy
//! of the plain architecture).

use autograd::{no_grad, Result, Tensor};
use layers::surgery::{replace, unwrapped, Around, Select};
use layers::{Conv2d, Linear, Module, ModuleExt, Param};

use super::{Compander, Scale, WeightCompander};

/// How the weights are reparameterized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WcSettings {
    /// `f`.
    pub compander: Compander,
    /// `a` (the starting value when learned).
    pub a: f64,
    /// `b` (the starting value when learned).
    pub b: f64,
    /// One learned `(a, b)` per layer (the paper's "fine" variant) instead of fixed values.
    pub learned: bool,
}

impl WcSettings {
    fn scale(&self, value: f64) -> Scale {
        if self.learned {
            Scale::Learned(Param::new(Tensor::from_vec(vec![value as f32], &[1]).expect("one value")))
        } else {
            Scale::Fixed(value)
        }
    }
}

/// Reparameterizes every [`Conv2d`] and [`Linear`] of `model` (seen through wrappers) that
/// `select` also picks (`None`: all of them), as [`WeightCompander::wrap`] with `settings`; each
/// learned layer gets its own `(a, b)`. Returns the paths in module order. Selecting no layer is
/// an error.
///
/// ```
/// use methods::wc::{compand, fold, Compander, WcSettings};
/// use layers::{models, Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let mut net = models::build("resnet8", 10, 3, 0).unwrap();
/// let x = Tensor::randn(&[2, 3, 32, 32], 0).unwrap();
/// let plain = net.forward(&x, Mode::Eval).unwrap();
/// let s = WcSettings { compander: Compander::Arctan, a: 1.0, b: 0.6, learned: false };
/// let paths = compand(net.as_mut(), &s, None).unwrap();
/// assert_eq!(paths.len(), 8); // 7 convolutions and the classifier
/// assert!(net.named_parameters().iter().any(|(n, _)| n == "layer1.0.conv1.weight_v"));
/// let wc = net.forward(&x, Mode::Eval).unwrap();
/// assert!(wc.sub(&plain).unwrap().abs().unwrap().max(&[0, 1], false).unwrap().item().unwrap() < 1e-5);
/// fold(net.as_mut()).unwrap();
/// assert!(net.named_parameters().iter().any(|(n, _)| n == "layer1.0.conv1.weight"));
/// ```
pub fn compand(model: &mut dyn Module, settings: &WcSettings, select: Option<&Select>) -> Result<Vec<String>> {
    let mut sel = select.cloned().unwrap_or_default();
    sel = sel.of_type::<Conv2d>().of_type::<Linear>();
    let s = *settings;
    replace(model, &sel, &mut |_, old| WeightCompander::wrap_through(old, s.compander, s.scale(s.a), s.scale(s.b)))
}

/// Every [`WeightCompander`] of `model` (seen through wrappers) with its path.
pub fn companders(model: &dyn Module) -> Vec<(String, &WeightCompander)> {
    model
        .named_modules()
        .into_iter()
        .filter_map(|(p, m)| unwrapped(m).downcast_ref::<WeightCompander>().map(|c| (p, c)))
        .collect()
}

/// Replaces every [`WeightCompander`] of `model` by its plain layer (`weight = ψ(v)`) in place;
/// returns their paths. Parameter names become the plain model's again (`weight`).
pub fn fold(model: &mut dyn Module) -> Result<Vec<String>> {
    fn folded(m: Box<dyn Module>) -> Result<Box<dyn Module>> {
        if m.downcast_ref::<Around>().is_some() {
            let mut around = *m.into_any().downcast::<Around>().expect("checked to be an Around");
            let inner = std::mem::replace(&mut around.inner, Box::new(layers::Identity));
            around.inner = folded(inner)?;
            return Ok(Box::new(around));
        }
        match m.downcast_ref::<WeightCompander>() {
            Some(c) => c.plain(),
            None => Ok(m),
        }
    }
    replace(model, &Select::all().of_type::<WeightCompander>(), &mut |_, old| folded(old))
}

/// The state of the model with every compander folded, under the plain model's names: each
/// compander at `P` contributes `P.weight = ψ(v)` (and its bias) instead of `P.weight_v`,
/// `P.weight_a`, `P.weight_b`; everything else is `model.state_dict()`. Loads into a fresh
/// plain copy of the architecture (the trainer's inference form).
pub fn folded_state_dict(model: &dyn Module) -> Result<Vec<(String, Tensor)>> {
    let comps = companders(model);
    let owned = |name: &str| {
        comps.iter().any(|(p, _)| {
            let rest =
                if p.is_empty() { Some(name) } else { name.strip_prefix(p.as_str()).and_then(|r| r.strip_prefix('.')) };
            matches!(rest, Some("weight_v" | "weight_a" | "weight_b"))
        })
    };
    let mut out: Vec<(String, Tensor)> = model.state_dict().into_iter().filter(|(n, _)| !owned(n)).collect();
    for (p, c) in &comps {
        let w = no_grad(|| c.weight())?.detach();
        out.push((if p.is_empty() { "weight".into() } else { format!("{p}.weight") }, w));
    }
    Ok(out)
}
