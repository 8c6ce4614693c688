//! The registry entries `snip`, `grasp`, `synflow`, `magnitude`, `random-prune`, `lth`, `set`,
//! `dsr`, `rigl` and `freezenet`: their hyperparameters (`--set key=value`) with the papers'
//! defaults, and their presets.

use autograd::{Error, Result};

use super::allocation::Allocation;
use super::engine::Prunable;
use super::exec::ExecChoice;
use super::method::{Kind, RiglConfig, SparseConfig, SparseMethod};
use super::schedule::dsr::Dsr;
use super::schedule::imp::{ImpPlan, Rewind};
use super::score::{FreezeScore, GRASP_TEMPERATURE};
use crate::hparams::{HparamSpec, Hparams};
use crate::presets::SMALL;
use crate::registry::{Defaults, Method, MethodSpec, Preset, RunInfo, Training, SMALL_DEFAULTS};

/// The CIFAR-10 recipe of the pruning-at-initialization papers' reference code
/// (`ganguli-lab/Synaptic-Flow`): ResNet-20, batch 128, SGD with momentum 0.9, learning rate 0.1
/// divided by 10 at epochs 80 and 120, weight decay 1e-4, 160 epochs (values recalled from the
/// repository's defaults, not checked here).
pub const PAPER_CIFAR10_R20: Defaults = Defaults {
    model: "resnet20",
    width: 1.0,
    dataset: "cifar10",
    train_limit: None,
    val_fraction: 0.1,
    test_every: 1,
    epochs: 160,
    batch_size: 128,
    optimizer: "sgd",
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 1e-4,
    schedule: "multistep:80,120:0.1",
};

/// `--preset paper`: [`PAPER_CIFAR10_R20`].
pub const PAPER: Preset = Preset {
    name: "paper",
    about: "the PaI papers' CIFAR-10 recipe: ResNet-20, 160 epochs, lr 0.1 x0.1 at 80/120, wd 1e-4",
    defaults: PAPER_CIFAR10_R20,
    hparams: &[],
};

pub(crate) const PRESETS: &[Preset] = &[SMALL, PAPER];

const fn hp(key: &'static str, default: &'static str, help: &'static str) -> HparamSpec {
    HparamSpec { key, default, help }
}

pub(crate) const SPARSITY: HparamSpec =
    hp("sparsity", "0.9", "fraction of the prunable weights removed (0.9: 10 % kept)");
pub(crate) const LAYERS: HparamSpec =
    hp("layers", "all", "prunable layers: all | no-first | no-last | no-first-last | ;-separated path globs");
pub(crate) const ALLOC_GLOBAL: HparamSpec =
    hp("allocation", "global", "global top-k, or per-layer densities: uniform | er | erk");
pub(crate) const ALLOC_ER: HparamSpec = hp("allocation", "er", "initial per-layer densities: uniform | er | erk");
pub(crate) const ALLOC_ERK: HparamSpec = hp("allocation", "erk", "per-layer densities: uniform | er | erk");
pub(crate) const ALLOC_UNIFORM: HparamSpec =
    hp("allocation", "uniform", "initial per-layer densities: uniform | er | erk");
pub(crate) const PER_CLASS: HparamSpec = hp("score_per_class", "10", "images per class in the scoring sample");
pub(crate) const EXEC: HparamSpec =
    hp("sparse_exec", "auto", "inference form on sparse kernels: auto (measured per layer) | always | never");
pub(crate) const TEMPERATURE: HparamSpec =
    hp("temperature", "200", "GraSP: the logits are divided by this temperature");
pub(crate) const SYNFLOW_ROUNDS: HparamSpec = hp("rounds", "100", "SynFlow: iterative pruning rounds");
pub(crate) const LTH_ROUNDS: HparamSpec =
    hp("rounds", "auto", "LTH: pruning rounds (auto: as many as the rate needs; a number derives the rate)");
pub(crate) const LTH_RATE: HparamSpec = hp("rate", "0.2", "LTH: fraction of the remaining weights pruned per round");
pub(crate) const REWIND: HparamSpec =
    hp("rewind", "auto", "LTH: init | auto (5 % of training) | epoch:K (weights+LR) | lr[:K] (LR rewinding only)");
pub(crate) const ZETA: HparamSpec =
    hp("zeta", "0.3", "SET: fraction of each layer's active weights replaced per epoch");
