//! The recipes: which spectral dropout layer, with which hyper-parameters, placed where, per
//! model — the paper's selected values (its Tables with the best `p` and `(p, η)` per model and
//! dataset, and the placement of its appendix) and the rules used for models it did not run.

use autograd::{Error, Result};
use layers::{Dropout2d, Module};

use super::{
    stage_scopes, wrap_convs, MaskGranularity, Position, SpectralFourierDropout1d, SpectralFourierDropout2d,
    SpectralWaveletDropout1d, SpectralWaveletDropout2d,
};

/// The layer a recipe inserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpectralKind {
    /// [`SpectralWaveletDropout1d`] (`swd`).
    Swd1d,
    /// [`SpectralWaveletDropout2d`] (`swd2d`).
    Swd2d,
    /// [`SpectralFourierDropout1d`] (`sfd`).
    Sfd1d,
    /// [`SpectralFourierDropout2d`] (`sfd2d`).
    Sfd2d,
    /// [`layers::Dropout2d`], channel dropout placed like 1-D SWD (`dropout2d`, a baseline).
    Dropout2d,
}

impl SpectralKind {
    /// Every kind, in registry order.
    pub const ALL: [SpectralKind; 5] =
        [SpectralKind::Swd1d, SpectralKind::Swd2d, SpectralKind::Sfd1d, SpectralKind::Sfd2d, SpectralKind::Dropout2d];

    /// The registry name: `swd`, `swd2d`, `sfd`, `sfd2d`, `dropout2d`.
    pub fn name(self) -> &'static str {
        match self {
            SpectralKind::Swd1d => "swd",
            SpectralKind::Swd2d => "swd2d",
            SpectralKind::Sfd1d => "sfd",
            SpectralKind::Sfd2d => "sfd2d",
            SpectralKind::Dropout2d => "dropout2d",
        }
    }

    /// The kind of a registry name.
    pub fn parse(name: &str) -> Result<SpectralKind> {
        Self::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            Error::invalid("SpectralKind::parse", format!("unknown kind {name:?}; valid: {names:?}"))
        })
    }

    /// Whether the layer works on 2-D maps (placed before convolutions everywhere).
    pub fn is_2d(self) -> bool {
        matches!(self, SpectralKind::Swd2d | SpectralKind::Sfd2d)
    }

    /// Whether the layer has the pruning quantile `η`.
    pub fn has_eta(self) -> bool {
        matches!(self, SpectralKind::Sfd1d | SpectralKind::Sfd2d)
    }
}

/// A spectral dropout recipe: the layer, its hyper-parameters, and where it goes.
#[derive(Clone, Debug, PartialEq)]
pub struct SpectralRecipe {
    /// The layer.
    pub kind: SpectralKind,
    /// Drop probability (of a detail band, a DCT coefficient, or a channel).
    pub p: f64,
    /// SFD's pruning quantile (ignored by the other kinds).
    pub eta: f64,
    /// SWD's mask granularity (ignored by the other kinds).
    pub granularity: MaskGranularity,
    /// 1-D SWD's droppable levels (1-based, 1 the finest; `None`: all three). The paper's
    /// band-restricted ablation "1D-SWD3" drops only level 3. Ignored by the other kinds.
    pub droppable_levels: Option<Vec<usize>>,
    /// The stages (1-based, see [`stage_scopes`]) whose convolutions get the layer.
    pub stages: Vec<usize>,
    /// Before or after each convolution.
    pub position: Position,
}

/// The paper's model families (by `layers::models` name) that have selected hyper-parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    R18,
    R34,
    R50,
    Vgg16,
}

fn family(model: &str) -> Option<Family> {
    match model.trim_end_matches("-cifar") {
        "resnet18" => Some(Family::R18),
        "resnet34" => Some(Family::R34),
        "resnet50" => Some(Family::R50),
        "vgg16-bn" => Some(Family::Vgg16),
        _ => None,
    }
}

/// `(p, η)` selected by the paper for `kind` on `family`, CIFAR-10 (`c100 = false`) or -100.
fn selected(kind: SpectralKind, family: Family, c100: bool) -> (f64, f64) {
    use Family::*;
    use SpectralKind::*;
    let pick = |c10: (f64, f64), c100v: (f64, f64)| if c100 { c100v } else { c10 };
    match (kind, family) {
        (Swd1d, R18) => pick((0.1, 0.0), (0.1, 0.0)),
        (Swd1d, R34) => pick((0.2, 0.0), (0.1, 0.0)),
        (Swd1d, R50) => pick((0.2, 0.0), (0.1, 0.0)),
        (Swd1d, Vgg16) => pick((0.1, 0.0), (0.2, 0.0)),
        (Swd2d, R18) => pick((0.1, 0.0), (0.2, 0.0)),
        (Swd2d, R34) => pick((0.2, 0.0), (0.2, 0.0)),
        (Swd2d, R50) => pick((0.2, 0.0), (0.1, 0.0)),
        (Swd2d, Vgg16) => pick((0.5, 0.0), (0.2, 0.0)),
        (Sfd1d, R18) => pick((0.1, 0.1), (0.2, 0.2)),
        (Sfd1d, R34) => pick((0.3, 0.5), (0.1, 0.0)),
        (Sfd1d, R50) => pick((0.2, 0.1), (0.3, 0.1)),
        (Sfd1d, Vgg16) => pick((0.3, 0.4), (0.4, 0.1)),
        (Sfd2d, R18) => pick((0.1, 0.2), (0.1, 0.1)),
        (Sfd2d, R34) => pick((0.4, 0.3), (0.2, 0.0)),
        (Sfd2d, R50) => pick((0.4, 0.4), (0.2, 0.0)),
        (Sfd2d, Vgg16) => pick((0.1, 0.4), (0.4, 0.5)),
        (Dropout2d, _) => (DROPOUT2D_P, 0.0),
    }
}

