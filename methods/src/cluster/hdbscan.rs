//! HDBSCAN (Campello, Moulavi, Sander 2013; McInnes, Healy, Astels 2017) as scikit-learn's
//! `HDBSCAN(algorithm="brute", cluster_selection_method="eom")` computes it:
//!
//! 1. core distance of a point: the distance to its `min_samples`-th nearest point, the point
//!    itself counted first;
//! 2. mutual reachability `max(core_a, core_b, d(a, b))`, and its minimum spanning tree (Prim on
//!    the dense graph, `O(n²)` time);
//! 3. the single-linkage tree of the MST's edges in increasing weight (a stable sort: tied
//!    weights keep Prim's order, where scikit-learn's unstable `argsort` may reorder them and
//!    move a point at a cluster's edge in or out of it);
//! 4. the condensed tree at `min_cluster_size` (a split is a split only when both sides keep at
//!    least `min_cluster_size` points; otherwise the small side's points fall out);
//! 5. excess-of-mass selection by stability `Σ (λ_p − λ_birth)`, `λ = 1 / distance`, the root
//!    excluded (no single cluster), and
//! 6. labels: a point belongs to the selected cluster it lies in, others are noise (`-1`);
//!    clusters are numbered in the condensed tree's order.
//!
//! Memory: the `n x n` distance matrix in `f64` (`8 n²` bytes: 128 MiB at `n = 4096`) plus
//! `O(n)`; sub-sample larger sets before calling.

use autograd::{Error, Result};

use super::{pairwise_distances, Points};

/// HDBSCAN's parameters (scikit-learn's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HdbscanOptions {
    /// The smallest group counted as a cluster (scikit-learn: 5).
    pub min_cluster_size: usize,
    /// The neighbour count of the core distance, the point itself included (`None`:
    /// `min_cluster_size`, as scikit-learn).
    pub min_samples: Option<usize>,
}

impl HdbscanOptions {
    /// `min_cluster_size` with `min_samples` following it.
    pub fn new(min_cluster_size: usize) -> HdbscanOptions {
        HdbscanOptions { min_cluster_size, min_samples: None }
    }
}

/// Cluster labels (`0..k`, noise `-1`) of `points`.
///
/// ```
/// use methods::cluster::{hdbscan, num_clusters, HdbscanOptions, Points};
/// // Two tight groups of 6 points far apart, and one stray point.
/// let mut xs = Vec::new();
/// for i in 0..6 { xs.extend([i as f32 * 0.01, 0.0]); }
/// for i in 0..6 { xs.extend([10.0 + i as f32 * 0.01, 0.0]); }
/// xs.extend([5.0, 30.0]);
/// let labels = hdbscan(Points::new(&xs, 2).unwrap(), HdbscanOptions::new(4)).unwrap();
/// assert_eq!(num_clusters(&labels), 2);
/// assert_eq!(labels[12], -1);
/// assert!(labels[..6].iter().all(|&l| l == labels[0]) && labels[6..12].iter().all(|&l| l == labels[6]));
/// ```
pub fn hdbscan(points: Points<'_>, opts: HdbscanOptions) -> Result<Vec<i64>> {
    let n = points.len();
    let mcs = opts.min_cluster_size;
    let ms = opts.min_samples.unwrap_or(mcs);
    if mcs < 2 || ms == 0 || ms > n {
        return Err(Error::invalid(
            "hdbscan",
            format!("min_cluster_size {mcs} must be at least 2 and min_samples {ms} in 1..={n} (the number of points)"),
        ));
    }
    let dist = pairwise_distances(points);
    let core = core_distances(&dist, n, ms);
    let mst = prim_mst(&dist, &core, n);
    drop(dist);
    let linkage = single_linkage(n, mst);
    let tree = condense(&linkage, n, mcs);
    Ok(label(&tree, n, &select_eom(&tree, n)))
}

