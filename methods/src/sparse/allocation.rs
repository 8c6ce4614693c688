//! How many weights each layer keeps, and which: global top-k of scores across layers, or
//! per-layer densities (uniform, Erdős–Rényi, Erdős–Rényi-Kernel) with a top-k inside each
//! layer.
//!
//! # Exact counts
//!
//! A density `d` over `N` coordinates keeps `round(d·N)` of them ([`keep_count`]); per-layer
//! allocations hand the layers integer counts that add up to exactly that total (each layer's
//! real-valued share `d_l·n_l`, floored, the remainder given one by one to the layers with the
//! largest fractional parts, earlier layers first on ties) and never exceed a layer's size.
//! Top-k selections are exact too: ties in score are broken by position (the lower index is
//! kept), so exactly `k` coordinates are kept, deterministically.
//!
//! # ER and ERK
//!
//! As `get_sparsities_erdos_renyi` in `google-research/rigl` (`rigl/sparse_utils.py`): layer `l`
//! gets density `ε·r_l` with `r_l = (n_in + n_out) / (n_in·n_out)` (ER; the kernel size is
//! ignored) or `r_l = (n_in + n_out + k_h + k_w) / (n_in·n_out·k_h·k_w)` (ERK), with `ε` solved
//! so that the layers keep `d·N` weights in total; a layer whose density would exceed 1 is made
//! dense and `ε` is solved again for the others (repeatedly, largest `r_l` first).

use autograd::{Error, Result};

use super::masked::LayerGeometry;

/// How the kept weights are spread over the layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// One top-k over the scores of all layers together (SNIP, GraSP, SynFlow, LTH).
    Global,
    /// The same density in every layer.
    Uniform,
    /// Erdős–Rényi: density ∝ `(n_in + n_out) / (n_in·n_out)` (SET).
    Er,
    /// Erdős–Rényi-Kernel: density ∝ `(n_in + n_out + k_h + k_w) / (n_in·n_out·k_h·k_w)` (RigL).
    Erk,
}

impl Allocation {
    /// Parses `global`, `uniform`, `er` or `erk`.
    pub fn parse(s: &str) -> Result<Allocation> {
        Ok(match s.trim() {
            "global" => Allocation::Global,
            "uniform" => Allocation::Uniform,
            "er" => Allocation::Er,
            "erk" => Allocation::Erk,
            other => {
                return Err(Error::invalid(
                    "--set",
                    format!("allocation = {other:?}; expected global, uniform, er or erk"),
                ))
            }
        })
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Allocation::Global => "global",
            Allocation::Uniform => "uniform",
            Allocation::Er => "er",
            Allocation::Erk => "erk",
        }
    }
}

/// The number of coordinates a density `density` keeps out of `n`: `round(density·n)`.
pub fn keep_count(density: f64, n: usize) -> usize {
    ((density * n as f64).round().max(0.0) as usize).min(n)
}

