//! [`MaskedLayer`]: a convolution or linear layer whose weight is a masked parameter,
//! `θ = P(m ⊙ φ + (1 − m) ⊙ f)`.
//!
//! - `φ` ([`MaskedLayer::values`]) is the trainable tensor, saved under the layer's `weight`
//!   name (`layer1.0.conv1.weight`), so a dense checkpoint of the same model loads into it;
//! - `m` is a 0/1 buffer of `φ`'s shape saved as `weight_mask` (PyTorch's
//!   `torch.nn.utils.prune` names the pair `weight_orig`/`weight_mask`; here the trainable tensor
//!   keeps the plain name, so optimizer state, weight decay groups and pretrained loading see the
//!   usual names);
//! - `f` is the fixed part: zero for pruning (nothing stored), or for freezing the random
//!   initialization, a buffer `weight_init` that [`Fixed::Seeded`] regenerates bit for bit from
//!   a seed (the compact checkpoint stores only the seed);
//! - `P` is the [`Parametrization`] that maps the masked trainable tensor to the layer's weight:
//!   the identity for pruning raw weights; a basis change (a filter basis times coefficients)
//!   for interspace pruning, where `φ` are the coefficients. Scores and masks always live on
//!   `φ`, whatever `P` is.
//!
//! The effective weight is built in every forward pass, so `∂L/∂φ = m ⊙ ∂L/∂(m⊙φ)`: masked
//! coordinates get an exact zero gradient from autograd itself. [`MaskedLayer::keep_dense_grad`]
//! makes the next forward pass keep the gradient with respect to the masked tensor `m ⊙ φ + …`
//! (the *dense* gradient, as if the mask were all ones), which RigL grows by.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use autograd::backends::ops::{CmpOp, Distribution};
use autograd::{no_grad, Conv2dParams, DType, Error, Result, Tensor};
use layers::{Buffer, Conv2d, Linear, Mode, Module, Param};

/// What maps the masked trainable tensor `m ⊙ φ + (1 − m) ⊙ f` to the layer's weight.
///
/// The identity ([`IdentityParam`]) is pruning or freezing of raw weights; interspace pruning
/// maps coefficients through a per-layer filter basis. Scores are computed on the trainable
/// tensor through autograd, so any differentiable map works.
pub trait Parametrization: Send + Sync {
    /// The layer's weight from the masked trainable tensor (differentiable).
    fn weight(&self, masked: &Tensor) -> Result<Tensor>;
    /// The shape of the trainable tensor for a layer weight of shape `weight_shape`.
    fn trainable_shape(&self, weight_shape: &[usize]) -> Vec<usize>;
    /// The trainable tensor's start for a layer whose weight is `weight` (detached): the
    /// weight itself for the identity, its coordinates in the basis for a basis change (so the
    /// wrapped layer computes what the plain one did).
    fn initial_values(&self, weight: &Tensor) -> Result<Tensor>;
    /// Trainable tensors of the map (a learned basis), saved under the layer's names with a
    /// `weight_` prefix (`weight_basis`).
    fn params(&self) -> Vec<(String, Param)> {
        Vec::new()
    }
    /// Fixed tensors of the map (a frozen basis), saved under the layer's names with a
    /// `weight_` prefix.
    fn buffers(&self) -> Vec<(String, Buffer)> {
        Vec::new()
    }
    /// The layer's sparse execution form when the map has one of its own (interspace pruning's
    /// basis convolution followed by a sparse 1x1 convolution); `None` runs the effective
    /// weight on the sparse convolution kernel.
    fn sparse_form(&self, _layer: &MaskedLayer) -> Result<Option<Box<dyn Module>>> {
        Ok(None)
    }
    /// A short name for summaries (`identity`).
    fn name(&self) -> &'static str;
}

/// The identity parametrization: the trainable tensor is the weight.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityParam;

impl Parametrization for IdentityParam {
    fn weight(&self, masked: &Tensor) -> Result<Tensor> {
        Ok(masked.clone())
    }
    fn trainable_shape(&self, weight_shape: &[usize]) -> Vec<usize> {
        weight_shape.to_vec()
    }
    fn initial_values(&self, weight: &Tensor) -> Result<Tensor> {
        Ok(weight.clone())
    }
    fn name(&self) -> &'static str {
        "identity"
    }
}

/// The fixed part `f` of a masked parameter, used where the mask is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixed {
    /// Pruning: masked coordinates are 0.
    Zero,
    /// Freezing: masked coordinates keep the random initialization, He-normal (fan-in, ReLU
    /// gain: standard deviation `√(2 / fan_in)`) drawn from this seed by the counter-based
    /// generator, so the seed alone regenerates them ([`he_normal_from_seed`]).
    Seeded(u64),
}

/// The He-normal tensor of `shape` (fan-in `shape[1]·Π shape[2..]`, std `√(2/fan_in)`) drawn
/// from `seed`: the same bits on every machine and thread count (the backends' random fill is
/// keyed by (seed, element index)).
pub fn he_normal_from_seed(shape: &[usize], seed: u64) -> Result<Tensor> {
    let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
    let std = (2.0 / fan_in as f64).sqrt();
    Tensor::random(shape, Distribution::Normal { mean: 0.0, std }, seed, DType::F32, autograd::Device::Cpu)
}

