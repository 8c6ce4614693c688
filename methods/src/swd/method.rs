//! The registry entries `swd`, `swd2d`, `sfd`, `sfd2d` and `dropout2d`: hyperparameters that
//! default to the paper's recipe for the run's model ([`SpectralRecipe::paper_default`]) and a
//! [`Method`] whose `prepare` hook wraps the selected convolutions.

use autograd::{Error, Result};
use layers::Module;

use super::{MaskGranularity, Position, SpectralKind, SpectralRecipe};
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::{PAPER_CIFAR10_RESNET18, SMALL};
use crate::registry::{Method, MethodSpec, Preset, RunInfo, Training, SMALL_DEFAULTS};

/// `small` (the reproduction protocol; the layer goes where the paper puts it on ResNet-18 for
/// CIFAR-10) and `paper` (the paper's CIFAR-10 ResNet-18 recipe). Hyperparameters stay `auto`,
/// the paper's values for the run's model.
const PRESETS: &[Preset] = &[SMALL, PAPER_CIFAR10_RESNET18];

const P: HparamSpec = HparamSpec {
    key: "p",
    default: "auto",
    help: "drop probability; auto = the paper's value for the model (0.1 for models it did not run)",
};
const ETA: HparamSpec = HparamSpec {
    key: "eta",
    default: "auto",
    help: "pruning quantile of |DCT coefficient| per map; auto = the paper's value for the model",
};
const STAGES: HparamSpec = HparamSpec {
    key: "stages",
    default: "auto",
    help: "comma-separated stages (1-based: ResNet layerK, VGG module K) whose convs get the layer; auto = paper",
};
const POSITION: HparamSpec = HparamSpec {
    key: "position",
    default: "auto",
    help: "before | after each convolution; auto = after for 1-D methods on small inputs, else before",
};
const GRANULARITY: HparamSpec = HparamSpec {
    key: "granularity",
    default: "call",
    help: "band masks drawn per call (the paper), per sample, or per (sample, channel): call | sample | channel",
};

const LEVELS: HparamSpec = HparamSpec {
    key: "levels",
    default: "all",
    help:
        "1-D SWD: droppable detail levels (1 finest .. 3 coarsest), all | comma list; 3 = the paper's 1D-SWD3 ablation",
};

const SWD_HPARAMS: &[HparamSpec] = &[P, STAGES, POSITION, GRANULARITY, LEVELS];
const SWD2D_HPARAMS: &[HparamSpec] = &[P, STAGES, POSITION, GRANULARITY];
const SFD_HPARAMS: &[HparamSpec] = &[P, ETA, STAGES, POSITION];
const DROPOUT2D_HPARAMS: &[HparamSpec] = &[P, STAGES, POSITION];

/// The recipe of `kind` for the run: the paper's, overridden by every hyperparameter not `auto`.
pub fn recipe_from(kind: SpectralKind, h: &Hparams, run: &RunInfo) -> Result<SpectralRecipe> {
    let mut r = SpectralRecipe::paper_default(kind, &run.model, run.num_classes);
    let set = |key: &str| h.values().get(key).is_some_and(|v| v != "auto");
    if set("p") {
        r.p = h.f64("p")?;
    }
    if set("eta") {
        r.eta = h.f64("eta")?;
    }
    if set("stages") {
        r.stages = h.usize_list("stages")?;
    }
    if set("position") {
        r.position = Position::parse(h.str("position")?)?;
    }
    if h.values().get("levels").is_some_and(|v| v != "all") {
        r.droppable_levels = Some(h.usize_list("levels")?);
    }
    if set("granularity") {
        r.granularity = match h.str("granularity")? {
            "call" => MaskGranularity::PerCall,
            "sample" => MaskGranularity::PerSample,
            "channel" => MaskGranularity::PerChannel,
            s => return Err(Error::invalid("--set", format!("granularity = {s:?}; expected call, sample or channel"))),
        };
    }
    r.layer()?; // validates p and eta now rather than in `prepare`
    Ok(r)
}

/// The hooks of a spectral dropout method: wrap the convolutions once, before training.
pub struct SpectralDropoutMethod {
    /// What is inserted, where.
    pub recipe: SpectralRecipe,
    wrapped: Vec<String>,
}

