//! GraSP (Wang, Zhang, Grosse, ICLR 2020): keep the weights whose removal preserves the gradient
//! flow. With the logits divided by a temperature `T = 200`, `g = Σ_b ∇_φ L_b` is computed once
//! and stopped, then `Hg = Σ_b ∇_φ (gᵀ ∇_φ L_b)` by a second backward pass over a recorded
//! (`create_graph`) first one. The paper's score is `S = −φ ⊙ Hg` and it removes the largest
//! `S`; the scores here are `φ ⊙ Hg = −S`, of which the largest are kept (the reference
//! implementation's threshold, `alecwangcq/GraSP`).
//!
//! As the reference, the sample is split into two halves, each a batch of its own in both
//! passes.

use autograd::{no_grad, BackwardOptions, Error, Result, Tensor};
use layers::Module;

use super::{sample_loss, trainable_leaves, BufferSnapshot, Sample};

/// The temperature the logits are divided by (the paper's `T = 200`).
pub const GRASP_TEMPERATURE: f64 = 200.0;

fn add(acc: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *acc = Some(match acc.take() {
        Some(a) => no_grad(|| a.add(&g))?,
        None => g,
    });
    Ok(())
}

fn collect(sums: Vec<Option<Tensor>>) -> Result<Vec<Tensor>> {
    sums.into_iter().map(|s| s.ok_or_else(|| Error::invalid("GraSP", "a masked layer got no gradient"))).collect()
}

/// The stopped gradient `g` and the Hessian-gradient product `Hg` of the temperature-scaled
/// training-mode loss summed over `samples`, per masked layer (BatchNorm statistics put back).
pub fn grasp_hg(model: &dyn Module, samples: &[Sample], temperature: f64) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let leaves = trainable_leaves(model)?;
    let snapshot = BufferSnapshot::take(model)?;
    let mut g: Vec<Option<Tensor>> = vec![None; leaves.len()];
    for s in samples {
        let grads = sample_loss(model, s, temperature)?.backward_with(BackwardOptions::default())?;
        for (acc, leaf) in g.iter_mut().zip(&leaves) {
            add(acc, grads.get(leaf).cloned().ok_or_else(|| Error::invalid("GraSP", "no gradient"))?.detach())?;
        }
    }
    let g = collect(g)?;
    let mut hg: Vec<Option<Tensor>> = vec![None; leaves.len()];
    for s in samples {
        let loss = sample_loss(model, s, temperature)?;
        let first = loss.backward_with(BackwardOptions { create_graph: true, ..Default::default() })?;
        let mut z: Option<Tensor> = None;
        for (gi, leaf) in g.iter().zip(&leaves) {
            let f = first.get(leaf).ok_or_else(|| Error::invalid("GraSP", "no gradient"))?;
            let term = gi.mul(f)?.sum_all()?;
            z = Some(match z {
                Some(acc) => acc.add(&term)?,
                None => term,
            });
        }
        let z = z.ok_or_else(|| Error::invalid("GraSP", "no masked layer"))?;
        let second = z.backward_with(BackwardOptions::default())?;
        for (acc, leaf) in hg.iter_mut().zip(&leaves) {
            // A layer the second pass does not reach (a linear model) has Hg = 0.
            let h = match second.get(leaf) {
                Some(h) => h.detach(),
                None => Tensor::zeros_like(leaf)?,
            };
            add(acc, h)?;
        }
    }
    snapshot.restore();
    Ok((g, collect(hg)?))
}

/// GraSP's scores `φ ⊙ Hg` per masked layer (keep the largest), with the temperature of
/// `GRASP_TEMPERATURE` unless given. `samples` holds the two halves of the scoring sample.
pub fn grasp_scores(model: &dyn Module, samples: &[Sample], temperature: f64) -> Result<Vec<Vec<f64>>> {
    let (_, hg) = grasp_hg(model, samples, temperature)?;
    trainable_leaves(model)?
        .iter()
        .zip(&hg)
        .map(|(w, h)| {
            let (w, h) = (w.to_f64_vec()?, h.to_f64_vec()?);
            Ok(w.iter().zip(&h).map(|(w, h)| w * h).collect())
        })
        .collect()
}
