//! The registry entries `sr`, `dropblock`, `se` and `cbam`: hyperparameters that default to the
//! paper's choices for the run's model (`auto`), and one [`Method`] that inserts the regularizer
//! and the SR block in `prepare`, runs DropBlock's schedule after every step, and, with
//! `ablate=remove`, evaluates the trained model without its SR block.

use autograd::{Device, Error, Result};
use layers::models::{self, ModelOptions};
use layers::state_dict::{load_state_dict, Strictness};
use layers::surgery::{num_stages, Select};
use layers::{rng, DropBlock2d, LinearKeepSchedule, Module, ModuleExt};

use super::block::{Activation, SqueezeRemember};
use super::placement::{insert_at_stage_output, remove_inserted};
use super::recipe::{paper_choice, SrSettings};
use super::regularizer::{deep_stages, default_block_size, Regularizer, RegularizerKind};
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::{PAPER_CIFAR10_RESNET18, SMALL};
use crate::registry::{
    Method, MethodSpec, MethodState, PhaseContext, Preset, Progress, RunInfo, Training, SMALL_DEFAULTS,
};

/// `small` (the reproduction protocol: ResNet-18/0.25 on CIFAR-10, where the paper's ResNet-18
/// CIFAR-10 choices apply) and `paper` (the paper's CIFAR-10 ResNet-18 recipe). Every `auto`
/// resolves to the paper's value for the run's model, dataset and regularizer.
const PRESETS: &[Preset] = &[SMALL, PAPER_CIFAR10_RESNET18];

/// The name of the SR block in the model (`layer4.sr`).
pub const BLOCK_NAME: &str = "sr";

const STAGE: HparamSpec = HparamSpec {
    key: "stage",
    default: "auto",
    help: "M: the stage (1-based) after whose output the SR block sits; auto = the paper's choice for the model",
};
const P: HparamSpec = HparamSpec {
    key: "p",
    default: "auto",
    help: "P: number of memory blocks; auto = the paper's choice for the model",
};
const U: HparamSpec = HparamSpec {
    key: "u",
    default: "auto",
    help: "U: hidden units of the FCN; auto = 8 (CIFAR-sized inputs) or 16 (ImageNet)",
};
const ACT: HparamSpec = HparamSpec {
    key: "act",
    default: "relu",
    help: "nonlinearity between the FCN's layers: relu | none | tanh | sigmoid | gelu",
};
const REGULARIZER: HparamSpec = HparamSpec {
    key: "regularizer",
    default: "none",
    help: "combined with SR: none | d (dropout before the classifier) | d2d | db (DropBlock) | se | cbam",
};
const DROP_P: HparamSpec =
    HparamSpec { key: "drop_p", default: "auto", help: "drop probability of d / d2d; auto = 0.2 for d, 0.1 for d2d" };
const REG_STAGES: HparamSpec = HparamSpec {
    key: "reg_stages",
    default: "auto",
    help: "stages whose outputs get d2d / db (comma list); auto = 3,4 (those the model has)",
};
const STAGES: HparamSpec = HparamSpec {
    key: "stages",
    default: "auto",
    help: "stages whose outputs get DropBlock (comma list); auto = 3,4 (those the model has)",
};
const BLOCK_SIZE: HparamSpec = HparamSpec {
    key: "block_size",
    default: "auto",
    help: "DropBlock block size; auto = 3 for CIFAR-sized inputs, 7 for ImageNet-sized ones",
};
const KEEP_PROB: HparamSpec = HparamSpec {
    key: "keep_prob",
    default: "0.9",
    help: "DropBlock's final keep probability, reached linearly from 1 over the run",
};
const REDUCTION: HparamSpec = HparamSpec { key: "reduction", default: "16", help: "SE / CBAM reduction ratio r" };
const BLOCK: HparamSpec = HparamSpec {
    key: "block",
    default: "on",
    help: "on | off: off trains the regularizer alone, without the SR block (its matched baseline)",
};
const ABLATE: HparamSpec = HparamSpec {
    key: "ablate",
    default: "none",
    help: "none | remove: evaluate a trained run with its SR block removed (--eval-only only; see methods::sr::evaluate_without_block)",
};

