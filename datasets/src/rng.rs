//! A small, self-contained, counter-based random number generator.
//!
//! Every random decision of an augmentation is drawn from a [`SampleRng`] derived from
//! `(seed, epoch, sample index)`, so the batches a seed produces do not depend on the number
//! of worker threads or on the order in which samples are prepared.

/// SplitMix64's finalizer: a bijective 64-bit mixing function.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 generator: 64 bits of state, passes BigCrush, trivially seedable.
#[derive(Clone, Debug)]
pub struct SampleRng {
    state: u64,
}

impl SampleRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SampleRng { state: mix64(seed ^ 0x6a09_e667_f3bc_c908) }
    }

    /// The generator for one sample of one epoch: independent streams for every
    /// `(seed, epoch, index)` triple.
    pub fn for_sample(seed: u64, epoch: u64, index: u64) -> Self {
        let k = mix64(mix64(mix64(seed) ^ epoch.wrapping_mul(GOLDEN)) ^ index);
        SampleRng::new(k)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// A uniform `f64` in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform `f32` in `[0, 1)`.
    #[inline]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform `f64` in `[lo, hi)`.
    #[inline]
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// A uniform integer in `0..n` (`0` when `n == 0`), without modulo bias worth noting
    /// (Lemire's multiply-shift on 64 bits).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// `true` with probability `p`.
    #[inline]
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct_streams() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = SampleRng::for_sample(1, 2, 3);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = SampleRng::for_sample(1, 2, 3);
        let b: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(SampleRng::for_sample(1, 2, 3).next_u64(), SampleRng::for_sample(1, 3, 2).next_u64());
        assert_ne!(SampleRng::for_sample(1, 0, 4).next_u64(), SampleRng::for_sample(1, 0, 5).next_u64());
    }

    #[test]
    fn ranges() {
        let mut r = SampleRng::new(7);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            counts[r.below(5)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        SampleRng::new(3).shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(v, s);
    }
}