/// The layer a [`MaskedLayer`] computes with.
pub enum Host {
    /// A 2-D convolution.
    Conv(Conv2d),
    /// A fully connected layer.
    Linear(Linear),
}

/// The geometry of a masked layer's weight, for density allocation (ER, ERK) and sparse
/// execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerGeometry {
    /// Input channels per group (convolution) or input features.
    pub n_in: usize,
    /// Output channels or features.
    pub n_out: usize,
    /// Kernel height (1 for linear layers).
    pub kh: usize,
    /// Kernel width (1 for linear layers).
    pub kw: usize,
    /// The convolution's geometry (`None` for linear layers).
    pub conv: Option<Conv2dParams>,
}

impl LayerGeometry {
    /// Number of weights.
    pub fn numel(&self) -> usize {
        self.n_in * self.n_out * self.kh * self.kw
    }
}

/// A convolution or linear layer with a masked weight (see the [module docs](self)).
pub struct MaskedLayer {
    host: Host,
    param: Box<dyn Parametrization>,
    values: Param,
    mask: Buffer,
    fixed: Option<Buffer>,
    seed: Option<u64>,
    keep_dense: AtomicBool,
    dense: Mutex<Option<Tensor>>,
}

impl MaskedLayer {
    /// Wraps `module` (a [`Conv2d`] or [`Linear`], possibly boxed as `dyn Module`) with the
    /// identity parametrization and an all-ones mask. With [`Fixed::Seeded`], the weight is
    /// re-initialized from the seed (the fixed part and the trainable start are then the same
    /// regenerable tensor). Any other module is an error naming its type.
    pub fn wrap(module: Box<dyn Module>, fixed: Fixed) -> Result<MaskedLayer> {
        MaskedLayer::wrap_with(module, fixed, Box::new(IdentityParam))
    }

    /// [`MaskedLayer::wrap`] with another parametrization: the trainable tensor starts as
    /// [`Parametrization::initial_values`] of the layer's weight, held by the layer's own
    /// weight parameter when the shapes agree (always for the identity).
    pub fn wrap_with(module: Box<dyn Module>, fixed: Fixed, param: Box<dyn Parametrization>) -> Result<MaskedLayer> {
        let type_name = module.type_name();
        let any = module.into_any();
        let host = match any.downcast::<Conv2d>() {
            Ok(c) => Host::Conv(*c),
            Err(any) => match any.downcast::<Linear>() {
                Ok(l) => Host::Linear(*l),
                Err(_) => {
                    return Err(Error::invalid(
                        "MaskedLayer::wrap",
                        format!("can mask Conv2d and Linear weights only, not a {type_name}"),
                    ))
                }
            },
        };
        let weight = match &host {
            Host::Conv(c) => c.weight.clone(),
            Host::Linear(l) => l.weight.clone(),
        };
        let w = weight.leaf();
        let shape = param.trainable_shape(w.shape());
        let values = if param.name() == "identity" {
            weight
        } else {
            let v = no_grad(|| param.initial_values(&w.detach()))?;
            if v.shape() != shape.as_slice() {
                return Err(Error::shape("MaskedLayer::wrap", &shape, v.shape()));
            }
            if v.shape() == w.shape() {
                // The host's own parameter holds the values, so the MAC trace and every
                // name-keyed tool still find the layer under `weight`.
                weight.set_data(&v)?;
                weight
            } else {
                Param::new(v)
            }
        };
        let (fixed_buf, seed) = match fixed {
            Fixed::Zero => (None, None),
            Fixed::Seeded(seed) => {
                let init = he_normal_from_seed(&shape, seed)?.to_dtype(w.dtype())?.to_device(w.device())?;
                values.set_data(&init)?;
                (Some(Buffer::new(init)), Some(seed))
            }
        };
        let mask = Buffer::new(Tensor::ones(&shape).to_dtype(w.dtype())?.to_device(w.device())?);
        Ok(MaskedLayer {
            host,
            param,
            values,
            mask,
            fixed: fixed_buf,
            seed,
            keep_dense: AtomicBool::new(false),
            dense: Mutex::new(None),
        })
    }

    /// The trainable tensor `φ` (saved as `weight`).
    pub fn values(&self) -> &Param {
        &self.values
    }