pub(crate) const ALPHA: HparamSpec = hp("alpha", "0.3", "RigL: initial drop fraction of the cosine schedule");
pub(crate) const DELTA_T: HparamSpec = hp("delta_t", "100", "RigL: steps between mask updates");
pub(crate) const T_END: HparamSpec = hp("t_end", "0.75", "RigL: mask updates stop at this fraction of training");
pub(crate) const NOISE: HparamSpec =
    hp("noise", "1e-5", "RigL: std of the tie-breaking noise added to |w| when dropping");
pub(crate) const SKIP_STEP: HparamSpec = hp("skip_step", "true", "RigL: skip the optimizer step of mask-update steps");
pub(crate) const DSR_INTERVAL: HparamSpec = hp("interval", "100", "DSR: steps between reallocations");
const DSR_H0: HparamSpec = hp("h0", "0.001", "DSR: initial magnitude threshold H");
pub(crate) const DSR_NP: HparamSpec =
    hp("np", "0.1", "DSR: target pruned per reallocation, as a fraction of the active weights");
pub(crate) const DSR_DELTA: HparamSpec = hp("delta", "0.1", "DSR: tolerance around the target before H is adapted");
pub(crate) const FREEZING_RATE: HparamSpec =
    hp("freezing_rate", "0.9", "FreezeNet: fraction of the prunable weights frozen");
pub(crate) const FREEZE_SCORE: HparamSpec =
    hp("score", "grad", "FreezeNet: grad (|dL/dw|, default) | snip (|w dL/dw|): what ranks the trained weights");
pub(crate) const FREEZE_SEED: HparamSpec =
    hp("freeze_seed", "auto", "FreezeNet: 32-bit seed of the frozen weights (auto: from the run's seed)");

/// The configuration of method `kind` from its hyperparameters.
pub(crate) fn config(kind: Kind, h: &Hparams, run: &RunInfo) -> Result<SparseConfig> {
    let get = |k: &str| h.values().contains_key(k);
    let sparsity = if kind == Kind::FreezeNet { h.f64("freezing_rate")? } else { h.f64("sparsity")? };
    if !(0.0..1.0).contains(&sparsity) {
        return Err(Error::invalid("--set", format!("sparsity = {sparsity} must be in [0, 1)")));
    }
    let density = 1.0 - sparsity;
    let rounds = |key: &str| -> Result<Option<usize>> {
        Ok(match h.str(key)? {
            "auto" => None,
            _ => Some(h.usize(key)?),
        })
    };
    let imp = if kind == Kind::Lth {
        ImpPlan::new(density.max(1e-9), h.f64("rate")?, rounds("rounds")?)?
    } else {
        ImpPlan { density, rate: 0.2, rounds: 0 }
    };
    let rewind = if kind == Kind::Lth { Rewind::parse(h.str("rewind")?, run.epochs)? } else { Rewind::Epoch(0) };
    let f = |k: &str, d: f64| -> Result<f64> {
        if get(k) {
            h.f64(k)
        } else {
            Ok(d)
        }
    };
    let freeze_seed = match h.values().get("freeze_seed").map(String::as_str) {
        None | Some("auto") => (crate::trainer::epoch_seed(run.seed, 0xF2EE) >> 32) as u32,
        Some(_) => {
            let v = h.usize("freeze_seed")?;
            u32::try_from(v).map_err(|_| Error::invalid("--set", format!("freeze_seed = {v} is not a 32-bit seed")))?
        }
    };
    Ok(SparseConfig {
        kind,
        density,
        allocation: if get("allocation") { Allocation::parse(h.str("allocation")?)? } else { Allocation::Global },
        prunable: Prunable::parse(h.str("layers")?)?,
        per_class: if get("score_per_class") { h.usize("score_per_class")? } else { 10 },
        temperature: f("temperature", GRASP_TEMPERATURE)?,
        synflow_rounds: if kind == Kind::Synflow { h.usize("rounds")? } else { 100 },
        imp,
        rewind,
        zeta: f("zeta", 0.3)?,
        rigl: RiglConfig {
            alpha: f("alpha", 0.3)?,
            delta_t: if get("delta_t") { h.usize("delta_t")? } else { 100 },
            end: f("t_end", 0.75)?,
            noise: f("noise", 1e-5)?,
            skip_step: if get("skip_step") { h.bool("skip_step")? } else { true },
        },
        dsr: Dsr { threshold: f("h0", 1e-3)?, target_fraction: f("np", 0.1)?, delta: f("delta", 0.1)? },
        dsr_interval: if get("interval") { h.usize("interval")? } else { 100 },
        freeze_score: if get("score") { FreezeScore::parse(h.str("score")?)? } else { FreezeScore::Gradient },
        freeze_seed,
        exec: if get("sparse_exec") { ExecChoice::parse(h.str("sparse_exec")?)? } else { ExecChoice::Never },
        ip: None,
    })
}

