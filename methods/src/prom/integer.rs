//! PROM's integer inference form: every quantized layer's multiply-accumulates in integers.
//!
//! [`IntLayer`] replaces a trained [`QuantLayer`] (and the BatchNorm after it, folded in):
//! its float input becomes the layer's 8-bit codes exactly as QAT quantized it
//! ([`InputCodes::codes`]), shifted into `i8` (unsigned codes minus 128); the weights are
//! stored as integers, ternary `{−1, 0, 1}` or int8, with one float scale per output channel;
//! the products are summed in `i32` by the backend's integer kernels — ternary 1x1 convolutions
//! on the add/subtract-only kernel ([`autograd::backends::Backend::ternary_conv1x1`]), other
//! convolutions and the classifier int8 x int8 -> i32 — and the shift is undone exactly by
//! adding `128 · Σ w` over the taps that fall inside the input (an integer map per input size).
//! The accumulator is then requantized to float once per output: `acc · m_o + a_o`, where
//! `m_o = step · s_o · γ_o/√(σ²_o + ε)` and `a_o` carries the bias and the folded BatchNorm.
//! A ReLU6 right after a layer (and its BatchNorm) is folded into the requantization as a clamp;
//! residual additions and pooling between the layers stay float (they multiply nothing). Each
//! end is one pass: the backend's fused `quantize_i8` makes the codes (scale, clamp, round,
//! offset and narrow at once) and `requantize` adds the shift terms, scales, offsets and clamps.
//!
//! Bit-exactness: the accumulators equal the integer dot products of the fake-quantized model's
//! codes and weights (tested), and the requantization is the [`Fold`] of the layer and its
//! BatchNorm, so the integer model's outputs equal bit for bit those of the fake-quantized
//! model with its BatchNorms folded ([`super::fold_batch_norms`], which evaluates the quantized
//! convolutions exactly in `f64`): the same predictions on every input (tested on a QAT
//! MobileNetV2; on CIFAR-10's test set by the `prom_agreement` example). The unfolded
//! fake-quantized model, which QAT trains and evaluates, computes the same function up to float
//! rounding (see [`super::fold`]).
//!
//! BatchNorm folding is exact here because every weight scale is per output channel: the
//! BatchNorm's per-channel factor multiplies the scale, its shift joins the bias, and the
//! integer weights do not change.

use std::collections::HashMap;
use std::sync::Mutex;

use autograd::profile::scope;
use autograd::{Conv2dParams, DType, Error, Layout, Result, Tensor};
use layers::{BatchNorm2d, Buffer, Identity, Mode, Module, ModuleExt, ReLU6};

use super::fold::{requantization_scale, Fold};
use super::layer::{InputCodes, QuantLayer};

/// A trained [`QuantLayer`] in integer form (see the [module docs](self)). Inference only.
pub struct IntLayer {
    /// `Some` for a convolution, `None` for a linear layer.
    conv: Option<Conv2dParams>,
    /// Integer weights (`i8`): `[O, C/g, kH, kW]`, `[O, C]` for a ternary 1x1 convolution (the
    /// kernel's layout), `[C, O]` for a linear layer.
    weight: Buffer,
    ternary: bool,
    /// Whether the weights are ternary (packed to 2 bits in checkpoints), on the ternary kernel
    /// or not.
    ternary_weights: bool,
    /// The quantized layer's weight shape.
    shape: Vec<usize>,
    codes: InputCodes,
    /// Per output channel: `scale · BatchNorm factor` (the codes' step joins it per call), and
    /// the bias after folding.
    mult: Vec<f32>,
    add: Vec<f32>,
    /// `128 · Σ w` over the in-bounds taps, per output position, cached by input size.
    shift_terms: Mutex<ShiftTerms>,
    /// The bounds of a ReLU6 that followed the layer, folded into the requantization.
    clamp: Option<(f64, f64)>,
}

/// The shift-undoing terms of one image per input size `(H, W)` (`i32`, on the CPU).
type ShiftTerms = HashMap<(usize, usize), Tensor>;

