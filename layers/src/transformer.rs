//! The pre-norm transformer encoder block of ViT (timm's `Block`) and its two-layer `Mlp`.

use autograd::{Error, Result, Tensor};

use crate::{children, init, Linear, Mode, Module, MultiheadSelfAttention, GELU};

/// A linear layer initialized as timm's ViT does (`init_weights_vit_timm`): weight from a
/// normal with deviation 0.02 truncated to `[-2, 2]`, bias zero.
pub fn vit_linear(in_features: usize, out_features: usize) -> Result<Linear> {
    let w = init::trunc_normal(&[out_features, in_features], 0.0, 0.02, -2.0, 2.0)?;
    Ok(Linear::from_tensors(w, Some(init::zeros(&[out_features]))))
}

/// timm's `Mlp`: `fc2(act(fc1(x)))` with GELU (names `fc1.weight`, `fc2.weight`, ...).
pub struct Mlp {
    /// `Linear(dim, hidden)`.
    pub fc1: Box<dyn Module>,
    /// The activation (exact GELU).
    pub act: Box<dyn Module>,
    /// `Linear(hidden, dim)`.
    pub fc2: Box<dyn Module>,
}

impl Mlp {
    /// An MLP `dim -> hidden -> dim` with timm's ViT initialization.
    pub fn new(dim: usize, hidden: usize) -> Result<Mlp> {
        Ok(Mlp {
            fc1: Box::new(vit_linear(dim, hidden)?),
            act: Box::new(GELU::default()),
            fc2: Box::new(vit_linear(hidden, dim)?),
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let h = self.act.forward(&self.fc1.forward(x, mode)?, mode)?;
        self.fc2.forward(&h, mode)
    }

    children!(fc1, act, fc2);
}

/// A pre-norm ViT encoder block (timm's `Block`) over `[B, N, C]` tokens:
/// `x + attn(norm1(x))`, then `x + mlp(norm2(x))`. LayerNorms use eps 1e-6 as timm's ViT;
/// the linear layers get timm's ViT initialization. Parameter names follow timm:
/// `norm1.weight`, `attn.qkv.weight`, `attn.proj.weight`, `norm2.weight`, `mlp.fc1.weight`,
/// `mlp.fc2.weight` (and the biases).
///
/// ```
/// use layers::{EncoderBlock, Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let block = EncoderBlock::new(8, 2, 4.0).unwrap();
/// let y = block.forward(&Tensor::randn(&[2, 3, 8], 0).unwrap(), Mode::Train).unwrap();
/// assert_eq!(y.shape(), &[2, 3, 8]);
/// assert_eq!(block.named_parameters()[2].0, "attn.qkv.weight");
/// ```
pub struct EncoderBlock {
    /// LayerNorm before attention.
    pub norm1: Box<dyn Module>,
    /// Multi-head self-attention.
    pub attn: Box<dyn Module>,
    /// LayerNorm before the MLP.
    pub norm2: Box<dyn Module>,
    /// The feed-forward network.
    pub mlp: Box<dyn Module>,
}

impl EncoderBlock {
    /// A block of width `dim` with `num_heads` heads and an MLP of `mlp_ratio · dim` hidden units.
    pub fn new(dim: usize, num_heads: usize, mlp_ratio: f64) -> Result<EncoderBlock> {
        if num_heads == 0 || dim == 0 || !dim.is_multiple_of(num_heads) || mlp_ratio.is_nan() || mlp_ratio <= 0.0 {
            return Err(Error::invalid(
                "EncoderBlock::new",
                format!("dim {dim} must be a positive multiple of num_heads {num_heads}; mlp_ratio {mlp_ratio}"),
            ));
        }
        let hidden = (dim as f64 * mlp_ratio) as usize;
        let attn = MultiheadSelfAttention::from_layers(vit_linear(dim, 3 * dim)?, vit_linear(dim, dim)?, num_heads);
        Ok(EncoderBlock {
            norm1: Box::new(crate::LayerNorm::new(&[dim], 1e-6)),
            attn: Box::new(attn),
            norm2: Box::new(crate::LayerNorm::new(&[dim], 1e-6)),
            mlp: Box::new(Mlp::new(dim, hidden)?),
        })
    }
}

impl Module for EncoderBlock {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let x = x.add(&self.attn.forward(&self.norm1.forward(x, mode)?, mode)?)?;
        x.add(&self.mlp.forward(&self.norm2.forward(&x, mode)?, mode)?)
    }

    children!(norm1, attn, norm2, mlp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::with_seed;
    use crate::{LayerNorm, ModuleExt};
    use autograd::{gradcheck, DType, Device, GradcheckOptions};
    use proptest::prelude::*;

    #[test]
    fn names_follow_timm() {
        let b = EncoderBlock::new(6, 3, 2.0).unwrap();
        let names: Vec<String> = b.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "norm1.weight",
                "norm1.bias",
                "attn.qkv.weight",
                "attn.qkv.bias",
                "attn.proj.weight",
                "attn.proj.bias",
                "norm2.weight",
                "norm2.bias",
                "mlp.fc1.weight",
                "mlp.fc1.bias",
                "mlp.fc2.weight",
                "mlp.fc2.bias"
            ]
        );
        assert_eq!(b.get_module("mlp.fc1").unwrap().params()[0].1.leaf().shape(), &[12, 6]);
        assert!(EncoderBlock::new(6, 4, 4.0).is_err());
    }

