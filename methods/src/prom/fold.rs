//! BatchNorm folding after QAT: the fake-quantized model in the form the integer model computes.
//!
//! A trained [`QuantLayer`]'s weights are integers times one scale per output channel
//! (`ŵ[o] = s_o · q[o]`), so the BatchNorm after it (evaluation form, `y = f_o · x + t_o`)
//! folds without changing a weight: the layer's output is `acc · step · m_o + a_o`, where `acc`
//! is the integer dot product of the input's codes with `q`, `m_o = s_o · f_o` and
//! `a_o = f_o · bias_o + t_o`. [`Fold`] holds `q`, `m` and `a` (as `f32`, computed once in
//! `f64`), [`fold_batch_norms`] folds every quantized layer of a model, and a folded
//! [`QuantLayer`] evaluates the fake-quantized convolution exactly: the codes times the integer
//! weights summed without rounding (integer-valued `f64` sums), then one `f32` rounding each for
//! `acc · (step · m_o)` and `+ a_o`. That is the arithmetic of the integer model
//! ([`super::IntLayer`], which builds its requantization from the same [`Fold`]), so the folded
//! fake-quantized model and the integer model give the same outputs bit for bit (tested), and
//! the same predictions on every image.
//!
//! The unfolded fake-quantized model (a float convolution of the fake-quantized values, then
//! BatchNorm) computes the same function up to float rounding; where an activation lands within
//! that rounding of a code boundary the next layer's code differs by one, which is why folding
//! (rather than the float evaluation QAT trains with) is the reference the integer model is
//! checked against bit for bit.

use autograd::backends::cpu::conv::{with_algorithm, Algorithm};
use autograd::{DType, Error, Result, Tensor};
use layers::{BatchNorm2d, Identity, Module, ModuleExt};

use super::layer::{QuantLayer, WeightQuant};

/// A quantized layer with the BatchNorm after it folded in (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Fold {
    /// The integer weights in the quantized weight's `[O, ...]` order and shape.
    pub(super) weights: Vec<i8>,
    /// The quantized layer's weight shape.
    pub(super) shape: Vec<usize>,
    /// Whether the weights are ternary.
    pub(super) ternary: bool,
    /// Per output channel: the weight scale times the BatchNorm's factor (the codes' step joins
    /// it per input, [`Fold::scale`]).
    pub(super) mult: Vec<f32>,
    /// Per output channel: the bias and the BatchNorm's shift, folded.
    pub(super) add: Vec<f32>,
}

/// Per-output-channel integer weights and scales of a fake-quantized weight `wq` (`[O, ...]`):
/// `wq[o] = scale[o] · q[o]` with `q` in `{−1, 0, 1}` (ternary) or `[−127, 127]`.
pub(super) fn integer_weights(wq: &Tensor, ternary: bool) -> Result<(Vec<i8>, Vec<f64>)> {
    let o = wq.shape()[0];
    let v = wq.to_f64_vec()?;
    let per = v.len() / o.max(1);
    let levels = if ternary { 1.0 } else { 127.0 };
    let (mut q, mut scales) = (Vec::with_capacity(v.len()), Vec::with_capacity(o));
    for row in v.chunks_exact(per.max(1)).take(o) {
        let max = row.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let s = max / levels;
        for &x in row {
            let code = if s > 0.0 { (x / s).round() } else { 0.0 };
            if code.abs() > levels {
                return Err(Error::invalid("fold", format!("weight code {code} outside ±{levels}")));
            }
            q.push(code as i8);
        }
        scales.push(s);
    }
    Ok((q, scales))
}

/// The per-channel multipliers of the requantization for inputs quantized with `step`:
/// `step · m_o` in `f32` (the step rounded to `f32` first), as both the folded layer and the
/// integer layer use them.
pub(super) fn requantization_scale(mult: &[f32], step: f64) -> Vec<f32> {
    let step = step as f32;
    mult.iter().map(|&m| m * step).collect()
}

