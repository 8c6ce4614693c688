//! The structure decided for each MLP ([`BlockPlan`]), how it is decided (MoEE: cluster, then
//! extract; MoEfication: split the parameters at MoEE's MACs) and how it is applied to a model
//! (`layers::surgery::replace` of each `Mlp` by a [`MoeMlp`]), also on `--resume`.

use autograd::{Error, Result, Tensor};
use layers::moe::{MoeMlp, Routing};
use layers::surgery::{replace, Select};
use layers::{Linear, Mlp, Module, ModuleExt};
use serde::{Deserialize, Serialize};

use super::capture::Capture;
use super::extract::extract_experts;
use super::method::{Clustering, MoeeConfig, Moefication};
use super::moefication::{matching_top_k, parameter_split};
use crate::cluster::{hdbscan, kmeans, num_clusters, KmeansOptions, Points};
use crate::registry::MethodState;

/// What one MLP becomes: dense, or experts with their routing. The experts, keys and bias
/// corrections travel as method tensors (`<path>.neurons`, `.offsets`, `.keys`,
/// `.expert_bias`), the rest as JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockPlan {
    /// The MLP's path (`blocks.3.mlp`).
    pub path: String,
    /// Token width `d`.
    pub dim: usize,
    /// Hidden width `D` of the dense MLP.
    pub hidden: usize,
    /// Tokens sampled for clustering.
    pub sampled: usize,
    /// Clusters the clustering found.
    pub clusters: usize,
    /// Sampled tokens labelled noise.
    pub noise: usize,
    /// `cosine` or `dot`; `None`: the MLP stays dense.
    pub routing: Option<String>,
    /// Experts per token.
    pub top_k: usize,
    /// Hidden neurons kept (the union of the experts).
    pub union: usize,
    /// Hidden neurons used per sampled token, on average (`D` for a dense MLP).
    pub mean_active: f64,
    /// Each expert's size.
    pub sizes: Vec<usize>,
    /// Whether the experts have output-bias corrections.
    pub has_bias: bool,
    /// Each expert's hidden neurons (`0..D`).
    #[serde(skip)]
    pub experts: Vec<Vec<usize>>,
    /// Routing keys `[K, d]`.
    #[serde(skip)]
    pub keys: Vec<f32>,
    /// Bias corrections `[K, d]`.
    #[serde(skip)]
    pub bias: Option<Vec<f32>>,
}

impl BlockPlan {
    /// Whether the MLP becomes a mixture of experts.
    pub fn is_moe(&self) -> bool {
        self.routing.is_some()
    }

    /// One line for the summary.
    pub fn describe(&self) -> String {
        let found = format!("{} clusters, {} of {} sampled tokens noise", self.clusters, self.noise, self.sampled);
        match &self.routing {
            None => format!("dense ({found})"),
            Some(r) => format!(
                "{} experts of {}..{} neurons ({found}); kept {}/{} neurons; {:.1} active per token ({:.0}%); {r} top-{}{}",
                self.sizes.len(),
                self.sizes.iter().min().unwrap_or(&0),
                self.sizes.iter().max().unwrap_or(&0),
                self.union,
                self.hidden,
                self.mean_active,
                100.0 * self.mean_active / self.hidden.max(1) as f64,
                self.top_k,
                if self.has_bias { ", folded biases" } else { "" }
            ),
        }
    }

    /// The method tensors of this plan.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let flat: Vec<i64> = self.experts.iter().flatten().map(|&j| j as i64).collect();
        let mut offsets = vec![0i64];
        for e in &self.experts {
            offsets.push(offsets[offsets.len() - 1] + e.len() as i64);
        }
        let k = self.experts.len();
        let mut v = vec![
            (format!("{}.neurons", self.path), Tensor::from_vec(flat.clone(), &[flat.len()])?),
            (format!("{}.offsets", self.path), Tensor::from_vec(offsets, &[k + 1])?),
            (format!("{}.keys", self.path), Tensor::from_vec(self.keys.clone(), &[k, self.dim])?),
        ];
        if let Some(b) = &self.bias {
            v.push((format!("{}.expert_bias", self.path), Tensor::from_vec(b.clone(), &[k, self.dim])?));
        }
        Ok(v)
    }

    /// Reads back what [`BlockPlan::tensors`] saved.
    pub fn load_tensors(&mut self, state: &MethodState) -> Result<()> {
        let ints = |t: &Tensor| -> Result<Vec<usize>> {
            Ok(t.to_dtype(autograd::DType::I64)?.to_vec::<i64>()?.into_iter().map(|v| v as usize).collect())
        };
        let floats = |t: &Tensor| t.to_dtype(autograd::DType::F32)?.to_vec::<f32>();
        let flat = ints(state.tensor(&format!("{}.neurons", self.path))?)?;
        let offsets = ints(state.tensor(&format!("{}.offsets", self.path))?)?;
        if offsets.first() != Some(&0)
            || offsets.last() != Some(&flat.len())
            || offsets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(Error::invalid("moee", format!("{}: corrupt expert offsets in the saved state", self.path)));
        }
        self.experts = offsets.windows(2).map(|w| flat[w[0]..w[1]].to_vec()).collect();
        self.keys = floats(state.tensor(&format!("{}.keys", self.path))?)?;
        self.bias =
            if self.has_bias { Some(floats(state.tensor(&format!("{}.expert_bias", self.path))?)?) } else { None };
        Ok(())
    }
}

