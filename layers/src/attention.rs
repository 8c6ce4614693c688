//! Multi-head self-attention with timm's layout (`qkv` and `proj` linear layers) and the
//! scaled dot-product attention it is built on.

use autograd::{Error, Result, Tensor};

use crate::{children, mac, Linear, Mode, Module, Param};

/// Scaled dot-product attention `softmax(q kᵀ · scale) v` over the last two axes of
/// `[..., N, D]` queries, keys and values (`scale = 1/√D` is the usual choice).
///
/// ```
/// use layers::scaled_dot_product_attention;
/// use autograd::Tensor;
/// let q = Tensor::randn(&[2, 3, 5, 4], 0).unwrap();
/// let y = scaled_dot_product_attention(&q, &q, &q, 0.5).unwrap();
/// assert_eq!(y.shape(), &[2, 3, 5, 4]);
/// ```
pub fn scaled_dot_product_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let (sq, sk, sv) = (q.shape(), k.shape(), v.shape());
    let r = sq.len();
    if r < 2 || sk.len() != r || sv.len() != r || sq[r - 1] != sk[r - 1] || sk[r - 2] != sv[r - 2] {
        return Err(Error::invalid(
            "scaled_dot_product_attention",
            format!("q {sq:?}, k {sk:?}, v {sv:?} do not form [..., N, D] attention operands"),
        ));
    }
    let scores = q.mul_scalar(scale)?.matmul(&k.transpose(r - 2, r - 1)?)?;
    scores.softmax(r - 1)?.matmul(v)
}

/// Multi-head self-attention over `[B, N, C]` tokens, as timm's `Attention`: one `qkv` linear
/// layer `[3C, C]` (with bias) gives queries, keys and values laid out as `[3, heads, C / heads]`
/// along the feature axis; each head attends with scale `1/√(C / heads)`; the heads are
/// concatenated and projected by `proj` `[C, C]`. Parameter names: `qkv.weight`, `qkv.bias`,
/// `proj.weight`, `proj.bias`.
///
/// The MAC counter sees the two linear layers and, as `"attention"` rows owned by `qkv`, the two
/// attention matmuls (`B · heads · N² · C/heads` each).
///
/// ```
/// use layers::{MultiheadSelfAttention, Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let attn = MultiheadSelfAttention::new(8, 2).unwrap();
/// let y = attn.forward(&Tensor::randn(&[3, 5, 8], 1).unwrap(), Mode::Eval).unwrap();
/// assert_eq!(y.shape(), &[3, 5, 8]);
/// assert_eq!(attn.named_parameters()[0].0, "qkv.weight");
/// ```
pub struct MultiheadSelfAttention {
    /// The query/key/value projection `Linear(C, 3C)`.
    pub qkv: Box<dyn Module>,
    /// The output projection `Linear(C, C)`.
    pub proj: Box<dyn Module>,
    /// Number of heads.
    pub num_heads: usize,
    dim: usize,
}

impl MultiheadSelfAttention {
    /// Attention over `dim` features split into `num_heads` heads (PyTorch's default init for the
    /// linear layers; models re-initialize as their reference does).
    pub fn new(dim: usize, num_heads: usize) -> Result<MultiheadSelfAttention> {
        if num_heads == 0 || dim == 0 || !dim.is_multiple_of(num_heads) {
            return Err(Error::invalid(
                "MultiheadSelfAttention::new",
                format!("dim {dim} must be a positive multiple of num_heads {num_heads}"),
            ));
        }
        Ok(MultiheadSelfAttention::from_layers(Linear::new(dim, 3 * dim, true), Linear::new(dim, dim, true), num_heads))
    }

    /// Attention from given `qkv` (`[3C, C]`) and `proj` (`[C, C]`) layers.
    pub fn from_layers(qkv: Linear, proj: Linear, num_heads: usize) -> MultiheadSelfAttention {
        let dim = proj.features().1;
        MultiheadSelfAttention { qkv: Box::new(qkv), proj: Box::new(proj), num_heads, dim }
    }

