//! The registry entries `sbn` and `2bn`: a [`Method`] whose `prepare` hook puts a
//! [`SpectralBatchNorm2d`] (or, for the paper's control, a second `BatchNorm2d`) after every
//! batch norm of the chosen stages.

use autograd::{Error, Result};
use layers::{BatchNorm2d, Module};

use super::{Correction, Implementation, Placement, SpectralBatchNorm2d};
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::{PAPER_CIFAR10_R18, SMALL_PROTOCOL};
use crate::registry::{Method, MethodSpec, Preset, RunInfo, Training, SMALL_DEFAULTS};

const STAGES: HparamSpec = HparamSpec {
    key: "stages",
    default: "auto",
    help: "comma-separated 1-based stages whose BNs get the layer (3,4 = SBN34, 4 = SBN4); auto = the paper's for the model",
};
const SHORTCUTS: HparamSpec = HparamSpec {
    key: "shortcuts",
    default: "true",
    help: "also after the BNs of projection shortcuts (the paper: after each BN layer)",
};
const CORRECTION: HparamSpec = HparamSpec {
    key: "correction",
    default: "samples",
    help: "n of the running variance's n/(n-1): samples = B*H*(W/2+1) (recommended) | paper = C*H*W/2 (as printed)",
};
const MOMENTUM: HparamSpec =
    HparamSpec { key: "momentum", default: "0.1", help: "weight of the newest batch in the running statistics" };
const EPS: HparamSpec = HparamSpec { key: "eps", default: "1e-5", help: "added to the spectral variance" };
const IMPLEMENTATION: HparamSpec = HparamSpec {
    key: "implementation",
    default: "fused",
    help: "fused (closed form, one op) | fft (Algorithm 1 literally with rfft2/irfft2: same values, slower)",
};

const SBN_HPARAMS: &[HparamSpec] = &[STAGES, SHORTCUTS, CORRECTION, MOMENTUM, EPS, IMPLEMENTATION];
const SECOND_BN_HPARAMS: &[HparamSpec] = &[STAGES, SHORTCUTS];

/// The presets of both entries for a placement name (`sbn`/`2bn`).
macro_rules! presets {
    ($what:literal) => {
        &[
            Preset {
                name: "small",
                about: concat!(
                    "the small reproduction protocol (methods/REPRODUCING.md: ResNet-18/0.25 on a CIFAR-10 subset), ",
                    $what,
                    "34: stages 3 and 4"
                ),
                defaults: SMALL_PROTOCOL,
                hparams: &[("stages", "3,4")],
            },
            Preset {
                name: "paper",
                about: concat!("the paper's CIFAR-10 ResNet-18 recipe (200 epochs) with ", $what, "34"),
                defaults: PAPER_CIFAR10_R18,
                hparams: &[("stages", "3,4")],
            },
            Preset {
                name: concat!($what, "34"),
                about: concat!("the paper's CIFAR-10 ResNet-18 recipe, ", $what, " after every BN of stages 3 and 4"),
                defaults: PAPER_CIFAR10_R18,
                hparams: &[("stages", "3,4")],
            },
            Preset {
                name: concat!($what, "4"),
                about: concat!(
                    "the paper's CIFAR-10 ResNet-18 recipe, ",
                    $what,
                    " after every BN of stage 4 only (its choice for harder tasks)"
                ),
                defaults: PAPER_CIFAR10_R18,
                hparams: &[("stages", "4")],
            },
        ]
    };
}

/// What goes after each selected batch norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Inserted {
    /// A [`SpectralBatchNorm2d`] with these settings.
    Sbn {
        /// Running-variance correction.
        correction: Correction,
        /// Running-statistics momentum.
        momentum: f64,
        /// Variance epsilon.
        eps: f64,
        /// Fused or literal.
        implementation: Implementation,
    },
    /// A second `BatchNorm2d` (PyTorch's defaults): the paper's "+2BN" control.
    SecondBn,
}

impl Inserted {
    /// The child name of the inserted layer (`layer3.0.bn1.sbn`, `layer3.0.bn1.bn`).
    pub fn name(&self) -> &'static str {
        match self {
            Inserted::Sbn { .. } => "sbn",
            Inserted::SecondBn => "bn",
        }
    }

    /// A fresh layer for `channels` channels.
    pub fn make(&self, channels: usize) -> Box<dyn Module> {
        match *self {
            Inserted::Sbn { correction, momentum, eps, implementation } => {
                let mut l =
                    SpectralBatchNorm2d::new(channels).with_correction(correction).with_implementation(implementation);
                l.momentum = momentum;
                l.eps = eps;
                Box::new(l)
            }
            Inserted::SecondBn => Box::new(BatchNorm2d::new(channels)),
        }
    }
}