impl Fold {
    /// The fold of the trained `layer` and `bn` (the BatchNorm after it, in evaluation form;
    /// `None`: no BatchNorm). TTQ's two scales per layer have no one-scale-per-channel form and
    /// are refused.
    pub fn new(layer: &QuantLayer, bn: Option<&BatchNorm2d>) -> Result<Fold> {
        let op = "fold";
        if let WeightQuant::TernaryTtq { .. } = layer.weight_quant() {
            return Err(Error::invalid(
                op,
                "TTQ's separate positive and negative scales have no one-accumulator integer form; use absmean or TWN",
            ));
        }
        let ternary = layer.weight_quant().is_ternary();
        let wq = autograd::no_grad(|| layer.quantized_weight())?.detach();
        let shape = wq.shape().to_vec();
        let (weights, scales) = integer_weights(&wq, ternary)?;
        let o = shape[0];
        let bias = match layer.host_parts().1 {
            Some(b) => b.to_f64_vec()?,
            None => vec![0.0; o],
        };
        // BatchNorm in evaluation form: y = f·x + t per channel.
        let (factor, shift) = match bn {
            Some(bn) => {
                let get = |t: Option<Tensor>, fill: f64| -> Result<Vec<f64>> {
                    t.map_or(Ok(vec![fill; o]), |t| t.to_f64_vec())
                };
                let mean = get(bn.running_mean.as_ref().map(|b| b.get()), 0.0)?;
                let var = get(bn.running_var.as_ref().map(|b| b.get()), 1.0)?;
                let gamma = get(bn.weight.as_ref().map(|p| p.tensor()), 1.0)?;
                let beta = get(bn.bias.as_ref().map(|p| p.tensor()), 0.0)?;
                if let Some(v) = [&mean, &var, &gamma, &beta].into_iter().find(|v| v.len() != o) {
                    return Err(Error::invalid(op, format!("a BatchNorm of {} channels after {o} outputs", v.len())));
                }
                let f: Vec<f64> = (0..o).map(|i| gamma[i] / (var[i] + bn.eps).sqrt()).collect();
                let t = (0..o).map(|i| beta[i] - f[i] * mean[i]).collect();
                (f, t)
            }
            None => (vec![1.0; o], vec![0.0; o]),
        };
        let mult = (0..o).map(|i| (scales[i] * factor[i]) as f32).collect();
        let add = (0..o).map(|i| (factor[i] * bias[i] + shift[i]) as f32).collect();
        Ok(Fold { weights, shape, ternary, mult, add })
    }

    /// The per-channel multipliers for inputs quantized with `step`: `step · m_o` in `f32` (the
    /// step rounded to `f32` first), as the folded and the integer layer requantize.
    pub fn scale(&self, step: f64) -> Vec<f32> {
        requantization_scale(&self.mult, step)
    }

    /// The folded layer's output for the input codes `codes` (integer values, any float dtype)
    /// with step `step`: `acc · scale(step) + add` per output channel in `f32`, `acc` the exact
    /// integer sums (`f64`, the im2col convolution: every algorithm that sums products in `f64`
    /// is exact on these integers, but a Winograd transform is not). `conv`: the geometry
    /// (`None` for a linear layer).
    pub(super) fn evaluate(&self, codes: &Tensor, step: f64, conv: Option<autograd::Conv2dParams>) -> Result<Tensor> {
        let dev = codes.device();
        let codes = codes.to_dtype(DType::F64)?;
        let w = Tensor::from_vec(self.weights.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), &self.shape)?
            .to_device(dev)?;
        let acc = match conv {
            Some(p) => with_algorithm(Algorithm::Im2col, || codes.conv2d(&w, None, p))?,
            None => codes.matmul(&w.t()?)?,
        };
        let mut per_channel = vec![1; acc.ndim()];
        per_channel[1] = self.mult.len();
        let scale = Tensor::from_vec(self.scale(step), &per_channel)?.to_device(dev)?;
        let add = Tensor::from_vec(self.add.clone(), &per_channel)?.to_device(dev)?;
        acc.to_dtype(DType::F32)?.mul(&scale)?.add(&add)
    }
}

