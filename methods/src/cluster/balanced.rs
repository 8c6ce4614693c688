//! Balanced k-means (MoEfication's parameter split into equal-size experts): k-means++ seeding,
//! then iterations that assign points to centers greedily by increasing distance under a
//! capacity of `floor(n / k)` points per cluster, plus one for the first `n mod k` clusters
//! that fill up (so sizes differ by at most one), then recompute the means.
//! A reconstruction: MoEfication's code uses a balanced k-means whose exact assignment rule its
//! paper does not give; the greedy capacity-constrained assignment is the common one.

use autograd::{Error, Result};

use super::distance::sq_dist;
use super::kmeans::iterate;
use super::{KmeansOptions, Points};

/// Labels `0..k` of `points` with every cluster of `floor(n / k)` or `ceil(n / k)` points,
/// and the `k` centers (`[k, dim]`).
///
/// ```
/// use methods::cluster::{balanced_kmeans, KmeansOptions, Points};
/// // Three groups of four, far apart.
/// let xs: Vec<f32> = (0..12).map(|i| (i / 4) as f32 * 10.0 + (i % 4) as f32 * 0.1).collect();
/// let (labels, _) = balanced_kmeans(Points::new(&xs, 1).unwrap(), KmeansOptions::new(3)).unwrap();
/// for c in 0..3 { assert_eq!(labels.iter().filter(|&&l| l == c).count(), 4); }
/// assert!(labels[..4].iter().all(|&l| l == labels[0]));
/// ```
pub fn balanced_kmeans(points: Points<'_>, opts: KmeansOptions) -> Result<(Vec<i64>, Vec<f32>)> {
    let (n, k, dim) = (points.len(), opts.k, points.dim);
    if k == 0 || k > n {
        return Err(Error::invalid("balanced_kmeans", format!("k = {k} must be in 1..={n} (the number of points)")));
    }
    Ok(iterate(points, &opts, &mut |centers| {
        // Every (distance, point, center), nearest first.
        let mut pairs: Vec<(f64, usize, usize)> = Vec::with_capacity(n * k);
        for i in 0..n {
            for c in 0..k {
                pairs.push((sq_dist(points.row(i), &centers[c * dim..(c + 1) * dim]), i, c));
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let small = n / k;
        let mut extra_left = n % k;
        let mut size = vec![0usize; k];
        let mut new = vec![-1i64; n];
        for (_, i, c) in pairs {
            if new[i] >= 0 {
                continue;
            }
            if size[c] < small || (size[c] == small && extra_left > 0) {
                if size[c] == small {
                    extra_left -= 1;
                }
                size[c] += 1;
                new[i] = c as i64;
            }
        }
        new
    }))
}
