//! HASTE's locality-sensitive hash: sparse ternary random hyperplanes ([`Projection`]),
//! centering of a patch's channel vectors ([`Centering`]), L-bit codes, and the buckets of equal
//! codes ([`buckets`]).
//!
//! A patch is `C` channel vectors of `D` values each (`x[c * D + i]`). The code of channel `c` is
//! `bit_l = [⟨r_l, x̃_c⟩ > 0]` for the `L` rows `r_l ∈ {−1, 0, +1}^D` of the projection, with `x̃`
//! the centered vectors. The entries of `R` are `+1` with probability `(1−s)/2`, `0` with
//! probability `s` and `−1` with probability `(1−s)/2`, drawn once from a seed; the projection is
//! additions and subtractions only. Centering and the sign are positively scale-equivariant, so a
//! patch multiplied by `α > 0` keeps its buckets (exactly so when `α` is a power of two).

use autograd::{Error, Result};

/// The most hyperplanes a code can hold (one bit each in a `u64`).
pub const MAX_HYPERPLANES: usize = 64;

/// How channel vectors are centered before hashing (the merge uses the raw vectors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Centering {
    /// Subtract the patch's mean channel, `x̃_c = x_c − (1/C) Σ_c' x_c'` (default): post-ReLU
    /// channels are all non-negative and would otherwise sit within 90° of each other.
    Channels,
    /// Subtract each channel's own mean over the patch.
    Spatial,
    /// No centering (the ablation).
    None,
}

impl Centering {
    /// Parses `channels`, `spatial` or `none`.
    pub fn parse(s: &str) -> Result<Centering> {
        match s.trim() {
            "channels" => Ok(Centering::Channels),
            "spatial" => Ok(Centering::Spatial),
            "none" => Ok(Centering::None),
            other => Err(Error::invalid("--set", format!("centering = {other:?}; expected channels, spatial or none"))),
        }
    }

    /// The name [`Centering::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Centering::Channels => "channels",
            Centering::Spatial => "spatial",
            Centering::None => "none",
        }
    }

    /// Additions and subtractions centering costs for `c` vectors of `d` values.
    pub fn ops(self, c: usize, d: usize) -> u64 {
        match self {
            // The mean channel (C·D additions) and one subtraction per value.
            Centering::Channels | Centering::Spatial => 2 * (c * d) as u64,
            Centering::None => 0,
        }
    }
}

/// `L` sparse ternary hyperplanes over vectors of `D` values, each row stored as the positions
/// of its `+1` and of its `−1` entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    dim: usize,
    plus: Vec<Vec<u32>>,
    minus: Vec<Vec<u32>>,
}

