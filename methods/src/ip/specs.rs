//! The registry entries `ip-snip`, `ip-grasp`, `ip-synflow`, `ip-magnitude`, `ip-lth`, `ip-set`
//! and `ip-rigl`: each is its standard-pruning method ([`crate::sparse`]) with the KxK
//! convolutions reparametrized by a filter basis, taking the same hyperparameters plus the
//! basis's own (`basis`, `granularity`, `train_basis`).

use autograd::Result;

use super::basis::{BasisInit, Granularity, IpConfig};
use crate::hparams::{HparamSpec, Hparams};
use crate::registry::{Method, MethodSpec, RunInfo, Training, SMALL_DEFAULTS};
use crate::sparse::specs::{
    config, ALLOC_ER, ALLOC_ERK, ALLOC_GLOBAL, ALPHA, DELTA_T, EXEC, LAYERS, LTH_RATE, LTH_ROUNDS, NOISE, PER_CLASS,
    PRESETS, REWIND, SKIP_STEP, SPARSITY, SYNFLOW_ROUNDS, TEMPERATURE, T_END, ZETA,
};
use crate::sparse::{Kind, SparseMethod};

const BASIS: HparamSpec = HparamSpec {
    key: "basis",
    default: "dct",
    help: "IP: starting filter basis: dct (orthonormal 2-D DCT-II) | random (orthogonal) | standard (= SP)",
};
const GRANULARITY: HparamSpec = HparamSpec {
    key: "granularity",
    default: "layer",
    help: "IP: one filter basis per layer | channel (per input channel)",
};
const TRAIN_BASIS: HparamSpec = HparamSpec {
    key: "train_basis",
    default: "true",
    help: "IP: train the filter basis jointly with the coefficients",
};

/// The interspace-pruning settings from `h` (the run's seed seeds random bases).
pub fn ip_config(h: &Hparams, run: &RunInfo) -> Result<IpConfig> {
    Ok(IpConfig {
        init: BasisInit::parse(h.str("basis")?)?,
        granularity: Granularity::parse(h.str("granularity")?)?,
        train_basis: h.bool("train_basis")?,
        seed: run.seed,
    })
}

fn build(kind: Kind, h: &Hparams, run: &RunInfo) -> Result<Box<dyn Method>> {
    let mut cfg = config(kind, h, run)?;
    cfg.ip = Some(ip_config(h, run)?);
    Ok(Box::new(SparseMethod::new(cfg, run)))
}

macro_rules! spec {
    ($(#[$doc:meta])* $name:ident, $reg:expr, $kind:expr, $desc:expr, [$($hp:expr),* $(,)?]) => {
        $(#[$doc])*
        pub static $name: MethodSpec = MethodSpec {
            name: $reg,
            description: $desc,
            defaults: SMALL_DEFAULTS,
            presets: PRESETS,
            training: Training::Required,
            hparams: &[$($hp,)* BASIS, GRANULARITY, TRAIN_BASIS],
            build: |h, run| build($kind, h, run),
        };
    };
}

spec!(
    /// `ip-snip`: SNIP on the filter-basis coefficients.
    IP_SNIP, "ip-snip", Kind::Snip, "interspace pruning (Wimmer et al. 2022) with SNIP: |lambda*dL/dlambda| at init, trained basis",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, PER_CLASS, EXEC]
);
spec!(
    /// `ip-grasp`: GraSP on the coefficients.
    IP_GRASP, "ip-grasp", Kind::Grasp, "interspace pruning with GraSP: keep the largest lambda*Hg at init, trained basis",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, PER_CLASS, TEMPERATURE, EXEC]
);
spec!(
    /// `ip-synflow`: iterative SynFlow on the coefficients (basis linearized too).
    IP_SYNFLOW, "ip-synflow", Kind::Synflow, "interspace pruning with SynFlow (data-free, 100 rounds), trained basis",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, SYNFLOW_ROUNDS, EXEC]
);
spec!(
    /// `ip-magnitude`: magnitude pruning of the coefficients at initialization.
    IP_MAGNITUDE, "ip-magnitude", Kind::Magnitude, "interspace pruning by coefficient magnitude at init, trained basis",
    [SPARSITY, ALLOC_GLOBAL, LAYERS, EXEC]
);
spec!(
    /// `ip-lth`: lottery tickets on the coefficients, coefficients and basis rewound.
    IP_LTH, "ip-lth", Kind::Lth, "interspace lottery tickets: IMP on |lambda|, coefficients and basis rewound",
    [SPARSITY, LTH_ROUNDS, LTH_RATE, REWIND, LAYERS, EXEC]
);
spec!(
    /// `ip-set`: SET on the coefficients.
    IP_SET, "ip-set", Kind::Set, "interspace pruning with SET: ER topology of coefficients, 30 % replaced per epoch",
    [SPARSITY, ALLOC_ER, LAYERS, ZETA, EXEC]
);
spec!(
    /// `ip-rigl`: RigL on the coefficients, grown by the dense coefficient gradient.
    IP_RIGL, "ip-rigl", Kind::Rigl, "interspace pruning with RigL: ERK, drop |lambda|, grow |dense dL/dlambda|",
    [SPARSITY, ALLOC_ERK, LAYERS, ALPHA, DELTA_T, T_END, NOISE, SKIP_STEP, EXEC]
);

/// The seven entries, in registry order.
pub static SPECS: [&MethodSpec; 7] = [&IP_SNIP, &IP_GRASP, &IP_SYNFLOW, &IP_MAGNITUDE, &IP_LTH, &IP_SET, &IP_RIGL];
