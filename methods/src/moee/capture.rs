//! Activation capture: run a ViT on calibration batches (no gradients) and keep, for every
//! block's MLP, a uniform sample of its tokens' input `x ∈ R^d` and hidden activation
//! `y = act(x W1ᵀ + b1) ∈ R^D`.
//!
//! Each MLP is wrapped in a [`Recorder`] (through `layers::surgery::replace`) for the passes
//! and unwrapped afterwards. Sampling is reservoir sampling (Vitter's algorithm R) over the
//! stream of tokens, seeded, so every token seen has the same chance to be kept whatever the
//! number of batches. Memory bound: `max_tokens · (d + D)` floats per block (4096 tokens of a
//! ViT-Mini block, `d = 96`, `D = 384`: 7.5 MiB), plus one batch's activations in flight.

use std::sync::{Arc, Mutex};

use autograd::{no_grad, DType, Error, Result, Tensor};
use layers::surgery::{replace, Select};
use layers::{children, Linear, Mlp, Mode, Module};

use crate::cluster::SplitMix;

/// The sampled tokens of one MLP.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    /// The MLP's path (`blocks.3.mlp`).
    pub path: String,
    /// Token width `d`.
    pub dim: usize,
    /// Hidden width `D`.
    pub hidden: usize,
    /// Sampled inputs, `[n, d]` row-major.
    pub x: Vec<f32>,
    /// Their hidden activations, `[n, D]` row-major.
    pub y: Vec<f32>,
    /// Tokens offered to the sample.
    pub seen: usize,
}

impl Capture {
    /// Number of sampled tokens.
    pub fn len(&self) -> usize {
        self.x.len() / self.dim.max(1)
    }

    /// Whether nothing was sampled.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }
}

/// What to sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Tokens kept per block at most.
    pub max_tokens: usize,
    /// Whether the class token (position 0 of each sequence) is sampled.
    pub cls: bool,
    /// Seed of the reservoir.
    pub seed: u64,
}

struct Reservoir {
    capture: Capture,
    cap: usize,
    cls: bool,
    rng: SplitMix,
}

impl Reservoir {
    /// Offers the tokens of `x` `[B, N, d]` and `y` `[B, N, D]` (host copies).
    fn offer(&mut self, x: &[f32], y: &[f32], tokens_per_seq: usize) {
        let (d, h) = (self.capture.dim, self.capture.hidden);
        for t in 0..x.len() / d {
            if !self.cls && t % tokens_per_seq == 0 {
                continue;
            }
            let i = self.capture.seen;
            self.capture.seen += 1;
            let slot = if i < self.cap {
                self.capture.x.extend_from_slice(&x[t * d..(t + 1) * d]);
                self.capture.y.extend_from_slice(&y[t * h..(t + 1) * h]);
                continue;
            } else {
                (self.rng.uniform() * (i + 1) as f64) as usize
            };
            if slot < self.cap {
                self.capture.x[slot * d..(slot + 1) * d].copy_from_slice(&x[t * d..(t + 1) * d]);
                self.capture.y[slot * h..(slot + 1) * h].copy_from_slice(&y[t * h..(t + 1) * h]);
            }
        }
    }
}

/// An MLP that also offers its tokens to a reservoir.
struct Recorder {
    inner: Box<dyn Module>,
    sink: Arc<Mutex<Reservoir>>,
}

impl Module for Recorder {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mlp = self.inner.downcast_ref::<Mlp>().ok_or_else(|| Error::invalid("capture", "not an Mlp"))?;
        let h = mlp.act.forward(&mlp.fc1.forward(x, mode)?, mode)?;
        let n = if x.ndim() == 3 { x.shape()[1] } else { 1 };
        let xs = x.to_dtype(DType::F32)?.contiguous()?.to_vec::<f32>()?;
        let hs = h.to_dtype(DType::F32)?.contiguous()?.to_vec::<f32>()?;
        self.sink.lock().map_err(|_| Error::invalid("capture", "poisoned"))?.offer(&xs, &hs, n);
        mlp.fc2.forward(&h, mode)
    }

    children!(inner);
}

/// The paths of the model's MLPs (`blocks.N.mlp`, type [`Mlp`]), in order.
pub fn mlp_paths(model: &dyn Module) -> Vec<String> {
    Select::all().of_type::<Mlp>().paths(model)
}

/// Runs `model` (eval mode, no gradient) on `batches` and returns one [`Capture`] per MLP, in
/// model order. The model is unchanged afterwards.
pub fn capture(model: &mut Box<dyn Module>, batches: &[Tensor], opts: CaptureOptions) -> Result<Vec<Capture>> {
    let paths = mlp_paths(model.as_ref());
    if paths.is_empty() {
        return Err(Error::invalid("moee", "the model has no transformer MLP (layers::Mlp) to split into experts"));
    }
    let mut sinks = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let sel = Select::all().path(path)?.of_type::<Mlp>();
        replace(model.as_mut(), &sel, &mut |p, old| {
            let mlp = old.downcast_ref::<Mlp>().ok_or_else(|| Error::invalid("capture", "not an Mlp"))?;
            let fc1 = mlp.fc1.downcast_ref::<Linear>().ok_or_else(|| Error::invalid("capture", "fc1 is not Linear"))?;
            let (dim, hidden) = fc1.features();
            let capture = Capture { path: p.to_string(), dim, hidden, ..Capture::default() };
            let rng = SplitMix::new(opts.seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
            let sink = Arc::new(Mutex::new(Reservoir { capture, cap: opts.max_tokens, cls: opts.cls, rng }));
            sinks.push(sink.clone());
            Ok(Box::new(Recorder { inner: old, sink }))
        })?;
    }
    let run = no_grad(|| -> Result<()> {
        for b in batches {
            model.forward(b, Mode::Eval)?;
        }
        Ok(())
    });
    replace(model.as_mut(), &Select::all().of_type::<Recorder>(), &mut |_, old| {
        old.into_any().downcast::<Recorder>().map(|r| r.inner).map_err(|_| Error::invalid("capture", "not a Recorder"))
    })?;
    run?;
    sinks
        .into_iter()
        .map(|s| {
            let r = s.lock().map_err(|_| Error::invalid("capture", "poisoned"))?;
            Ok(r.capture.clone())
        })
        .collect()
}
