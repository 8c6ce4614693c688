//! Saliency scores of the trainable tensors of the masked layers, one scoring rule per file.
//!
//! Every rule returns one `Vec<f64>` per masked layer (in
//! [`masked_layers`](super::engine::masked_layers) order, the trainable tensor's row-major
//! order); larger means "keep". Gradients are taken with respect to the trainable tensor `φ`
//! through autograd, so a rule works on any [parametrization](super::masked::Parametrization)
//! of the weight. Masked coordinates score 0 or less (their trainable value is 0 and their
//! gradient is masked).
//!
//! # Choices where the papers are silent
//!
//! - Data-driven scores (SNIP, GraSP, FreezeNet) use a class-balanced sample of the training
//!   set ([`balanced_sample`]: the first `per_class` images of each class in the epoch-0 data
//!   order, 10 per class by default, GraSP's `samples_per_class`), in training mode (batch
//!   statistics, as in a training step); the BatchNorm running statistics the scoring passes
//!   update are put back afterwards, so scoring leaves no trace but the mask.
//! - SynFlow runs in evaluation mode in `f64` on an all-ones input (the spec's recipe).

mod freezenet;
mod grasp;
mod magnitude;
mod random;
mod snip;
mod synflow;

pub use freezenet::{freezenet_scores, FreezeScore};
pub use grasp::{grasp_hg, grasp_scores, GRASP_TEMPERATURE};
pub use magnitude::magnitude_scores;
pub use random::random_scores;
pub use snip::snip_scores;
pub use synflow::{synflow_prune, synflow_scores};

use autograd::{no_grad, Error, Result, Tensor};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::{Buffer, Mode, Module, ModuleExt};

use super::engine::{deep_copy, require_masked, to_f32};
use crate::registry::PhaseContext;

/// A labelled batch `(images [N, C, H, W], labels [N] i64)`.
pub type Sample = (Tensor, Tensor);

/// The first `per_class` images of each class in the epoch-0 training order, as one batch
/// sorted by class (as GraSP's `GraSP_fetch_data`); fewer for a class the first batches lack.
pub fn balanced_sample(ctx: &PhaseContext<'_>, per_class: usize) -> Result<Sample> {
    let classes = ctx.run.num_classes;
    let batch = ctx.data.train.config().batch_size.max(1);
    // Enough batches to see `per_class` of every class three times over on balanced data.
    let want = (3 * per_class * classes).div_ceil(batch) + 1;
    let batches = ctx.train_batches(want.min(ctx.data.train.len()))?;
    let mut picked: Vec<Vec<(usize, usize)>> = vec![Vec::new(); classes];
    for (b, (_, y)) in batches.iter().enumerate() {
        for (i, label) in y.to_vec::<i64>()?.into_iter().enumerate() {
            let c = label as usize;
            if c < classes && picked[c].len() < per_class {
                picked[c].push((b, i));
            }
        }
    }
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (c, rows) in picked.iter().enumerate() {
        for &(b, i) in rows {
            xs.push(batches[b].0.narrow(0, i, 1)?);
            ys.push(c as i64);
        }
    }
    if xs.is_empty() {
        return Err(Error::invalid("sparse", "the training set yielded no image to score with"));
    }
    let refs: Vec<&Tensor> = xs.iter().collect();
    let device = batches[0].0.device();
    Ok((Tensor::cat(&refs, 0)?, Tensor::from_vec(ys.clone(), &[ys.len()])?.to_device(device)?))
}

/// The model's buffers and their values, to put back after scoring passes.
pub struct BufferSnapshot(Vec<(Buffer, Tensor)>);

impl BufferSnapshot {
    /// Copies every buffer of `model`.
    pub fn take(model: &dyn Module) -> Result<BufferSnapshot> {
        Ok(BufferSnapshot(
            model
                .named_buffers()
                .into_iter()
                .map(|(_, b)| Ok((b.clone(), deep_copy(&b.get())?)))
                .collect::<Result<_>>()?,
        ))
    }

    /// Puts the copied values back.
    pub fn restore(self) {
        for (b, v) in self.0 {
            b.set(v);
        }
    }
}

/// The mean cross-entropy of `model` on `sample` in training mode, logits divided by
/// `temperature`.
pub fn sample_loss(model: &dyn Module, sample: &Sample, temperature: f64) -> Result<Tensor> {
    let logits = model.forward(&sample.0, Mode::Train)?;
    let logits = if temperature == 1.0 { logits } else { logits.div_scalar(temperature)? };
    cross_entropy(&logits, &sample.1, CrossEntropyOptions::default())
}

/// The trainable tensors `φ` of the masked layers (leaves), in order.
pub fn trainable_leaves(model: &dyn Module) -> Result<Vec<Tensor>> {
    Ok(require_masked(model)?.iter().map(|(_, l)| l.values().leaf()).collect())
}

/// `∂ loss / ∂φ` of every masked layer for the training-mode loss on `samples` (summed over
/// them), with the BatchNorm statistics put back afterwards.
pub fn loss_gradients(model: &dyn Module, samples: &[Sample]) -> Result<Vec<Tensor>> {
    let leaves = trainable_leaves(model)?;
    let snapshot = BufferSnapshot::take(model)?;
    let mut sums: Vec<Option<Tensor>> = vec![None; leaves.len()];
    for s in samples {
        let loss = sample_loss(model, s, 1.0)?;
        let grads = loss.backward_with(autograd::BackwardOptions::default())?;
        for (sum, leaf) in sums.iter_mut().zip(&leaves) {
            let g =
                grads.get(leaf).cloned().ok_or_else(|| Error::invalid("sparse", "a masked layer got no gradient"))?;
            *sum = Some(match sum.take() {
                Some(acc) => no_grad(|| acc.add(&g))?,
                None => g,
            });
        }
    }
    snapshot.restore();
    sums.into_iter().map(|g| g.ok_or_else(|| Error::invalid("sparse", "no sample to score with"))).collect()
}

/// `|a ⊙ b|` as host `f64` values.
pub fn abs_product(a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    let a = a.to_f64_vec()?;
    let b = b.to_f64_vec()?;
    Ok(a.iter().zip(&b).map(|(x, y)| (x * y).abs()).collect())
}

/// The trainable values of every masked layer as host `f32` vectors.
pub fn trainable_values(model: &dyn Module) -> Result<Vec<Vec<f32>>> {
    trainable_leaves(model)?.iter().map(to_f32).collect()
}
