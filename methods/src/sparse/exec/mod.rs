//! The sparse execution path: the inference form of every pruning method.
//!
//! The form is a copy of the trained model in which every masked layer becomes either a
//! [`SparseConv2d`]/[`SparseLinear`] (only the non-zero weights stored, run by the sparse
//! convolution primitive: compressed sparse rows over phase planes, AVX-512 on the CPU) or a
//! plain [`Conv2d`]/[`Linear`] with the masked weight, whichever is faster for that layer:
//!
//! - `sparse_exec = auto` (default): each layer is timed both ways on its own input shape (taken
//!   from a MAC trace of the model) at a batch of [`PROBE_BATCH`], best of three runs after a
//!   warm-up, and the faster path is kept; decisions are cached by (layer, stored weights,
//!   input shape), so masks that keep their counts (PaI, LTH, SET, RigL) are measured once per
//!   run. The choice depends on the machine and its load; the two paths agree to rounding.
//! - `always`: every masked layer runs sparse; `never`: no inference form (the trained model,
//!   masked dense weights, is evaluated).
//!
//! A layer whose [`Parametrization`](super::Parametrization) has a sparse form of its own
//! (interspace pruning's basis path, [`crate::ip::BasisConv2d`]) offers that form instead of
//! the sparse kernel on its effective weight, whose filters are spatially dense.
//!
//! The MAC counter records the stored weights' MACs for the sparse layers, so `MACs / image` of
//! the inference form is what actually runs. FreezeNet's frozen weights are not zero, so it has
//! no sparse form.
//!
//! # Measured (AMD EPYC Zen 4, 2 threads, loaded machine)
//!
//! `methods/results/sparse-execution/results.md` (`cargo bench -p methods --bench
//! sparse_layers`): on the 3x3 convolutions of ResNet-20 and ResNet-18 the sparse forward wins
//! below a density of about 0.13-0.26 (74-87 % sparsity) and is 1.1-2.5x faster at 90 %
//! sparsity, 1.4-3.3x at 95 %, 1.3-6.9x at 98 %; a training step of the layer (forward and both
//! gradients) wins below about 0.07-0.23. Whole networks in the automatic form: ResNet-20
//! 1.3x/1.6x/2.0x and ResNet-18 (CIFAR stem) 1.4x/2.3x/3.7x faster than dense at 90/95/98 %.
//! At density 1 the sparse kernel is 2.3-6x slower than the dense convolutions.

mod layers;

pub use self::layers::{sparse_linear, SparseConv2d, SparseLinear};

use std::collections::HashMap;
use std::time::Instant;

use ::layers::mac::count_macs;
use ::layers::models::{self, ModelOptions};
use ::layers::state_dict::{load_state_dict, Strictness};
use ::layers::surgery::{replace, Select};
use ::layers::{Conv2d, Linear, Mode, Module, ModuleExt};

use autograd::{no_grad, Error, Result, Tensor};

use super::engine::wrap_each;
use super::masked::{Fixed, Host, MaskedLayer};
use super::method::SparseConfig;
use crate::registry::RunInfo;

/// The batch each layer is timed at when the path is chosen by measurement.
pub const PROBE_BATCH: usize = 32;

/// Whether masked layers run on the sparse kernels in the inference form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecChoice {
    /// Per layer, whichever of the sparse and the dense path measured faster.
    Auto,
    /// Always the sparse kernels.
    Always,
    /// Never (no inference form: the trained model is evaluated).
    Never,
}

impl ExecChoice {
    /// Parses `auto`, `always` or `never`.
    pub fn parse(s: &str) -> Result<ExecChoice> {
        match s.trim() {
            "auto" => Ok(ExecChoice::Auto),
            "always" => Ok(ExecChoice::Always),
            "never" => Ok(ExecChoice::Never),
            other => Err(Error::invalid("--set", format!("sparse_exec = {other:?}; expected auto, always or never"))),
        }
    }
}

/// One measured decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Whether the sparse path runs.
    pub sparse: bool,
    /// Best time of the dense path (ms), when measured.
    pub dense_ms: f64,
    /// Best time of the sparse path (ms), when measured.
    pub sparse_ms: f64,
}

/// The decisions of the inference form, kept across evaluations, and what the last form ran.
#[derive(Default)]
pub struct ExecCache {
    decisions: HashMap<(String, usize, Vec<usize>), Decision>,
    last: Vec<(String, Decision)>,
}

/// Best of three timed runs of `m` on `x` after a warm-up, in milliseconds.
fn time_ms(m: &dyn Module, x: &Tensor) -> Result<f64> {
    no_grad(|| {
        m.forward(x, Mode::Eval)?;
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            let y = m.forward(x, Mode::Eval)?;
            y.to_host()?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(best)
    })
}

/// The dense and the sparse execution layer of a masked layer: the effective weight on the
/// dense kernel, and the parametrization's own sparse form or else the effective weight on the
/// sparse kernel.
fn candidates(layer: &MaskedLayer) -> Result<(Box<dyn Module>, Box<dyn Module>)> {
    let w = layer.effective_weight()?;
    let b = layer.bias().map(|b| b.leaf().detach());
    let own = layer.parametrization().sparse_form(layer)?;
    Ok(match layer.host() {
        Host::Conv(c) => {
            let sparse = match own {
                Some(s) => s,
                None => Box::new(SparseConv2d::new(&w, b.as_ref(), c.params)?),
            };
            (Box::new(Conv2d::from_tensors(w, b, c.params)), sparse)
        }
        Host::Linear(_) => {
            let sparse = match own {
                Some(s) => s,
                None => Box::new(SparseLinear::new(&w, b.as_ref())?),
            };
            (Box::new(Linear::from_tensors(w, b)), sparse)
        }
    })
}

