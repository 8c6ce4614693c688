//! SynFlow (Tanaka, Kunin, Yamins, Ganguli, NeurIPS 2020): data-free iterative synaptic-flow
//! pruning, as `ganguli-lab/Synaptic-Flow`'s `SynFlow` pruner:
//!
//! 1. every floating-point parameter and buffer is replaced by its absolute value (BatchNorm's
//!    statistics and affine terms included: "linearization"), the model in evaluation mode and
//!    in `f64`;
//! 2. `R = Σ model(1)` for an all-ones input of the data's shape (batch 1);
//! 3. `s = |φ ⊙ ∂R/∂φ|`;
//! 4. the original values are put back (bit for bit: they are restored from a copy).
//!
//! [`synflow_prune`] repeats this for `n` rounds (100 in the paper), round `k` keeping the
//! fraction `ρ^{k/n}` of the weights (`ρ` the final density) with a global top-k, re-scored with
//! the current mask applied; masks are nested (masked coordinates are never chosen again) and
//! the last round keeps exactly `round(ρ·N)`.

use autograd::{no_grad, DType, Result, Tensor};
use layers::{Mode, Module, ModuleExt};

use super::super::allocation::{exclude_inactive, global_masks, keep_count};
use super::super::engine::{apply_masks, current_masks, deep_copy, require_masked};
use super::trainable_leaves;

/// The values of every parameter and buffer, to restore after the linearization.
struct Saved {
    params: Vec<(layers::Param, Tensor)>,
    buffers: Vec<(layers::Buffer, Tensor)>,
}

fn linearize(model: &dyn Module) -> Result<Saved> {
    no_grad(|| {
        let mut saved = Saved { params: Vec::new(), buffers: Vec::new() };
        for (_, p) in model.named_parameters() {
            let v = deep_copy(&p.leaf())?;
            p.set_data(&v.abs()?)?;
            saved.params.push((p, v));
        }
        for (_, b) in model.named_buffers() {
            let v = deep_copy(&b.get())?;
            if v.dtype().is_float() {
                b.set(v.abs()?);
            }
            saved.buffers.push((b, v));
        }
        Ok(saved)
    })
}

fn restore(model: &dyn Module, saved: Saved, dtype: DType) -> Result<()> {
    let device = saved.params.first().map(|(_, v)| v.device()).unwrap_or(autograd::Device::Cpu);
    model.convert(dtype, device)?;
    for (p, v) in saved.params {
        p.set_data(&v)?;
    }
    for (b, v) in saved.buffers {
        b.set(v);
    }
    Ok(())
}

/// One SynFlow score pass: `|φ ⊙ ∂R/∂φ|` per masked layer for an input of shape
/// `[1, c, h, w]`. The model is left as it was (values, dtype, masks).
pub fn synflow_scores(model: &dyn Module, input_shape: [usize; 3]) -> Result<Vec<Vec<f64>>> {
    let leaf0 = trainable_leaves(model)?[0].clone();
    let (dtype, device) = (leaf0.dtype(), leaf0.device());
    let saved = linearize(model)?;
    model.convert(DType::F64, device)?;
    let run = || -> Result<Vec<Vec<f64>>> {
        let [c, h, w] = input_shape;
        let x = Tensor::ones(&[1, c, h, w]).to_dtype(DType::F64)?.to_device(device)?;
        let r = model.forward(&x, Mode::Eval)?.sum_all()?;
        let leaves = trainable_leaves(model)?;
        let grads = r.backward_with(autograd::BackwardOptions::default())?;
        leaves
            .iter()
            .map(|leaf| {
                let v = leaf.to_f64_vec()?;
                let g = match grads.get(leaf) {
                    Some(g) => g.to_f64_vec()?,
                    None => vec![0.0; v.len()],
                };
                Ok(v.iter().zip(&g).map(|(v, g)| (v * g).abs()).collect())
            })
            .collect()
    };
    let out = run();
    restore(model, saved, dtype)?;
    out
}

/// Iterative SynFlow: `rounds` rounds to the final density `density` (see the
/// [module docs](self)); the masks are applied to the model.
pub fn synflow_prune(model: &dyn Module, input_shape: [usize; 3], density: f64, rounds: usize) -> Result<()> {
    let n: usize = require_masked(model)?.iter().map(|(_, l)| l.numel()).sum();
    let rounds = rounds.max(1);
    for k in 1..=rounds {
        let keep =
            if k == rounds { keep_count(density, n) } else { keep_count(density.powf(k as f64 / rounds as f64), n) };
        let mut scores = synflow_scores(model, input_shape)?;
        exclude_inactive(&mut scores, &current_masks(model)?);
        apply_masks(model, &global_masks(&scores, keep), None)?;
    }
    Ok(())
}
