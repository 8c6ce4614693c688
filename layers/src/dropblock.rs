//! DropBlock (Ghiasi, Lin & Le, NeurIPS 2018): drops contiguous `b x b` blocks of each feature
//! map instead of single activations, and [`LinearKeepSchedule`], its linear keep-probability
//! schedule.
//!
//! # The computation (training mode)
//!
//! For an input `[N, C, H, W]`, block size `b` (clamped to `min(b, H, W)`, as the reference
//! implementation does) and keep probability `keep`:
//!
//! 1. seed rate `γ = (1 − keep) / b² · H·W / ((H − b + 1)(W − b + 1))` ([`seed_rate`]; the
//!    paper's `S² / (S − b + 1)²` for non-square maps);
//! 2. seeds: independent Bernoulli(`γ`) draws for every `(sample, channel)` and every block
//!    position that lies wholly inside the map (the `(H − b + 1) x (W − b + 1)` valid region:
//!    blocks never cross the border);
//! 3. each seed zeroes its whole `b x b` block ([`expand_block_seeds`]: a stride-1 `b x b` max-pool
//!    of the seeds padded by `b − 1` on every side, then `1 − ·`);
//! 4. `y = x ⊙ mask · numel / count_ones(mask)` (the renormalization of the reference
//!    implementation: the mean activation is kept whatever the number of blocks drawn); a mask
//!    with no ones gives zeros.
//!
//! In evaluation mode, or with `keep = 1`, the layer is the identity. The mask is shared by
//! nothing: every sample and channel draws its own seeds (the reference implementation's
//! `random_uniform(net.shape)`). Seeds come from [`crate::rng::next_seed`], so training is
//! reproducible; [`DropBlock2d::forward_with_seed`] fixes the mask (gradient checks).
//!
//! The current keep probability is a field of the layer (not a buffer: it is not part of the
//! state dict, so checkpoints of the plain model and of the model with DropBlock hold the same
//! tensors); whoever runs the schedule sets it with [`DropBlock2d::set_keep_prob`] and keeps the
//! step count across restarts itself.

use std::sync::atomic::{AtomicU64, Ordering};

use autograd::backends::ops::Distribution;
use autograd::{no_grad, Error, Pool2dParams, Result, Tensor};

use crate::{rng, Mode, Module};

fn check_keep(op: &'static str, keep: f64) -> Result<f64> {
    if keep > 0.0 && keep <= 1.0 {
        Ok(keep)
    } else {
        Err(Error::invalid(op, format!("keep probability {keep} is outside (0, 1]")))
    }
}

/// The seed rate `γ = (1 − keep) / b² · H·W / ((H − b + 1)(W − b + 1))` of DropBlock on an
/// `H x W` map with block size `b` (at most `min(H, W)`): the expected fraction of dropped
/// units is then about `1 − keep` (exactly so only when blocks do not overlap).
///
/// ```
/// // The paper's square case S = 8, b = 3, keep 0.9: γ = 0.1 / 9 · 64 / 36.
/// let g = layers::seed_rate(8, 8, 3, 0.9);
/// assert!((g - 0.1 / 9.0 * 64.0 / 36.0).abs() < 1e-15);
/// ```
pub fn seed_rate(h: usize, w: usize, block: usize, keep: f64) -> f64 {
    let b = block as f64;
    let valid = ((h + 1 - block) * (w + 1 - block)) as f64;
    (1.0 - keep) / (b * b) * (h * w) as f64 / valid
}