const SR_HPARAMS: &[HparamSpec] =
    &[STAGE, P, U, ACT, REGULARIZER, DROP_P, REG_STAGES, BLOCK_SIZE, KEEP_PROB, REDUCTION, BLOCK, ABLATE];
const DROPBLOCK_HPARAMS: &[HparamSpec] = &[STAGES, BLOCK_SIZE, KEEP_PROB];
const ATTENTION_HPARAMS: &[HparamSpec] = &[REDUCTION];

/// The hyperparameters of the four entries, parsed (`None`: `auto`, resolved in `prepare`
/// against the model).
#[derive(Clone, Debug, PartialEq)]
pub struct SrOptions {
    /// Whether the SR block is inserted.
    pub block: bool,
    /// `M`.
    pub stage: Option<usize>,
    /// `P`.
    pub blocks: Option<usize>,
    /// `U`.
    pub hidden: Option<usize>,
    /// `φ`.
    pub activation: Activation,
    /// The regularizer.
    pub regularizer: RegularizerKind,
    /// D / D2D drop probability.
    pub drop_p: Option<f64>,
    /// D2D / DropBlock stages.
    pub reg_stages: Option<Vec<usize>>,
    /// DropBlock block size.
    pub block_size: Option<usize>,
    /// DropBlock's final keep probability.
    pub keep_prob: f64,
    /// SE / CBAM reduction ratio.
    pub reduction: usize,
    /// Evaluate without the SR block.
    pub ablate: bool,
}

impl SrOptions {
    /// Parses the hyperparameters of an entry with regularizer `kind` (the `regularizer` key,
    /// where the entry declares it, overrides it) and SR block or not (`block` key likewise).
    pub fn parse(h: &Hparams, kind: RegularizerKind, block: bool) -> Result<SrOptions> {
        let has = |key: &str| h.values().get(key).is_some_and(|v| v != "auto");
        let usize_opt = |key: &str| if has(key) { h.usize(key).map(Some) } else { Ok(None) };
        let block = match h.values().get("block").map(String::as_str) {
            None => block,
            Some("on") => true,
            Some("off") => false,
            Some(v) => return Err(Error::invalid("--set", format!("block = {v:?}; expected on or off"))),
        };
        let ablate = match h.values().get("ablate").map(String::as_str) {
            None | Some("none") => false,
            Some("remove") => true,
            Some(v) => return Err(Error::invalid("--set", format!("ablate = {v:?}; expected none or remove"))),
        };
        let stages_key = if h.values().contains_key("reg_stages") { "reg_stages" } else { "stages" };
        let o = SrOptions {
            block,
            stage: usize_opt("stage")?,
            blocks: usize_opt("p")?,
            hidden: usize_opt("u")?,
            activation: Activation::parse(h.values().get("act").map_or("relu", String::as_str))?,
            regularizer: match h.values().get("regularizer") {
                Some(r) => RegularizerKind::parse(r)?,
                None => kind,
            },
            drop_p: if has("drop_p") { Some(h.f64("drop_p")?) } else { None },
            reg_stages: if has(stages_key) { Some(h.usize_list(stages_key)?) } else { None },
            block_size: usize_opt("block_size")?,
            keep_prob: if has("keep_prob") { h.f64("keep_prob")? } else { 0.9 },
            reduction: usize_opt("reduction")?.unwrap_or(16),
            ablate,
        };
        if o.ablate && !o.block {
            return Err(Error::invalid("--set", "ablate=remove needs the SR block (block=on)"));
        }
        if [o.blocks, o.hidden, o.stage, o.block_size, Some(o.reduction)].contains(&Some(0)) {
            return Err(Error::invalid("--set", "stage, p, u, block_size and reduction must be at least 1"));
        }
        if let Some(p) = o.drop_p {
            layers::Dropout::new(p)?;
        }
        DropBlock2d::new(o.block_size.unwrap_or(1), o.keep_prob)?;
        Ok(o)
    }
}

