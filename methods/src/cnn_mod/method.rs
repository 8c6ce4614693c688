//! The registry entry `mod`: the run's model replaced by its MoD version in `prepare`, then
//! trained as usual (no auxiliary loss, no schedule of its own).

use autograd::{Error, Result};
use layers::models::ModelOptions;
use layers::Module;

use super::block::Selection;
use super::models::build_mod;
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::SMALL;
use crate::registry::{Defaults, Method, MethodSpec, RunInfo, Training, SMALL_DEFAULTS};

const C: HparamSpec = HparamSpec {
    key: "c",
    default: "auto",
    help: "k = C / c channels processed per MoD block; auto = 64 x width (ResNets, VGG-BN), 16 x width (MobileNetV2)",
};
const VARIANT: HparamSpec = HparamSpec {
    key: "variant",
    default: "auto",
    help: "auto = the MoD version of --model; resnet26 | resnet42 | resnet75 | resnet86 (with --model's stem) | mobilenetv2-l",
};
const SELECTION: HparamSpec =
    HparamSpec { key: "selection", default: "topk", help: "topk (the paper) | random (the random-selection ablation)" };

/// The `mod` method's options.
#[derive(Clone, Debug, PartialEq)]
pub struct ModConfig {
    /// `c` (`None`: the family's default).
    pub c: Option<usize>,
    /// The model variant (`None`: `--model`'s MoD version).
    pub variant: Option<String>,
    /// How channels are selected.
    pub selection: Selection,
}

impl ModConfig {
    /// Parses the `mod` entry's hyperparameters.
    pub fn parse(h: &Hparams) -> Result<ModConfig> {
        let c = match h.str("c")? {
            "auto" => None,
            _ => Some(h.usize("c")?),
        };
        if c == Some(0) {
            return Err(Error::invalid("--set", "c = 0; c must be at least 1"));
        }
        let variant = match h.str("variant")? {
            "auto" => None,
            v @ ("resnet26" | "resnet42" | "resnet75" | "resnet86" | "mobilenetv2-l") => Some(v.to_string()),
            v => {
                return Err(Error::invalid(
                    "--set",
                    format!("variant = {v:?}; expected auto, resnet26, resnet42, resnet75, resnet86 or mobilenetv2-l"),
                ))
            }
        };
        let selection = match h.str("selection")? {
            "topk" => Selection::TopK,
            "random" => Selection::Random,
            v => return Err(Error::invalid("--set", format!("selection = {v:?}; expected topk or random"))),
        };
        Ok(ModConfig { c, variant, selection })
    }
}

/// The `mod` method.
pub struct Mod {
    cfg: ModConfig,
}

impl Method for Mod {
    fn prepare(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<()> {
        let opts = ModelOptions::new(run.num_classes, run.input_shape[0], run.seed).width(run.width);
        *model = build_mod(&run.model, self.cfg.variant.as_deref(), &opts, self.cfg.c, self.cfg.selection)?;
        Ok(())
    }
}

/// A quick run on the embedded data: the small protocol's ResNet-18/0.25 (a model MoD has a
/// version of), otherwise the small defaults.
const DEFAULTS: Defaults = Defaults { model: "resnet18-cifar", width: 0.25, ..SMALL_DEFAULTS };

/// The registry entries of this module.
pub static SPECS: [MethodSpec; 1] = [MethodSpec {
    name: "mod",
    description:
        "CNN Mixture-of-Depths (Cakaj et al. 2024): every odd block of a stage processes only its top-k channels",
    defaults: DEFAULTS,
    presets: &[SMALL],
    training: Training::Required,
    hparams: &[C, VARIANT, SELECTION],
    build: |h, _| Ok(Box::new(Mod { cfg: ModConfig::parse(h)? })),
}];