/// The distance to the `k`-th nearest point of each point (itself first).
fn core_distances(dist: &[f64], n: usize, k: usize) -> Vec<f64> {
    let mut row = vec![0.0; n];
    (0..n)
        .map(|i| {
            row.copy_from_slice(&dist[i * n..(i + 1) * n]);
            *row.select_nth_unstable_by(k - 1, f64::total_cmp).1
        })
        .collect()
}

/// Prim's minimum spanning tree of the mutual-reachability graph from point 0: `n − 1` edges
/// `(a, b, weight)` in the order they were added.
fn prim_mst(dist: &[f64], core: &[f64], n: usize) -> Vec<(usize, usize, f64)> {
    let mut in_tree = vec![false; n];
    let mut best = vec![f64::INFINITY; n];
    let mut from = vec![0usize; n];
    let mut edges = Vec::with_capacity(n.saturating_sub(1));
    let mut cur = 0;
    in_tree[0] = true;
    for _ in 1..n {
        let (mut next, mut next_w) = (usize::MAX, f64::INFINITY);
        for j in 0..n {
            if in_tree[j] {
                continue;
            }
            let mr = dist[cur * n + j].max(core[cur]).max(core[j]);
            if mr < best[j] {
                best[j] = mr;
                from[j] = cur;
            }
            if best[j] < next_w || next == usize::MAX {
                next_w = best[j];
                next = j;
            }
        }
        in_tree[next] = true;
        edges.push((from[next], next, next_w));
        cur = next;
    }
    edges
}

/// One merge of the single-linkage tree: two nodes (points `< n`, merges `n + i`), the
/// distance, and the merged size.
#[derive(Clone, Copy, Debug)]
struct Merge {
    left: usize,
    right: usize,
    distance: f64,
    size: usize,
}

/// The single-linkage tree (scipy's linkage layout) of the MST's edges sorted by weight
/// (stable, so ties keep Prim's order).
fn single_linkage(n: usize, mut mst: Vec<(usize, usize, f64)>) -> Vec<Merge> {
    mst.sort_by(|a, b| a.2.total_cmp(&b.2));
    let mut parent: Vec<usize> = (0..2 * n).collect();
    let mut size = vec![1usize; 2 * n];
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut out = Vec::with_capacity(mst.len());
    for (i, (a, b, w)) in mst.into_iter().enumerate() {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        let node = n + i;
        parent[ra] = node;
        parent[rb] = node;
        size[node] = size[ra] + size[rb];
        out.push(Merge { left: ra, right: rb, distance: w, size: size[node] });
    }
    out
}

/// One edge of the condensed tree: `child` (a point `< n` or a cluster `>= n`) leaves `parent`
/// (a cluster) at `lambda` with `size` points.
#[derive(Clone, Copy, Debug)]
struct Condensed {
    parent: usize,
    child: usize,
    lambda: f64,
    size: usize,
}

/// `1 / distance`; a zero distance (duplicate points) counts as [`MIN_DISTANCE`], so that
/// stabilities stay finite (scikit-learn's are infinite there).
fn lambda_of(distance: f64) -> f64 {
    1.0 / distance.max(MIN_DISTANCE)
}

/// The smallest distance [`lambda_of`] distinguishes.
const MIN_DISTANCE: f64 = 1e-12;