/// What `prepare` built: the regularizer's modules and the SR block's place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Structure {
    /// The regularizer as resolved for the model.
    pub regularizer: Option<Regularizer>,
    /// Paths of the regularizer's modules.
    pub inserted: Vec<String>,
    /// The SR block's settings, its stage-output path and `[C, H, W]`, and where `M`, `P`, `U`
    /// came from.
    pub block: Option<(SrSettings, String, [usize; 3], &'static str)>,
    /// Parameters of the model (with the regularizer) before the SR block was inserted.
    pub params_without_block: usize,
}

/// The hooks of `sr`, `dropblock`, `se` and `cbam`.
pub struct SrMethod {
    /// The parsed hyperparameters.
    pub options: SrOptions,
    /// What `prepare` built.
    pub structure: Structure,
    schedule: Option<LinearKeepSchedule>,
    step: usize,
}

impl SrMethod {
    /// The method for `options`.
    pub fn new(options: SrOptions) -> SrMethod {
        SrMethod { options, structure: Structure::default(), schedule: None, step: 0 }
    }

    /// Inserts the regularizer and the SR block into `model` as the options say, for the run
    /// `run`, and describes what it did.
    pub fn build_structure(&self, model: &mut dyn Module, run: &RunInfo) -> Result<Structure> {
        let o = &self.options;
        let side = run.input_shape[1].max(run.input_shape[2]);
        let kind = o.regularizer;
        let regularizer = Regularizer {
            kind,
            p: o.drop_p.unwrap_or(if kind == RegularizerKind::Dropout { 0.2 } else { 0.1 }),
            stages: o.reg_stages.clone().unwrap_or_else(|| deep_stages(model)),
            block_size: o.block_size.unwrap_or_else(|| default_block_size(side)),
            keep_prob: o.keep_prob,
            reduction: o.reduction,
        };
        let inserted = regularizer.apply(model)?;
        let params_without_block = model.num_parameters();
        let block = if o.block {
            let choice = paper_choice(&run.model, run.num_classes, side, kind, num_stages(model));
            let settings = SrSettings {
                stage: o.stage.unwrap_or(choice.stage),
                blocks: o.blocks.unwrap_or(choice.blocks),
                hidden: o.hidden.unwrap_or(choice.hidden),
                activation: o.activation,
            };
            let (path, shape) = insert_at_stage_output(model, settings.stage, BLOCK_NAME, run.input_shape, |shape| {
                Ok(Box::new(SqueezeRemember::new(shape, settings.blocks, settings.hidden, settings.activation)?))
            })?;
            Some((settings, path, shape, choice.source))
        } else {
            None
        };
        let regularizer = (kind != RegularizerKind::None).then_some(regularizer);
        Ok(Structure { regularizer, inserted, block, params_without_block })
    }

    /// The path of the SR block (`layer4.sr`), if there is one.
    pub fn block_path(&self) -> Option<String> {
        self.structure.block.as_ref().map(|(_, at, _, _)| format!("{at}.{BLOCK_NAME}"))
    }

    fn set_keep(&self, model: &dyn Module, step: usize) -> Result<()> {
        if let Some(s) = &self.schedule {
            for path in Select::all().of_type::<DropBlock2d>().paths(model) {
                let m = model.get_module(&path).expect("selected");
                layers::surgery::unwrapped(m)
                    .downcast_ref::<DropBlock2d>()
                    .expect("selected by type")
                    .set_keep_prob(s.keep_prob(step))?;
            }
        }
        Ok(())
    }