/// The per-layer densities of `alloc` (not [`Allocation::Global`]) for layers of geometries
/// `geoms` keeping the overall density `density`.
pub fn layer_densities(alloc: Allocation, geoms: &[LayerGeometry], density: f64) -> Result<Vec<f64>> {
    if !(0.0..=1.0).contains(&density) {
        return Err(Error::invalid("allocation", format!("density {density} outside [0, 1]")));
    }
    let raw: Vec<f64> = geoms
        .iter()
        .map(|g| {
            let (i, o, h, w) = (g.n_in as f64, g.n_out as f64, g.kh as f64, g.kw as f64);
            match alloc {
                Allocation::Uniform => 1.0,
                Allocation::Er => (i + o) / (i * o),
                Allocation::Erk => (i + o + h + w) / (i * o * h * w),
                Allocation::Global => f64::NAN,
            }
        })
        .collect();
    if alloc == Allocation::Global {
        return Err(Error::invalid("allocation", "a global top-k has no per-layer densities"));
    }
    let sizes: Vec<f64> = geoms.iter().map(|g| g.numel() as f64).collect();
    let mut dense = vec![false; geoms.len()];
    loop {
        let (mut rhs, mut divisor) = (0.0, 0.0);
        for (l, &n) in sizes.iter().enumerate() {
            if dense[l] {
                rhs -= n * (1.0 - density);
            } else {
                rhs += n * density;
                divisor += raw[l] * n;
            }
        }
        if divisor == 0.0 {
            // Every layer dense: only possible at density 1.
            return Ok(vec![1.0; geoms.len()]);
        }
        let eps = rhs / divisor;
        let max_raw = (0..raw.len()).filter(|&l| !dense[l]).map(|l| raw[l]).fold(f64::MIN, f64::max);
        if max_raw * eps > 1.0 {
            for l in 0..raw.len() {
                if !dense[l] && raw[l] == max_raw {
                    dense[l] = true;
                }
            }
        } else {
            return Ok((0..raw.len()).map(|l| if dense[l] { 1.0 } else { eps * raw[l] }).collect());
        }
    }
}

/// Integer counts per layer for real-valued densities `densities` over layers of `sizes`, adding
/// up to exactly `total` (see the [module docs](self)).
pub fn layer_counts(densities: &[f64], sizes: &[usize], total: usize) -> Vec<usize> {
    let shares: Vec<f64> = densities.iter().zip(sizes).map(|(d, &n)| (d * n as f64).clamp(0.0, n as f64)).collect();
    let mut counts: Vec<usize> = shares.iter().map(|s| s.floor() as usize).collect();
    let mut left = total.saturating_sub(counts.iter().sum());
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| (shares[b] - shares[b].floor()).total_cmp(&(shares[a] - shares[a].floor())).then(a.cmp(&b)));
    // Hand out the remainder one by one by largest fractional part; whatever is left then (when
    // capped shares fall short of the total) fills the layers with room, in the same order.
    for &l in &order {
        if left > 0 && counts[l] < sizes[l] && shares[l] > shares[l].floor() {
            counts[l] += 1;
            left -= 1;
        }
    }
    for &l in &order {
        let add = left.min(sizes[l] - counts[l]);
        counts[l] += add;
        left -= add;
    }
    counts
}

/// The 0/1 mask keeping the `k` largest `scores` (ties: lower index first). Scores of
/// `-∞` are kept only when `k` exceeds the finite ones; NaN counts as `-∞`.
pub fn topk_mask(scores: &[f64], k: usize) -> Vec<f32> {
    let mut mask = vec![0.0f32; scores.len()];
    for i in topk_indices(scores, k) {
        mask[i] = 1.0;
    }
    mask
}

fn key(s: f64) -> f64 {
    if s.is_nan() {
        f64::NEG_INFINITY
    } else {
        s
    }
}

/// The indices of the `k` largest `scores` (ties: lower index first), in no particular order.
pub fn topk_indices(scores: &[f64], k: usize) -> Vec<usize> {
    let k = k.min(scores.len());
    if k == 0 {
        return Vec::new();
    }
    let mut idx: Vec<u32> = (0..scores.len() as u32).collect();
    let cmp = |a: &u32, b: &u32| key(scores[*b as usize]).total_cmp(&key(scores[*a as usize])).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
    }
    idx.truncate(k);
    idx.into_iter().map(|i| i as usize).collect()
}

/// Masks keeping the `keep` largest scores over all layers together (one global top-k).
pub fn global_masks(scores: &[Vec<f64>], keep: usize) -> Vec<Vec<f32>> {
    let flat: Vec<f64> = scores.iter().flatten().copied().collect();
    let mask = topk_mask(&flat, keep);
    let mut out = Vec::with_capacity(scores.len());
    let mut at = 0;
    for s in scores {
        out.push(mask[at..at + s.len()].to_vec());
        at += s.len();
    }
    out
}

