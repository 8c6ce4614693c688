//! The mask engine: which layers are prunable, wrapping them as [`MaskedLayer`]s, finding them
//! again, applying masks with their optimizer state, and counting what is left.
//!
//! Masks travel as host vectors (`Vec<f32>` of 0/1 per layer, in [`masked_layers`] order) or
//! tensors of the trainable tensor's shape; every mask change goes through [`apply_masks`],
//! which sets the mask buffer, zeroes the masked trainable coordinates and multiplies the
//! optimizer's state (SGD momentum, Adam moments) by the mask, so neither momentum nor weight
//! decay can revive a masked coordinate: with `φ = 0`, a zero gradient and zero state, SGD's
//! `wd·φ` and AdamW's `lr·wd·φ` are both exactly 0.

use autograd::{no_grad, Error, Result, Tensor};
use layers::optim::Optimizer;
use layers::surgery::{replace, unwrapped, PathPattern, Select};
use layers::{Conv2d, Linear, Module, ModuleExt};

use super::masked::{Fixed, MaskedLayer};

/// Which convolution and linear layers get a mask (BatchNorm parameters and biases never do).
#[derive(Clone, Debug, PartialEq)]
pub enum Prunable {
    /// Every convolution and linear layer (the common practice for pruning at initialization).
    All,
    /// All but the first convolution or linear layer in module order (the stem).
    NoFirst,
    /// All but the last one (the classifier).
    NoLast,
    /// All but the first and the last.
    NoFirstLast,
    /// The layers whose path matches one of these globs (`layer*.**`).
    Globs(Vec<PathPattern>),
}

impl Prunable {
    /// Parses `all`, `no-first`, `no-last`, `no-first-last` or a `;`-separated list of path
    /// globs.
    pub fn parse(s: &str) -> Result<Prunable> {
        Ok(match s.trim() {
            "all" => Prunable::All,
            "no-first" => Prunable::NoFirst,
            "no-last" => Prunable::NoLast,
            "no-first-last" => Prunable::NoFirstLast,
            globs => Prunable::Globs(globs.split(';').map(|g| PathPattern::new(g.trim())).collect::<Result<Vec<_>>>()?),
        })
    }

    /// The paths of the prunable layers of `model`, in module order.
    pub fn paths(&self, model: &dyn Module) -> Vec<String> {
        let all = Select::all().of_type::<Conv2d>().of_type::<Linear>().paths(model);
        let n = all.len();
        all.into_iter()
            .enumerate()
            .filter(|(i, p)| match self {
                Prunable::All => true,
                Prunable::NoFirst => *i != 0,
                Prunable::NoLast => *i + 1 != n,
                Prunable::NoFirstLast => *i != 0 && *i + 1 != n,
                Prunable::Globs(g) => g.iter().any(|g| g.matches(p)),
            })
            .map(|(_, p)| p)
            .collect()
    }
}

/// Wraps every prunable layer of `model` as a [`MaskedLayer`] with an all-ones mask; `fixed`
/// gives each its fixed part from its index and path. Returns the wrapped paths. A selection
/// that matches nothing is an error.
pub fn wrap(model: &mut dyn Module, prunable: &Prunable, fixed: &dyn Fn(usize, &str) -> Fixed) -> Result<Vec<String>> {
    wrap_each(model, prunable, &mut |i, path, old| MaskedLayer::wrap(old, fixed(i, path)))
}

/// Builds a layer's [`MaskedLayer`] from its index among the prunable layers, its path and the
/// module it replaces.
pub type MakeMasked<'a> = dyn FnMut(usize, &str, Box<dyn Module>) -> Result<MaskedLayer> + 'a;

/// Replaces every prunable layer of `model` by what `make` builds from its index, path and
/// module (a [`MaskedLayer`] with the parametrization the method needs). Returns the wrapped
/// paths. A selection that matches nothing is an error.
pub fn wrap_each(model: &mut dyn Module, prunable: &Prunable, make: &mut MakeMasked<'_>) -> Result<Vec<String>> {
    let paths = prunable.paths(model);
    if paths.is_empty() {
        return Err(Error::invalid("sparse", format!("no prunable layer selected by {prunable:?}")));
    }
    let chosen = paths.clone();
    let select =
        Select::all().of_type::<Conv2d>().of_type::<Linear>().filter(move |p, _| chosen.iter().any(|c| c == p));
    let mut i = 0;
    replace(model, &select, &mut |path, old| {
        let layer = make(i, path, old)?;
        i += 1;
        Ok(Box::new(layer))
    })
}

