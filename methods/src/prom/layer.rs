//! [`QuantLayer`]: a convolution or linear layer trained with fake quantization: its weight
//! through a [`WeightQuant`] and its input through an [`ActQuant`] in every forward pass, the
//! float latent weight updated by the optimizer (quantization-aware training).
//!
//! Saved names: the latent weight keeps the layer's `weight` name (a float checkpoint loads into
//! it), `bias` likewise; the activation quantizer's learned step or clip is `act_step`, its sign
//! mode the buffer `act_signed`; TTQ's two scales are `weight_pos` and `weight_neg`.

use autograd::{no_grad, Error, Result, Tensor};
use layers::{Buffer, Conv2d, Linear, Mode, Module, Param};

use super::fold::Fold;
use super::quant::{fixed_range, int8_weight, lsq, lsq_init, pact, ternary_absmean, ternary_ttq, ternary_twn};

/// How a layer's weight is quantized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightQuant {
    /// Ternary, per-channel absmean (default for ternary layers).
    TernaryAbsmean,
    /// Ternary, TWN's per-channel threshold and scale.
    TernaryTwn,
    /// Ternary, TTQ's learned positive and negative scales; threshold factor `t`.
    TernaryTtq {
        /// `Δ = t · max|W|`.
        t: f64,
    },
    /// Symmetric per-channel int8.
    Int8,
}

impl WeightQuant {
    /// Whether the quantized weights are ternary.
    pub fn is_ternary(self) -> bool {
        self != WeightQuant::Int8
    }
}

/// How a layer's input is quantized (8 bits).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActQuant {
    /// LSQ with a learned step, initialized on the first training batch to `2·mean|x|/√Q_P`;
    /// signed (`[−128, 127]`) if that batch has negative values, else unsigned (`[0, 255]`).
    Lsq,
    /// PACT with a learned clip `α` (initial value given), unsigned.
    Pact {
        /// Initial `α`.
        alpha: f64,
    },
    /// A fixed range `[lo, hi]`.
    Fixed {
        /// Lower end.
        lo: f64,
        /// Upper end.
        hi: f64,
    },
    /// The input is not quantized.
    None,
}

/// LSQ with the step `step` on `x`: signed (`[−128, 127]`) or unsigned (`[0, 255]`) codes,
/// the step's gradient scaled by `1/√(per-sample elements · Q_P)`.
fn quantize_lsq(x: &Tensor, step: &Tensor, signed: bool) -> Result<Tensor> {
    let (qn, qp) = if signed { (128.0, 127.0) } else { (0.0, 255.0) };
    let per_sample = (x.numel() / x.shape().first().copied().unwrap_or(1).max(1)).max(1);
    lsq(x, step, qn, qp, 1.0 / (per_sample as f64 * qp).sqrt())
}

/// The forward value of LSQ's step for an input like `x` after its gradient scaling (an exact
/// zero added and taken away in float: recomputed rather than assumed to be the step itself).
fn lsq_forward_step(x: &Tensor, step: &Tensor, signed: bool) -> Result<f64> {
    let per_sample = (x.numel() / x.shape().first().copied().unwrap_or(1).max(1)).max(1);
    let qp = if signed { 127.0 } else { 255.0 };
    super::quant::grad_scale(&step.reshape(&[])?, 1.0 / (per_sample as f64 * qp).sqrt())?.item()
}

/// A trained layer's input quantizer, detached: what the integer form needs to turn a float
/// input into the layer's 8-bit codes exactly as QAT quantized it.
#[derive(Clone, Debug)]
pub enum InputCodes {
    /// LSQ with its learned step; signed codes `[−128, 127]` or unsigned `[0, 255]`.
    Lsq {
        /// The step (one element).
        step: Tensor,
        /// Whether the codes are signed.
        signed: bool,
    },
    /// PACT with its learned clip `α`: unsigned codes `[0, 255]` of step `α/255`.
    Pact {
        /// The clip (one element).
        alpha: Tensor,
    },
}

impl InputCodes {
    /// `(q, step, zero)`: the integer codes `q` of `x` (as floats), with `x̂ = step · q` the
    /// fake-quantized input QAT computes, and the offset `zero` (0 signed, 128 unsigned) that
    /// brings the codes into `i8`.
    pub fn codes(&self, x: &Tensor) -> Result<(Tensor, f64, i32)> {
        autograd::no_grad(|| match self {
            InputCodes::Lsq { step, signed } => {
                let xq = quantize_lsq(x, step, *signed)?;
                let s = lsq_forward_step(x, step, *signed)?;
                Ok((xq.div_scalar(s)?.round()?, s, if *signed { 0 } else { 128 }))
            }
            InputCodes::Pact { alpha } => {
                let xq = pact(x, alpha, 8)?;
                let s = alpha.item()? / 255.0;
                Ok((xq.div_scalar(s)?.round()?, s, 128))
            }
        })
    }

