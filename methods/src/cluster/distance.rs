//! Points as a borrowed `[n, dim]` matrix, and their Euclidean distance matrix.

use autograd::{Error, Result};
use rayon::prelude::*;

/// `n` points of `dim` coordinates, row-major.
#[derive(Clone, Copy, Debug)]
pub struct Points<'a> {
    /// The coordinates, `n · dim` of them.
    pub data: &'a [f32],
    /// Coordinates per point.
    pub dim: usize,
}

impl<'a> Points<'a> {
    /// Checks that `data` holds whole rows of `dim` finite values.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Points<'a>> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::invalid("Points", format!("{} values are not rows of {dim}", data.len())));
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("Points", "a coordinate is not finite"));
        }
        Ok(Points { data, dim })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether there is no point.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Squared Euclidean distance, accumulated in `f64`.
pub(crate) fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x - y) * f64::from(x - y)).sum()
}

/// The full `n x n` Euclidean distance matrix (row-major, `f64`; `8 n²` bytes), computed
/// from the coordinates directly (no `|a|² + |b|² − 2ab` cancellation): the upper triangle
/// row-parallel, then mirrored.
pub fn pairwise_distances(p: Points<'_>) -> Vec<f64> {
    let n = p.len();
    let mut d = vec![0.0f64; n * n];
    d.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        let a = p.row(i);
        for (j, v) in row.iter_mut().enumerate().skip(i + 1) {
            *v = sq_dist(a, p.row(j)).sqrt();
        }
    });
    for i in 0..n {
        for j in 0..i {
            d[i * n + j] = d[j * n + i];
        }
    }
    d
}