    /// The trained `model` with its SR block removed (the identity in its place): a fresh model
    /// with the same structure, the block taken out, and every other weight copied.
    fn without_block(&self, model: &dyn Module, run: &RunInfo) -> Result<Box<dyn Module>> {
        let (Some(path), Some((_, at, _, _))) = (self.block_path(), &self.structure.block) else {
            return Err(Error::invalid("ablate=remove", "this run has no SR block to remove"));
        };
        let opts = ModelOptions::new(run.num_classes, run.input_shape[0], run.seed).width(run.width);
        let mut form = rng::with_seed(run.seed, || -> Result<Box<dyn Module>> {
            let mut form = models::build_with(&run.model, &opts)?;
            self.build_structure(form.as_mut(), run)?;
            Ok(form)
        })?;
        remove_inserted(form.as_mut(), at, BLOCK_NAME)?;
        let prefix = format!("{path}.");
        let weights = model
            .state_dict()
            .into_iter()
            .filter(|(n, _)| !n.starts_with(&prefix))
            .map(|(n, t)| Ok((n, t.to_device(Device::Cpu)?)))
            .collect::<Result<Vec<_>>>()?;
        load_state_dict(form.as_ref(), &weights, Strictness::Strict)?;
        Ok(form)
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Method for SrMethod {
    fn prepare(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<()> {
        self.structure = self.build_structure(model.as_mut(), run)?;
        if let Some(r) = &self.structure.regularizer {
            if r.kind == RegularizerKind::DropBlock {
                let steps = run.epochs * run.steps_per_epoch;
                self.schedule = Some(LinearKeepSchedule { target: r.keep_prob, steps });
            }
        }
        self.set_keep(model.as_ref(), 0)
    }

    fn start_phase(&mut self, model: &mut Box<dyn Module>, ctx: &PhaseContext<'_>) -> Result<()> {
        if self.options.ablate {
            return Err(Error::invalid(
                "ablate=remove",
                "evaluates a trained run without its SR block: use it with --eval-only (or methods::sr::evaluate_without_block), not to train",
            ));
        }
        self.step = ctx.at.step;
        self.set_keep(model.as_ref(), self.step)
    }

    fn restore_phase(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo, _phase: usize) -> Result<()> {
        self.set_keep(model.as_ref(), self.step)
    }

    fn after_step(
        &mut self,
        model: &mut Box<dyn Module>,
        _opt: &mut dyn layers::optim::Optimizer,
        at: Progress,
    ) -> Result<()> {
        self.step = at.step;
        self.set_keep(model.as_ref(), at.step)
    }

    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        if self.options.ablate {
            return self.without_block(model, run).map(Some);
        }
        Ok(None)
    }

    fn finish(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        let s = &self.structure;
        let mut lines = Vec::new();
        if let Some(r) = &s.regularizer {
            let what = match r.kind {
                RegularizerKind::Dropout | RegularizerKind::Dropout2d => format!("{} p {}", r.kind.name(), r.p),
                RegularizerKind::DropBlock => format!(
                    "db block {} keep {} (linear from 1 over {} steps)",
                    r.block_size,
                    r.keep_prob,
                    self.schedule.map_or(0, |s| s.steps)
                ),
                _ => format!("{} r {}", r.kind.name(), r.reduction),
            };
            lines.push((
                "regularizer".into(),
                format!("{what} at {} module(s): {}", s.inserted.len(), s.inserted.join(" ")),
            ));
        }
        if let (Some((set, _, shape, source)), Some(path)) = (&s.block, self.block_path()) {
            let [c, h, w] = *shape;
            lines.push((
                "sr block".into(),
                format!(
                    "{path} on {c}x{h}x{w} maps: M {}, P {}, U {}, {} ({source})",
                    set.stage,
                    set.blocks,
                    set.hidden,
                    set.activation.name()
                ),
            ));
            let added = model.num_parameters() - s.params_without_block;
            let formula = SqueezeRemember::overhead(*shape, set.blocks, set.hidden);
            let pct = |n: usize| 100.0 * n as f64 / s.params_without_block as f64;
            lines.push((
                "sr overhead".into(),
                format!(
                    "+{} parameters (+{:.2}%); the paper's formula without biases: +{} (+{:.2}%)",
                    thousands(added),
                    pct(added),
                    thousands(formula),
                    pct(formula)
                ),
            ));
            if let Some(block) = model.get_module(&path).and_then(|m| m.downcast_ref::<SqueezeRemember>()) {
                let q = block.memory.leaf().to_f64_vec()?;
                let per = q.len() / set.blocks;
                let norms: Vec<String> =
                    q.chunks(per).map(|b| format!("{:.3}", b.iter().map(|v| v * v).sum::<f64>().sqrt())).collect();
                lines.push(("sr memory norms".into(), norms.join(" ")));
            }
        }
        Ok(lines)
    }

    fn state(&self) -> Result<MethodState> {
        let meta =
            if self.schedule.is_some() { serde_json::json!({ "step": self.step }) } else { serde_json::Value::Null };
        Ok(MethodState { meta, tensors: vec![] })
    }

    fn load_state(&mut self, state: &MethodState) -> Result<()> {
        if self.schedule.is_some() {
            self.step = state.meta.get("step").and_then(|v| v.as_u64()).ok_or_else(|| {
                Error::invalid("dropblock", format!("the saved state has no step count: {}", state.meta))
            })? as usize;
        }
        Ok(())
    }
}

fn build(h: &Hparams, kind: RegularizerKind, block: bool) -> Result<Box<dyn Method>> {
    Ok(Box::new(SrMethod::new(SrOptions::parse(h, kind, block)?)))
}

/// `sr`: the Squeeze-and-Remember block after stage `M`, with an optional regularizer.
///
/// Defaults: ResNet-8 on the embedded Fashion-MNIST (the small defaults); `auto` gives the
/// paper's `(M, P)` for the run's model, dataset and regularizer where it reports them, else
/// `M = 3`, `P = 4`; `U = 8`.
pub static SR: MethodSpec = MethodSpec {
    name: "sr",
    description: "Squeeze-and-Remember (Cakaj et al. 2024): a learned memory mixed in after stage M; --set regularizer=d|d2d|db|se|cbam",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: SR_HPARAMS,
    build: |h, _| build(h, RegularizerKind::None, true),
};

/// `dropblock`: DropBlock on the outputs of stages 3 and 4 (block 3 on CIFAR-sized inputs, 7 on
/// ImageNet-sized ones; keep probability linearly from 1 to 0.9 over the run).
pub static DROPBLOCK: MethodSpec = MethodSpec {
    name: "dropblock",
    description:
        "DropBlock (Ghiasi et al. 2018) on stage 3/4 outputs, keep 1 -> 0.9 linearly: the SR paper's DB baseline",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: DROPBLOCK_HPARAMS,
    build: |h, _| build(h, RegularizerKind::DropBlock, false),
};

/// `se`: squeeze-and-excitation (r = 16) in every residual branch, before the addition.
pub static SE: MethodSpec = MethodSpec {
    name: "se",
    description: "Squeeze-and-excitation (Hu et al. 2018, r 16) in every residual branch: the SR paper's SE baseline",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: ATTENTION_HPARAMS,
    build: |h, _| build(h, RegularizerKind::Se, false),
};

/// `cbam`: CBAM (r = 16, 7x7 spatial kernel) in every residual branch, before the addition.
pub static CBAM: MethodSpec = MethodSpec {
    name: "cbam",
    description: "CBAM (Woo et al. 2018, r 16, 7x7) in every residual branch: the SR paper's CBAM baseline",
    defaults: SMALL_DEFAULTS,
    presets: PRESETS,
    training: Training::Required,
    hparams: ATTENTION_HPARAMS,
    build: |h, _| build(h, RegularizerKind::Cbam, false),
};

/// The four entries, in registry order.
pub static SPECS: [&MethodSpec; 4] = [&SR, &DROPBLOCK, &SE, &CBAM];
