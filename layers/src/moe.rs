//! [`MoeMlp`]: a transformer MLP split into experts that share one hidden layer, with top-k
//! routing of every token by its similarity to one key per expert (MoEE's cosine routing,
//! MoEfication's dot-product "parameter centers").
//!
//! The hidden layer is the union of the experts' neurons (`fc1: d -> U`, `fc2: U -> d`, named as
//! timm's `Mlp`, so a converted ViT keeps `blocks.N.mlp.fc1.weight`); expert `e` is a list
//! `E_e` of hidden neurons (experts may overlap). For a token `x`:
//!
//! ```text
//! chosen = the top_k experts by score(x, key_e)   (cosine or dot; ties: lower index)
//! out    = Σ_{e ∈ chosen} [ act(x W1[E_e]ᵀ + b1[E_e]) W2[:, E_e]ᵀ + bias_e ] + b2
//! ```
//!
//! where `bias_e` is an optional per-expert output bias (MoEE's bias-folding ablation).
//!
//! # Cost
//!
//! Routing is one `[T, d] x [d, K]` product and a host-side counting sort of the `T` routes;
//! the tokens are gathered in expert order (one `index_select`), each expert runs one GEMM pair
//! on its `n_e` tokens with its gathered `|E_e|` rows and columns, and the results are gathered
//! back into token order (one `index_select` per chosen slot). The multiply-accumulates recorded for
//! [`crate::mac::count_macs`] are `T·K·d + Σ_e n_e · 2·d·|E_e|` (biases and the activation
//! excluded, as for [`crate::Linear`]); a dense MLP costs `T · 2·d·D`.
//!
//! While training, each call gathers the experts' weights from `fc1`/`fc2` (differentiable:
//! the gradients of overlapping experts add up in the shared weights). [`MoeMlp::gather_experts`]
//! turns a layer into an inference snapshot: the gathered weights are copied once and reused, so
//! a forward pass does no weight gathering at all.

use autograd::{no_grad, DType, Error, Result, Tensor};

use crate::{children, mac, Buffer, Linear, Mlp, Mode, Module};

/// How a token is scored against an expert's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// `cos(x, key)` (MoEE: keys are the clusters' mean input tokens).
    Cosine,
    /// `x · key` (MoEfication's similarity router over parameter centers).
    Dot,
}

impl Routing {
    /// `cosine` or `dot`.
    pub fn name(self) -> &'static str {
        match self {
            Routing::Cosine => "cosine",
            Routing::Dot => "dot",
        }
    }
}

/// One expert's weights gathered from the shared hidden layer, as the right operands of its two
/// products: `W1[E]ᵀ` `[d, |E|]`, `b1[E]`, `W2[:, E]ᵀ` `[|E|, d]` (transposed views while
/// training, contiguous copies once gathered).
struct ExpertWeights {
    w1t: Tensor,
    b1: Option<Tensor>,
    w2t: Tensor,
}

/// A mixture-of-experts MLP over a shared hidden layer (see the [module docs](self)).
///
/// ```
/// use layers::moe::{MoeMlp, Routing};
/// use layers::{Mlp, Mode, Module};
/// use autograd::Tensor;
/// let mlp = Mlp::new(4, 8).unwrap();
/// // Two experts over hidden neurons {0..4} and {3..8}; keys along the first two axes.
/// let keys = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[2, 4]).unwrap();
/// let moe = MoeMlp::from_mlp(&mlp, &[vec![0, 1, 2, 3], vec![3, 4, 5, 6, 7]], keys, Routing::Cosine, 1).unwrap();
/// let x = Tensor::randn(&[2, 5, 4], 0).unwrap();
/// assert_eq!(moe.forward(&x, Mode::Eval).unwrap().shape(), &[2, 5, 4]);
/// assert_eq!(moe.num_experts(), 2);
/// assert_eq!(moe.hidden(), 8);
/// ```
pub struct MoeMlp {
    /// `Linear(d, U)` over the union of the experts' neurons.
    pub fc1: Box<dyn Module>,
    /// The activation (GELU for a ViT).
    pub act: Box<dyn Module>,
    /// `Linear(U, d)`.
    pub fc2: Box<dyn Module>,
    keys: Buffer,
    expert_bias: Option<Buffer>,
    neurons: Buffer,
    offsets: Buffer,
    experts: Vec<Vec<usize>>,
    routing: Routing,
    top_k: usize,
    gathered: Option<Vec<ExpertWeights>>,
}