    /// The name of the trainable tensor under the layer's path (`weight`).
    pub fn values_name(&self) -> &'static str {
        "weight"
    }

    /// The current 0/1 mask (`weight_mask`).
    pub fn mask(&self) -> Tensor {
        self.mask.get()
    }

    /// The mask buffer itself.
    pub fn mask_buffer(&self) -> &Buffer {
        &self.mask
    }

    /// The fixed part's seed (freezing), `None` for pruning.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The fixed tensor (freezing), `None` for pruning.
    pub fn fixed(&self) -> Option<Tensor> {
        self.fixed.as_ref().map(|b| b.get())
    }

    /// The parametrization.
    pub fn parametrization(&self) -> &dyn Parametrization {
        self.param.as_ref()
    }

    /// The host layer.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The host layer's bias, if any.
    pub fn bias(&self) -> Option<&Param> {
        match &self.host {
            Host::Conv(c) => c.bias.as_ref(),
            Host::Linear(l) => l.bias.as_ref(),
        }
    }

    /// The weight's geometry.
    pub fn geometry(&self) -> LayerGeometry {
        match &self.host {
            Host::Conv(c) => {
                let s = c.weight_shape();
                LayerGeometry { n_in: s[1], n_out: s[0], kh: s[2], kw: s[3], conv: Some(c.params) }
            }
            Host::Linear(l) => {
                let (i, o) = l.features();
                LayerGeometry { n_in: i, n_out: o, kh: 1, kw: 1, conv: None }
            }
        }
    }

    /// Number of trainable coordinates (the mask's size).
    pub fn numel(&self) -> usize {
        self.values.leaf().numel()
    }

    /// Number of active (mask 1) coordinates.
    pub fn active(&self) -> Result<usize> {
        Ok(self.mask.get().to_f64_vec()?.iter().filter(|&&m| m != 0.0).count())
    }

    /// Sets the mask (0/1, `φ`'s shape) and zeroes `φ` where it is 0, so weight decay and
    /// momentum-free steps never move a masked coordinate. Optimizer state is the caller's
    /// ([`crate::sparse::engine::apply_masks`] masks it too).
    pub fn set_mask(&self, mask: &Tensor) -> Result<()> {
        let cur = self.mask.get();
        if mask.shape() != cur.shape() {
            return Err(Error::shape("MaskedLayer::set_mask", cur.shape(), mask.shape()));
        }
        no_grad(|| -> Result<()> {
            let m = mask.to_dtype(cur.dtype())?.to_device(cur.device())?.contiguous()?;
            self.mask.set(m.clone());
            self.zero_where_not(&m)
        })
    }

    /// Sets `φ` to +0 where `keep` (0/1, `φ`'s shape) is 0 and leaves it elsewhere (a
    /// selection, not a product: +0 whatever the old sign).
    pub fn zero_where_not(&self, keep: &Tensor) -> Result<()> {
        no_grad(|| {
            let v = self.values.leaf().detach();
            let k = keep.to_device(v.device())?.compare_scalar(0.0, CmpOp::Ne)?;
            self.values.set_data(&Tensor::where_(&k, &v, &Tensor::zeros_like(&v)?)?)
        })
    }

    /// The masked trainable tensor `m ⊙ φ + (1 − m) ⊙ f` (differentiable in `φ`).
    pub fn masked_values(&self) -> Result<Tensor> {
        let phi = self.values.tensor();
        let m = self.mask.get();
        let masked = phi.mul(&m)?;
        match &self.fixed {
            None => Ok(masked),
            Some(f) => masked.add(&f.get().mul(&m.rsub_scalar(1.0)?)?),
        }
    }

    /// The layer's effective weight `P(m ⊙ φ + (1 − m) ⊙ f)`, detached.
    pub fn effective_weight(&self) -> Result<Tensor> {
        no_grad(|| self.param.weight(&self.masked_values()?.detach()))
    }

    /// Keep (or stop keeping) the gradient with respect to the masked tensor in the following
    /// forward passes, readable after backward with [`MaskedLayer::dense_grad`].
    pub fn keep_dense_grad(&self, keep: bool) {
        self.keep_dense.store(keep, Ordering::Relaxed);
        if !keep {
            *self.dense.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// `∂L/∂(m ⊙ φ + (1 − m) ⊙ f)` of the last backward pass after a forward pass with
    /// [`MaskedLayer::keep_dense_grad`] on: the gradient as if every coordinate were active.
    pub fn dense_grad(&self) -> Option<Tensor> {
        self.dense.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|t| t.grad())
    }

    /// The host's forward pass with weight `w`.
    pub fn host_forward(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        match &self.host {
            Host::Conv(c) => c.forward_with_weight(x, w),
            Host::Linear(l) => l.forward_with_weight(x, w),
        }
    }
}

impl Module for MaskedLayer {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let masked = self.masked_values()?;
        if self.keep_dense.load(Ordering::Relaxed) && masked.requires_grad() {
            masked.retain_grad();
            *self.dense.lock().unwrap_or_else(|e| e.into_inner()) = Some(masked.clone());
        }
        let w = self.param.weight(&masked)?;
        self.host_forward(x, &w)
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight".to_string(), self.values.clone())];
        v.extend(self.param.params().into_iter().map(|(n, p)| (format!("weight_{n}"), p)));
        v.extend(self.bias().map(|b| ("bias".to_string(), b.clone())));
        v
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        let mut v = vec![("weight_mask".to_string(), self.mask.clone())];
        v.extend(self.fixed.iter().map(|f| ("weight_init".to_string(), f.clone())));
        v.extend(self.param.buffers().into_iter().map(|(n, b)| (format!("weight_{n}"), b)));
        v
    }

    fn type_name(&self) -> &'static str {
        "MaskedLayer"
    }
}
