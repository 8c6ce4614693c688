//! [`SparseMethod`]: the lifecycle hooks every pruning and freezing method shares, dispatching
//! to its scoring rule and schedule ([`Kind`]).
//!
//! | hook | what it does |
//! |---|---|
//! | `prepare` | wraps the prunable layers as [`MaskedLayer`](super::MaskedLayer)s (freezing: re-initialized from per-layer seeds) |
//! | `phases` | one training phase; LTH: a dense phase then one phase per pruning round (schedule window from the rewind epoch) |
//! | `start_phase` | phase 0: the mask (PaI scores, FreezeNet scores, DST's random topology), or LTH's rewind snapshot of the initialization; LTH rounds: prune 20 % of the rest globally by magnitude, rewind |
//! | `after_backward` | masks gradients; RigL's mask update from the dense gradient (optimizer step skipped) |
//! | `after_step` | DSR's update; RigL stops keeping dense gradients after `T_end` |
//! | `end_epoch` | SET's update; LTH's snapshot of `θ_k` |
//! | `inference_form` | the sparse execution form (pruning methods) |
//! | `finish` | summary lines: `sparsity`, per-method details, `compact checkpoint bytes` |
//! | `state` / `load_state` | LTH's `θ_k`, DSR's threshold, counters |

use autograd::{Error, Result, Tensor};
use layers::optim::Optimizer;
use layers::{Module, ModuleExt};
use serde_json::json;

use super::allocation::{masks_from_scores, Allocation};
use super::engine::{
    apply_masks, counts, current_masks, deep_copy, mask_gradients, masked_layers, require_masked, to_f32, wrap_each,
    Prunable,
};
use super::masked::{Fixed, MaskedLayer};
use super::schedule::dsr::Dsr;
use super::schedule::imp::{imp_masks, ImpPlan, Rewind};
use super::schedule::rigl::{noise, rigl_layer_update, RiglSchedule};
use super::schedule::set::set_layer_update;
use super::schedule::{apply_updates, MaskUpdate};
use super::score::{
    balanced_sample, freezenet_scores, grasp_scores, magnitude_scores, random_scores, snip_scores, synflow_prune,
    FreezeScore, Sample,
};
use crate::registry::{Method, MethodState, Phase, PhaseContext, Progress, RunInfo};

/// The family member a [`SparseMethod`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SNIP at initialization.
    Snip,
    /// GraSP at initialization.
    Grasp,
    /// Iterative SynFlow at initialization (data-free).
    Synflow,
    /// Magnitude at initialization.
    Magnitude,
    /// Random at initialization.
    Random,
    /// Lottery tickets: iterative magnitude pruning with rewinding.
    Lth,
    /// SET (dynamic sparse training).
    Set,
    /// DSR (dynamic sparse training).
    Dsr,
    /// RigL (dynamic sparse training).
    Rigl,
    /// FreezeNet: freezing at initialization.
    FreezeNet,
}

impl Kind {
    /// The registry name.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Snip => "snip",
            Kind::Grasp => "grasp",
            Kind::Synflow => "synflow",
            Kind::Magnitude => "magnitude",
            Kind::Random => "random-prune",
            Kind::Lth => "lth",
            Kind::Set => "set",
            Kind::Dsr => "dsr",
            Kind::Rigl => "rigl",
            Kind::FreezeNet => "freezenet",
        }
    }

    /// Whether masked coordinates are zero (pruning) rather than frozen at their init.
    pub fn prunes(self) -> bool {
        self != Kind::FreezeNet
    }
}

/// RigL's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiglConfig {
    /// Initial drop fraction `α`.
    pub alpha: f64,
    /// Steps between updates `ΔT`.
    pub delta_t: usize,
    /// `T_end` as a fraction of the run's steps.
    pub end: f64,
    /// Standard deviation of the tie-breaking noise added to `|θ|` when dropping.
    pub noise: f64,
    /// Skip the optimizer step of mask-update steps (the reference's behaviour).
    pub skip_step: bool,
}

