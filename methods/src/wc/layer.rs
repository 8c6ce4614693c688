//! [`WeightCompander`]: a `Conv2d` or `Linear` whose weight is `w = ψ(v) = a·f(v/b)`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use autograd::{no_grad, Conv2dParams, Error, Result, Tensor};
use layers::surgery::Around;
use layers::{mac, Conv2d, Linear, Mode, Module, Param};

use super::Compander;

/// The relative margin that keeps `w₀/a` inside the compander's range before inverting:
/// `|w₀/a| <= (1 − CLAMP_MARGIN)·sup|f|`.
pub const CLAMP_MARGIN: f64 = 1e-3;

/// `a` or `b` of a compander: a fixed number, or a learned per-layer scalar (a `[1]` parameter).
#[derive(Clone, Debug)]
pub enum Scale {
    /// A constant (the paper's table).
    Fixed(f64),
    /// A trainable `[1]` parameter (the "fine" learned variant).
    Learned(Param),
}

impl Scale {
    /// The current value.
    pub fn value(&self) -> Result<f64> {
        match self {
            Scale::Fixed(v) => Ok(*v),
            Scale::Learned(p) => p.leaf().item(),
        }
    }
}

/// Which layer the weight belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Conv2d(Conv2dParams),
    Linear,
}

/// A convolution or linear layer with its weight reparameterized as `w = ψ(v) = a·f(v/b)`
/// (Weight Compander, Cakaj, Mehnert and Yang, IJCNN 2023), `f` an arctangent by default
/// ([`Compander`]). `v` starts at `ψ⁻¹(w₀)`, so the layer computes exactly what the plain one
/// did; gradients reach `v` (and a learned `a`, `b`) through plain autodiff. The bias is not
/// reparameterized.
///
/// Parameter names (PyTorch's `weight_norm` style, `weight_` + the symbol): `weight_v` (the
/// weight's shape), `weight_a` and `weight_b` (`[1]`, only when learned), and `bias` as before.
/// [`WeightCompander::plain`] folds it back into a plain layer with `weight = ψ(v)`.
///
/// ```
/// use methods::wc::{Compander, Scale, WeightCompander};
/// use layers::{Linear, Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let fc = Linear::new(4, 3, true);
/// let x = Tensor::randn(&[2, 4], 0).unwrap();
/// let before = fc.forward(&x, Mode::Eval).unwrap();
/// let wc = WeightCompander::wrap(Box::new(fc), Compander::Arctan, Scale::Fixed(1.0), Scale::Fixed(0.6)).unwrap();
/// let names: Vec<String> = wc.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight_v", "bias"]);
/// let after = wc.forward(&x, Mode::Eval).unwrap();
/// let d = after.sub(&before).unwrap().abs().unwrap().max(&[0, 1], false).unwrap().item().unwrap();
/// assert!(d < 1e-6);
/// ```
pub struct WeightCompander {
    /// The free parameter `v` (`weight_v`).
    pub v: Param,
    /// `a` (`weight_a` when learned).
    pub a: Scale,
    /// `b` (`weight_b` when learned).
    pub b: Scale,
    /// `f`.
    pub compander: Compander,
    /// The layer's bias, unchanged.
    pub bias: Option<Param>,
    kind: Kind,
    clamped: AtomicUsize,
    keep_weight: AtomicBool,
    last_weight: Mutex<Option<Tensor>>,
}

impl WeightCompander {
    /// Reparameterizes the weight of `layer` (a [`Conv2d`] or [`Linear`]): `v = b·f⁻¹(w₀/a)`,
    /// with `w₀/a` first clamped into `f`'s range by [`CLAMP_MARGIN`] (counted in
    /// [`WeightCompander::clamped`]). Learned scales start at their current values. `a` and `b`
    /// must be positive; another layer type is an error naming it.
    pub fn wrap(layer: Box<dyn Module>, compander: Compander, a: Scale, b: Scale) -> Result<WeightCompander> {
        let (a0, b0) = (a.value()?, b.value()?);
        if !(a0 > 0.0 && b0 > 0.0 && a0.is_finite() && b0.is_finite()) {
            return Err(Error::invalid("WeightCompander", format!("a = {a0} and b = {b0} must be positive")));
        }
        let (weight, bias, kind) = if let Some(c) = layer.downcast_ref::<Conv2d>() {
            (c.weight.leaf(), c.bias.clone(), Kind::Conv2d(c.params))
        } else if let Some(l) = layer.downcast_ref::<Linear>() {
            (l.weight.leaf(), l.bias.clone(), Kind::Linear)
        } else {
            return Err(Error::invalid(
                "WeightCompander",
                format!("can wrap a Conv2d or a Linear, not a {}", layer.type_name()),
            ));
        };
        let limit = (1.0 - CLAMP_MARGIN) * compander.sup();
        let mut clamped = 0;
        let v0: Vec<f64> = weight
            .to_f64_vec()?
            .into_iter()
            .map(|w| {
                let y = w / a0;
                let y = if y.abs() > limit {
                    clamped += 1;
                    limit.copysign(y)
                } else {
                    y
                };
                b0 * compander.inverse_unit(y)
            })
            .collect();
        let v = Tensor::from_vec(v0, weight.shape())?.to_dtype(weight.dtype())?.to_device(weight.device())?;
        Ok(WeightCompander {
            v: Param::new(v),
            a,
            b,
            compander,
            bias,
            kind,
            clamped: AtomicUsize::new(clamped),
            keep_weight: AtomicBool::new(false),
            last_weight: Mutex::new(None),
        })
    }

