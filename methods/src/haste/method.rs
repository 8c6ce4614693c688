//! The registry entry `haste` and the model transform [`compress`]: every selected convolution
//! of a trained model replaced by a [`HasteConv2d`].

use autograd::{Error, Result};
use layers::models::{self, ModelOptions};
use layers::state_dict::{load_state_dict, Strictness};
use layers::surgery::{num_stages, replace, stage_scopes, Select};
use layers::{Conv2d, Module, ModuleExt};

use super::conv::{HasteConv2d, HasteSettings};
use super::hash::Centering;
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::SMALL;
use crate::registry::{Method, MethodSpec, RunInfo, Training, SMALL_DEFAULTS};

const HYPERPLANES: HparamSpec =
    HparamSpec { key: "hyperplanes", default: "12", help: "L: hyperplanes per hash code (0-64); fewer merge more" };
const SPARSITY: HparamSpec = HparamSpec {
    key: "sparsity",
    default: "auto",
    help: "s: probability of a zero projection entry; auto = 2/3 on CIFAR-sized inputs, 1/2 on ImageNet-sized ones",
};
const PATCH: HparamSpec =
    HparamSpec { key: "patch", default: "0", help: "patch side in output pixels; 0 = the whole output map" };
const START: HparamSpec = HparamSpec {
    key: "start",
    default: "2",
    help: "first stage (1-based) whose convolutions are replaced; none = replace nothing (the dense reference)",
};
const POINTWISE: HparamSpec =
    HparamSpec { key: "pointwise", default: "false", help: "also replace 1x1 convolutions (shortcuts, bottlenecks)" };
const CENTERING: HparamSpec = HparamSpec {
    key: "centering",
    default: "channels",
    help: "centering before hashing: channels (subtract the mean channel) | spatial | none",
};

/// HASTE's hyperparameters, parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HasteConfig {
    /// `L`.
    pub hyperplanes: usize,
    /// `s` (`None`: by input size, see [`HasteConfig::sparsity_for`]).
    pub sparsity: Option<f64>,
    /// Patch side in output pixels (0: the whole map).
    pub patch: usize,
    /// First stage replaced (`None`: nothing replaced).
    pub start: Option<usize>,
    /// Whether 1x1 convolutions are replaced too.
    pub pointwise: bool,
    /// Centering before hashing.
    pub centering: Centering,
}

impl HasteConfig {
    /// Parses the `haste` entry's hyperparameters.
    pub fn parse(h: &Hparams) -> Result<HasteConfig> {
        let sparsity = match h.str("sparsity")? {
            "auto" => None,
            _ => Some(h.f64("sparsity")?),
        };
        let start = match h.str("start")? {
            "none" => None,
            _ => Some(h.usize("start")?),
        };
        let cfg = HasteConfig {
            hyperplanes: h.usize("hyperplanes")?,
            sparsity,
            patch: h.usize("patch")?,
            start,
            pointwise: h.bool("pointwise")?,
            centering: Centering::parse(h.str("centering")?)?,
        };
        if cfg.hyperplanes > super::hash::MAX_HYPERPLANES {
            return Err(Error::invalid("--set", format!("hyperplanes = {}; at most 64", cfg.hyperplanes)));
        }
        if let Some(s) = cfg.sparsity {
            if !(0.0..1.0).contains(&s) {
                return Err(Error::invalid("--set", format!("sparsity = {s}; expected 0 <= s < 1")));
            }
        }
        if cfg.start == Some(0) {
            return Err(Error::invalid("--set", "start = 0; stages count from 1 (or start=none)"));
        }
        Ok(cfg)
    }

    /// `s` for inputs of `height x width`: the configured value, else the paper's (2/3 on
    /// CIFAR-10, 1/2 on ImageNet; here by input side, 64 pixels or less counting as CIFAR-sized).
    pub fn sparsity_for(&self, height: usize, width: usize) -> f64 {
        self.sparsity.unwrap_or(if height.max(width) <= 64 { 2.0 / 3.0 } else { 0.5 })
    }
}

