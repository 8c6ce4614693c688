//! The MoEfication baseline (Zhang et al., Findings of ACL 2022; spec §1.6) at the MACs of an
//! MoEE extraction: the `D` hidden neurons of an MLP split into `K` equal-size experts by
//! balanced k-means on their input weight vectors (the rows of `fc1.weight`, normalized to unit
//! length: "parameter clustering"), routed by the similarity router over parameter centers
//! (`score_e = x · c_e`, `c_e` the mean of expert `e`'s normalized weight vectors), `top_k`
//! experts per token with their outputs summed; no neuron is removed.
//!
//! Reconstruction choices: the normalization, the center router (MoEfication's best router is an
//! MLP trained to predict each expert's activation mass; the similarity router is its training-free
//! variant) and the matching of MACs: per layer, `top_k = round(ā / (D / K))` (at least 1) where
//! `ā` is the mean number of hidden neurons the MoEE experts of that layer use per token.

use autograd::{Error, Result};

use crate::cluster::{balanced_kmeans, KmeansOptions, Points};

/// `K` equal-size experts (lists of hidden neurons, sorted) of an MLP with `fc1` weight `w1`
/// `[D, d]` (row-major), and their routing centers `[K, d]`.
///
/// ```
/// use methods::moee::parameter_split;
/// // Four neurons of two directions: two experts of two neurons each.
/// let w1 = [1.0f32, 0.0, 2.0, 0.1, 0.0, 1.0, 0.1, 3.0];
/// let (experts, centers) = parameter_split(&w1, 2, 2, 0).unwrap();
/// let mut e = experts.clone();
/// e.sort();
/// assert_eq!(e, [vec![0, 1], vec![2, 3]]);
/// assert_eq!(centers.len(), 4);
/// ```
pub fn parameter_split(w1: &[f32], dim: usize, k: usize, seed: u64) -> Result<(Vec<Vec<usize>>, Vec<f32>)> {
    let hidden = w1.len() / dim.max(1);
    if k == 0 || k > hidden {
        return Err(Error::invalid("moefication", format!("{k} experts for {hidden} hidden neurons")));
    }
    let mut unit = w1.to_vec();
    for row in unit.chunks_mut(dim) {
        let norm = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt().max(1e-12);
        for v in row.iter_mut() {
            *v = (f64::from(*v) / norm) as f32;
        }
    }
    let opts = KmeansOptions { k, max_iter: 50, seed };
    let (labels, centers) = balanced_kmeans(Points::new(&unit, dim)?, opts)?;
    let experts = (0..k).map(|c| (0..hidden).filter(|&j| labels[j] == c as i64).collect()).collect();
    Ok((experts, centers))
}

/// Experts per token for `K` experts of `hidden / K` neurons to use `mean_active` neurons per
/// token on average: `round(mean_active · K / hidden)`, in `1..=K`.
///
/// ```
/// assert_eq!(methods::moee::matching_top_k(150.0, 384, 16), 6);
/// assert_eq!(methods::moee::matching_top_k(1.0, 384, 16), 1);
/// ```
pub fn matching_top_k(mean_active: f64, hidden: usize, k: usize) -> usize {
    ((mean_active * k as f64 / hidden.max(1) as f64).round() as usize).clamp(1, k.max(1))
}