    /// The model width `C`.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl Module for MultiheadSelfAttention {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (c, h) = (self.dim, self.num_heads);
        if x.ndim() != 3 || x.shape()[2] != c {
            return Err(Error::invalid(
                "MultiheadSelfAttention",
                format!("expected [B, N, {c}] tokens, got {:?}", x.shape()),
            ));
        }
        let (b, n, d) = (x.shape()[0], x.shape()[1], c / h);
        // qkv [B, N, 3C] (features [3, H, D]) -> heads attended and merged back to [B, N, C].
        let qkv = self.qkv.forward(x, mode)?;
        if qkv.ndim() != 3 || qkv.shape()[2] != 3 * c {
            return Err(Error::invalid(
                "MultiheadSelfAttention",
                format!("the qkv layer gave {:?}, expected [B, N, {}]", qkv.shape(), 3 * c),
            ));
        }
        let y = qkv.packed_self_attention(h, 1.0 / (d as f64).sqrt())?;
        let owner: Option<Param> = self.qkv.params().into_iter().next().map(|(_, p)| p);
        let macs = (b * h * n * n * d) as u64;
        mac::record(owner.as_ref(), "attention", macs, &[b, h, n, d], &[b, h, n, n]);
        mac::record(owner.as_ref(), "attention", macs, &[b, h, n, n], &[b, h, n, d]);
        self.proj.forward(&y, mode)
    }

    children!(qkv, proj);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::count_macs;
    use crate::rng::with_seed;
    use crate::ModuleExt;
    use autograd::strategies::f64_tensor;
    use autograd::{gradcheck, DType, Device, GradcheckOptions};
    use proptest::prelude::*;

    /// Attention computed with explicit loops over batch, head, query and key.
    fn naive(
        x: &[f64],
        wqkv: &[f64],
        bqkv: &[f64],
        wp: &[f64],
        bp: &[f64],
        b: usize,
        n: usize,
        c: usize,
        h: usize,
    ) -> Vec<f64> {
        let d = c / h;
        let lin = |inp: &[f64], w: &[f64], bias: &[f64], fin: usize, fout: usize| -> Vec<f64> {
            (0..fout).map(|o| bias[o] + (0..fin).map(|i| w[o * fin + i] * inp[i]).sum::<f64>()).collect()
        };
        let mut out = vec![0.0; b * n * c];
        for bi in 0..b {
            let qkv: Vec<Vec<f64>> = (0..n).map(|t| lin(&x[(bi * n + t) * c..][..c], wqkv, bqkv, c, 3 * c)).collect();
            let mut heads = vec![vec![0.0; c]; n];
            for hi in 0..h {
                for i in 0..n {
                    let q = &qkv[i][hi * d..][..d];
                    let s: Vec<f64> = (0..n)
                        .map(|j| {
                            q.iter().zip(&qkv[j][c + hi * d..][..d]).map(|(a, b)| a * b).sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for j in 0..n {
                        for k in 0..d {
                            heads[i][hi * d + k] += e[j] / z * qkv[j][2 * c + hi * d + k];
                        }
                    }
                }
            }
            for i in 0..n {
                out[(bi * n + i) * c..][..c].copy_from_slice(&lin(&heads[i], wp, bp, c, c));
            }
        }
        out
    }

    fn values(p: &Option<Param>) -> Vec<f64> {
        p.as_ref().unwrap().leaf().to_f64_vec().unwrap()
    }

    #[test]
    fn matches_a_loop_reference() {
        let (b, n, c, h) = (2, 4, 6, 3);
        let attn = with_seed(3, || MultiheadSelfAttention::new(c, h)).unwrap();
        attn.convert(DType::F64, Device::Cpu).unwrap();
        let x = Tensor::randn(&[b, n, c], 4).unwrap().to_dtype(DType::F64).unwrap();
        let y = attn.forward(&x, Mode::Eval).unwrap().to_f64_vec().unwrap();
        let qkv = attn.qkv.downcast_ref::<Linear>().unwrap();
        let proj = attn.proj.downcast_ref::<Linear>().unwrap();
        let expect = naive(
            &x.to_f64_vec().unwrap(),
            &qkv.weight.leaf().to_f64_vec().unwrap(),
            &values(&qkv.bias),
            &proj.weight.leaf().to_f64_vec().unwrap(),
            &values(&proj.bias),
            b,
            n,
            c,
            h,
        );
        for (a, e) in y.iter().zip(&expect) {
            assert!((a - e).abs() < 1e-12, "{a} vs {e}");
        }
    }

    fn operands() -> impl Strategy<Value = (Tensor, Tensor, Tensor, f64)> {
        (1..=2usize, 1..=4usize, 1..=4usize, 1..=3usize, 1..=3usize).prop_flat_map(|(b, nq, nk, d, dv)| {
            (
                f64_tensor(vec![b, nq, d], -1.5, 1.5),
                f64_tensor(vec![b, nk, d], -1.5, 1.5),
                f64_tensor(vec![b, nk, dv], -1.5, 1.5),
                0.2..1.5f64,
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn sdpa_gradcheck((q, k, v, scale) in operands()) {
            let f = |x: &[Tensor]| scaled_dot_product_attention(&x[0], &x[1], &x[2], scale);
            let r = gradcheck(f, &[q, k, v], &GradcheckOptions::default());
            prop_assert!(r.is_ok(), "{:?}", r);
        }

        #[test]
        fn module_gradcheck_through_input(heads in 1..=2usize, d in 1..=2usize, n in 1..=3usize, seed in 0..1000u64) {
            let attn = with_seed(seed, || MultiheadSelfAttention::new(heads * d, heads)).unwrap();
            attn.convert(DType::F64, Device::Cpu).unwrap();
            let x = Tensor::randn(&[2, n, heads * d], seed + 1).unwrap().to_dtype(DType::F64).unwrap();
            let r = gradcheck(|t| attn.forward(&t[0], Mode::Train), &[x], &GradcheckOptions::default());
            prop_assert!(r.is_ok(), "{:?}", r);
        }
    }

    #[test]
    fn weight_gradients_flow_and_macs_are_counted() {
        let attn = with_seed(7, || MultiheadSelfAttention::new(8, 4)).unwrap();
        let x = Tensor::randn(&[2, 5, 8], 8).unwrap();
        attn.forward(&x, Mode::Train).unwrap().square().unwrap().sum_all().unwrap().backward().unwrap();
        assert!(attn.parameters().iter().all(|p| p.grad().is_some()));
        let report = count_macs(&attn, &x).unwrap();
        let att: Vec<_> = report.rows.iter().filter(|r| r.kind == "attention").collect();
        assert_eq!(att.len(), 2);
        assert!(att.iter().all(|r| r.name == "qkv" && r.macs == 2 * 4 * 5 * 5 * 2));
        // qkv (10 x 8 x 24) + two attention matmuls + proj (10 x 8 x 8).
        assert_eq!(report.total_macs, 10 * 8 * 24 + 2 * 400 + 10 * 8 * 8);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(MultiheadSelfAttention::new(6, 4).is_err());
        let attn = MultiheadSelfAttention::new(6, 3).unwrap();
        let err = attn.forward(&Tensor::zeros(&[2, 6]), Mode::Eval).err().unwrap();
        assert!(err.to_string().contains("MultiheadSelfAttention"), "{err}");
        let q = Tensor::zeros(&[2, 3]);
        assert!(scaled_dot_product_attention(&q, &Tensor::zeros(&[2, 4]), &q, 1.0).is_err());
    }
}