fn build(kind: Kind, h: &Hparams, run: &RunInfo) -> Result<Box<dyn Method>> {
    Ok(Box::new(SparseMethod::new(config(kind, h, run)?, run)))
}

macro_rules! spec {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $desc:expr, [$($hp:expr),* $(,)?]) => {
        $(#[$doc])*
        pub static $name: MethodSpec = MethodSpec {
            name: $kind.name(),
            description: $desc,
            defaults: SMALL_DEFAULTS,
            presets: PRESETS,
            training: Training::Required,
            hparams: &[$($hp),*],
            build: |h, run| build($kind, h, run),
        };
    };
}

spec!(
    /// `snip`: SNIP at initialization (`|w·g|`, global top-k, one class-balanced batch).
    SNIP, Kind::Snip, "SNIP (Lee et al. 2019): prune at init by |w*dL/dw| on one batch, global top-k",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, PER_CLASS, EXEC]
);
spec!(
    /// `grasp`: GraSP at initialization (Hessian-gradient product, temperature 200).
    GRASP, Kind::Grasp, "GraSP (Wang et al. 2020): prune at init keeping the largest w*Hg (T = 200)",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, PER_CLASS, TEMPERATURE, EXEC]
);
spec!(
    /// `synflow`: iterative SynFlow at initialization (data-free, 100 rounds).
    SYNFLOW, Kind::Synflow, "SynFlow (Tanaka et al. 2020): data-free iterative synaptic-flow pruning at init, 100 rounds",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, SYNFLOW_ROUNDS, EXEC]
);
spec!(
    /// `magnitude`: magnitude pruning at initialization (global `|w|`).
    MAGNITUDE, Kind::Magnitude, "magnitude pruning at initialization: keep the largest |w|, global top-k",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, EXEC]
);
spec!(
    /// `random-prune`: random pruning at initialization.
    RANDOM, Kind::Random, "random pruning at initialization (uniform per layer in expectation)",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, EXEC]
);
spec!(
    /// `lth`: lottery tickets by iterative magnitude pruning with rewinding.
    LTH, Kind::Lth, "lottery tickets (Frankle & Carbin 2019): IMP, 20 % of the rest per round, rewinding",
    [SPARSITY, LTH_ROUNDS, LTH_RATE, REWIND, LAYERS, EXEC]
);
spec!(
    /// `set`: SET dynamic sparse training (ER topology, ζ = 0.3 per epoch).
    SET, Kind::Set, "SET (Mocanu et al. 2018): ER topology, replace 30 % of each layer's weights per epoch",
    [SPARSITY, ALLOC_ER, LAYERS, ZETA, EXEC]
);
spec!(
    /// `dsr`: dynamic sparse reparameterization (adaptive global threshold).
    DSR, Kind::Dsr, "DSR (Mostafa & Wang 2019): adaptive global threshold, regrowth across layers",
    [SPARSITY, ALLOC_UNIFORM, LAYERS, DSR_INTERVAL, DSR_H0, DSR_NP, DSR_DELTA, EXEC]
);
spec!(
    /// `rigl`: RigL dynamic sparse training (ERK, every 100 steps until 75 %, cosine α = 0.3).
    RIGL, Kind::Rigl, "RigL (Evci et al. 2020): ERK, drop |w|, grow |dense grad| every 100 steps, cosine 0.3",
    [SPARSITY, ALLOC_ERK, LAYERS, ALPHA, DELTA_T, T_END, NOISE, SKIP_STEP, EXEC]
);
spec!(
    /// `freezenet`: FreezeNet (train the top-scored weights, freeze the rest at their seeded init).
    FREEZENET, Kind::FreezeNet, "FreezeNet (Wimmer et al. 2020): train the best-scored weights, freeze the rest at init",
    [FREEZING_RATE, ALLOC_GLOBAL, LAYERS, PER_CLASS, FREEZE_SCORE, FREEZE_SEED]
);

/// The ten entries, in registry order.
pub static SPECS: [&MethodSpec; 10] =
    [&SNIP, &GRASP, &SYNFLOW, &MAGNITUDE, &RANDOM, &LTH, &SET, &DSR, &RIGL, &FREEZENET];