/// SplitMix64: the counter-based generator the hyperplanes are drawn from.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Projection {
    /// `hyperplanes` rows over `dim` values with zero-probability `sparsity`, drawn from `seed`
    /// (the same arguments give the same rows).
    ///
    /// ```
    /// use methods::haste::Projection;
    /// let r = Projection::new(8, 100, 2.0 / 3.0, 7).unwrap();
    /// assert_eq!(r, Projection::new(8, 100, 2.0 / 3.0, 7).unwrap());
    /// // About a third of the 800 entries are non-zero.
    /// assert!((200..330).contains(&r.nonzeros()));
    /// ```
    pub fn new(hyperplanes: usize, dim: usize, sparsity: f64, seed: u64) -> Result<Projection> {
        if hyperplanes > MAX_HYPERPLANES {
            return Err(Error::invalid(
                "haste",
                format!("L = {hyperplanes} hyperplanes; at most {MAX_HYPERPLANES} (one bit each of a 64-bit code)"),
            ));
        }
        if !(0.0..1.0).contains(&sparsity) {
            return Err(Error::invalid("haste", format!("projection sparsity s = {sparsity}; expected 0 <= s < 1")));
        }
        let mut state = splitmix64(seed ^ (dim as u64).rotate_left(32));
        let (mut plus, mut minus) = (Vec::with_capacity(hyperplanes), Vec::with_capacity(hyperplanes));
        for _ in 0..hyperplanes {
            let (mut p, mut m) = (Vec::new(), Vec::new());
            for i in 0..dim {
                state = splitmix64(state);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                if u >= sparsity {
                    // The non-zero half: +1 or -1 with equal probability.
                    if (u - sparsity) < 0.5 * (1.0 - sparsity) {
                        p.push(i as u32);
                    } else {
                        m.push(i as u32);
                    }
                }
            }
            plus.push(p);
            minus.push(m);
        }
        Ok(Projection { dim, plus, minus })
    }

    /// `L`.
    pub fn hyperplanes(&self) -> usize {
        self.plus.len()
    }

    /// `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Non-zero entries of `R` (the additions one channel's projection costs).
    pub fn nonzeros(&self) -> usize {
        self.plus.iter().chain(&self.minus).map(Vec::len).sum()
    }

    /// The entry `R[l][i]` (−1, 0 or +1).
    pub fn entry(&self, l: usize, i: usize) -> i8 {
        let i = i as u32;
        if self.plus[l].binary_search(&i).is_ok() {
            1
        } else if self.minus[l].binary_search(&i).is_ok() {
            -1
        } else {
            0
        }
    }

    /// The `L`-bit code of one (centered) vector: bit `l` is `⟨r_l, v⟩ > 0`.
    pub fn code(&self, v: &[f32]) -> u64 {
        debug_assert_eq!(v.len(), self.dim);
        let mut code = 0u64;
        for (l, (p, m)) in self.plus.iter().zip(&self.minus).enumerate() {
            let mut s = 0.0f32;
            for &i in p {
                s += v[i as usize];
            }
            for &i in m {
                s -= v[i as usize];
            }
            if s > 0.0 {
                code |= 1 << l;
            }
        }
        code
    }
}

/// Centers the `c` vectors of `x` (`c × d`, row-major) into `out` as `centering` says.
pub fn center(x: &[f32], c: usize, d: usize, centering: Centering, out: &mut Vec<f32>) {
    out.clear();
    out.extend_from_slice(&x[..c * d]);
    match centering {
        Centering::None => {}
        Centering::Channels => {
            let mut mean = vec![0.0f32; d];
            for row in x[..c * d].chunks_exact(d) {
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            let inv = 1.0 / c as f32;
            mean.iter_mut().for_each(|m| *m *= inv);
            for row in out.chunks_exact_mut(d) {
                for (v, m) in row.iter_mut().zip(&mean) {
                    *v -= m;
                }
            }
        }
        Centering::Spatial => {
            for row in out.chunks_exact_mut(d) {
                let mean = row.iter().sum::<f32>() / d as f32;
                row.iter_mut().for_each(|v| *v -= mean);
            }
        }
    }
}

/// The channels of a patch grouped by equal code: `(order, starts)` where the buckets are
/// `order[starts[j]..starts[j + 1]]`, each listing its channels in increasing order, buckets in
/// increasing order of their first channel. `codes[c]` is channel `c`'s code.
///
/// ```
/// let (order, starts) = methods::haste::buckets(&[5, 3, 5, 9, 3]);
/// assert_eq!(order, vec![0, 2, 1, 4, 3]);
/// assert_eq!(starts, vec![0, 2, 4, 5]);
/// ```
pub fn buckets(codes: &[u64]) -> (Vec<u32>, Vec<usize>) {
    let mut keyed: Vec<(u64, u32)> = codes.iter().enumerate().map(|(c, &k)| (k, c as u32)).collect();
    keyed.sort_unstable();
    // Runs of equal codes, then ordered by their first channel.
    let mut runs: Vec<&[(u64, u32)]> = keyed.chunk_by(|a, b| a.0 == b.0).collect();
    runs.sort_unstable_by_key(|r| r[0].1);
    let mut order = Vec::with_capacity(codes.len());
    let mut starts = Vec::with_capacity(runs.len() + 1);
    for r in runs {
        starts.push(order.len());
        order.extend(r.iter().map(|&(_, c)| c));
    }
    starts.push(order.len());
    (order, starts)
}