/// Everything a [`SparseMethod`] is configured with.
#[derive(Clone, Debug)]
pub struct SparseConfig {
    /// Which method.
    pub kind: Kind,
    /// The fraction of prunable coordinates kept trainable, `1 − sparsity` (FreezeNet:
    /// `1 − freezing rate`).
    pub density: f64,
    /// How the kept coordinates spread over the layers.
    pub allocation: Allocation,
    /// Which layers get masks.
    pub prunable: Prunable,
    /// Images per class of the scoring sample (SNIP, GraSP, FreezeNet).
    pub per_class: usize,
    /// GraSP's temperature.
    pub temperature: f64,
    /// SynFlow's rounds.
    pub synflow_rounds: usize,
    /// LTH's rounds.
    pub imp: ImpPlan,
    /// LTH's rewinding.
    pub rewind: Rewind,
    /// SET's drop fraction `ζ`.
    pub zeta: f64,
    /// RigL's settings.
    pub rigl: RiglConfig,
    /// DSR's state and settings.
    pub dsr: Dsr,
    /// DSR's update interval in steps.
    pub dsr_interval: usize,
    /// FreezeNet's score.
    pub freeze_score: FreezeScore,
    /// FreezeNet's 32-bit seed of the frozen weights.
    pub freeze_seed: u32,
    /// The sparse execution path of the inference form.
    pub exec: super::exec::ExecChoice,
    /// Interspace pruning: the filter basis of the KxK convolutions (`None`: standard pruning
    /// of raw weights).
    pub ip: Option<crate::ip::IpConfig>,
}

impl SparseConfig {
    /// The masked layer replacing prunable layer `index` (`module`): a filter-basis
    /// parametrization under interspace pruning where the layer has one
    /// ([`crate::ip::IpConfig::parametrization`]), the identity otherwise, with fixed part
    /// `fixed`.
    pub fn masked_layer(&self, index: usize, module: Box<dyn Module>, fixed: Fixed) -> Result<MaskedLayer> {
        match &self.ip {
            Some(ip) => ip.masked_layer(index, module, fixed),
            None => MaskedLayer::wrap(module, fixed),
        }
    }
}