/// A seed per layer: the run's seed mixed with the layer's path (FNV-1a), so every layer draws
/// its own hyperplanes and a run's draw is reproducible.
fn layer_seed(seed: u64, path: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in path.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Replaces the convolutions HASTE applies to in `model` (groups 1, undilated, kernel larger
/// than 1x1 unless `cfg.pointwise`, in stages `cfg.start..`, never a 3-channel stem) by
/// [`HasteConv2d`]s with `cfg`'s settings and per-layer seeds from `seed`; `input` is the
/// model's `[C, H, W]` (for the `auto` sparsity). Returns the replaced paths.
///
/// ```
/// use layers::{models, Module, ModuleExt};
/// use methods::haste::{compress, HasteConfig, Centering};
/// let mut net = models::build("resnet20", 10, 3, 0).unwrap();
/// let cfg = HasteConfig { hyperplanes: 8, sparsity: None, patch: 0, start: Some(2), pointwise: false, centering: Centering::Channels };
/// let paths = compress(net.as_mut(), &cfg, 0, [3, 32, 32]).unwrap();
/// assert_eq!(paths.len(), 12); // the 3x3 convolutions of stages 2 and 3
/// assert!(paths.iter().all(|p| p.starts_with("layer2") || p.starts_with("layer3")));
/// ```
pub fn compress(model: &mut dyn Module, cfg: &HasteConfig, seed: u64, input: [usize; 3]) -> Result<Vec<String>> {
    let Some(start) = cfg.start else { return Ok(Vec::new()) };
    let stages = num_stages(model);
    if start > stages {
        return Err(Error::invalid(
            "haste",
            format!("start = {start}, but the model has {stages} stages: nothing would be replaced"),
        ));
    }
    let scopes = stage_scopes(model, &(start..=stages).collect::<Vec<_>>())?;
    let pointwise = cfg.pointwise;
    let select = Select::all().under(&scopes).of_type::<Conv2d>().filter(move |_, m| {
        m.downcast_ref::<Conv2d>().is_some_and(|c| {
            let (kh, kw) = c.kernel_size();
            c.params.groups == 1 && c.params.dilation == (1, 1) && c.in_channels() > 3 && (pointwise || kh * kw > 1)
        })
    });
    if select.paths(model).is_empty() {
        return Ok(Vec::new());
    }
    let sparsity = cfg.sparsity_for(input[1], input[2]);
    replace(model, &select, &mut |path, old| {
        let conv = old.downcast_ref::<Conv2d>().ok_or_else(|| Error::invalid("haste", "not a Conv2d"))?;
        let settings = HasteSettings {
            hyperplanes: cfg.hyperplanes,
            sparsity,
            patch: cfg.patch,
            centering: cfg.centering,
            seed: layer_seed(seed, path),
        };
        Ok(Box::new(HasteConv2d::from_conv(conv, settings)?))
    })
}

/// The HASTE layers of `model` with their paths.
pub fn haste_layers(model: &dyn Module) -> Vec<(String, &HasteConv2d)> {
    model.named_modules().into_iter().filter_map(|(p, m)| m.downcast_ref::<HasteConv2d>().map(|h| (p, h))).collect()
}

/// The `haste` method: no training of its own (`--epochs 0` converts and evaluates a trained
/// `--init-from` checkpoint; with epochs, the dense model is trained or fine-tuned first), and
/// an inference form in which the selected convolutions run HASTE.
pub struct Haste {
    cfg: HasteConfig,
}

impl Method for Haste {
    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        if self.cfg.start.is_none() {
            return Ok(None);
        }
        let leaf =
            model.parameters().first().map(|p| p.leaf()).ok_or_else(|| Error::invalid("haste", "no parameter"))?;
        let mut copy = models::build_with(
            &run.model,
            &ModelOptions::new(run.num_classes, run.input_shape[0], run.seed).width(run.width),
        )?;
        copy.convert(leaf.dtype(), leaf.device())?;
        load_state_dict(copy.as_ref(), &model.state_dict(), Strictness::Strict)?;
        compress(copy.as_mut(), &self.cfg, run.seed, run.input_shape)?;
        Ok(Some(copy))
    }

    fn finish(&mut self, _model: &mut Box<dyn Module>, run: &RunInfo) -> Result<Vec<(String, String)>> {
        let c = &self.cfg;
        let Some(start) = c.start else {
            return Ok(vec![("haste".into(), "start=none: the dense model, nothing replaced".into())]);
        };
        let mut probe = models::build_with(
            &run.model,
            &ModelOptions::new(run.num_classes, run.input_shape[0], run.seed).width(run.width),
        )?;
        let layers = compress(probe.as_mut(), c, run.seed, run.input_shape)?;
        Ok(vec![(
            "haste".into(),
            format!(
                "L={} s={:.3} patch={} centering={} from stage {start}, {} layers replaced",
                c.hyperplanes,
                c.sparsity_for(run.input_shape[1], run.input_shape[2]),
                if c.patch == 0 { "map".to_string() } else { c.patch.to_string() },
                c.centering.name(),
                layers.len()
            ),
        )])
    }
}

/// `--preset small`: the small protocol's recipe, for `--init-from` a baseline trained with it.
const PRESETS: &[crate::registry::Preset] = &[SMALL];

/// The registry entries of this module.
pub static SPECS: [MethodSpec; 1] = [MethodSpec {
    name: "haste",
    description: "HASTE (Meiner et al. 2025): data-free LSH merging of redundant input channels in trained convolutions, at inference",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Optional,
    hparams: &[HYPERPLANES, SPARSITY, PATCH, START, POINTWISE, CENTERING],
    build: |h, _| Ok(Box::new(Haste { cfg: HasteConfig::parse(h)? })),
}];