    /// How many entries of the initial weight lay outside `(1 − CLAMP_MARGIN)·a·sup|f|` and
    /// were clamped before inverting.
    pub fn clamped(&self) -> usize {
        self.clamped.load(Ordering::Relaxed)
    }

    /// `ψ(v) = a·f(v/b)`, differentiable in `v` and in learned `a`, `b`.
    pub fn weight(&self) -> Result<Tensor> {
        let v = self.v.tensor();
        let u = match &self.b {
            Scale::Fixed(b) => v.mul_scalar(1.0 / b)?,
            Scale::Learned(b) => v.div(&b.tensor())?,
        };
        let f = self.compander.apply_unit(&u)?;
        match &self.a {
            Scale::Fixed(a) => f.mul_scalar(*a),
            Scale::Learned(a) => f.mul(&a.tensor()),
        }
    }

    /// The bound `|a|·sup|f|` on every entry of the weight (infinite for arsinh).
    pub fn bound(&self) -> Result<f64> {
        Ok(self.a.value()?.abs() * self.compander.sup())
    }

    /// Keep the weight of each training forward pass (with its graph) for
    /// [`WeightCompander::take_weight`] (the weight-decay term of the loss uses it rather than
    /// computing `ψ(v)` again).
    pub fn keep_weight(&self, keep: bool) {
        self.keep_weight.store(keep, Ordering::Relaxed);
        if !keep {
            *self.last_weight.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// The weight of the last training forward pass (kept when [`WeightCompander::keep_weight`]
    /// is on), or `ψ(v)` computed now; either way with its graph.
    pub fn take_weight(&self) -> Result<Tensor> {
        match self.last_weight.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(w) => Ok(w),
            None => self.weight(),
        }
    }

    /// The plain layer with `weight = ψ(v)` (detached) and the same bias: the inference form.
    pub fn plain(&self) -> Result<Box<dyn Module>> {
        let w = no_grad(|| self.weight())?.detach();
        let bias = self.bias.as_ref().map(|b| b.leaf().detach());
        Ok(match self.kind {
            Kind::Conv2d(p) => Box::new(Conv2d::from_tensors(w, bias, p)),
            Kind::Linear => Box::new(Linear::from_tensors(w, bias)),
        })
    }

    /// [`WeightCompander::wrap`] through [`Around`] wrappers (the wrapper is kept, its inner
    /// layer reparameterized): what model surgery hands over for a selected layer.
    pub fn wrap_through(layer: Box<dyn Module>, compander: Compander, a: Scale, b: Scale) -> Result<Box<dyn Module>> {
        if layer.downcast_ref::<Around>().is_some() {
            let mut around = *layer.into_any().downcast::<Around>().expect("checked to be an Around");
            let inner = std::mem::replace(&mut around.inner, Box::new(layers::Identity));
            around.inner = Self::wrap_through(inner, compander, a, b)?;
            return Ok(Box::new(around));
        }
        Ok(Box::new(Self::wrap(layer, compander, a, b)?))
    }
}

impl Module for WeightCompander {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let w = self.weight()?;
        if mode.is_train() && autograd::is_grad_enabled() && self.keep_weight.load(Ordering::Relaxed) {
            *self.last_weight.lock().unwrap_or_else(|e| e.into_inner()) = Some(w.clone());
        }
        let bias = self.bias.as_ref().map(|b| b.tensor());
        match self.kind {
            Kind::Conv2d(p) => {
                let y = x.conv2d(&w, bias.as_ref(), p)?;
                let s = w.shape();
                mac::record(
                    Some(&self.v),
                    "conv2d",
                    y.numel() as u64 * (s[1] * s[2] * s[3]) as u64,
                    x.shape(),
                    y.shape(),
                );
                Ok(y)
            }
            Kind::Linear => {
                let (fout, fin) = (w.shape()[0], w.shape()[1]);
                if x.ndim() == 0 || x.shape()[x.ndim() - 1] != fin {
                    return Err(Error::shape("WeightCompander(Linear)", x.shape(), w.shape()));
                }
                let mut y = x.matmul(&w.t()?)?;
                if let Some(b) = &bias {
                    y = y.add(b)?;
                }
                let rows = (x.numel() / fin.max(1)) as u64;
                mac::record(Some(&self.v), "linear", rows * (fin * fout) as u64, x.shape(), y.shape());
                Ok(y)
            }
        }
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight_v".to_string(), self.v.clone())];
        if let Scale::Learned(a) = &self.a {
            v.push(("weight_a".into(), a.clone()));
        }
        if let Scale::Learned(b) = &self.b {
            v.push(("weight_b".into(), b.clone()));
        }
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }
}