/// The hooks of `sbn` and `2bn`: insert the layers once, before training. The inserted layers'
/// parameters (`weight`, `bias`: 1-D) get no weight decay, like batch norm's, through the
/// trainer's default groups.
pub struct SpectralNormMethod {
    /// Where (no stages: the paper's for the model, resolved in `prepare`).
    pub placement: Placement,
    /// What.
    pub inserted: Inserted,
    paths: Vec<String>,
}

impl SpectralNormMethod {
    /// The method for `placement` and `inserted`.
    pub fn new(placement: Placement, inserted: Inserted) -> SpectralNormMethod {
        SpectralNormMethod { placement, inserted, paths: Vec::new() }
    }

    /// The batch norms a layer was inserted after (after `prepare`).
    pub fn paths(&self) -> &[String] {
        &self.paths
    }
}

impl Method for SpectralNormMethod {
    fn prepare(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<()> {
        if self.placement.stages.is_empty() {
            let stages = layers::surgery::num_stages(model.as_ref());
            self.placement.stages = Placement::paper_stages(&run.model, stages, run.num_classes);
        }
        let inserted = self.inserted;
        self.paths = self.placement.apply(model.as_mut(), inserted.name(), &mut |c| Ok(inserted.make(c)))?;
        Ok(())
    }

    fn finish(&mut self, _model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        let mut lines = vec![
            ("stages".into(), format!("{:?}", self.placement.stages)),
            ("shortcut BNs".into(), self.placement.shortcuts.to_string()),
            ("layers".into(), format!("{} after {}", self.paths.len(), self.paths.join(" "))),
        ];
        if let Inserted::Sbn { correction, implementation, .. } = self.inserted {
            lines.push(("correction".into(), correction.name().into()));
            lines.push(("implementation".into(), format!("{implementation:?}")));
        }
        Ok(lines)
    }
}

/// The placement from the hyperparameters; `stages = auto` gives no stages yet (resolved in
/// `prepare` by [`Placement::paper_stages`] for the run's model).
pub fn placement_from(h: &Hparams) -> Result<Placement> {
    let stages = if h.str("stages")? == "auto" { Vec::new() } else { h.usize_list("stages")? };
    if stages.is_empty() && h.str("stages")? != "auto" {
        return Err(Error::invalid("--set", "stages is empty: name at least one stage (e.g. stages=3,4)"));
    }
    Ok(Placement { stages, shortcuts: h.bool("shortcuts")? })
}

fn build_sbn(h: &Hparams, _run: &RunInfo) -> Result<Box<dyn Method>> {
    let implementation = match h.str("implementation")? {
        "fused" => Implementation::Fused,
        "fft" => Implementation::Fft,
        s => return Err(Error::invalid("--set", format!("implementation = {s:?}; expected fused or fft"))),
    };
    let (momentum, eps) = (h.f64("momentum")?, h.f64("eps")?);
    if !(0.0..=1.0).contains(&momentum) || eps < 0.0 {
        return Err(Error::invalid("--set", format!("momentum {momentum} must be in [0, 1] and eps {eps} >= 0")));
    }
    let inserted =
        Inserted::Sbn { correction: Correction::parse(h.str("correction")?)?, momentum, eps, implementation };
    Ok(Box::new(SpectralNormMethod::new(placement_from(h)?, inserted)))
}

/// `sbn`: Spectral Batch Normalization after every BN of the chosen stages.
///
/// Defaults: ResNet-8 on the embedded Fashion-MNIST (the small defaults; SBN after the BNs of
/// its deepest stage, 7x7 maps); `--preset small` / `paper`: SBN34 on ResNet-18 (CIFAR stem),
/// the paper's placement for it; `sbn4`: stage 4 only.
pub static SBN: MethodSpec = MethodSpec {
    name: "sbn",
    description: "Spectral Batch Normalization (Cakaj et al. 2023): normalize each channel's rfft2 spectrum after BN",
    defaults: SMALL_DEFAULTS,
    presets: presets!("sbn"),
    training: Training::Required,
    hparams: SBN_HPARAMS,
    build: build_sbn,
};

/// `2bn`: the SBN paper's control, a second `BatchNorm2d` after every BN of the same stages.
pub static SECOND_BN: MethodSpec = MethodSpec {
    name: "2bn",
    description: "the SBN paper's control: a second BatchNorm2d after every BN of the chosen stages",
    defaults: SMALL_DEFAULTS,
    presets: presets!("2bn"),
    training: Training::Required,
    hparams: SECOND_BN_HPARAMS,
    build: |h, _| Ok(Box::new(SpectralNormMethod::new(placement_from(h)?, Inserted::SecondBn))),
};

/// The two entries, in registry order.
pub static SPECS: [&MethodSpec; 2] = [&SBN, &SECOND_BN];