impl IntLayer {
    /// The integer form of `layer`, with `bn` (the BatchNorm that follows it, in evaluation
    /// form) folded in ([`Fold::new`]), or with the layer's own fold if it has one (then `bn`
    /// must be `None`). TTQ's two scales per layer have no integer form with one accumulator and
    /// are refused, as are layers whose input is not LSQ or PACT quantized.
    pub fn new(layer: &QuantLayer, bn: Option<&BatchNorm2d>) -> Result<IntLayer> {
        let fold = match (layer.folded(), bn) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("IntLayer", "the layer's BatchNorm is folded already; pass none"))
            }
            (Some(f), None) => f.clone(),
            (None, bn) => Fold::new(layer, bn)?,
        };
        let codes = layer.input_codes()?;
        IntLayer::assemble(layer.host_parts().0, &fold.shape, fold.weights, fold.ternary, codes, fold.mult, fold.add)
    }

    /// The layer from its integer weights `q` (`shape`: the quantized layer's weight shape) and
    /// per-channel requantization, choosing the ternary kernel for ternary 1x1 stride-1
    /// convolutions.
    fn assemble(
        conv: Option<Conv2dParams>,
        shape: &[usize],
        q: Vec<i8>,
        ternary: bool,
        codes: InputCodes,
        mult: Vec<f32>,
        add: Vec<f32>,
    ) -> Result<IntLayer> {
        let o = shape[0];
        if mult.len() != o || add.len() != o || q.len() != shape.iter().product::<usize>() {
            return Err(Error::invalid(
                "IntLayer",
                format!(
                    "{} weights, {} scales and {} shifts for a weight of shape {shape:?}",
                    q.len(),
                    mult.len(),
                    add.len()
                ),
            ));
        }
        let one_by_one = |p: &Conv2dParams| {
            shape.len() == 4
                && shape[2] == 1
                && shape[3] == 1
                && p.stride == (1, 1)
                && p.padding == (0, 0)
                && p.groups == 1
        };
        let (weight, ternary_kernel) = match &conv {
            Some(p) if ternary && one_by_one(p) => (Tensor::from_vec(q, &[o, shape[1]])?, true),
            Some(_) => (Tensor::from_vec(q, shape)?, false),
            None => (Tensor::from_vec(q, shape)?.t()?.contiguous()?, false),
        };
        Ok(IntLayer {
            conv,
            weight: Buffer::new(weight),
            ternary: ternary_kernel,
            ternary_weights: ternary,
            shape: shape.to_vec(),
            codes,
            mult,
            add,
            shift_terms: Mutex::new(HashMap::new()),
            clamp: None,
        })
    }

    /// The integer weights in the quantized layer's `[O, ...]` order.
    fn weights_out_major(&self) -> Result<Vec<i8>> {
        let w = self.weight.get();
        match self.conv {
            Some(_) => w.to_vec::<i8>(),
            None => w.t()?.contiguous()?.to_vec::<i8>(),
        }
    }

    /// The layer's part of an integer checkpoint, names relative to the layer: `weight` (`i8`)
    /// or, for ternary weights, `weight_ternary` (`u8`, four 2-bit codes per byte, see
    /// [`pack_ternary`]); `scale` and `shift` (`f32` `[O]`, the requantization without the
    /// codes' step); `act_step` (`f32` `[1]`, LSQ's step or PACT's clip) and `act_kind` (`u8`
    /// `[1]`: 0 unsigned LSQ, 1 signed LSQ, 2 PACT).
    pub fn checkpoint_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let q = self.weights_out_major()?;
        let weight = if self.ternary_weights {
            let n = q.len();
            ("weight_ternary".to_string(), Tensor::from_vec(pack_ternary(&q)?, &[n.div_ceil(4)])?)
        } else {
            ("weight".to_string(), Tensor::from_vec(q, &self.shape)?)
        };
        let (step, kind) = match &self.codes {
            InputCodes::Lsq { step, signed } => (step.to_dtype(DType::F32)?.reshape(&[1])?, u8::from(*signed)),
            InputCodes::Pact { alpha } => (alpha.to_dtype(DType::F32)?.reshape(&[1])?, 2),
        };
        Ok(vec![
            weight,
            ("scale".into(), Tensor::from_vec(self.mult.clone(), &[self.mult.len()])?),
            ("shift".into(), Tensor::from_vec(self.add.clone(), &[self.add.len()])?),
            ("act_step".into(), step),
            ("act_kind".into(), Tensor::from_vec(vec![kind], &[1])?),
        ])
    }

    /// Whether the layer runs on the add/subtract-only ternary kernel.
    pub fn is_ternary_kernel(&self) -> bool {
        self.ternary
    }

    /// The `i32` accumulators of `x` (`[N, O, oH, oW]` or `[N, O]`) and the codes' step: the
    /// integer dot products of the input's codes with the integer weights.
    pub fn accumulators(&self, x: &Tensor) -> Result<(Vec<i32>, Vec<usize>, f64)> {
        let (acc, terms, step) = self.shifted_accumulators(x)?;
        let shape = acc.shape().to_vec();
        let mut acc = acc.to_vec::<i32>()?;
        if let Some(terms) = terms {
            let terms = terms.to_vec::<i32>()?;
            for image in acc.chunks_exact_mut(terms.len().max(1)) {
                image.iter_mut().zip(&terms).for_each(|(a, &t)| *a += t);
            }
        }
        Ok((acc, shape, step))
    }

    /// The accumulators of the `i8`-shifted codes (unsigned codes minus 128), the per-image
    /// terms that undo the shift (`None` for signed codes, which need none) and the codes' step.
    fn shifted_accumulators(&self, x: &Tensor) -> Result<(Tensor, Option<Tensor>, f64)> {
        let (qi, step, zero) = scope("quantize_i8", x.device(), || self.codes.i8_codes(x))?;
        let w = self.weight.get();
        let acc = match &self.conv {
            Some(_) if self.ternary => {
                let s = scope("ternary_conv1x1", x.device(), || {
                    qi.storage().ternary_conv1x1(qi.layout(), &w.storage(), w.layout())
                })?;
                let (n, h, wd) = (qi.shape()[0], qi.shape()[2], qi.shape()[3]);
                Tensor::from_storage(s, Layout::contiguous(&[n, w.shape()[0], h, wd]))
            }
            Some(p) => qi.conv2d(&w, None, *p)?,
            None => qi.matmul(&w)?,
        };
        let terms = if zero != 0 { Some(self.shift_terms(x.shape())?.to_device(acc.device())?) } else { None };
        Ok((acc, terms, step))
    }

    /// `128 · Σ w` over the taps inside an input of `x_shape`'s size, per output position of
    /// one image (`i32`): the convolution (or product) of all-128 `i32` inputs, computed in `i8`
    /// as 64 + 64 (cached by input size).
    fn shift_terms(&self, x_shape: &[usize]) -> Result<Tensor> {
        let key = (x_shape.get(2).copied().unwrap_or(0), x_shape.get(3).copied().unwrap_or(0));
        let mut cache = self.shift_terms.lock().map_err(|_| Error::invalid("IntLayer", "shift cache poisoned"))?;
        if let Some(t) = cache.get(&key) {
            return Ok(t.clone());
        }
        let mut one = x_shape.to_vec();
        one[0] = 1;
        let ones = Tensor::full(&one, 64.0).to_dtype(DType::I8)?;
        let w = self.weight.get().to_device(autograd::Device::Cpu)?;
        let half = match &self.conv {
            Some(_) if self.ternary => {
                let s = ones.storage().ternary_conv1x1(ones.layout(), &w.storage(), w.layout())?;
                Tensor::from_storage(s, Layout::contiguous(&[1, w.shape()[0], one[2], one[3]]))
            }
            Some(p) => ones.conv2d(&w, None, *p)?,
            None => ones.matmul(&w)?,
        };
        let terms: Vec<i32> = half.to_vec::<i32>()?.into_iter().map(|v| 2 * v).collect();
        let n = terms.len();
        let terms = Tensor::from_vec(terms, &[n])?;
        cache.insert(key, terms.clone());
        Ok(terms)
    }
}