impl Method for SpectralDropoutMethod {
    fn prepare(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<()> {
        if layers::surgery::num_stages(model.as_ref()) == 0 {
            return Err(Error::invalid(
                "--model",
                format!(
                    "this method needs a convolutional model (a ResNet, VGG or MobileNetV2): it inserts its {} layer around the convolutions of stages {:?}, and model {} has no convolutional stages",
                    self.recipe.kind.name(),
                    self.recipe.stages,
                    run.model
                ),
            ));
        }
        self.wrapped = self.recipe.apply(model.as_mut())?;
        Ok(())
    }

    fn finish(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        let r = &self.recipe;
        let mut lines = vec![
            ("layer".into(), r.kind.name().into()),
            ("p".into(), r.p.to_string()),
            ("stages".into(), format!("{:?}", r.stages)),
            ("position".into(), r.position.name().into()),
            ("wrapped_convs".into(), self.wrapped.join(" ")),
        ];
        if let Some(levels) = &r.droppable_levels {
            lines.push(("droppable levels".into(), format!("{levels:?}")));
        }
        if r.kind.has_eta() {
            lines.insert(2, ("eta".into(), r.eta.to_string()));
        }
        if matches!(r.kind, SpectralKind::Swd1d | SpectralKind::Swd2d) {
            lines.insert(2, ("granularity".into(), format!("{:?}", r.granularity)));
        }
        Ok(lines)
    }
}

fn build(kind: SpectralKind, h: &Hparams, run: &RunInfo) -> Result<Box<dyn Method>> {
    Ok(Box::new(SpectralDropoutMethod { recipe: recipe_from(kind, h, run)?, wrapped: vec![] }))
}

/// `swd`: 1-D Spectral Wavelet Dropout.
///
/// Defaults: ResNet-8 on the embedded Fashion-MNIST (the small defaults), the layer after both
/// convolutions of stage 3 (its deepest stage, 7x7 maps: the paper inserts SWD in deep stages
/// only, after the convolutions on low-resolution inputs), `p = 0.1` (the paper's value for the
/// closest model it ran, ResNet-18 on CIFAR-10, also stage 3).
pub static SWD: MethodSpec = MethodSpec {
    name: "swd",
    description: "1-D Spectral Wavelet Dropout (Cakaj et al. 2024): drop whole db3 detail bands of flattened maps",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: SWD_HPARAMS,
    build: |h, run| build(SpectralKind::Swd1d, h, run),
};

/// `swd2d`: 2-D Spectral Wavelet Dropout, placed before the convolutions of the same stage.
pub static SWD2D: MethodSpec = MethodSpec {
    name: "swd2d",
    description: "2-D Spectral Wavelet Dropout (Cakaj et al. 2024): drop LH/HL/HH bands of a one-level db3 DWT",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: SWD2D_HPARAMS,
    build: |h, run| build(SpectralKind::Swd2d, h, run),
};

/// `sfd`: 1-D Spectral Fourier Dropout (the SWD paper's 1-D DCT baseline).
pub static SFD: MethodSpec = MethodSpec {
    name: "sfd",
    description: "1-D Spectral Fourier Dropout (SWD paper baseline): prune below the eta-quantile, drop DCT coefs",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: SFD_HPARAMS,
    build: |h, run| build(SpectralKind::Sfd1d, h, run),
};

/// `sfd2d`: 2-D Spectral Fourier Dropout (Khan et al. 2019 as re-implemented in the SWD paper).
pub static SFD2D: MethodSpec = MethodSpec {
    name: "sfd2d",
    description: "2-D Spectral Fourier Dropout (Khan et al. 2019): prune and drop 2-D DCT coefficients per map",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: SFD_HPARAMS,
    build: |h, run| build(SpectralKind::Sfd2d, h, run),
};

/// `dropout2d`: channel dropout placed like `swd` (the paper's ImageNet D2D baseline).
pub static DROPOUT2D: MethodSpec = MethodSpec {
    name: "dropout2d",
    description: "Dropout2d placed like swd (after the convs of the deep stage): the SWD paper's D2D baseline",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: DROPOUT2D_HPARAMS,
    build: |h, run| build(SpectralKind::Dropout2d, h, run),
};

/// The five entries, in registry order.
pub static SPECS: [&MethodSpec; 5] = [&SWD, &SWD2D, &SFD, &SFD2D, &DROPOUT2D];