/// Times the `dense` and `sparse` forms of a layer at its `input` shape with a batch of
/// [`PROBE_BATCH`].
pub fn measure(dense: &dyn Module, sparse: &dyn Module, input: &[usize], path: &str) -> Result<Decision> {
    let Some(leaf) = dense.parameters().first().map(|p| p.leaf()) else {
        return Err(Error::invalid("sparse", format!("{path}: a layer without weight")));
    };
    if input.is_empty() {
        return Err(Error::invalid("sparse", format!("{path}: no input shape in the trace")));
    }
    let mut shape = input.to_vec();
    shape[0] = PROBE_BATCH;
    let x = Tensor::randn(&shape, 1)?.to_dtype(leaf.dtype())?.to_device(leaf.device())?;
    let (dense_ms, sparse_ms) = (time_ms(dense, &x)?, time_ms(sparse, &x)?);
    Ok(Decision { sparse: sparse_ms < dense_ms, dense_ms, sparse_ms })
}

/// A decision callback of [`convert_masked`]: `(path, masked layer, its dense form, its sparse
/// form)` to whether the sparse form replaces it.
pub type Decide<'a> = dyn FnMut(&str, &MaskedLayer, &dyn Module, &dyn Module) -> Result<bool> + 'a;

/// Replaces every masked layer of `model` by its execution form: the sparse one
/// ([`SparseConv2d`]/[`SparseLinear`]) where `decide` says so, else a plain [`Conv2d`]/[`Linear`]
/// with the masked weight. Returns the replaced paths.
pub fn convert_masked(model: &mut dyn Module, decide: &mut Decide<'_>) -> Result<Vec<String>> {
    replace(model, &Select::all().of_type::<MaskedLayer>(), &mut |path, old| {
        let layer = old.downcast_ref::<MaskedLayer>().ok_or_else(|| Error::invalid("sparse", "not a masked layer"))?;
        let (dense, sparse) = candidates(layer)?;
        Ok(if decide(path, layer, dense.as_ref(), sparse.as_ref())? { sparse } else { dense })
    })
}

impl ExecCache {
    /// The inference form of `model` (`None`: evaluate the trained model).
    pub fn form(&mut self, model: &dyn Module, run: &RunInfo, cfg: &SparseConfig) -> Result<Option<Box<dyn Module>>> {
        if cfg.exec == ExecChoice::Never {
            return Ok(None);
        }
        let leaf =
            model.parameters().first().map(|p| p.leaf()).ok_or_else(|| Error::invalid("sparse", "no parameter"))?;
        let (dtype, device) = (leaf.dtype(), leaf.device());
        // Each masked layer's input shape, from a one-image trace.
        let [c, h, w] = run.input_shape;
        let trace = count_macs(model, &Tensor::zeros(&[1, c, h, w]).to_dtype(dtype)?.to_device(device)?)?;
        let mut copy = models::build_with(
            &run.model,
            &ModelOptions::new(run.num_classes, run.input_shape[0], run.seed).width(run.width),
        )?;
        wrap_each(copy.as_mut(), &cfg.prunable, &mut |i, _, old| cfg.masked_layer(i, old, Fixed::Zero))?;
        copy.convert(dtype, device)?;
        let state: Vec<(String, Tensor)> =
            model.state_dict().into_iter().filter(|(n, _)| !n.ends_with("weight_init")).collect();
        load_state_dict(copy.as_ref(), &state, Strictness::Strict)?;
        let mut last = Vec::new();
        let decisions = &mut self.decisions;
        convert_masked(copy.as_mut(), &mut |path, layer, dense, sparse| {
            let nnz = layer.active()?;
            let input = trace.rows.iter().find(|r| r.name == path).map(|r| r.input.clone()).unwrap_or_default();
            let decision = match cfg.exec {
                ExecChoice::Always => Decision { sparse: true, dense_ms: f64::NAN, sparse_ms: f64::NAN },
                _ => {
                    let key = (path.to_string(), nnz, input.clone());
                    match decisions.get(&key) {
                        Some(d) => *d,
                        None => {
                            let d = measure(dense, sparse, &input, path)?;
                            decisions.insert(key, d);
                            d
                        }
                    }
                }
            };
            last.push((path.to_string(), decision));
            Ok(decision.sparse)
        })?;
        self.last = last;
        Ok(Some(copy))
    }

    /// Summary lines on the execution path of the last form.
    pub fn summary_lines(&self) -> Vec<(String, String)> {
        if self.last.is_empty() {
            return Vec::new();
        }
        let sparse = self.last.iter().filter(|(_, d)| d.sparse).count();
        let timed: Vec<String> = self
            .last
            .iter()
            .filter(|(_, d)| d.dense_ms.is_finite())
            .map(|(p, d)| format!("{p} {:.2}/{:.2}", d.sparse_ms, d.dense_ms))
            .collect();
        let mut lines = vec![(
            "sparse execution".to_string(),
            format!("{sparse} of {} masked layers on sparse kernels", self.last.len()),
        )];
        if !timed.is_empty() {
            lines.push((format!("sparse/dense ms at batch {PROBE_BATCH}"), timed.join(", ")));
        }
        lines
    }
}