fn lin<'a>(m: &'a dyn Module, what: &str) -> Result<&'a Linear> {
    m.downcast_ref::<Linear>()
        .ok_or_else(|| Error::invalid("MoeMlp", format!("{what} must be a Linear, got {}", m.type_name())))
}

impl MoeMlp {
    /// A layer over the union hidden layer `fc1: d -> U`, `fc2: U -> d` with `experts` (lists of
    /// positions in `0..U`, each non-empty), `keys` `[K, d]` (one per expert), scored by
    /// `routing`, `top_k` experts per token.
    pub fn new(
        fc1: Linear,
        fc2: Linear,
        experts: Vec<Vec<usize>>,
        keys: Tensor,
        routing: Routing,
        top_k: usize,
    ) -> Result<MoeMlp> {
        let ((d, u), (u2, d2)) = (fc1.features(), fc2.features());
        let k = experts.len();
        let bad = |what: String| Error::invalid("MoeMlp::new", what);
        if u != u2 || d != d2 {
            return Err(bad(format!("fc1 is {d} -> {u} but fc2 is {u2} -> {d2}")));
        }
        if k == 0 || experts.iter().any(|e| e.is_empty() || e.iter().any(|&j| j >= u)) {
            return Err(bad(format!("needs at least one expert, each a non-empty list of neurons below {u}")));
        }
        if keys.shape() != [k, d] {
            return Err(bad(format!("keys must be [{k}, {d}] (one per expert), got {:?}", keys.shape())));
        }
        if top_k == 0 || top_k > k {
            return Err(bad(format!("top_k {top_k} must be in 1..={k}")));
        }
        let flat: Vec<i64> = experts.iter().flatten().map(|&j| j as i64).collect();
        let mut offsets = vec![0i64];
        for e in &experts {
            offsets.push(offsets[offsets.len() - 1] + e.len() as i64);
        }
        let (n_flat, n_off) = (flat.len(), offsets.len());
        Ok(MoeMlp {
            fc1: Box::new(fc1),
            act: Box::new(crate::GELU::default()),
            fc2: Box::new(fc2),
            keys: Buffer::new(keys),
            expert_bias: None,
            neurons: Buffer::new(Tensor::from_vec(flat, &[n_flat])?),
            offsets: Buffer::new(Tensor::from_vec(offsets, &[n_off])?),
            experts,
            routing,
            top_k,
            gathered: None,
        })
    }

    /// The layer for a trained [`Mlp`] and experts given as lists of its hidden neurons
    /// (`0..D`): the hidden neurons no expert uses are removed (`U ≤ D` remain, in increasing
    /// order) and the lists renumbered. The activation is the MLP's own.
    pub fn from_mlp(mlp: &Mlp, experts: &[Vec<usize>], keys: Tensor, routing: Routing, top_k: usize) -> Result<MoeMlp> {
        let (fc1, fc2) = (lin(mlp.fc1.as_ref(), "fc1")?, lin(mlp.fc2.as_ref(), "fc2")?);
        let hidden = fc1.features().1;
        if experts.iter().flatten().any(|&j| j >= hidden) {
            return Err(Error::invalid(
                "MoeMlp::from_mlp",
                format!("an expert names a neuron beyond the {hidden} hidden"),
            ));
        }
        let mut union: Vec<usize> = experts.iter().flatten().copied().collect();
        union.sort_unstable();
        union.dedup();
        let mut pos = vec![usize::MAX; hidden];
        for (i, &j) in union.iter().enumerate() {
            pos[j] = i;
        }
        let dev = fc1.weight.leaf().device();
        let idx =
            Tensor::from_vec(union.iter().map(|&j| j as i64).collect::<Vec<_>>(), &[union.len()])?.to_device(dev)?;
        let pick = |t: Tensor, axis: usize| no_grad(|| t.detach().index_select(axis, &idx)?.contiguous());
        let new_fc1 = Linear::from_tensors(
            pick(fc1.weight.leaf(), 0)?,
            fc1.bias.as_ref().map(|b| pick(b.leaf(), 0)).transpose()?,
        );
        let new_fc2 = Linear::from_tensors(pick(fc2.weight.leaf(), 1)?, fc2.bias.as_ref().map(|b| b.leaf().detach()));
        let renumbered = experts.iter().map(|e| e.iter().map(|&j| pos[j]).collect()).collect();
        let mut moe = MoeMlp::new(new_fc1, new_fc2, renumbered, keys, routing, top_k)?;
        moe.act = Box::new(crate::GELU::default());
        if let Some(g) = mlp.act.downcast_ref::<crate::GELU>() {
            moe.act = Box::new(crate::GELU { tanh_approximation: g.tanh_approximation });
        }
        Ok(moe)
    }