/// Folds every [`QuantLayer`] of the trained `model` with the BatchNorm at the next index of its
/// `Sequential`, if any (which becomes an [`Identity`]); layers already folded are left as they
/// are. Returns the paths folded. After this the model evaluates only (see the [module
/// docs](self)); [`super::to_integer`] turns it into the integer model with the same outputs.
pub fn fold_batch_norms(model: &mut dyn Module) -> Result<Vec<String>> {
    let op = "fold_batch_norms";
    let mut out = Vec::new();
    for (path, bn_path, _) in super::integer::quantized_layers(model) {
        let layer = model
            .get_module(&path)
            .and_then(|m| m.downcast_ref::<QuantLayer>())
            .ok_or_else(|| Error::invalid(op, format!("no QuantLayer at {path}")))?;
        if layer.folded().is_some() {
            continue;
        }
        let bn = bn_path.as_deref().and_then(|p| model.get_module(p)).and_then(|m| m.downcast_ref::<BatchNorm2d>());
        let fold = Fold::new(layer, bn)?;
        let old = model.replace_module(&path, Box::new(Identity))?;
        let mut layer = old
            .into_any()
            .downcast::<QuantLayer>()
            .map_err(|_| Error::invalid(op, format!("no QuantLayer at {path}")))?;
        layer.set_fold(fold);
        model.replace_module(&path, layer)?;
        if let Some(p) = bn_path {
            model.replace_module(&p, Box::new(Identity))?;
        }
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::{ActQuant, IntLayer};
    use autograd::Conv2dParams;
    use layers::{Conv2d, Conv2dOptions, Linear, Mode};
    use proptest::prelude::*;

    /// A BatchNorm of `c` channels with running statistics and an affine transform drawn from
    /// `seed` (variances in `[0.1, 2.1)`).
    fn batch_norm(c: usize, seed: u64) -> BatchNorm2d {
        let bn = BatchNorm2d::new(c);
        let draw = |k: u64| Tensor::rand(&[c], seed * 4 + k).unwrap();
        bn.running_mean
            .as_ref()
            .unwrap()
            .set_data(&draw(0).mul_scalar(2.0).unwrap().add_scalar(-1.0).unwrap())
            .unwrap();
        bn.running_var.as_ref().unwrap().set_data(&draw(1).mul_scalar(2.0).unwrap().add_scalar(0.1).unwrap()).unwrap();
        bn.weight.as_ref().unwrap().set_data(&draw(2).mul_scalar(3.0).unwrap().add_scalar(-1.5).unwrap()).unwrap();
        bn.bias.as_ref().unwrap().set_data(&draw(3).add_scalar(-0.5).unwrap()).unwrap();
        bn
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// A folded layer (a trained quantized convolution of any kernel, stride, padding and
        /// groups, or a linear layer; ternary or int8; signed or unsigned LSQ or PACT inputs;
        /// with or without a BatchNorm) and the integer layer made from it give the same
        /// outputs bit for bit, and both equal the unfolded layer followed by its BatchNorm to
        /// float rounding.
        #[test]
        fn folded_and_integer_layers_agree_bit_for_bit(
            (c, o, k, stride, pad, depthwise) in (1usize..4, 1usize..5, 1usize..4, 1usize..3, 0usize..2, any::<bool>()),
            linear in any::<bool>(), ternary in any::<bool>(), act in 0usize..3, with_bn in any::<bool>(),
            hw in 3usize..7, seed in 0u64..1000,
        ) {
            let (c, o) = if depthwise { (c * 2, c * 2) } else { (c, o) };
            let shift = if act == 0 { -0.5 } else { 0.3 }; // act 0: signed LSQ; 1: unsigned LSQ; 2: PACT
            let shape: Vec<usize> = if linear { vec![3, c * hw] } else { vec![2, c, hw, hw] };
            let x = Tensor::randn(&shape, seed).unwrap().add_scalar(shift).unwrap();
            let x = if act == 0 { x } else { x.relu().unwrap() };
            let host: Box<dyn Module> = if linear {
                Box::new(Linear::new(c * hw, o, true))
            } else {
                let groups = if depthwise { c } else { 1 };
                let params = Conv2dParams { stride: (stride, stride), padding: (pad, pad), groups, ..Default::default() };
                Box::new(Conv2d::new(c, o, k, Conv2dOptions { params, bias: true }).unwrap())
            };
            let aq = if act == 2 { ActQuant::Pact { alpha: 2.0 } } else { ActQuant::Lsq };
            let wq = if ternary { WeightQuant::TernaryAbsmean } else { WeightQuant::Int8 };
            let mut q = QuantLayer::wrap(host, wq, aq).unwrap();
            q.forward(&x, Mode::Train).unwrap();
            let bn = (with_bn && !linear).then(|| batch_norm(o, seed));
            let unfolded = q.forward(&x, Mode::Eval).unwrap();
            let unfolded = match &bn {
                Some(bn) => bn.forward(&unfolded, Mode::Eval).unwrap(),
                None => unfolded,
            };
            q.set_fold(Fold::new(&q, bn.as_ref()).unwrap());
            let folded = q.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
            let int = IntLayer::new(&q, None).unwrap().forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
            prop_assert_eq!(&folded, &int);
            let want = unfolded.to_vec::<f32>().unwrap();
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (f, w) in folded.iter().zip(&want) {
                prop_assert!((f - w).abs() <= 1e-5 * scale, "{} vs {}", f, w);
            }
        }
    }

    /// Folding fixes the layer for evaluation: training it is refused, so is folding a second
    /// BatchNorm into an integer layer, and TTQ has no fold.
    #[test]
    fn a_folded_layer_evaluates_only() {
        let x = Tensor::randn(&[2, 3, 5, 5], 1).unwrap();
        let conv = || Box::new(Conv2d::new(3, 4, 1, Conv2dOptions::default()).unwrap()) as Box<dyn Module>;
        let mut q = QuantLayer::wrap(conv(), WeightQuant::Int8, ActQuant::Lsq).unwrap();
        q.forward(&x, Mode::Train).unwrap();
        let bn = batch_norm(4, 2);
        q.set_fold(Fold::new(&q, Some(&bn)).unwrap());
        assert!(q.forward(&x, Mode::Train).err().unwrap().to_string().contains("folded"));
        assert!(q.forward(&x, Mode::Eval).is_ok());
        assert!(IntLayer::new(&q, Some(&bn)).err().unwrap().to_string().contains("folded already"));
        let ttq = QuantLayer::wrap(conv(), WeightQuant::TernaryTtq { t: 0.05 }, ActQuant::Lsq).unwrap();
        assert!(Fold::new(&ttq, None).err().unwrap().to_string().contains("TTQ"));
        assert!(Fold::new(
            &QuantLayer::wrap(conv(), WeightQuant::Int8, ActQuant::Lsq).unwrap(),
            Some(&batch_norm(3, 1))
        )
        .is_err());
    }
}