    /// [`InputCodes::codes`] minus `zero`, as an `i8` tensor, in one pass (the backend's
    /// [`quantize_i8`](autograd::backends::Fused::quantize_i8)): the same codes, from the same
    /// float operations (LSQ's `x / step` clamped, PACT's `x · 255 / α` clamped), without the
    /// fake-quantized input in between. Returns `(codes − zero, step, zero)`.
    pub fn i8_codes(&self, x: &Tensor) -> Result<(Tensor, f64, i32)> {
        let (mul, div, range, zero, step) = match self {
            InputCodes::Lsq { step, signed } => {
                let s = no_grad(|| lsq_forward_step(x, step, *signed))?;
                let (range, zero) = if *signed { ((-128.0, 127.0), 0) } else { ((0.0, 255.0), 128) };
                (1.0, s, range, zero, s)
            }
            InputCodes::Pact { alpha } => {
                let a = alpha.item()?;
                (255.0, a, (0.0, 255.0), 128, a / 255.0)
            }
        };
        let q = x.storage().quantize_i8(x.layout(), mul, div, range, zero)?;
        Ok((Tensor::from_storage(q, autograd::Layout::contiguous(x.shape())), step, zero))
    }
}

enum Host {
    Conv(Conv2d),
    Linear(Linear),
}

/// A layer under quantization-aware training (see the [module docs](self)).
pub struct QuantLayer {
    host: Host,
    weight_quant: WeightQuant,
    act_quant: ActQuant,
    act_step: Option<Param>,
    /// −1 before LSQ's initialization, then 1 (signed) or 0 (unsigned).
    act_signed: Buffer,
    ttq: Option<(Param, Param)>,
    /// The BatchNorm after the layer folded in after QAT ([`QuantLayer::set_fold`]): the layer
    /// then evaluates exactly as the integer model does and no longer trains.
    folded: Option<Fold>,
}

/// The one-element parameter `v` in `dtype`.
fn scalar_param(v: f64, dtype: autograd::DType) -> Result<Param> {
    Ok(Param::new(Tensor::from_vec(vec![v], &[1])?.to_dtype(dtype)?))
}

impl QuantLayer {
    /// Wraps `layer` (a [`Conv2d`] or a [`Linear`]); anything else is returned as the error.
    pub fn wrap(layer: Box<dyn Module>, weight_quant: WeightQuant, act_quant: ActQuant) -> Result<QuantLayer> {
        let any = layer.into_any();
        let host = match any.downcast::<Conv2d>() {
            Ok(c) => Host::Conv(*c),
            Err(any) => match any.downcast::<Linear>() {
                Ok(l) => Host::Linear(*l),
                Err(_) => return Err(Error::invalid("QuantLayer", "only a Conv2d or a Linear can be quantized")),
            },
        };
        let weight = match &host {
            Host::Conv(c) => c.weight.tensor(),
            Host::Linear(l) => l.weight.tensor(),
        };
        let dtype = weight.dtype();
        let ttq = match weight_quant {
            WeightQuant::TernaryTtq { t } => {
                // TTQ's start: each scale the mean magnitude of the weights in its region.
                let w = weight.to_f64_vec()?;
                let delta = t * w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let mean = |f: &dyn Fn(f64) -> bool| {
                    let sel: Vec<f64> = w.iter().copied().filter(|v| f(*v)).map(f64::abs).collect();
                    if sel.is_empty() {
                        delta.max(1e-3)
                    } else {
                        sel.iter().sum::<f64>() / sel.len() as f64
                    }
                };
                Some((scalar_param(mean(&|v| v > delta), dtype)?, scalar_param(mean(&|v| v < -delta), dtype)?))
            }
            _ => None,
        };
        let act_step = match act_quant {
            ActQuant::Lsq => Some(scalar_param(1.0, dtype)?),
            ActQuant::Pact { alpha } => Some(scalar_param(alpha, dtype)?),
            _ => None,
        };
        Ok(QuantLayer {
            host,
            weight_quant,
            act_quant,
            act_step,
            act_signed: Buffer::new(Tensor::from_vec(vec![-1.0f32], &[1])?.to_dtype(dtype)?),
            ttq,
            folded: None,
        })
    }

    /// The weight quantizer.
    pub fn weight_quant(&self) -> WeightQuant {
        self.weight_quant
    }

    /// The activation quantizer.
    pub fn act_quant(&self) -> ActQuant {
        self.act_quant
    }

    fn latent(&self) -> &Param {
        match &self.host {
            Host::Conv(c) => &c.weight,
            Host::Linear(l) => &l.weight,
        }
    }

    /// The fake-quantized weight (differentiable in the latent weight and TTQ's scales).
    pub fn quantized_weight(&self) -> Result<Tensor> {
        let w = self.latent().tensor();
        match self.weight_quant {
            WeightQuant::TernaryAbsmean => ternary_absmean(&w),
            WeightQuant::TernaryTwn => ternary_twn(&w),
            WeightQuant::TernaryTtq { t } => {
                let (p, n) = self.ttq.as_ref().ok_or_else(|| Error::invalid("QuantLayer", "TTQ without scales"))?;
                ternary_ttq(&w, &p.tensor(), &n.tensor(), t)
            }
            WeightQuant::Int8 => int8_weight(&w),
        }
    }

