//! PROM's recipe as a model transform ([`quantize`]) and the registry entry `prom`:
//! quantization-aware training of a float model (`--init-from` a float checkpoint, or from
//! scratch) with every convolution and the classifier wrapped in a [`QuantLayer`].

use autograd::{Error, Result};
use layers::models::{self, ModelOptions};
use layers::state_dict::{load_state_dict, Strictness};
use layers::surgery::{replace, Select};
use layers::{Conv2d, Linear, Module, ModuleExt};

use super::energy::{block_pointwise_convs, estimate, layer_costs, Accumulator, EnergyTable, Precision};
use super::integer::to_integer;
use super::layer::{ActQuant, QuantLayer, WeightQuant};
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::SMALL_PROTOCOL;
use crate::registry::{Defaults, Method, MethodSpec, Preset, RunInfo, Training, SMALL_DEFAULTS};

const TERNARY: HparamSpec = HparamSpec {
    key: "ternary",
    default: "absmean",
    help: "ternary quantizer of the pointwise layers: absmean | twn | ttq",
};
const TTQ_T: HparamSpec =
    HparamSpec { key: "ttq_t", default: "0.05", help: "TTQ's threshold factor t (Δ = t·max|W|)" };
const ACT: HparamSpec = HparamSpec {
    key: "act",
    default: "lsq",
    help: "8-bit activation quantizer at every quantized layer's input: lsq | pact | fixed (range [0, 6]) | none",
};
const FINAL: HparamSpec = HparamSpec {
    key: "final",
    default: "int8",
    help: "the final 1x1 convolution outside the blocks (MobileNetV2's 320->1280): int8 | ternary",
};

const INFERENCE: HparamSpec = HparamSpec {
    key: "inference",
    default: "integer",
    help: "what evaluation and export run: integer (the integer model, BatchNorm folded) | fake (the fake-quantized model)",
};

/// PROM's options, parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PromConfig {
    /// The quantizer of the ternary layers.
    pub ternary: WeightQuant,
    /// The activation quantizer.
    pub act: ActQuant,
    /// Whether the final 1x1 convolution outside the blocks is ternary.
    pub final_ternary: bool,
}

impl PromConfig {
    /// Parses the `prom` entry's hyperparameters.
    pub fn parse(h: &Hparams) -> Result<PromConfig> {
        let t = h.f64("ttq_t")?;
        if !(0.0..1.0).contains(&t) {
            return Err(Error::invalid("--set", format!("ttq_t = {t}; expected 0 <= t < 1")));
        }
        let ternary = match h.str("ternary")? {
            "absmean" => WeightQuant::TernaryAbsmean,
            "twn" => WeightQuant::TernaryTwn,
            "ttq" => WeightQuant::TernaryTtq { t },
            v => return Err(Error::invalid("--set", format!("ternary = {v:?}; expected absmean, twn or ttq"))),
        };
        let act = match h.str("act")? {
            "lsq" => ActQuant::Lsq,
            "pact" => ActQuant::Pact { alpha: 6.0 },
            "fixed" => ActQuant::Fixed { lo: 0.0, hi: 6.0 },
            "none" => ActQuant::None,
            v => return Err(Error::invalid("--set", format!("act = {v:?}; expected lsq, pact, fixed or none"))),
        };
        let final_ternary = match h.str("final")? {
            "int8" => false,
            "ternary" => true,
            v => return Err(Error::invalid("--set", format!("final = {v:?}; expected int8 or ternary"))),
        };
        Ok(PromConfig { ternary, act, final_ternary })
    }
}

/// The final 1x1 convolution of a MobileNetV2-like model: the last ungrouped 1x1 [`Conv2d`]
/// under `features` that is not inside a block.
fn final_pointwise(model: &dyn Module, in_blocks: &[String]) -> Option<String> {
    model
        .named_modules()
        .into_iter()
        .filter(|(p, m)| {
            p.starts_with("features.")
                && !in_blocks.iter().any(|b| b == p)
                && m.downcast_ref::<Conv2d>().is_some_and(|c| c.kernel_size() == (1, 1) && c.params.groups == 1)
        })
        .map(|(p, _)| p)
        .next_back()
}

/// Wraps every [`Conv2d`] and [`Linear`] of `model` in a [`QuantLayer`]: the 1x1 convolutions
/// inside inverted-residual blocks (and the final one, if `cfg.final_ternary`) with the ternary
/// quantizer, every other layer int8, every input through `cfg.act`. Returns each wrapped path
/// with whether it is ternary.
///
/// ```
/// use layers::models;
/// use methods::prom::{quantize, PromConfig, WeightQuant, ActQuant};
/// let mut net = models::build("mobilenetv2-cifar", 10, 3, 0).unwrap();
/// let cfg = PromConfig { ternary: WeightQuant::TernaryAbsmean, act: ActQuant::Lsq, final_ternary: false };
/// let layers = quantize(net.as_mut(), &cfg).unwrap();
/// assert_eq!(layers.iter().filter(|(_, t)| *t).count(), 33); // 16 expansions + 17 projections
/// assert_eq!(layers.len(), 33 + 1 + 17 + 1 + 1); // stem, depthwise, final 1x1, classifier
/// ```
pub fn quantize(model: &mut dyn Module, cfg: &PromConfig) -> Result<Vec<(String, bool)>> {
    let mut ternary = block_pointwise_convs(model);
    if cfg.final_ternary {
        ternary.extend(final_pointwise(model, &ternary));
    }
    let select =
        Select::all().filter(|_, m| m.downcast_ref::<Conv2d>().is_some() || m.downcast_ref::<Linear>().is_some());
    let mut out = Vec::new();
    replace(model, &select, &mut |path, old| {
        let is_ternary = ternary.iter().any(|t| t == path);
        out.push((path.to_string(), is_ternary));
        let wq = if is_ternary { cfg.ternary } else { WeightQuant::Int8 };
        Ok(Box::new(QuantLayer::wrap(old, wq, cfg.act)?))
    })?;
    Ok(out)
}