/// Masks keeping a fraction `density` of all coordinates by `scores`: one global top-k for
/// [`Allocation::Global`], else a top-k inside each layer with the allocation's exact counts.
pub fn masks_from_scores(
    alloc: Allocation,
    scores: &[Vec<f64>],
    geoms: &[LayerGeometry],
    density: f64,
) -> Result<Vec<Vec<f32>>> {
    let sizes: Vec<usize> = scores.iter().map(Vec::len).collect();
    let total = keep_count(density, sizes.iter().sum());
    if alloc == Allocation::Global {
        return Ok(global_masks(scores, total));
    }
    let counts = layer_counts(&layer_densities(alloc, geoms, density)?, &sizes, total);
    Ok(scores.iter().zip(counts).map(|(s, k)| topk_mask(s, k)).collect())
}

/// Sets the scores of masked-out coordinates to `-∞`, so a top-k never revives them (nested
/// masks).
pub fn exclude_inactive(scores: &mut [Vec<f64>], masks: &[Vec<f32>]) {
    for (s, m) in scores.iter_mut().zip(masks) {
        for (s, &m) in s.iter_mut().zip(m) {
            if m == 0.0 {
                *s = f64::NEG_INFINITY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(i: usize, o: usize, k: usize) -> LayerGeometry {
        LayerGeometry { n_in: i, n_out: o, kh: k, kw: k, conv: Some(Default::default()) }
    }

    #[test]
    fn erk_totals_are_exact_and_no_layer_exceeds_one() {
        // ResNet-20's layers: a 3-channel stem, 16/32/64-channel stages, a 64 -> 10 classifier.
        let mut g = vec![conv(3, 16, 3)];
        for (i, o) in [(16, 16), (16, 32), (32, 32), (32, 64), (64, 64)] {
            g.push(conv(i, o, 3));
        }
        g.push(LayerGeometry { n_in: 64, n_out: 10, kh: 1, kw: 1, conv: None });
        let sizes: Vec<usize> = g.iter().map(|g| g.numel()).collect();
        let n: usize = sizes.iter().sum();
        for alloc in [Allocation::Erk, Allocation::Er, Allocation::Uniform] {
            for density in [0.02, 0.05, 0.1, 0.2, 0.5, 0.9] {
                let d = layer_densities(alloc, &g, density).unwrap();
                assert!(d.iter().all(|&x| x <= 1.0 + 1e-12 && x > 0.0), "{alloc:?} {density}: {d:?}");
                let real: f64 = d.iter().zip(&sizes).map(|(d, &s)| d * s as f64).sum();
                assert!((real - density * n as f64).abs() < 1e-6 * n as f64, "{alloc:?} {density}");
                let counts = layer_counts(&d, &sizes, keep_count(density, n));
                assert_eq!(counts.iter().sum::<usize>(), keep_count(density, n), "{alloc:?} {density}");
                assert!(counts.iter().zip(&sizes).all(|(c, s)| c <= s));
            }
        }
        // At 50 % density ERK makes the small stem and classifier dense and sparsifies the rest.
        let d = layer_densities(Allocation::Erk, &g, 0.5).unwrap();
        assert_eq!(d[0], 1.0);
        assert!(d[5] < 0.5);
    }

    #[test]
    fn top_k_is_exact_with_ties_broken_by_index() {
        let s = [1.0, 3.0, 3.0, f64::NAN, 3.0, -1.0];
        assert_eq!(topk_mask(&s, 2), vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(topk_mask(&s, 4), vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(topk_mask(&s, 6).iter().sum::<f32>(), 6.0);
        let m = global_masks(&[vec![0.5, 0.1], vec![0.4, 0.9, 0.0]], 3);
        assert_eq!(m, vec![vec![1.0, 0.0], vec![1.0, 1.0, 0.0]]);
    }
}