/// The seed of masked layer `index` under the network seed `seed` (FreezeNet's frozen part).
pub fn layer_seed(seed: u32, index: usize) -> u64 {
    u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64 + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// A seed for random draws at step or epoch `at` of run seed `seed` (deterministic, so a resumed
/// run draws the same).
fn draw_seed(seed: u64, tag: u64, at: usize) -> u64 {
    crate::trainer::epoch_seed(seed ^ tag, at)
}

/// The hooks of a pruning or freezing method (see the [module docs](self)).
pub struct SparseMethod {
    /// The configuration.
    pub cfg: SparseConfig,
    run: RunInfo,
    rewind_to: Vec<(String, Tensor)>,
    rigl_updates: usize,
    dsr_updates: usize,
    set_updates: usize,
    exec: super::exec::ExecCache,
}

const REWIND: &str = "rewind.";

impl SparseMethod {
    /// The method for `cfg` on `run`.
    pub fn new(cfg: SparseConfig, run: &RunInfo) -> SparseMethod {
        SparseMethod {
            cfg,
            run: run.clone(),
            rewind_to: Vec::new(),
            rigl_updates: 0,
            dsr_updates: 0,
            set_updates: 0,
            exec: Default::default(),
        }
    }

    /// The rewind point `θ_k` saved so far (LTH), by state-dict name.
    pub fn rewind_point(&self) -> &[(String, Tensor)] {
        &self.rewind_to
    }

    fn total_steps(&self) -> usize {
        self.run.epochs * self.run.steps_per_epoch
    }

    /// RigL's schedule for this run.
    pub fn rigl_schedule(&self) -> RiglSchedule {
        let r = self.cfg.rigl;
        RiglSchedule { alpha: r.alpha, delta_t: r.delta_t, t_end: (r.end * self.total_steps() as f64).round() as usize }
    }

    fn density_masks(&self, model: &dyn Module, scores: &[Vec<f64>]) -> Result<Vec<Vec<f32>>> {
        let geoms: Vec<_> = require_masked(model)?.iter().map(|(_, l)| l.geometry()).collect();
        masks_from_scores(self.cfg.allocation, scores, &geoms, self.cfg.density)
    }

    fn sample(&self, ctx: &PhaseContext<'_>) -> Result<Sample> {
        balanced_sample(ctx, self.cfg.per_class)
    }

    fn start(&mut self, model: &dyn Module, ctx: &PhaseContext<'_>) -> Result<()> {
        let scores = match self.cfg.kind {
            Kind::Snip => snip_scores(model, &[self.sample(ctx)?])?,
            Kind::Grasp => {
                let (x, y) = self.sample(ctx)?;
                let n = x.shape()[0];
                let halves = if n >= 2 {
                    vec![
                        (x.narrow(0, 0, n / 2)?, y.narrow(0, 0, n / 2)?),
                        (x.narrow(0, n / 2, n - n / 2)?, y.narrow(0, n / 2, n - n / 2)?),
                    ]
                } else {
                    vec![(x, y)]
                };
                grasp_scores(model, &halves, self.cfg.temperature)?
            }
            Kind::Synflow => {
                if self.cfg.allocation != Allocation::Global {
                    return Err(Error::invalid("synflow", "iterative SynFlow prunes with a global top-k only"));
                }
                return synflow_prune(model, self.run.input_shape, self.cfg.density, self.cfg.synflow_rounds);
            }
            Kind::Magnitude => magnitude_scores(model)?,
            Kind::Random | Kind::Set | Kind::Dsr | Kind::Rigl => random_scores(model, layers::rng::next_seed())?,
            Kind::FreezeNet => freezenet_scores(model, &[self.sample(ctx)?], self.cfg.freeze_score)?,
            Kind::Lth => {
                if self.cfg.rewind == Rewind::Epoch(0) {
                    self.rewind_to = snapshot(model)?;
                }
                return Ok(());
            }
        };
        let masks = self.density_masks(model, &scores)?;
        apply_masks(model, &masks, None)
    }

    fn lth_round(&mut self, model: &dyn Module, round: usize) -> Result<()> {
        let c = counts(model)?;
        let keep = self.cfg.imp.keep(round, c.active(), c.total());
        let values: Vec<Vec<f32>> =
            masked_layers(model).iter().map(|(_, l)| to_f32(&l.values().leaf())).collect::<Result<_>>()?;
        let masks = imp_masks(&values, &current_masks(model)?, keep);
        if let Rewind::Epoch(_) = self.cfg.rewind {
            if self.rewind_to.is_empty() {
                return Err(Error::invalid("lth", "no rewind point was saved in the dense phase"));
            }
            restore(model, &self.rewind_to)?;
        }
        apply_masks(model, &masks, None)
    }

    fn rigl_update(&mut self, model: &dyn Module, opt: &mut dyn Optimizer, t: usize) -> Result<()> {
        let fraction = self.rigl_schedule().drop_fraction(t);
        let mut updates = Vec::new();
        for (l, (path, layer)) in require_masked(model)?.into_iter().enumerate() {
            let values = to_f32(&layer.values().leaf())?;
            let mask = to_f32(&layer.mask())?;
            let grad = layer
                .dense_grad()
                .ok_or_else(|| Error::invalid("rigl", format!("{path}: no dense gradient at mask-update step {t}")))?
                .to_f64_vec()?;
            let e = noise(values.len(), self.cfg.rigl.noise, draw_seed(self.run.seed, 0x5249_474c + l as u64, t))?;
            updates.push(rigl_layer_update(&values, &mask, &grad, fraction, &e));
        }
        apply_updates(model, &updates, Some(opt))?;
        self.rigl_updates += 1;
        if self.cfg.rigl.skip_step {
            model.zero_grad();
        }
        Ok(())
    }

    fn set_update(&mut self, model: &dyn Module, opt: &mut dyn Optimizer, epoch: usize) -> Result<()> {
        let mut updates = Vec::new();
        for (l, (_, layer)) in require_masked(model)?.into_iter().enumerate() {
            let seed = draw_seed(self.run.seed, 0x5345_5400 + l as u64, epoch);
            updates.push(set_layer_update(
                &to_f32(&layer.values().leaf())?,
                &to_f32(&layer.mask())?,
                self.cfg.zeta,
                seed,
            )?);
        }
        apply_updates(model, &updates, Some(opt))?;
        self.set_updates += 1;
        Ok(())
    }

    fn dsr_update(&mut self, model: &dyn Module, opt: &mut dyn Optimizer, t: usize) -> Result<()> {
        let layers = require_masked(model)?;
        let values: Vec<Vec<f32>> = layers.iter().map(|(_, l)| to_f32(&l.values().leaf())).collect::<Result<_>>()?;
        let masks = current_masks(model)?;
        let updates: Vec<MaskUpdate> =
            self.cfg.dsr.update(&values, &masks, draw_seed(self.run.seed, 0x4453_5200, t))?;
        apply_updates(model, &updates, Some(opt))?;
        self.dsr_updates += 1;
        Ok(())
    }
}

/// Copies of every parameter and buffer of `model` except the masks (what a rewind restores).
pub fn snapshot(model: &dyn Module) -> Result<Vec<(String, Tensor)>> {
    model
        .state_dict()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("weight_mask"))
        .map(|(n, t)| Ok((n, deep_copy(&t)?)))
        .collect()
}