    #[test]
    fn is_the_composition_of_its_parts() {
        let b = with_seed(1, || EncoderBlock::new(4, 2, 2.0)).unwrap();
        let x = Tensor::randn(&[2, 3, 4], 2).unwrap();
        let y = b.forward(&x, Mode::Eval).unwrap();
        let (n1, n2) = (b.norm1.downcast_ref::<LayerNorm>().unwrap(), b.norm2.downcast_ref::<LayerNorm>().unwrap());
        let h = x.add(&b.attn.forward(&n1.forward(&x, Mode::Eval).unwrap(), Mode::Eval).unwrap()).unwrap();
        let m = b.mlp.downcast_ref::<Mlp>().unwrap();
        let fc1 = m.fc1.downcast_ref::<Linear>().unwrap();
        let fc2 = m.fc2.downcast_ref::<Linear>().unwrap();
        let inner = fc1.forward(&n2.forward(&h, Mode::Eval).unwrap(), Mode::Eval).unwrap().gelu().unwrap();
        let expect = h.add(&fc2.forward(&inner, Mode::Eval).unwrap()).unwrap();
        let (a, e) = (y.to_vec::<f32>().unwrap(), expect.to_vec::<f32>().unwrap());
        assert!(a.iter().zip(&e).all(|(a, e)| (a - e).abs() < 1e-6));
    }

    #[test]
    fn init_is_timm_vit() {
        let l = with_seed(3, || vit_linear(200, 300)).unwrap();
        let w = l.weight.leaf().to_f64_vec().unwrap();
        let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
        assert!((std - 0.02).abs() < 5e-4, "{std}");
        assert!(l.bias.unwrap().leaf().to_f64_vec().unwrap().iter().all(|&v| v == 0.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]

        #[test]
        fn block_gradcheck(heads in 1..=2usize, n in 1..=3usize, seed in 0..1000u64) {
            let b = with_seed(seed, || EncoderBlock::new(2 * heads, heads, 1.5)).unwrap();
            b.convert(DType::F64, Device::Cpu).unwrap();
            // Weights of a realistic scale so that every sub-layer contributes to the gradient.
            for (i, p) in b.parameters().into_iter().enumerate() {
                let shape = p.leaf().shape().to_vec();
                p.set_data(&Tensor::randn(&shape, seed + 7 + i as u64).unwrap().mul_scalar(0.5).unwrap()).unwrap();
            }
            let x = Tensor::randn(&[2, n, 2 * heads], seed + 1).unwrap().to_dtype(DType::F64).unwrap();
            let r = gradcheck(|t| b.forward(&t[0], Mode::Train), &[x], &GradcheckOptions::default());
            prop_assert!(r.is_ok(), "{:?}", r);
        }
    }
}