/// The condensed tree (hdbscan's `_condense_tree`): clusters are numbered from `n` (the root)
/// in breadth-first order.
fn condense(linkage: &[Merge], n: usize, mcs: usize) -> Vec<Condensed> {
    let root = 2 * n - 2;
    let node = |id: usize| -> Option<&Merge> { (id >= n).then(|| &linkage[id - n]) };
    let size_of = |id: usize| node(id).map_or(1, |m| m.size);
    // Breadth-first order of the linkage tree from the root.
    let mut order = vec![root];
    let mut i = 0;
    while i < order.len() {
        if let Some(m) = node(order[i]) {
            order.push(m.left);
            order.push(m.right);
        }
        i += 1;
    }
    let mut relabel = vec![0usize; 2 * n - 1];
    relabel[root] = n;
    let mut next_label = n + 1;
    let mut ignore = vec![false; 2 * n - 1];
    let mut out = Vec::new();
    // The points under a linkage node.
    let leaves = |id: usize| -> Vec<usize> {
        let mut stack = vec![id];
        let mut pts = Vec::new();
        while let Some(x) = stack.pop() {
            match node(x) {
                Some(m) => {
                    stack.push(m.left);
                    stack.push(m.right);
                }
                None => pts.push(x),
            }
        }
        pts
    };
    for &id in &order {
        if ignore[id] {
            continue;
        }
        let Some(m) = node(id) else { continue };
        let lambda = lambda_of(m.distance);
        let (l, r) = (m.left, m.right);
        let (ls, rs) = (size_of(l), size_of(r));
        let parent = relabel[id];
        if ls >= mcs && rs >= mcs {
            for (c, s) in [(l, ls), (r, rs)] {
                relabel[c] = next_label;
                out.push(Condensed { parent, child: next_label, lambda, size: s });
                next_label += 1;
            }
        } else if ls < mcs && rs < mcs {
            for c in [l, r] {
                for p in leaves(c) {
                    out.push(Condensed { parent, child: p, lambda, size: 1 });
                }
                mark_subtree(c, n, linkage, &mut ignore);
            }
        } else {
            let (big, small) = if ls >= mcs { (l, r) } else { (r, l) };
            relabel[big] = parent;
            for p in leaves(small) {
                out.push(Condensed { parent, child: p, lambda, size: 1 });
            }
            mark_subtree(small, n, linkage, &mut ignore);
        }
    }
    out
}

fn mark_subtree(id: usize, n: usize, linkage: &[Merge], ignore: &mut [bool]) {
    let mut stack = vec![id];
    while let Some(x) = stack.pop() {
        ignore[x] = true;
        if x >= n {
            stack.push(linkage[x - n].left);
            stack.push(linkage[x - n].right);
        }
    }
}

/// The clusters (condensed-tree ids) chosen by excess of mass, the root excluded.
fn select_eom(tree: &[Condensed], n: usize) -> Vec<usize> {
    let max_id = tree.iter().map(|e| e.parent.max(e.child)).max().unwrap_or(n).max(n);
    let clusters = max_id + 1 - n;
    let mut birth = vec![0.0f64; clusters];
    for e in tree.iter().filter(|e| e.child >= n) {
        birth[e.child - n] = e.lambda;
    }
    let mut stability = vec![0.0f64; clusters];
    for e in tree {
        stability[e.parent - n] += (e.lambda - birth[e.parent - n]) * e.size as f64;
    }
    let children = |c: usize| tree.iter().filter(move |e| e.parent == c && e.child >= n).map(|e| e.child);
    let mut selected = vec![false; clusters];
    // Children have larger ids than their parent: visit the leaves first.
    for c in (n + 1..=max_id).rev() {
        let kids: Vec<usize> = children(c).collect();
        let sub: f64 = kids.iter().map(|&k| stability[k - n]).sum();
        if kids.is_empty() || stability[c - n] >= sub {
            selected[c - n] = true;
            let mut stack = kids;
            while let Some(k) = stack.pop() {
                selected[k - n] = false;
                stack.extend(children(k));
            }
        } else {
            stability[c - n] = sub;
        }
    }
    (n + 1..=max_id).filter(|&c| selected[c - n]).collect()
}

/// Labels from the selected clusters: each point belongs to the selected cluster above it.
fn label(tree: &[Condensed], n: usize, selected: &[usize]) -> Vec<i64> {
    let max_id = tree.iter().map(|e| e.parent.max(e.child)).max().unwrap_or(n).max(n);
    let mut parent_of = vec![usize::MAX; max_id + 1];
    for e in tree {
        parent_of[e.child] = e.parent;
    }
    let index = |c: usize| selected.binary_search(&c).ok();
    (0..n)
        .map(|p| {
            let mut c = parent_of[p];
            while c != usize::MAX {
                if let Some(k) = index(c) {
                    return k as i64;
                }
                c = parent_of[c];
            }
            -1
        })
        .collect()
}
