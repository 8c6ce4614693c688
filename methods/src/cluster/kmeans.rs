//! k-means: k-means++ seeding (D² sampling from a seeded stream), then Lloyd iterations until
//! no label changes or `max_iter`; an emptied cluster takes the point farthest from its center.

use autograd::{Error, Result};
use rayon::prelude::*;

use super::distance::sq_dist;
use super::{Points, SplitMix};

/// k-means' parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmeansOptions {
    /// Number of clusters.
    pub k: usize,
    /// Lloyd iterations at most.
    pub max_iter: usize,
    /// Seed of the k-means++ seeding.
    pub seed: u64,
}

impl KmeansOptions {
    /// `k` clusters, at most 100 iterations, seed 0.
    pub fn new(k: usize) -> KmeansOptions {
        KmeansOptions { k, max_iter: 100, seed: 0 }
    }
}

/// Labels `0..k` of `points` and the `k` centers (row-major `[k, dim]`).
///
/// ```
/// use methods::cluster::{kmeans, KmeansOptions, Points};
/// let xs = [0.0f32, 0.1, 0.2, 10.0, 10.1, 10.2];
/// let (labels, centers) = kmeans(Points::new(&xs, 1).unwrap(), KmeansOptions::new(2)).unwrap();
/// assert_eq!(labels[0], labels[2]);
/// assert_ne!(labels[0], labels[3]);
/// assert!((centers[labels[3] as usize] - 10.1).abs() < 1e-5);
/// ```
pub fn kmeans(points: Points<'_>, opts: KmeansOptions) -> Result<(Vec<i64>, Vec<f32>)> {
    let (n, k) = (points.len(), opts.k);
    if k == 0 || k > n {
        return Err(Error::invalid("kmeans", format!("k = {k} must be in 1..={n} (the number of points)")));
    }
    Ok(iterate(points, &opts, &mut |centers| assign(points, centers, k)))
}

/// k-means++ seeding, then up to `opts.max_iter` rounds of `assign` (labels of the points for
/// the current centers) and the means of the labelled points, until the labels stop changing.
pub(crate) fn iterate(
    points: Points<'_>,
    opts: &KmeansOptions,
    assign: &mut dyn FnMut(&[f32]) -> Vec<i64>,
) -> (Vec<i64>, Vec<f32>) {
    let k = opts.k;
    let mut centers = seed_plus_plus(points, k, opts.seed);
    let mut labels = vec![-1i64; points.len()];
    for _ in 0..opts.max_iter.max(1) {
        let new = assign(&centers);
        let changed = new != labels;
        labels = new;
        centers = update(points, &labels, &centers, k);
        if !changed {
            break;
        }
    }
    (labels, centers)
}

/// k-means++: the first center uniformly, each next one with probability proportional to the
/// squared distance to the nearest chosen center.
pub(crate) fn seed_plus_plus(points: Points<'_>, k: usize, seed: u64) -> Vec<f32> {
    let (n, dim) = (points.len(), points.dim);
    let mut rng = SplitMix::new(seed);
    let first = ((rng.uniform() * n as f64) as usize).min(n - 1);
    let mut centers = points.row(first).to_vec();
    let mut near: Vec<f64> = (0..n).map(|i| sq_dist(points.row(i), points.row(first))).collect();
    for _ in 1..k {
        let total: f64 = near.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.uniform() * total;
            near.iter()
                .position(|&d| {
                    r -= d;
                    r < 0.0
                })
                .unwrap_or(n - 1)
        } else {
            ((rng.uniform() * n as f64) as usize).min(n - 1)
        };
        let c = points.row(pick);
        centers.extend_from_slice(c);
        for (i, d) in near.iter_mut().enumerate() {
            *d = d.min(sq_dist(points.row(i), c));
        }
    }
    debug_assert_eq!(centers.len(), k * dim);
    centers
}

/// The nearest center of every point (ties: the lower index).
pub(crate) fn assign(points: Points<'_>, centers: &[f32], k: usize) -> Vec<i64> {
    let dim = points.dim;
    (0..points.len())
        .into_par_iter()
        .map(|i| {
            let x = points.row(i);
            let mut best = (f64::INFINITY, 0usize);
            for c in 0..k {
                let d = sq_dist(x, &centers[c * dim..(c + 1) * dim]);
                if d < best.0 {
                    best = (d, c);
                }
            }
            best.1 as i64
        })
        .collect()
}

/// The mean of each cluster's points; an empty cluster takes the point farthest from its
/// assigned center.
pub(crate) fn update(points: Points<'_>, labels: &[i64], old: &[f32], k: usize) -> Vec<f32> {
    let dim = points.dim;
    let mut sum = vec![0.0f64; k * dim];
    let mut count = vec![0usize; k];
    for (i, &l) in labels.iter().enumerate() {
        let l = l as usize;
        count[l] += 1;
        for (s, &v) in sum[l * dim..(l + 1) * dim].iter_mut().zip(points.row(i)) {
            *s += f64::from(v);
        }
    }
    let mut centers: Vec<f32> = old.to_vec();
    for c in 0..k {
        if count[c] > 0 {
            for j in 0..dim {
                centers[c * dim + j] = (sum[c * dim + j] / count[c] as f64) as f32;
            }
        }
    }
    for c in (0..k).filter(|&c| count[c] == 0) {
        let far = (0..points.len())
            .max_by(|&a, &b| {
                let da = sq_dist(points.row(a), &centers[labels[a] as usize * dim..][..dim]);
                let db = sq_dist(points.row(b), &centers[labels[b] as usize * dim..][..dim]);
                da.total_cmp(&db).then(b.cmp(&a))
            })
            .unwrap_or(0);
        centers[c * dim..(c + 1) * dim].copy_from_slice(points.row(far));
    }
    centers
}