    /// With a per-expert output bias `[K, d]` added to each chosen expert's output (a buffer:
    /// not trained).
    pub fn with_expert_bias(mut self, bias: Tensor) -> Result<MoeMlp> {
        if bias.shape() != self.keys.get().shape() {
            return Err(Error::shape("MoeMlp::with_expert_bias", self.keys.get().shape(), bias.shape()));
        }
        self.expert_bias = Some(Buffer::new(bias));
        Ok(self)
    }

    /// The experts, as positions in the shared hidden layer `0..U`.
    pub fn experts(&self) -> &[Vec<usize>] {
        &self.experts
    }

    /// Number of experts `K`.
    pub fn num_experts(&self) -> usize {
        self.experts.len()
    }

    /// Width `U` of the shared hidden layer (the union of the experts).
    pub fn hidden(&self) -> usize {
        self.features().map_or(0, |(_, u)| u)
    }

    /// Experts chosen per token.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// How tokens are scored.
    pub fn routing(&self) -> Routing {
        self.routing
    }

    /// The routing keys `[K, d]`.
    pub fn keys(&self) -> Tensor {
        self.keys.get()
    }

    /// `(d, U)`.
    fn features(&self) -> Result<(usize, usize)> {
        Ok(lin(self.fc1.as_ref(), "fc1")?.features())
    }

    /// Copies every expert's gathered weights once from the current `fc1`/`fc2`: from now on a
    /// forward pass uses these copies (no gathering, no gradient to `fc1`/`fc2`). For an
    /// inference form; training a gathered layer changes nothing it computes.
    pub fn gather_experts(&mut self) -> Result<()> {
        let gathered = no_grad(|| -> Result<Vec<ExpertWeights>> {
            (0..self.experts.len())
                .map(|e| {
                    let w = self.expert_weights(e)?;
                    Ok(ExpertWeights {
                        w1t: w.w1t.detach().contiguous()?,
                        b1: w.b1.map(|b| b.detach().contiguous()).transpose()?,
                        w2t: w.w2t.detach().contiguous()?,
                    })
                })
                .collect()
        })?;
        self.gathered = Some(gathered);
        Ok(())
    }

    /// Whether [`MoeMlp::gather_experts`] made this layer an inference snapshot.
    pub fn is_gathered(&self) -> bool {
        self.gathered.is_some()
    }

    /// The position list of expert `e` on the weights' device.
    fn index(&self, e: usize) -> Result<Tensor> {
        let list: Vec<i64> = self.experts[e].iter().map(|&j| j as i64).collect();
        let dev = lin(self.fc1.as_ref(), "fc1")?.weight.leaf().device();
        Tensor::from_vec(list, &[self.experts[e].len()])?.to_device(dev)
    }

    /// Expert `e`'s weights gathered from `fc1`/`fc2` now (differentiable).
    fn expert_weights(&self, e: usize) -> Result<ExpertWeights> {
        let (fc1, fc2) = (lin(self.fc1.as_ref(), "fc1")?, lin(self.fc2.as_ref(), "fc2")?);
        let idx = self.index(e)?;
        Ok(ExpertWeights {
            w1t: fc1.weight.tensor().index_select(0, &idx)?.t()?,
            b1: fc1.bias.as_ref().map(|b| b.tensor().index_select(0, &idx)).transpose()?,
            w2t: fc2.weight.tensor().index_select(1, &idx)?.t()?,
        })
    }

