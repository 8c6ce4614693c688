//! Counter-based random numbers: Philox4x32-10, keyed by the seed, countered by element index.
//!
//! Element `i` of a fill with `(seed, offset)` depends only on `(seed, offset + i)`: fills are
//! split into parallel chunks freely, and a later fill with `offset = k` continues the stream
//! exactly where element `k` of an earlier one was. A device kernel must reproduce these
//! formulas; they are stated here in full.
//!
//! # The generator
//!
//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the
//! Random123 reference implementation), with
//!
//! - key `k = (k0, k1) = (seed as u32, (seed >> 32) as u32)`;
//! - counter `c = (c0, c1, c2, c3) = (j as u32, (j >> 32) as u32, 0, 0)` where `j = offset + i`
//!   (wrapping in 64 bits);
//! - ten rounds; each round with multipliers `M0 = 0xD2511F53`, `M1 = 0xCD9E8D57`:
//!   `(hi0, lo0) = mulhilo(M0, c0)`, `(hi1, lo1) = mulhilo(M1, c2)`,
//!   `c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)`; between rounds the key is bumped by the
//!   Weyl constants `k0 += 0x9E3779B9`, `k1 += 0xBB67AE85` (wrapping; nine bumps in all);
//! - the output words `(x0, x1, x2, x3)` are the final counter.
//!
//! # Distributions
//!
//! With `u24(x) = (x >> 8) as f32 * 2^-24` (exact in f32, in `[0, 1)`) and
//! `u53(a, b) = ((((a as u64) << 32) | b as u64) >> 11) as f64 * 2^-53` (exact, in `[0, 1)`):
//!
//! - **Uniform f32** on `[low, high)`: `lo = low as f32`, `hi = high as f32`,
//!   `v = u24(x0) * (hi - lo) + lo` in f32 with separately rounded multiply and add (a CUDA
//!   kernel must use `__fmul_rn`/`__fadd_rn`, not a fused multiply-add); if `v >= hi` (rounding)
//!   then `v = lo`.
//! - **Uniform f64**: the same in f64 with `u53(x0, x1)`.
//! - **Normal f32**: Box-Muller, cosine branch only, so every element is independent:
//!   `u1 = ((x0 >> 8) + 1) as f32 * 2^-24` in `(0, 1]`, `u2 = u24(x1)` in `[0, 1)`,
//!   `z = sqrt(-2 ln u1) * cos(2π u2)` evaluated in f32 (`2π` rounded to f32), then
//!   `v = z * (std as f32) + (mean as f32)`. The uniforms are bit-exact across devices;
//!   `ln`/`cos` differ across math libraries by a few ulps, so normal samples agree to a few
//!   ulps rather than bit for bit.
//! - **Normal f64**: the same in f64 with `u1 = (bits53(x0, x1) + 1) * 2^-53` in `(0, 1]` and
//!   `u2 = u53(x2, x3)` in `[0, 1)` (all four words, for 53-bit uniforms), where `bits53(a, b)`
//!   is the integer inside `u53`.
//! - **Bernoulli** (f32, f64 or u8 output): 1 if `u24(x0) as f64 < p`, else 0. The comparison
//!   is the same for every output dtype, so a mask drawn as u8, f32 or f64 with the same
//!   `(seed, offset)` is the same mask.
//!
//! Argument checks: uniform needs finite `low <= high`, normal a finite mean and `std >= 0`,
//! Bernoulli `0 <= p <= 1`.