/// The `prom` method: [`quantize`] in `prepare` (after `--init-from` loaded the float weights),
/// then plain training of the fake-quantized model (BatchNorm stays float); evaluation, the
/// final test and `inference.safetensors` use the integer model ([`super::integer::to_integer`]
/// of a copy: BatchNorm folded, ternary 1x1 convolutions on the add/subtract kernel), unless
/// `inference=fake`.
pub struct Prom {
    cfg: PromConfig,
    layers: Vec<(String, bool)>,
    /// Evaluation and export run the integer model (`inference=integer`).
    integer: bool,
}

impl Method for Prom {
    fn prepare(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<()> {
        self.layers = quantize(model.as_mut(), &self.cfg)?;
        Ok(())
    }

    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        if !self.integer {
            return Ok(None);
        }
        let leaf =
            model.parameters().first().map(|p| p.leaf()).ok_or_else(|| Error::invalid("prom", "no parameter"))?;
        let mut copy = models::build_with(
            &run.model,
            &ModelOptions::new(run.num_classes, run.input_shape[0], run.seed).width(run.width),
        )?;
        quantize(copy.as_mut(), &self.cfg)?;
        copy.convert(leaf.dtype(), leaf.device())?;
        load_state_dict(copy.as_ref(), &model.state_dict(), Strictness::Strict)?;
        to_integer(copy.as_mut())?;
        Ok(Some(copy))
    }

    fn finish(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<Vec<(String, String)>> {
        let ternary = self.layers.iter().filter(|(_, t)| *t).count();
        let [c, h, w] = run.input_shape;
        let costs = layer_costs(model.as_ref(), &[1, c, h, w])?;
        let table = EnergyTable::default();
        let float16 = estimate(&costs, &|_| Precision::Float16, &table, Accumulator::Int8);
        let layers = &self.layers;
        let prom = estimate(
            &costs,
            &|name: &str| match layers.iter().find(|(p, _)| p == name) {
                Some((_, true)) => Precision::Ternary,
                Some((_, false)) => Precision::Int8,
                None => Precision::Float16,
            },
            &table,
            Accumulator::Int8,
        );
        Ok(vec![
            (
                "prom".into(),
                format!(
                    "{ternary} ternary layers ({:?}), {} int8 layers, activations {:?}",
                    self.cfg.ternary,
                    self.layers.len() - ternary,
                    self.cfg.act
                ),
            ),
            (
                "prom energy".into(),
                format!(
                    "{:.1}x less than float16 ({:.3} vs {:.3} uJ per image; 45 nm table, int8 accumulation), storage {:.1}x smaller ({} vs {} bytes of weights)",
                    prom.energy_ratio(&float16),
                    prom.pj / 1e6,
                    float16.pj / 1e6,
                    prom.storage_ratio(&float16),
                    prom.bits / 8,
                    float16.bits / 8
                ),
            ),
        ])
    }
}

/// The small protocol on MobileNetV2 at width 0.5 with CIFAR strides (QAT from a float run of
/// the same recipe, `--init-from`).
const SMALL_MOBILENET: Defaults = Defaults { model: "mobilenetv2-0.5-cifar", width: 1.0, ..SMALL_PROTOCOL };

/// A quick run on the embedded data with MobileNetV2-0.5 (CIFAR strides).
const DEFAULTS: Defaults = Defaults { model: "mobilenetv2-0.5-cifar", width: 1.0, ..SMALL_DEFAULTS };

/// The registry entries of this module.
pub static SPECS: [MethodSpec; 1] = [MethodSpec {
    name: "prom",
    description:
        "PROM (2025): ternary pointwise + int8 quantization-aware training, evaluated and exported as the integer model",
    defaults: DEFAULTS,
    presets: &[Preset {
        name: "small",
        about: "the small protocol on MobileNetV2-0.5 (CIFAR strides); QAT from a float run with --init-from",
        defaults: SMALL_MOBILENET,
        hparams: &[],
    }],
    training: Training::Required,
    hparams: &[TERNARY, TTQ_T, ACT, FINAL, INFERENCE],
    build: |h, _| {
        let integer = match h.str("inference")? {
            "integer" => true,
            "fake" => false,
            v => return Err(Error::invalid("--set", format!("inference = {v:?}; expected integer or fake"))),
        };
        Ok(Box::new(Prom { cfg: PromConfig::parse(h)?, layers: Vec::new(), integer }))
    },
}];