impl Module for IntLayer {
    /// The codes of `x` in one pass, the integer products, and the accumulators requantized in
    /// one pass (the shift terms added in integers, then `acc · step · mult + add` per output
    /// channel, clamped where a ReLU6 was folded in): the backend's fused `quantize_i8` and
    /// `requantize`.
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let (acc, terms, step) = self.shifted_accumulators(x)?;
        let o = acc.shape()[1];
        let dev = acc.device();
        let scale = Tensor::from_vec(requantization_scale(&self.mult, step), &[o])?.to_device(dev)?;
        let shift = Tensor::from_vec(self.add.clone(), &[o])?.to_device(dev)?;
        let terms_storage = terms.as_ref().map(|t| t.storage());
        let y = scope("requantize", dev, || {
            acc.storage().requantize(
                acc.layout(),
                terms_storage.as_deref(),
                &scale.storage(),
                &shift.storage(),
                self.clamp,
            )
        })?;
        let shape = acc.shape().to_vec();
        let taps = self.shape[1..].iter().product::<usize>() as u64;
        let kind = if self.ternary { "ternary_conv1x1" } else { "int8" };
        layers::mac::record(None, kind, acc.numel() as u64 * taps, x.shape(), &shape);
        Tensor::from_storage(y, Layout::contiguous(&shape)).to_dtype(x.dtype())
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        vec![("weight".into(), self.weight.clone())]
    }

    fn type_name(&self) -> &'static str {
        "IntLayer"
    }
}