/// Writes a [`snapshot`] back into `model` (every name must exist).
pub fn restore(model: &dyn Module, snap: &[(String, Tensor)]) -> Result<()> {
    let params = model.named_parameters();
    let buffers = model.named_buffers();
    for (name, t) in snap {
        if let Some((_, p)) = params.iter().find(|(n, _)| n == name) {
            p.set_data(t)?;
        } else if let Some((_, b)) = buffers.iter().find(|(n, _)| n == name) {
            b.set_data(t)?;
        } else {
            return Err(Error::invalid("lth", format!("the rewind point has {name:?}, which the model lacks")));
        }
    }
    Ok(())
}

impl Method for SparseMethod {
    fn prepare(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<()> {
        let seed = self.cfg.freeze_seed;
        let freezing = !self.cfg.kind.prunes();
        if freezing && self.cfg.ip.is_some() {
            return Err(Error::invalid("freezenet", "freezing has no interspace (filter basis) form"));
        }
        let cfg = &self.cfg;
        wrap_each(model.as_mut(), &cfg.prunable, &mut |i, _, old| {
            cfg.masked_layer(i, old, if freezing { Fixed::Seeded(layer_seed(seed, i)) } else { Fixed::Zero })
        })?;
        if self.cfg.kind == Kind::Rigl {
            for (_, l) in masked_layers(model.as_ref()) {
                l.keep_dense_grad(true);
            }
        }
        Ok(())
    }

    fn phases(&self, run: &RunInfo) -> Vec<Phase> {
        if run.epochs == 0 {
            return Vec::new();
        }
        let mut phases = vec![Phase::new(if self.cfg.kind == Kind::Lth { "dense" } else { "train" }, run.epochs)];
        if self.cfg.kind == Kind::Lth {
            let k = self.cfg.rewind.epoch();
            for r in 1..=self.cfg.imp.rounds {
                phases.push(Phase::new(&format!("round-{r}"), run.epochs - k).schedule_window(run.epochs, k));
            }
        }
        phases
    }

    fn start_phase(&mut self, model: &mut Box<dyn Module>, ctx: &PhaseContext<'_>) -> Result<()> {
        if ctx.at.phase == 0 {
            self.start(model.as_ref(), ctx)
        } else {
            self.lth_round(model.as_ref(), ctx.at.phase)
        }
    }

    fn after_backward(&mut self, model: &dyn Module, opt: &mut dyn Optimizer, at: Progress) -> Result<()> {
        mask_gradients(model)?;
        if self.cfg.kind == Kind::Rigl && self.rigl_schedule().is_update(at.step) {
            self.rigl_update(model, opt, at.step)?;
        }
        Ok(())
    }

    fn after_step(&mut self, model: &mut Box<dyn Module>, opt: &mut dyn Optimizer, at: Progress) -> Result<()> {
        match self.cfg.kind {
            Kind::Dsr if self.cfg.dsr_interval > 0 && at.step.is_multiple_of(self.cfg.dsr_interval) => {
                self.dsr_update(model.as_ref(), opt, at.step)
            }
            Kind::Rigl if at.step >= self.rigl_schedule().t_end => {
                for (_, l) in masked_layers(model.as_ref()) {
                    l.keep_dense_grad(false);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn end_epoch(&mut self, model: &mut Box<dyn Module>, opt: &mut dyn Optimizer, at: Progress) -> Result<()> {
        match self.cfg.kind {
            Kind::Set if at.epoch + 1 < self.run.epochs => self.set_update(model.as_ref(), opt, at.epoch),
            Kind::Lth if at.phase == 0 && self.cfg.rewind == Rewind::Epoch(at.phase_epoch + 1) => {
                self.rewind_to = snapshot(model.as_ref())?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        if !self.cfg.kind.prunes() {
            return Ok(None);
        }
        self.exec.form(model, run, &self.cfg)
    }

    fn finish(&mut self, model: &mut Box<dyn Module>, _run: &RunInfo) -> Result<Vec<(String, String)>> {
        let c = counts(model.as_ref())?;
        let mut lines = vec![
            ("sparsity".to_string(), format!("{:.4}", c.sparsity())),
            (
                if self.cfg.kind.prunes() { "active weights" } else { "trained weights" }.to_string(),
                format!("{} of {} prunable ({} layers)", c.active(), c.total(), c.layers.len()),
            ),
            ("allocation".to_string(), self.cfg.allocation.name().to_string()),
        ];
        if let Some(ip) = &self.cfg.ip {
            lines.push(("filter basis".into(), ip.describe()));
        }
        match self.cfg.kind {
            Kind::Lth => {
                lines.push(("rounds".into(), format!("{} (rate {:.3})", self.cfg.imp.rounds, self.cfg.imp.rate)));
                lines.push(("rewind".into(), self.cfg.rewind.describe()));
            }
            Kind::Rigl => lines.push(("mask updates".into(), self.rigl_updates.to_string())),
            Kind::Set => lines.push(("mask updates".into(), self.set_updates.to_string())),
            Kind::Dsr => {
                lines.push(("mask updates".into(), self.dsr_updates.to_string()));
                lines.push(("dsr threshold".into(), format!("{:.3e}", self.cfg.dsr.threshold)));
            }
            Kind::FreezeNet => {
                lines.push(("freezing rate".into(), format!("{:.4}", c.sparsity())));
                lines.push(("freeze seed".into(), self.cfg.freeze_seed.to_string()));
                lines.push(("score".into(), self.cfg.freeze_score.name().into()));
            }
            _ => {}
        }
        lines.extend(super::compact::summary_lines(model.as_ref())?);
        lines.extend(self.exec.summary_lines());
        Ok(lines)
    }

    fn state(&self) -> Result<MethodState> {
        Ok(MethodState {
            meta: json!({
                "rigl_updates": self.rigl_updates,
                "set_updates": self.set_updates,
                "dsr_updates": self.dsr_updates,
                "dsr": self.cfg.dsr,
            }),
            tensors: self.rewind_to.iter().map(|(n, t)| (format!("{REWIND}{n}"), t.clone())).collect(),
        })
    }

    fn load_state(&mut self, s: &MethodState) -> Result<()> {
        let count = |k: &str| s.meta.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        self.rigl_updates = count("rigl_updates");
        self.set_updates = count("set_updates");
        self.dsr_updates = count("dsr_updates");
        if let Some(d) = s.meta.get("dsr") {
            self.cfg.dsr = serde_json::from_value(d.clone()).map_err(|e| Error::invalid("dsr", e.to_string()))?;
        }
        self.rewind_to =
            s.tensors.iter().filter_map(|(n, t)| n.strip_prefix(REWIND).map(|k| (k.to_string(), t.clone()))).collect();
        Ok(())
    }
}
