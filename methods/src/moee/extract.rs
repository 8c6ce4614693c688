//! Expert extraction from clustered hidden activations (spec §1.2, phase 2): per cluster, the
//! smallest set of hidden neurons whose activation variance inside the cluster reaches a share
//! `p` of the cluster's total, the routing key (the cluster's mean input token) and, for the
//! bias-folding ablation, the expert's output-bias correction.

use autograd::{Error, Result};

use super::capture::Capture;

/// The experts extracted for one MLP.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerExperts {
    /// Hidden neurons (`0..D`) of each expert, by decreasing in-cluster variance.
    pub experts: Vec<Vec<usize>>,
    /// Routing keys `[K, d]`: each cluster's mean input token.
    pub keys: Vec<f32>,
    /// Per-expert output-bias corrections `[K, d]` (bias folding), if asked.
    pub bias: Option<Vec<f32>>,
    /// Sampled tokens per cluster.
    pub sizes: Vec<usize>,
}

impl LayerExperts {
    /// Number of experts `K`.
    pub fn len(&self) -> usize {
        self.experts.len()
    }

    /// Whether there is no expert (the layer stays dense).
    pub fn is_empty(&self) -> bool {
        self.experts.is_empty()
    }

    /// The union of the experts' neurons, sorted.
    pub fn union(&self) -> Vec<usize> {
        let mut u: Vec<usize> = self.experts.iter().flatten().copied().collect();
        u.sort_unstable();
        u.dedup();
        u
    }
}

/// The smallest prefix of the neurons sorted by decreasing `variance` (ties: lower index first)
/// whose sum reaches `p · Σ variance`; `p ≥ 1` keeps every neuron of nonzero variance. At
/// least one neuron is kept.
///
/// ```
/// use methods::moee::top_variance;
/// assert_eq!(top_variance(&[1.0, 5.0, 0.0, 4.0], 0.9), [1, 3]);
/// assert_eq!(top_variance(&[1.0, 5.0, 0.0, 4.0], 1.0), [1, 3, 0]);
/// assert_eq!(top_variance(&[0.0, 0.0], 0.5), [0]);
/// ```
pub fn top_variance(variance: &[f64], p: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..variance.len()).collect();
    order.sort_by(|&a, &b| variance[b].total_cmp(&variance[a]).then(a.cmp(&b)));
    let total: f64 = variance.iter().sum();
    let mut kept = Vec::new();
    let mut cum = 0.0;
    for j in order {
        let done = if p >= 1.0 { variance[j] <= 0.0 } else { cum >= p * total };
        if done && !kept.is_empty() {
            break;
        }
        kept.push(j);
        cum += variance[j];
    }
    kept
}

/// Experts of one MLP from its captured tokens and their cluster `labels` (`-1`: noise,
/// ignored): cluster `k`'s expert keeps [`top_variance`] of its members' hidden activations at
/// `p`, its key is its members' mean input token, and with `fold_bias` (`w2`: the MLP's `fc2`
/// weight `[d, D]`, row-major) the dropped neurons' mean activations times their output weights
/// become the expert's bias correction `Σ_{j ∉ E_k} mean(y_j) W2[:, j]`.
pub fn extract_experts(cap: &Capture, labels: &[i64], p: f64, fold_bias: Option<&[f32]>) -> Result<LayerExperts> {
    let (n, d, h) = (cap.len(), cap.dim, cap.hidden);
    if labels.len() != n {
        return Err(Error::invalid("extract_experts", format!("{} labels for {n} tokens", labels.len())));
    }
    if p.is_nan() || p <= 0.0 {
        return Err(Error::invalid("extract_experts", format!("p = {p} must be positive")));
    }
    let k = crate::cluster::num_clusters(labels);
    let mut out = LayerExperts { experts: vec![], keys: vec![0.0; k * d], bias: None, sizes: vec![0; k] };
    let mut bias = vec![0.0f32; k * d];
    for c in 0..k {
        let members: Vec<usize> = (0..n).filter(|&i| labels[i] == c as i64).collect();
        let m = members.len().max(1) as f64;
        let (mut mean, mut sq) = (vec![0.0f64; h], vec![0.0f64; h]);
        let mut key = vec![0.0f64; d];
        for &i in &members {
            for (j, &v) in cap.y[i * h..(i + 1) * h].iter().enumerate() {
                mean[j] += f64::from(v);
                sq[j] += f64::from(v) * f64::from(v);
            }
            for (a, &v) in key.iter_mut().zip(&cap.x[i * d..(i + 1) * d]) {
                *a += f64::from(v);
            }
        }
        let var: Vec<f64> = (0..h)
            .map(|j| {
                let mu = mean[j] / m;
                (sq[j] / m - mu * mu).max(0.0)
            })
            .collect();
        let expert = top_variance(&var, p);
        for (o, a) in key.iter().enumerate() {
            out.keys[c * d + o] = (a / m) as f32;
        }
        if let Some(w2) = fold_bias {
            let mut keep = vec![false; h];
            for &j in &expert {
                keep[j] = true;
            }
            for o in 0..d {
                let s: f64 = (0..h).filter(|&j| !keep[j]).map(|j| mean[j] / m * f64::from(w2[o * h + j])).sum();
                bias[c * d + o] = s as f32;
            }
        }
        out.sizes[c] = members.len();
        out.experts.push(expert);
    }
    if fold_bias.is_some() {
        out.bias = Some(bias);
    }
    Ok(out)
}