    /// The fake-quantized input.
    pub fn quantized_input(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        match self.act_quant {
            ActQuant::None => Ok(x.clone()),
            ActQuant::Fixed { lo, hi } => fixed_range(x, lo, hi, 8),
            ActQuant::Pact { .. } => pact(x, &self.step()?.tensor(), 8),
            ActQuant::Lsq => {
                let step = self.step()?;
                if self.act_signed.get().to_f64_vec()?[0] < 0.0 {
                    if !mode.is_train() {
                        return Err(Error::invalid(
                            "QuantLayer",
                            "LSQ's step is set on the first training batch; this layer has seen none (train, or load a QAT checkpoint)",
                        ));
                    }
                    no_grad(|| -> Result<()> {
                        let signed = x.min(&(0..x.ndim()).collect::<Vec<_>>(), false)?.item()? < 0.0;
                        let qp = if signed { 127.0 } else { 255.0 };
                        let s = lsq_init(x, qp)?.max(1e-8);
                        step.set_data(&Tensor::from_vec(vec![s], &[1])?.to_dtype(x.dtype())?)?;
                        self.act_signed
                            .set_data(&Tensor::from_vec(vec![f64::from(u8::from(signed))], &[1])?.to_dtype(x.dtype())?)
                    })?;
                }
                let signed = self.act_signed.get().to_f64_vec()?[0] > 0.5;
                quantize_lsq(x, &step.tensor(), signed)
            }
        }
    }

    /// The input quantizer as [`InputCodes`] (a trained layer: LSQ's step set), for the integer
    /// inference form.
    pub fn input_codes(&self) -> Result<InputCodes> {
        let op = "QuantLayer::input_codes";
        let step = || -> Result<Tensor> { Ok(self.step()?.tensor().detach()) };
        match self.act_quant {
            ActQuant::Lsq => {
                let flag = self.act_signed.get().to_f64_vec()?[0];
                if flag < 0.0 {
                    return Err(Error::invalid(op, "LSQ's step was never set: the layer has not been trained"));
                }
                Ok(InputCodes::Lsq { step: step()?, signed: flag > 0.5 })
            }
            ActQuant::Pact { .. } => Ok(InputCodes::Pact { alpha: step()? }),
            other => Err(Error::invalid(
                op,
                format!("the integer form needs LSQ or PACT inputs (zero maps to code 0); this layer's are {other:?}"),
            )),
        }
    }

    /// The shape of the latent (and quantized) weight.
    pub fn latent_shape(&self) -> Vec<usize> {
        self.latent().tensor().shape().to_vec()
    }

    /// The convolution's geometry (`None` for a linear layer) and the layer's bias, if any.
    pub fn host_parts(&self) -> (Option<autograd::Conv2dParams>, Option<Tensor>) {
        match &self.host {
            Host::Conv(c) => (Some(c.params), c.bias.as_ref().map(|b| b.tensor().detach())),
            Host::Linear(l) => (None, l.bias.as_ref().map(|b| b.tensor().detach())),
        }
    }

    /// Folds `fold` (made from this layer by [`Fold::new`], usually through
    /// [`super::fold_batch_norms`]) into the layer: from then on it evaluates the quantized
    /// convolution exactly with the folded requantization (see [`super::fold`]) and refuses to
    /// train.
    pub fn set_fold(&mut self, fold: Fold) {
        self.folded = Some(fold);
    }

    /// The folded BatchNorm, once [`QuantLayer::set_fold`] has run.
    pub fn folded(&self) -> Option<&Fold> {
        self.folded.as_ref()
    }

    fn step(&self) -> Result<&Param> {
        self.act_step.as_ref().ok_or_else(|| Error::invalid("QuantLayer", "no activation step"))
    }
}

impl Module for QuantLayer {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if let Some(fold) = &self.folded {
            if mode.is_train() {
                return Err(Error::invalid(
                    "QuantLayer",
                    "this layer's BatchNorm is folded (after QAT): it evaluates only; train before folding",
                ));
            }
            let (codes, step, _) = self.input_codes()?.codes(x)?;
            let conv = self.host_parts().0;
            return no_grad(|| fold.evaluate(&codes, step, conv))?.to_dtype(x.dtype());
        }
        let xq = self.quantized_input(x, mode)?;
        let w = self.quantized_weight()?;
        match &self.host {
            Host::Conv(c) => c.forward_with_weight(&xq, &w),
            Host::Linear(l) => l.forward_with_weight(&xq, &w),
        }
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v = match &self.host {
            Host::Conv(c) => c.params(),
            Host::Linear(l) => l.params(),
        };
        v.extend(self.act_step.iter().map(|p| ("act_step".to_string(), p.clone())));
        if let Some((p, n)) = &self.ttq {
            v.push(("weight_pos".into(), p.clone()));
            v.push(("weight_neg".into(), n.clone()));
        }
        v
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        vec![("act_signed".into(), self.act_signed.clone())]
    }

    fn type_name(&self) -> &'static str {
        "QuantLayer"
    }
}