/// The three-stage CIFAR ResNets of `layers::models` (stages `layer1..layer3`).
const CIFAR_RESNETS: [&str; 6] = ["resnet8", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"];

/// `p` of the `dropout2d` baseline (the paper reports D2D on ImageNet without its `p`; 0.1 is
/// the small end of its SWD sweep).
pub const DROPOUT2D_P: f64 = 0.1;

/// `p` (and `η` for SFD) for models the paper did not run: the small end of its sweeps, where
/// it found the best values ("small p (0.1–0.2) works best"; η = 0.1 the smallest nonzero grid
/// value).
pub const FALLBACK_P_ETA: (f64, f64) = (0.1, 0.1);

impl SpectralRecipe {
    /// The paper's recipe for `kind` on the `layers::models` model `model` trained with
    /// `num_classes` classes (100 or more picks the CIFAR-100 values, else CIFAR-10's):
    ///
    /// - `p`, `η`: the selected values of its tables for ResNet-18/34/50 and VGG16-BN (ImageNet
    ///   ResNet-50: 1-D SWD `p = 0.2`, 2-D SFD `(0.2, 0.1)`; ImageNet-stem ResNet-18/34 and the
    ///   other ImageNet ResNet-50 methods take the CIFAR values); [`FALLBACK_P_ETA`] otherwise;
    /// - stages: stage 4 (VGG: module 4); stage 3 for SWD (1-D and 2-D) on ResNet-18 CIFAR-10
    ///   and for 1-D SWD on ResNet-34 CIFAR-10 (SFD keeps stage 4 there, as in Tables XI/XII;
    ///   `dropout2d` is placed like 1-D SWD); the last stage of the three-stage CIFAR ResNets
    ///   (ResNet-8/20/...); `conv2` (stage 2) of LeNet-5;
    /// - position: 2-D methods before each convolution; 1-D methods (and `dropout2d`) after it on
    ///   low-resolution inputs (32x32 and smaller), before it on ImageNet-sized inputs.
    pub fn paper_default(kind: SpectralKind, model: &str, num_classes: usize) -> SpectralRecipe {
        let c100 = num_classes >= 100;
        let cifar_stem = model.ends_with("-cifar");
        let (p, eta) = match family(model) {
            Some(Family::R50) if !cifar_stem && kind == SpectralKind::Swd1d => (0.2, 0.0),
            Some(Family::R50) if !cifar_stem && kind == SpectralKind::Sfd2d => (0.2, 0.1),
            Some(f) => selected(kind, f, c100),
            None if kind == SpectralKind::Dropout2d => (DROPOUT2D_P, 0.0),
            None => FALLBACK_P_ETA,
        };
        let eta = if kind.has_eta() { eta } else { 0.0 };
        let three_stage_cifar = CIFAR_RESNETS.contains(&model);
        // Tables XI/XII: stage 4 almost everywhere; stage 3 for SWD on ResNet-18 CIFAR-10 and
        // for 1-D SWD on ResNet-34 CIFAR-10 (dropout2d is placed like 1-D SWD). SFD: stage 4.
        let swd_1d = matches!(kind, SpectralKind::Swd1d | SpectralKind::Dropout2d);
        let stage = match family(model) {
            Some(Family::R18) if cifar_stem && !c100 && (swd_1d || kind == SpectralKind::Swd2d) => 3,
            Some(Family::R34) if cifar_stem && !c100 && swd_1d => 3,
            _ if three_stage_cifar => 3,
            _ if model == "lenet5" => 2,
            _ => 4,
        };
        let high_resolution = layers::models::input_size(model).is_ok_and(|s| s > 64);
        let position = if kind.is_2d() || high_resolution { Position::Before } else { Position::After };
        SpectralRecipe {
            kind,
            p,
            eta,
            granularity: MaskGranularity::PerCall,
            droppable_levels: None,
            stages: vec![stage],
            position,
        }
    }

    /// A fresh dropout layer of this recipe.
    pub fn layer(&self) -> Result<Box<dyn Module>> {
        Ok(match self.kind {
            SpectralKind::Swd1d => {
                let layer = SpectralWaveletDropout1d::new(self.p)?.with_granularity(self.granularity);
                match &self.droppable_levels {
                    Some(levels) => Box::new(layer.with_droppable_levels(levels)?),
                    None => Box::new(layer),
                }
            }
            SpectralKind::Swd2d => Box::new(SpectralWaveletDropout2d::new(self.p)?.with_granularity(self.granularity)),
            SpectralKind::Sfd1d => Box::new(SpectralFourierDropout1d::new(self.p, self.eta)?),
            SpectralKind::Sfd2d => Box::new(SpectralFourierDropout2d::new(self.p, self.eta)?),
            SpectralKind::Dropout2d => Box::new(Dropout2d::new(self.p)?),
        })
    }

    /// Inserts the layer around every convolution of the recipe's stages of `model`; returns
    /// the wrapped convolutions' paths.
    pub fn apply(&self, model: &mut dyn Module) -> Result<Vec<String>> {
        let scopes = stage_scopes(model, &self.stages)?;
        let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        wrap_convs(model, &refs, self.position, self.kind.name(), &mut || self.layer())
    }
}