use super::strided::par_fill;
use crate::ops::Distribution;
use crate::planning::random::check_dist;
use crate::{CpuStorage, DType, Error, Result};

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32-10 of one 128-bit counter under a 64-bit key.
#[inline(always)]
pub(crate) fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for r in 0..10 {
        if r > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The four output words for element index `j` under `seed`.
#[inline(always)]
fn words(seed: u64, j: u64) -> [u32; 4] {
    philox4x32_10([j as u32, (j >> 32) as u32, 0, 0], [seed as u32, (seed >> 32) as u32])
}

#[inline(always)]
fn u24(x: u32) -> f32 {
    (x >> 8) as f32 * (1.0 / 16_777_216.0)
}

#[inline(always)]
fn bits53(a: u32, b: u32) -> u64 {
    (((a as u64) << 32) | b as u64) >> 11
}

#[inline(always)]
fn u53(a: u32, b: u32) -> f64 {
    bits53(a, b) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// Fills `n` elements, element `i` computed by `f(words(seed, offset + i))`, in parallel chunks.
fn fill<T: Copy + Default + Send + Sync>(n: usize, seed: u64, offset: u64, f: impl Fn([u32; 4]) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); n];
    par_fill(&mut out, |chunk, start| {
        let base = offset.wrapping_add(start as u64);
        for (i, o) in chunk.iter_mut().enumerate() {
            *o = f(words(seed, base.wrapping_add(i as u64)));
        }
    });
    out
}

/// `n` samples of `dist` for elements `offset..offset + n` of the stream keyed by `seed`.
pub(crate) fn random(dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Result<CpuStorage> {
    check_dist(&dist)?;
    let unsupported = || Err(Error::UnsupportedDType { op: "random", dtype });
    Ok(match (dist, dtype) {
        (Distribution::Uniform { low, high }, DType::F32) => {
            let (lo, hi) = (low as f32, high as f32);
            let scale = hi - lo;
            CpuStorage::F32(fill(n, seed, offset, |w| {
                let v = u24(w[0]) * scale + lo;
                if v >= hi {
                    lo
                } else {
                    v
                }
            }))
        }
        (Distribution::Uniform { low, high }, DType::F64) => {
            let scale = high - low;
            CpuStorage::F64(fill(n, seed, offset, |w| {
                let v = u53(w[0], w[1]) * scale + low;
                if v >= high {
                    low
                } else {
                    v
                }
            }))
        }
        (Distribution::Normal { mean, std }, DType::F32) => {
            let (mean, std) = (mean as f32, std as f32);
            CpuStorage::F32(fill(n, seed, offset, |w| {
                let u1 = ((w[0] >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
                let u2 = u24(w[1]);
                let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                z * std + mean
            }))
        }
        (Distribution::Normal { mean, std }, DType::F64) => CpuStorage::F64(fill(n, seed, offset, |w| {
            let u1 = (bits53(w[0], w[1]) + 1) as f64 * (1.0 / 9_007_199_254_740_992.0);
            let u2 = u53(w[2], w[3]);
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            z * std + mean
        })),
        (Distribution::Bernoulli { p }, DType::F32) => {
            CpuStorage::F32(fill(n, seed, offset, |w| ((u24(w[0]) as f64) < p) as u8 as f32))
        }
        (Distribution::Bernoulli { p }, DType::F64) => {
            CpuStorage::F64(fill(n, seed, offset, |w| ((u24(w[0]) as f64) < p) as u8 as f64))
        }
        (Distribution::Bernoulli { p }, DType::U8) => {
            CpuStorage::U8(fill(n, seed, offset, |w| ((u24(w[0]) as f64) < p) as u8))
        }
        _ => return unsupported(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer tests from Random123's `kat_vectors` (philox4x32, 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox4x32_10([0xffffffff; 4], [0xffffffff; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
        assert_eq!(
            philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniform_stays_in_range_and_bad_arguments_fail() {
        let s = random(DType::F32, 1000, Distribution::Uniform { low: 1.0, high: 2.0 }, 7, 0).unwrap();
        assert!(s.as_slice::<f32>().unwrap().iter().all(|&v| (1.0..2.0).contains(&v)));
        assert!(random(DType::I64, 3, Distribution::Uniform { low: 0.0, high: 1.0 }, 0, 0).is_err());
        assert!(random(DType::U8, 3, Distribution::Normal { mean: 0.0, std: 1.0 }, 0, 0).is_err());
        assert!(random(DType::F32, 3, Distribution::Bernoulli { p: 1.5 }, 0, 0).is_err());
        assert!(random(DType::F32, 3, Distribution::Normal { mean: 0.0, std: -1.0 }, 0, 0).is_err());
    }
}