/// The masked layers of `model` with their paths, in module order.
pub fn masked_layers(model: &dyn Module) -> Vec<(String, &MaskedLayer)> {
    model
        .named_modules()
        .into_iter()
        .filter_map(|(p, m)| unwrapped(m).downcast_ref::<MaskedLayer>().map(|l| (p, l)))
        .collect()
}

/// The masked layers of `model`, or an error when it has none (a model the method did not
/// prepare).
pub fn require_masked(model: &dyn Module) -> Result<Vec<(String, &MaskedLayer)>> {
    let layers = masked_layers(model);
    if layers.is_empty() {
        return Err(Error::invalid("sparse", "the model has no masked layer (was it prepared by a sparse method?)"));
    }
    Ok(layers)
}

/// The optimizer's name of a layer's trainable tensor.
pub fn values_name(path: &str, layer: &MaskedLayer) -> String {
    if path.is_empty() {
        layer.values_name().to_string()
    } else {
        format!("{path}.{}", layer.values_name())
    }
}

/// `mask` (host 0/1 values) as a tensor shaped, typed and placed like `layer`'s trainable tensor.
pub fn mask_tensor(layer: &MaskedLayer, mask: &[f32]) -> Result<Tensor> {
    let v = layer.values().leaf();
    if mask.len() != v.numel() {
        return Err(Error::invalid(
            "sparse",
            format!("a mask of {} entries for a tensor of {:?}", mask.len(), v.shape()),
        ));
    }
    Tensor::from_vec(mask.to_vec(), v.shape())?.to_dtype(v.dtype())?.to_device(v.device())
}

/// Applies `masks` (one per masked layer, in [`masked_layers`] order): sets each mask, zeroes
/// the masked trainable coordinates and, given an optimizer, multiplies that parameter's state
/// by the mask.
pub fn apply_masks(model: &dyn Module, masks: &[Vec<f32>], mut opt: Option<&mut dyn Optimizer>) -> Result<()> {
    let layers = require_masked(model)?;
    if masks.len() != layers.len() {
        return Err(Error::invalid("sparse", format!("{} masks for {} masked layers", masks.len(), layers.len())));
    }
    for ((path, layer), mask) in layers.iter().zip(masks) {
        let m = mask_tensor(layer, mask)?;
        layer.set_mask(&m)?;
        if let Some(o) = opt.as_deref_mut() {
            o.mask_state(&values_name(path, layer), &m)?;
        }
    }
    Ok(())
}

/// The current masks as host vectors, in [`masked_layers`] order.
pub fn current_masks(model: &dyn Module) -> Result<Vec<Vec<f32>>> {
    masked_layers(model).iter().map(|(_, l)| to_f32(&l.mask())).collect()
}

/// A copy of `t` with storage of its own (in-place writes to `t`, such as optimizer updates,
/// do not reach it).
pub fn deep_copy(t: &Tensor) -> Result<Tensor> {
    Tensor::from_host(&t.to_host()?, t.shape(), t.device())
}

/// The values of `t` as `f32` whatever its float dtype.
pub fn to_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_f64_vec()?.into_iter().map(|v| v as f32).collect())
}

/// Multiplies the accumulated gradient of every masked trainable tensor by its mask. Autograd
/// already gives masked coordinates an exact zero (the forward pass multiplies by the mask);
/// this keeps the guarantee when a gradient was set or clipped by other code.
pub fn mask_gradients(model: &dyn Module) -> Result<()> {
    no_grad(|| {
        for (_, layer) in masked_layers(model) {
            let leaf = layer.values().leaf();
            if let Some(g) = leaf.grad() {
                leaf.set_grad(Some(g.mul(&layer.mask().to_dtype(g.dtype())?)?))?;
            }
        }
        Ok(())
    })
}

/// Active and total trainable coordinates of the masked layers.
#[derive(Clone, Debug, PartialEq)]
pub struct Counts {
    /// `(path, active, total)` per masked layer.
    pub layers: Vec<(String, usize, usize)>,
}

impl Counts {
    /// Active coordinates over all masked layers.
    pub fn active(&self) -> usize {
        self.layers.iter().map(|l| l.1).sum()
    }

    /// Coordinates of all masked layers.
    pub fn total(&self) -> usize {
        self.layers.iter().map(|l| l.2).sum()
    }

    /// The fraction of masked-out coordinates (`1 − active / total`).
    pub fn sparsity(&self) -> f64 {
        1.0 - self.active() as f64 / self.total().max(1) as f64
    }
}

/// Counts the active coordinates of every masked layer.
pub fn counts(model: &dyn Module) -> Result<Counts> {
    Ok(Counts {
        layers: masked_layers(model)
            .into_iter()
            .map(|(p, l)| Ok((p, l.active()?, l.numel())))
            .collect::<Result<Vec<_>>>()?,
    })
}