/// Turns a QAT-trained model into its integer inference form in place: every [`QuantLayer`]
/// becomes an [`IntLayer`], folding the BatchNorm that directly follows it in its `Sequential`
/// (the next index; or the layer's own [`Fold`], after [`super::fold_batch_norms`]) and a
/// ReLU6 after that (both become [`Identity`]). Returns the converted paths, and whether each
/// runs on the ternary kernel.
pub fn to_integer(model: &mut dyn Module) -> Result<Vec<(String, bool)>> {
    convert(model, "to_integer", &mut |_, layer, bn| IntLayer::new(layer, bn))
}

/// How [`convert`] builds a layer: from its path, the quantized layer and the BatchNorm after it.
type MakeIntLayer<'a> = dyn FnMut(&str, &QuantLayer, Option<&BatchNorm2d>) -> Result<IntLayer> + 'a;

/// Replaces every [`QuantLayer`] of `model` by the [`IntLayer`] `make` builds from its path, the
/// layer and the BatchNorm after it (which becomes an [`Identity`]); the converted paths, and
/// whether each runs on the ternary kernel.
fn convert(model: &mut dyn Module, op: &'static str, make: &mut MakeIntLayer<'_>) -> Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    for (path, bn_path, relu6_path) in quantized_layers(model) {
        let layer = model
            .get_module(&path)
            .and_then(|m| m.downcast_ref::<QuantLayer>())
            .ok_or_else(|| Error::invalid(op, format!("no QuantLayer at {path}")))?;
        let bn = bn_path.as_deref().and_then(|p| model.get_module(p)).and_then(|m| m.downcast_ref::<BatchNorm2d>());
        let mut int = make(&path, layer, bn)?;
        if relu6_path.is_some() {
            int.clamp = Some((0.0, 6.0));
        }
        out.push((path.clone(), int.is_ternary_kernel()));
        model.replace_module(&path, Box::new(int))?;
        for p in bn_path.into_iter().chain(relu6_path) {
            model.replace_module(&p, Box::new(Identity))?;
        }
    }
    Ok(out)
}

/// Four ternary weights per byte, two bits each from the low bits up: `0 → 00`, `+1 → 01`,
/// `−1 → 10` (the last byte padded with zeros).
///
/// ```
/// use methods::prom::integer::{pack_ternary, unpack_ternary};
/// let q = [1i8, -1, 0, 1, -1];
/// let packed = pack_ternary(&q).unwrap();
/// assert_eq!(packed, [0b01_00_10_01, 0b10]);
/// assert_eq!(unpack_ternary(&packed, 5).unwrap(), q);
/// ```
pub fn pack_ternary(q: &[i8]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; q.len().div_ceil(4)];
    for (i, &v) in q.iter().enumerate() {
        let code = match v {
            0 => 0u8,
            1 => 1,
            -1 => 2,
            _ => {
                return Err(Error::invalid("pack_ternary", format!("weight {i} is {v}; ternary weights are -1, 0, 1")))
            }
        };
        out[i / 4] |= code << (2 * (i % 4));
    }
    Ok(out)
}

/// The `n` ternary weights of [`pack_ternary`]'s bytes; the code `11` is an error.
pub fn unpack_ternary(bytes: &[u8], n: usize) -> Result<Vec<i8>> {
    if bytes.len() != n.div_ceil(4) {
        return Err(Error::invalid("unpack_ternary", format!("{} bytes for {n} ternary weights", bytes.len())));
    }
    (0..n)
        .map(|i| match (bytes[i / 4] >> (2 * (i % 4))) & 3 {
            0 => Ok(0),
            1 => Ok(1),
            2 => Ok(-1),
            _ => Err(Error::invalid("unpack_ternary", format!("weight {i} has the unused code 11"))),
        })
        .collect()
}