/// The keep mask (1 kept, 0 dropped) `[N, C, H, W]` of seeds `[N, C, H − b + 1, W − b + 1]`
/// (1 = a block starts here): every unit covered by the `b x b` block of some seed is 0.
///
/// ```
/// use autograd::Tensor;
/// // One seed at (0, 1) of a 3x4 map with b = 2 (valid region 2x3).
/// let seeds = Tensor::from_vec(vec![0.0f32, 1.0, 0.0, 0.0, 0.0, 0.0], &[1, 1, 2, 3]).unwrap();
/// let mask = layers::expand_block_seeds(&seeds, 2).unwrap();
/// assert_eq!(mask.to_vec::<f32>().unwrap(), [1., 0., 0., 1., 1., 0., 0., 1., 1., 1., 1., 1.]);
/// ```
pub fn expand_block_seeds(seeds: &Tensor, block: usize) -> Result<Tensor> {
    if seeds.ndim() != 4 || block == 0 {
        return Err(Error::invalid(
            "expand_block_seeds",
            format!("needs [N, C, h, w] seeds and a positive block size, got {:?} and {block}", seeds.shape()),
        ));
    }
    no_grad(|| {
        let b = block - 1;
        let padded = seeds.pad(&[(0, 0), (0, 0), (b, b), (b, b)], 0.0)?;
        let dropped = padded.max_pool2d(Pool2dParams { stride: (1, 1), ..Pool2dParams::square(block) })?;
        dropped.rsub_scalar(1.0)
    })
}

/// DropBlock for `[N, C, H, W]` feature maps (see the [module docs](self)).
///
/// ```
/// use layers::{DropBlock2d, Mode, Module};
/// use autograd::Tensor;
/// let db = DropBlock2d::new(3, 0.9).unwrap();
/// let x = Tensor::ones(&[2, 4, 8, 8]);
/// assert_eq!(db.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 512]);
/// let y = db.forward_with_seed(&x, 7).unwrap().to_vec::<f32>().unwrap();
/// // Zeros in whole blocks, the rest scaled so that the mean stays 1.
/// assert!((y.iter().sum::<f32>() / 512.0 - 1.0).abs() < 1e-5);
/// assert!(y.iter().any(|&v| v == 0.0));
/// ```
pub struct DropBlock2d {
    block_size: usize,
    keep_bits: AtomicU64,
}

impl DropBlock2d {
    /// DropBlock with block size `block_size` (≥ 1) and keep probability `keep_prob` in
    /// `(0, 1]`.
    pub fn new(block_size: usize, keep_prob: f64) -> Result<DropBlock2d> {
        if block_size == 0 {
            return Err(Error::invalid("DropBlock2d", "the block size must be at least 1"));
        }
        let keep = check_keep("DropBlock2d", keep_prob)?;
        Ok(DropBlock2d { block_size, keep_bits: AtomicU64::new(keep.to_bits()) })
    }

    /// The block size `b` asked for (maps smaller than `b` use their smaller side).
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// The current keep probability.
    pub fn keep_prob(&self) -> f64 {
        f64::from_bits(self.keep_bits.load(Ordering::Relaxed))
    }

    /// Sets the keep probability (in `(0, 1]`) used by the next training forward passes.
    pub fn set_keep_prob(&self, keep_prob: f64) -> Result<()> {
        let keep = check_keep("DropBlock2d::set_keep_prob", keep_prob)?;
        self.keep_bits.store(keep.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// The keep mask (1 kept, 0 dropped, not renormalized) of an input of shape `shape`
    /// `[N, C, H, W]`, drawn from `seed`, with `x`'s dtype and device taken from `like`.
    pub fn mask(&self, like: &Tensor, seed: u64) -> Result<Tensor> {
        let s = like.shape();
        if s.len() != 4 || s[2] == 0 || s[3] == 0 {
            return Err(Error::invalid("DropBlock2d", format!("needs an [N, C, H, W] input, got {s:?}")));
        }
        let b = self.block_size.min(s[2]).min(s[3]);
        let gamma = seed_rate(s[2], s[3], b, self.keep_prob());
        let valid = [s[0], s[1], s[2] + 1 - b, s[3] + 1 - b];
        let seeds = Tensor::random(&valid, Distribution::Bernoulli { p: gamma }, seed, like.dtype(), like.device())?;
        expand_block_seeds(&seeds, b)
    }

    /// The training-mode output with the mask drawn from `seed`: `x ⊙ mask · numel /
    /// count_ones(mask)` (zeros when every unit is dropped).
    pub fn forward_with_seed(&self, x: &Tensor, seed: u64) -> Result<Tensor> {
        let mask = self.mask(x, seed)?;
        let kept = no_grad(|| mask.sum_all()?.item())?;
        let scale = if kept > 0.0 { x.numel() as f64 / kept } else { 0.0 };
        x.mul(&mask)?.mul_scalar(scale)
    }
}

impl Module for DropBlock2d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if !mode.is_train() || self.keep_prob() == 1.0 {
            return Ok(x.clone());
        }
        self.forward_with_seed(x, rng::next_seed())
    }
}

