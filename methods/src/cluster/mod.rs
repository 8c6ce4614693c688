//! Clustering of host data (rows of a row-major `[n, dim]` `f32` matrix), for methods that
//! cluster activations or weights offline: [`hdbscan`] (density-based, picks the number of
//! clusters itself), [`kmeans`] (Lloyd with k-means++ seeding) and [`balanced_kmeans`] (equal
//! cluster sizes, MoEfication's parameter split).
//!
//! Everything is deterministic: the same data, parameters and seed give the same labels,
//! whatever the thread count. Labels are `0..k`, and `-1` marks HDBSCAN's noise.
//!
//! # Why not a crate
//!
//! `petal-clustering` (the one maintained Rust HDBSCAN) pulls in `ndarray`, `petal-neighbors`
//! and their trees for what is here a few hundred lines over a dense distance matrix, and its
//! cluster selection is not documented as scikit-learn's; this implementation follows
//! scikit-learn's `HDBSCAN(algorithm="brute")` step by step and is checked against reference
//! clusterings that scikit-learn computed (`methods/tests/fixtures/moee/`): the same partitions
//! when scikit-learn's minimum spanning tree is sorted stably as here, at most one point apart
//! with its default (unstable) sort, which orders tied mutual-reachability distances
//! arbitrarily.

mod balanced;
mod distance;
mod hdbscan;
mod kmeans;

pub use balanced::balanced_kmeans;
pub use distance::{pairwise_distances, Points};
pub use hdbscan::{hdbscan, HdbscanOptions};
pub use kmeans::{kmeans, KmeansOptions};

/// The number of clusters of `labels` (the largest label plus one; noise `-1` excluded).
pub fn num_clusters(labels: &[i64]) -> usize {
    labels.iter().copied().max().map_or(0, |m| (m + 1).max(0) as usize)
}

/// A seeded stream of uniform numbers (SplitMix64), so clustering needs no random crate.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> SplitMix {
        SplitMix(seed ^ 0x6A09_E667_F3BC_C909)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