/// Writes the integer model `model` (after [`to_integer`]) to `path` (safetensors, atomically):
/// every [`IntLayer`]'s [`IntLayer::checkpoint_tensors`] under its path. A model with float
/// parameters or buffers left outside its integer layers is refused. Returns the bytes written
/// and, of those, the weights' bytes (2 bits per ternary weight, 8 per int8 weight, each layer
/// rounded up to whole bytes: the estimator's storage figure).
pub fn save_integer(model: &dyn Module, path: &std::path::Path) -> Result<(u64, u64)> {
    let op = "save_integer";
    let mut tensors = Vec::new();
    let mut weight_bytes = 0u64;
    let mut covered = Vec::new();
    for (p, m) in model.named_modules() {
        if let Some(int) = m.downcast_ref::<IntLayer>() {
            for (name, t) in int.checkpoint_tensors()? {
                if name.starts_with("weight") {
                    weight_bytes += t.numel() as u64;
                }
                tensors.push((format!("{p}.{name}"), t));
            }
            covered.push(format!("{p}."));
        }
    }
    if tensors.is_empty() {
        return Err(Error::invalid(op, "the model has no integer layers (run to_integer first)"));
    }
    let names =
        model.named_parameters().into_iter().map(|(n, _)| n).chain(model.named_buffers().into_iter().map(|(n, _)| n));
    for n in names {
        if !covered.iter().any(|c| n.starts_with(c.as_str())) {
            return Err(Error::invalid(
                op,
                format!(
                    "{n} is a float tensor outside the integer layers; an integer checkpoint holds integer layers only"
                ),
            ));
        }
    }
    let meta = HashMap::from([("format".to_string(), "lamina-prom-integer".to_string())]);
    layers::state_dict::save_tensors(path, &tensors, &meta)?;
    let bytes = std::fs::metadata(path).map_err(|e| Error::invalid(op, format!("{}: {e}", path.display())))?.len();
    Ok((bytes, weight_bytes))
}

/// The integer form of the quantized model `model` (PROM's [`quantize`](super::quantize) of
/// the architecture; trained or not) read from an integer checkpoint written by
/// [`save_integer`]: each [`QuantLayer`] becomes the saved [`IntLayer`] and the BatchNorm after
/// it an [`Identity`], as [`to_integer`] does. Returns the converted paths as [`to_integer`].
pub fn load_integer(model: &mut dyn Module, path: &std::path::Path) -> Result<Vec<(String, bool)>> {
    let op = "load_integer";
    let file = layers::state_dict::load_tensors(path)?;
    let get = |name: &str| -> Result<Tensor> {
        file.get(name).cloned().ok_or_else(|| Error::invalid(op, format!("{}: no tensor {name}", path.display())))
    };
    convert(model, op, &mut |p, layer, _| {
        let ternary = layer.weight_quant().is_ternary();
        let shape = layer.latent_shape();
        let n = shape.iter().product::<usize>();
        let q = if ternary {
            unpack_ternary(&get(&format!("{p}.weight_ternary"))?.to_vec::<u8>()?, n)?
        } else {
            let w = get(&format!("{p}.weight"))?;
            if w.shape() != shape.as_slice() {
                return Err(Error::shape(op, &shape, w.shape()));
            }
            w.to_vec::<i8>()?
        };
        let step = get(&format!("{p}.act_step"))?;
        let codes = match get(&format!("{p}.act_kind"))?.to_vec::<u8>()?.first() {
            Some(0) => InputCodes::Lsq { step, signed: false },
            Some(1) => InputCodes::Lsq { step, signed: true },
            Some(2) => InputCodes::Pact { alpha: step },
            k => return Err(Error::invalid(op, format!("{p}.act_kind is {k:?}; expected 0, 1 or 2"))),
        };
        let (mult, add) = (get(&format!("{p}.scale"))?.to_vec::<f32>()?, get(&format!("{p}.shift"))?.to_vec::<f32>()?);
        IntLayer::assemble(layer.host_parts().0, &shape, q, ternary, codes, mult, add)
    })
}