    /// The top-`k` experts of each of the `T` tokens of `x` `[.., d]`, token-major (`T · top_k`
    /// entries, best first).
    pub fn routes(&self, x: &Tensor) -> Result<Vec<usize>> {
        let d = self.features()?.0;
        let t = x.numel() / d.max(1);
        no_grad(|| {
            let xf = x.detach().reshape_to(&[t, d])?;
            let keys = self.keys.get().to_dtype(x.dtype())?.to_device(x.device())?;
            let keys = match self.routing {
                Routing::Cosine => {
                    let norm = keys.square()?.sum(&[1], true)?.sqrt()?.maximum_scalar(1e-12)?;
                    keys.div(&norm)?
                }
                Routing::Dot => keys,
            };
            let scores = xf.matmul(&keys.t()?)?;
            let top = if self.top_k == 1 { scores.argmax(1, true)? } else { scores.topk(self.top_k, 1, true)?.1 };
            Ok(top.to_dtype(DType::I64)?.to_vec::<i64>()?.into_iter().map(|v| v as usize).collect())
        })
    }
}

impl Module for MoeMlp {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (d, _) = self.features()?;
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != d {
            return Err(Error::shape("MoeMlp", x.shape(), &[d]));
        }
        let (t, k, top_k) = (x.numel() / d, self.experts.len(), self.top_k);
        let routes = self.routes(x)?;
        // Counting sort of the (token, slot) pairs by expert.
        let mut count = vec![0usize; k];
        for &e in &routes {
            count[e] += 1;
        }
        let mut start = vec![0usize; k + 1];
        for e in 0..k {
            start[e + 1] = start[e] + count[e];
        }
        // perm: the tokens in expert order; slot_pos[s][i]: where token i's s-th choice went.
        let mut perm = vec![0i64; routes.len()];
        let mut slot_pos = vec![vec![0i64; t]; top_k];
        let mut fill = start.clone();
        for (i, &e) in routes.iter().enumerate() {
            perm[fill[e]] = (i / top_k) as i64;
            slot_pos[i % top_k][i / top_k] = fill[e] as i64;
            fill[e] += 1;
        }
        let m = perm.len();
        let perm = Tensor::from_vec(perm, &[m])?.to_device(x.device())?;
        let xs = x.reshape_to(&[t, d])?.index_select(0, &perm)?;
        let bias = self.expert_bias.as_ref().map(|b| b.get().to_dtype(x.dtype())?.to_device(x.device())).transpose()?;
        let mut outs = Vec::with_capacity(k);
        let mut macs = (t * k * d) as u64;
        for e in (0..k).filter(|&e| count[e] > 0) {
            let owned;
            let w = match &self.gathered {
                Some(g) => &g[e],
                None => {
                    owned = self.expert_weights(e)?;
                    &owned
                }
            };
            let xe = xs.narrow(0, start[e], count[e])?;
            let mut h = xe.matmul(&w.w1t)?;
            if let Some(b1) = &w.b1 {
                h = h.add(b1)?;
            }
            let mut y = self.act.forward(&h, mode)?.matmul(&w.w2t)?;
            if let Some(b) = &bias {
                y = y.add(&b.select(0, e)?)?;
            }
            macs += (count[e] * 2 * d * self.experts[e].len()) as u64;
            outs.push(y);
        }
        let refs: Vec<&Tensor> = outs.iter().collect();
        let ys = Tensor::cat(&refs, 0)?;
        // Back to token order (a gather per slot; the chosen experts' outputs add up).
        let mut out: Option<Tensor> = None;
        for pos in slot_pos {
            let pos = Tensor::from_vec(pos, &[t])?.to_device(x.device())?;
            let y = ys.index_select(0, &pos)?;
            out = Some(match out {
                Some(o) => o.add(&y)?,
                None => y,
            });
        }
        let mut out = out.ok_or_else(|| Error::invalid("MoeMlp", "no expert chosen"))?;
        if let Some(b2) = &lin(self.fc2.as_ref(), "fc2")?.bias {
            out = out.add(&b2.tensor())?;
        }
        let out = out.reshape_to(x.shape())?;
        mac::record(Some(&lin(self.fc1.as_ref(), "fc1")?.weight), "moe", macs, x.shape(), out.shape());
        Ok(out)
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        let mut v = vec![("keys".to_string(), self.keys.clone())];
        v.extend(self.expert_bias.iter().map(|b| ("expert_bias".to_string(), b.clone())));
        v.push(("expert_neurons".into(), self.neurons.clone()));
        v.push(("expert_offsets".into(), self.offsets.clone()));
        v
    }

    children!(fc1, act, fc2);
}

#[cfg(test)]
mod tests;