fn mlp_at<'a>(model: &'a dyn Module, path: &str) -> Result<&'a Mlp> {
    model
        .get_module(path)
        .and_then(|m| m.downcast_ref::<Mlp>())
        .ok_or_else(|| Error::invalid("moee", format!("no dense Mlp at {path:?}")))
}

fn weight(m: &dyn Module) -> Result<Vec<f32>> {
    let l = m.downcast_ref::<Linear>().ok_or_else(|| Error::invalid("moee", "the MLP's layers must be Linear"))?;
    l.weight.leaf().to_dtype(autograd::DType::F32)?.contiguous()?.to_vec::<f32>()
}

/// Index of the key with the largest cosine similarity to `x` (ties: the lower index).
fn cosine_route(x: &[f32], keys: &[f32], d: usize) -> usize {
    let mut best = (f64::NEG_INFINITY, 0);
    for (k, key) in keys.chunks(d).enumerate() {
        let norm = key.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt().max(1e-12);
        let s = x.iter().zip(key).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() / norm;
        if s > best.0 {
            best = (s, k);
        }
    }
    best.1
}

/// MoEE for one captured MLP: cluster the hidden activations, extract an expert per cluster
/// (dense when fewer than two clusters), route by cosine to the clusters' mean inputs.
pub fn plan_moee(model: &dyn Module, cap: &Capture, cfg: &MoeeConfig, seed: u64) -> Result<BlockPlan> {
    let n = cap.len();
    let mut plan = BlockPlan {
        path: cap.path.clone(),
        dim: cap.dim,
        hidden: cap.hidden,
        sampled: n,
        mean_active: cap.hidden as f64,
        union: cap.hidden,
        ..Default::default()
    };
    if n < 4 {
        return Ok(plan);
    }
    let points = Points::new(&cap.y, cap.hidden)?;
    let labels = match cfg.clustering {
        Clustering::Hdbscan { min_cluster_size, min_samples } => {
            hdbscan(points, Clustering::hdbscan_options(min_cluster_size, min_samples, n))?
        }
        Clustering::Kmeans { k } => kmeans(points, KmeansOptions { k: k.min(n), max_iter: 100, seed })?.0,
    };
    plan.clusters = num_clusters(&labels);
    plan.noise = labels.iter().filter(|&&l| l < 0).count();
    if plan.clusters < 2 {
        return Ok(plan);
    }
    let w2 = if cfg.fold_bias { Some(weight(mlp_at(model, &cap.path)?.fc2.as_ref())?) } else { None };
    let ex = extract_experts(cap, &labels, cfg.p, w2.as_deref())?;
    let d = cap.dim;
    let active: usize = (0..n).map(|i| ex.experts[cosine_route(&cap.x[i * d..(i + 1) * d], &ex.keys, d)].len()).sum();
    plan.mean_active = active as f64 / n as f64;
    plan.union = ex.union().len();
    plan.sizes = ex.experts.iter().map(Vec::len).collect();
    plan.routing = Some(Routing::Cosine.name().into());
    plan.top_k = 1;
    plan.has_bias = ex.bias.is_some();
    (plan.experts, plan.keys, plan.bias) = (ex.experts, ex.keys, ex.bias);
    Ok(plan)
}

/// MoEfication for an MLP that MoEE converted (`moee`): equal-size experts from the MLP's
/// `fc1` rows, as many per token as MoEE's mean active neurons take (or `m.active`); an MLP that
/// MoEE left dense stays dense.
pub fn plan_moefication(model: &dyn Module, moee: &BlockPlan, m: Moefication, seed: u64) -> Result<BlockPlan> {
    if !moee.is_moe() {
        return Ok(moee.clone());
    }
    let w1 = weight(mlp_at(model, &moee.path)?.fc1.as_ref())?;
    let (experts, centers) = parameter_split(&w1, moee.dim, m.experts, seed)?;
    let target = m.active.map_or(moee.mean_active, |f| f * moee.hidden as f64);
    let top_k = matching_top_k(target, moee.hidden, m.experts);
    let sizes: Vec<usize> = experts.iter().map(Vec::len).collect();
    Ok(BlockPlan {
        routing: Some(Routing::Dot.name().into()),
        top_k,
        union: moee.hidden,
        mean_active: top_k as f64 * moee.hidden as f64 / m.experts as f64,
        sizes,
        has_bias: false,
        experts,
        keys: centers,
        bias: None,
        ..moee.clone()
    })
}

/// Replaces every planned MLP of `model` by its mixture of experts (weights from the MLP).
pub fn apply_plans(model: &mut Box<dyn Module>, plans: &[BlockPlan]) -> Result<()> {
    for plan in plans.iter().filter(|p| p.is_moe()) {
        let routing = match plan.routing.as_deref() {
            Some("dot") => Routing::Dot,
            _ => Routing::Cosine,
        };
        let select = Select::all().path(&plan.path)?.of_type::<Mlp>();
        replace(model.as_mut(), &select, &mut |_, old| {
            let mlp = old.downcast_ref::<Mlp>().ok_or_else(|| Error::invalid("moee", "not an Mlp"))?;
            let k = plan.experts.len();
            let keys = Tensor::from_vec(plan.keys.clone(), &[k, plan.dim])?;
            let mut moe = MoeMlp::from_mlp(mlp, &plan.experts, keys, routing, plan.top_k)?;
            if let Some(b) = &plan.bias {
                moe = moe.with_expert_bias(Tensor::from_vec(b.clone(), &[k, plan.dim])?)?;
            }
            Ok(Box::new(moe))
        })?;
    }
    Ok(())
}
