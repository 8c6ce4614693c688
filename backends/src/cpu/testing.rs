//! Helpers shared by the CPU kernels' unit tests.

use crate::FloatElement;

/// `n` deterministic pseudo-random values in [-1, 1) from `seed` (xorshift).
pub(crate) fn values<T: FloatElement>(n: usize, seed: u64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f32((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        })
        .collect()
}