/// Each [`QuantLayer`]'s path with the paths of the BatchNorm at the next index of its parent
/// and of the ReLU6 after that (or right after the layer, without a BatchNorm, or after the
/// [`Identity`] a folded BatchNorm left), if any.
pub(super) fn quantized_layers(model: &dyn Module) -> Vec<(String, Option<String>, Option<String>)> {
    let mut found = Vec::new();
    for (path, m) in model.named_modules() {
        if m.downcast_ref::<QuantLayer>().is_none() {
            continue;
        }
        let sibling = |k: usize| -> Option<(String, &dyn Module)> {
            let (parent, last) = path.rsplit_once('.')?;
            let p = format!("{parent}.{}", last.parse::<usize>().ok()? + k);
            model.get_module(&p).map(|m| (p, m))
        };
        let bn = sibling(1).filter(|(_, m)| m.downcast_ref::<BatchNorm2d>().is_some()).map(|(p, _)| p);
        // An Identity right after the layer is a BatchNorm folded already (`fold_batch_norms`).
        let folded_bn = sibling(1).is_some_and(|(_, m)| m.downcast_ref::<Identity>().is_some());
        let after = if bn.is_some() || folded_bn { 2 } else { 1 };
        let relu6 = sibling(after).filter(|(_, m)| m.downcast_ref::<ReLU6>().is_some()).map(|(p, _)| p);
        found.push((path, bn, relu6));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::fold::integer_weights;
    use crate::prom::{fold_batch_norms, quantize, ActQuant, PromConfig, WeightQuant};
    use layers::{Conv2d, Conv2dOptions, Linear};
    use proptest::prelude::*;

    /// A trained-looking quantized layer: LSQ's step set by one training pass on `x`.
    fn trained(layer: Box<dyn Module>, wq: WeightQuant, act: ActQuant, x: &Tensor) -> QuantLayer {
        let q = QuantLayer::wrap(layer, wq, act).unwrap();
        q.forward(x, Mode::Train).unwrap();
        q
    }

    /// The integer dot products of the fake-quantized layer's codes and weights, in f64 (exact
    /// for these sizes), by the float convolution or product.
    fn reference(q: &QuantLayer, x: &Tensor) -> Vec<i64> {
        let (codes, _, _) = q.input_codes().unwrap().codes(x).unwrap();
        let wq = q.quantized_weight().unwrap().detach();
        let (w, _) = integer_weights(&wq, q.weight_quant().is_ternary()).unwrap();
        let w = Tensor::from_vec(w.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), wq.shape()).unwrap();
        let codes = codes.to_dtype(DType::F64).unwrap();
        let y = match q.host_parts().0 {
            Some(p) => codes.conv2d(&w, None, p).unwrap(),
            None => codes.matmul(&w.t().unwrap()).unwrap(),
        };
        y.to_f64_vec().unwrap().into_iter().map(|v| v.round() as i64).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// The integer layer's `i32` accumulators equal the integer dot products of the codes
        /// and weights QAT used, for ternary 1x1 (the add/subtract kernel) and int8 layers of
        /// any kernel, stride, padding and groups, signed and unsigned LSQ and PACT inputs; and
        /// the codes times their step are the fake-quantized input (bit for bit under LSQ).
        #[test]
        fn accumulators_equal_the_fake_quantized_dot_products(
            (c, o, k, stride, pad, depthwise) in (1usize..4, 1usize..5, 1usize..4, 1usize..3, 0usize..2, any::<bool>()),
            ternary in any::<bool>(), act in 0usize..3, hw in 3usize..7, seed in 0u64..1000,
        ) {
            let (c, o) = if depthwise { (c * 2, c * 2) } else { (c, o) };
            let groups = if depthwise { c } else { 1 };
            let (stride2, padding) = ((stride, stride), (pad, pad));
            let params = Conv2dParams { stride: stride2, padding, groups, ..Conv2dParams::default() };
            let conv = Conv2d::new(c, o, k, Conv2dOptions { params, bias: true }).unwrap();
            let shift = if act == 0 { -0.5 } else { 0.3 }; // act 0: signed LSQ; 1: unsigned LSQ; 2: PACT
            let x = Tensor::randn(&[2, c, hw, hw], seed).unwrap().add_scalar(shift).unwrap();
            let x = if act == 0 { x } else { x.relu().unwrap() };
            let aq = if act == 2 { ActQuant::Pact { alpha: 2.0 } } else { ActQuant::Lsq };
            let wq = if ternary { WeightQuant::TernaryAbsmean } else { WeightQuant::Int8 };
            let q = trained(Box::new(conv), wq, aq, &x);
            let int = IntLayer::new(&q, None).unwrap();
            prop_assert_eq!(int.is_ternary_kernel(), ternary && k == 1 && stride == 1 && pad == 0 && groups == 1);
            let (acc, shape, step) = int.accumulators(&x).unwrap();
            prop_assert_eq!(acc.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), reference(&q, &x));
            prop_assert_eq!(&shape, &q.forward(&x, Mode::Eval).unwrap().shape().to_vec());
            let (codes, _, _) = q.input_codes().unwrap().codes(&x).unwrap();
            let (scaled, fake) = (
                codes.mul_scalar(step).unwrap().to_vec::<f32>().unwrap(),
                q.quantized_input(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(),
            );
            if act == 2 {
                // PACT rounds `q · α / 255` in that order: the same value to one rounding.
                for (a, b) in scaled.iter().zip(&fake) {
                    prop_assert!((a - b).abs() <= 2.0 * f32::EPSILON * b.abs(), "{} vs {}", a, b);
                }
            } else {
                prop_assert_eq!(scaled, fake);
            }
        }
    }

    #[test]
    fn linear_layers_accumulate_in_integers_too() {
        let x = Tensor::randn(&[5, 7], 3).unwrap();
        let q = trained(Box::new(Linear::new(7, 4, true)), WeightQuant::Int8, ActQuant::Lsq, &x);
        let (acc, shape, _) = IntLayer::new(&q, None).unwrap().accumulators(&x).unwrap();
        assert_eq!(shape, [5, 4]);
        assert_eq!(acc.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), reference(&q, &x));
    }

    /// Folding: a layer followed by a trained BatchNorm gives the fake-quantized layer and the
    /// BatchNorm's output to float rounding.
    #[test]
    fn folded_batch_norm_gives_the_layer_then_the_norm() {
        let x = Tensor::randn(&[4, 3, 6, 6], 5).unwrap().relu().unwrap();
        let conv = Conv2d::new(
            3,
            5,
            3,
            Conv2dOptions { params: Conv2dParams { padding: (1, 1), ..Default::default() }, bias: false },
        )
        .unwrap();
        let q = trained(Box::new(conv), WeightQuant::Int8, ActQuant::Lsq, &x);
        let bn = BatchNorm2d::new(5);
        for _ in 0..3 {
            bn.forward(
                &q.forward(&x, Mode::Train).unwrap().mul_scalar(3.0).unwrap().add_scalar(0.7).unwrap(),
                Mode::Train,
            )
            .unwrap();
        }
        let want = bn.forward(&q.forward(&x, Mode::Eval).unwrap(), Mode::Eval).unwrap().to_vec::<f32>().unwrap();
        let got = IntLayer::new(&q, Some(&bn)).unwrap().forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    /// A QAT MobileNetV2 (CIFAR strides, width 0.25) and its integer form predict the same
    /// classes, with logits equal to float rounding, and equal bit for bit to the folded
    /// fake-quantized model's (which no longer trains); the block 1x1 convolutions run on the
    /// ternary kernel and every BatchNorm after a quantized layer is folded, with the ReLU6
    /// after it (also when the BatchNorm was folded first).
    #[test]
    fn integer_mobilenet_predicts_as_the_fake_quantized_one() {
        let mut model =
            layers::models::build_with("mobilenetv2-cifar", &layers::models::ModelOptions::new(10, 3, 0).width(0.25))
                .unwrap();
        let cfg = PromConfig { ternary: WeightQuant::TernaryAbsmean, act: ActQuant::Lsq, final_ternary: false };
        quantize(model.as_mut(), &cfg).unwrap();
        for s in 0..3 {
            model.forward(&Tensor::randn(&[16, 3, 32, 32], s).unwrap(), Mode::Train).unwrap();
        }
        let x = Tensor::randn(&[32, 3, 32, 32], 9).unwrap();
        let fake = model.forward(&x, Mode::Eval).unwrap();
        // Folded, the fake-quantized model computes what the integer model computes.
        let folded_paths = fold_batch_norms(model.as_mut()).unwrap();
        let folded = model.forward(&x, Mode::Eval).unwrap();
        assert!(model.forward(&x, Mode::Train).is_err());
        let converted = to_integer(model.as_mut()).unwrap();
        assert_eq!(converted.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), folded_paths);
        assert!(converted.iter().any(|(_, t)| *t) && converted.iter().any(|(_, t)| !*t));
        assert!(model.named_modules().iter().all(|(_, m)| m.downcast_ref::<QuantLayer>().is_none()));
        // Every ReLU6 of MobileNetV2 follows a convolution and its BatchNorm: all folded.
        assert!(model.named_modules().iter().all(|(_, m)| m.downcast_ref::<ReLU6>().is_none()));
        let int = model.forward(&x, Mode::Eval).unwrap();
        assert_eq!(int.to_vec::<f32>().unwrap(), folded.to_vec::<f32>().unwrap());
        assert_eq!(
            int.argmax(1, false).unwrap().to_vec::<i64>().unwrap(),
            fake.argmax(1, false).unwrap().to_vec::<i64>().unwrap()
        );
        let (f, i) = (fake.to_vec::<f32>().unwrap(), int.to_vec::<f32>().unwrap());
        let scale = f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (a, b) in f.iter().zip(&i) {
            assert!((a - b).abs() <= 1e-3 * scale, "{a} vs {b}");
        }
    }

    /// The integer checkpoint: written, read into a fresh (untrained) quantized model, the same
    /// outputs bit for bit; its weights take exactly the estimator's storage (2 bits per ternary
    /// weight, 8 per int8 weight, rounded up to bytes per layer), and the rest of the file is
    /// the per-channel requantization, the activation steps and the header.
    #[test]
    fn integer_checkpoint_round_trips_at_the_estimator_s_size() {
        let opts = layers::models::ModelOptions::new(10, 3, 0).width(0.25);
        let cfg = PromConfig { ternary: WeightQuant::TernaryAbsmean, act: ActQuant::Lsq, final_ternary: false };
        let mut model = layers::models::build_with("mobilenetv2-cifar", &opts).unwrap();
        let layers = quantize(model.as_mut(), &cfg).unwrap();
        for s in 0..2 {
            model.forward(&Tensor::randn(&[8, 3, 32, 32], s).unwrap(), Mode::Train).unwrap();
        }
        let costs = crate::prom::layer_costs(model.as_ref(), &[1, 3, 32, 32]).unwrap();
        to_integer(model.as_mut()).unwrap();
        let dir = std::env::temp_dir().join(format!("lamina-prom-int-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("int.safetensors");
        let (bytes, weight_bytes) = save_integer(model.as_ref(), &path).unwrap();
        let want: u64 = costs
            .iter()
            .map(|(name, _, weights)| {
                let ternary = layers.iter().any(|(p, t)| p == name && *t);
                let p = if ternary { crate::prom::Precision::Ternary } else { crate::prom::Precision::Int8 };
                (weights * p.weight_bits()).div_ceil(8)
            })
            .sum();
        assert_eq!(weight_bytes, want);
        let header = u64::from_le_bytes(std::fs::read(&path).unwrap()[..8].try_into().unwrap());
        let channels: u64 = costs
            .iter()
            .map(|(name, _, _)| {
                model.get_module(name).map_or(0, |m| m.downcast_ref::<IntLayer>().map_or(0, |l| l.mult.len() as u64))
            })
            .sum();
        assert_eq!(bytes, 8 + header + weight_bytes + 8 * channels + 5 * layers.len() as u64);
        let mut fresh =
            layers::models::build_with("mobilenetv2-cifar", &layers::models::ModelOptions::new(10, 3, 5).width(0.25))
                .unwrap();
        quantize(fresh.as_mut(), &cfg).unwrap();
        let loaded = load_integer(fresh.as_mut(), &path).unwrap();
        assert_eq!(loaded.len(), layers.len());
        let x = Tensor::randn(&[4, 3, 32, 32], 11).unwrap();
        assert_eq!(
            fresh.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(),
            model.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap()
        );
        // A model with float tensors outside its integer layers has no integer checkpoint.
        let float = layers::models::build_with("mobilenetv2-cifar", &opts).unwrap();
        assert!(save_integer(float.as_ref(), &dir.join("f.safetensors")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ternary_packing_round_trips_and_rejects_bad_codes() {
        let q: Vec<i8> = (0..37).map(|i| [0i8, 1, -1][(i * 7) % 3]).collect();
        assert_eq!(unpack_ternary(&pack_ternary(&q).unwrap(), 37).unwrap(), q);
        assert!(pack_ternary(&[2]).is_err());
        assert!(unpack_ternary(&[0b11], 1).is_err());
        assert!(unpack_ternary(&[0, 0], 1).is_err());
    }

    #[test]
    fn ttq_and_fixed_range_inputs_have_no_integer_form() {
        let x = Tensor::randn(&[2, 3, 4, 4], 1).unwrap();
        let conv = || Box::new(Conv2d::new(3, 2, 1, Conv2dOptions::default()).unwrap()) as Box<dyn Module>;
        let ttq = trained(conv(), WeightQuant::TernaryTtq { t: 0.05 }, ActQuant::Lsq, &x);
        assert!(IntLayer::new(&ttq, None).err().unwrap().to_string().contains("TTQ"));
        let fixed = trained(conv(), WeightQuant::Int8, ActQuant::Fixed { lo: -1.0, hi: 1.0 }, &x);
        assert!(IntLayer::new(&fixed, None).err().unwrap().to_string().contains("LSQ or PACT"));
    }
}