/// DropBlock's schedule: the keep probability falls linearly from 1 at step 0 to `target` at
/// step `steps`, and stays there.
///
/// ```
/// use layers::LinearKeepSchedule;
/// let s = LinearKeepSchedule { target: 0.9, steps: 100 };
/// assert_eq!(s.keep_prob(0), 1.0);
/// assert!((s.keep_prob(50) - 0.95).abs() < 1e-12);
/// assert_eq!(s.keep_prob(100), 0.9);
/// assert_eq!(s.keep_prob(1000), 0.9);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearKeepSchedule {
    /// The final keep probability.
    pub target: f64,
    /// The number of steps over which it is reached (0: `target` from the start).
    pub steps: usize,
}

impl LinearKeepSchedule {
    /// The keep probability at `step`: `1 − (1 − target) · min(step / steps, 1)`.
    pub fn keep_prob(&self, step: usize) -> f64 {
        if self.steps == 0 || step >= self.steps {
            return self.target;
        }
        1.0 - (1.0 - self.target) * step as f64 / self.steps as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::DType;

    /// The keep mask of `seeds` (`[h', w']` of one map) by naive loops.
    fn naive_expand(seeds: &[f64], hv: usize, wv: usize, b: usize) -> Vec<f64> {
        let (h, w) = (hv + b - 1, wv + b - 1);
        let mut mask = vec![1.0; h * w];
        for i in 0..hv {
            for j in 0..wv {
                if seeds[i * wv + j] != 0.0 {
                    for di in 0..b {
                        for dj in 0..b {
                            mask[(i + di) * w + j + dj] = 0.0;
                        }
                    }
                }
            }
        }
        mask
    }

    #[test]
    fn expansion_matches_naive_loops() {
        for (hv, wv, b, seed) in [(4, 4, 3, 1u64), (2, 5, 2, 2), (1, 1, 4, 3), (6, 3, 1, 4), (3, 3, 5, 5)] {
            let seeds = Tensor::random(
                &[2, 3, hv, wv],
                Distribution::Bernoulli { p: 0.2 },
                seed,
                DType::F64,
                autograd::Device::Cpu,
            )
            .unwrap();
            let mask = expand_block_seeds(&seeds, b).unwrap();
            let (h, w) = (hv + b - 1, wv + b - 1);
            assert_eq!(mask.shape(), &[2, 3, h, w]);
            let (s, m) = (seeds.to_vec::<f64>().unwrap(), mask.to_vec::<f64>().unwrap());
            for k in 0..6 {
                let want = naive_expand(&s[k * hv * wv..(k + 1) * hv * wv], hv, wv, b);
                assert_eq!(&m[k * h * w..(k + 1) * h * w], &want[..], "map {k} of {hv}x{wv} seeds, b {b}");
            }
        }
    }

    #[test]
    fn blocks_never_cross_the_border() {
        // b = the map's side: the only block is the whole map, so each map is all or nothing.
        let db = DropBlock2d::new(7, 0.5).unwrap();
        let m = db.mask(&Tensor::ones(&[64, 1, 3, 3]), 1).unwrap().to_vec::<f32>().unwrap();
        assert!(m.chunks(9).all(|map| map.iter().all(|&v| v == map[0])));
        assert!(m.contains(&0.0) && m.contains(&1.0));
    }

    /// The expected kept fraction of an `h x w` map: unit `(i, j)` is covered by the blocks of
    /// `n_i · n_j` valid seed positions, each drawn with probability `γ`.
    fn expected_kept(h: usize, w: usize, b: usize, keep: f64) -> f64 {
        let g = seed_rate(h, w, b, keep);
        let cover = |i: usize, n: usize| (i.min(n - b) + 1 - (i + 1).saturating_sub(b)) as i32;
        let mut sum = 0.0;
        for i in 0..h {
            for j in 0..w {
                sum += (1.0 - g).powi(cover(i, h) * cover(j, w));
            }
        }
        sum / (h * w) as f64
    }

    /// Mean and standard error of the kept fraction over the maps of one mask.
    fn kept_fraction(db: &DropBlock2d, shape: &[usize], seed: u64) -> (f64, f64) {
        let m = db.mask(&Tensor::zeros(shape).to_dtype(DType::F64).unwrap(), seed).unwrap().to_vec::<f64>().unwrap();
        let per_map: Vec<f64> = m.chunks(shape[2] * shape[3]).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect();
        let n = per_map.len() as f64;
        let mean = per_map.iter().sum::<f64>() / n;
        let var = per_map.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    }

    #[test]
    fn kept_fraction_follows_the_seed_rate_formula() {
        for (h, w, b, keep) in [(8, 8, 3, 0.9), (4, 4, 3, 0.9), (14, 10, 7, 0.8), (6, 6, 1, 0.7), (16, 16, 5, 0.95)] {
            let db = DropBlock2d::new(b, keep).unwrap();
            let (mean, se) = kept_fraction(&db, &[128, 32, h, w], (h * w + b) as u64);
            let want = expected_kept(h, w, b, keep);
            assert!((mean - want).abs() < 4.0 * se + 1e-12, "{h}x{w} b {b} keep {keep}: {mean} vs {want} (se {se})");
            // γ is chosen so that about 1 − keep of the units drop (overlaps and borders lower it).
            assert!(mean >= keep - 4.0 * se && mean - keep < 0.5 * (1.0 - keep), "{mean} vs keep {keep}");
        }
        // b = 1 is dropout: exactly γ = 1 − keep per unit.
        assert!((expected_kept(6, 6, 1, 0.7) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn scheduled_keep_probabilities_give_the_formula_s_drop_rates() {
        let s = LinearKeepSchedule { target: 0.75, steps: 8 };
        let db = DropBlock2d::new(3, 1.0).unwrap();
        for step in [0, 2, 4, 8, 12] {
            let keep = s.keep_prob(step);
            assert!((keep - (1.0 - 0.25 * (step.min(8) as f64 / 8.0))).abs() < 1e-12);
            db.set_keep_prob(keep).unwrap();
            let (mean, se) = kept_fraction(&db, &[64, 32, 8, 8], step as u64);
            let want = expected_kept(8, 8, 3, keep);
            assert!((mean - want).abs() < 4.0 * se + 1e-12, "step {step}: {mean} vs {want}");
        }
        assert_eq!(LinearKeepSchedule { target: 0.9, steps: 0 }.keep_prob(0), 0.9);
    }

    #[test]
    fn renormalization_keeps_the_sum_and_all_dropped_gives_zeros() {
        let db = DropBlock2d::new(2, 0.7).unwrap();
        let x = Tensor::ones(&[3, 2, 6, 6]).to_dtype(DType::F64).unwrap();
        for seed in 0..5 {
            let y = db.forward_with_seed(&x, seed).unwrap().to_vec::<f64>().unwrap();
            let kept = y.iter().filter(|&&v| v != 0.0).count() as f64;
            assert!((y.iter().sum::<f64>() - 216.0).abs() < 1e-9);
            assert!(y.iter().all(|&v| v == 0.0 || (v - 216.0 / kept).abs() < 1e-12));
        }
        // keep → 0 on a map where b = side: γ ≥ 1, every map is dropped.
        let all = DropBlock2d::new(4, 1e-9).unwrap();
        let y = all.forward_with_seed(&Tensor::ones(&[2, 2, 4, 4]), 1).unwrap().to_vec::<f32>().unwrap();
        assert!(y.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn eval_and_keep_one_are_the_identity_and_errors_are_named() {
        let x = Tensor::randn(&[2, 3, 5, 5], 0).unwrap();
        let db = DropBlock2d::new(3, 0.8).unwrap();
        assert_eq!(db.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        db.set_keep_prob(1.0).unwrap();
        assert_eq!(db.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        assert!(db.set_keep_prob(0.0).is_err() && db.set_keep_prob(1.5).is_err());
        assert!(DropBlock2d::new(0, 0.9).is_err());
        assert!(db.forward_with_seed(&Tensor::ones(&[2, 3]), 0).unwrap_err().to_string().contains("[N, C, H, W]"));
    }
}
