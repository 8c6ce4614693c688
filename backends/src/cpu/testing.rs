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

/// Asserts `got` equals `want` element-wise within `tol` times the largest magnitude of `want`
/// (at least 1), naming `what` and the first element that differs.
pub(crate) fn assert_close_scaled<T: FloatElement>(what: &str, got: &[T], want: &[T], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1f64, |m, v| m.max(v.to_f64().unwrap().abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64().unwrap(), w.to_f64().unwrap());
        assert!((g - w).abs() <= tol * scale, "{what}: element {i} is {g}, want {w}");
    }
}

/// Runs `f` inside rayon pools of 1 and 3 threads (one thread, and more threads than this
/// machine's usual 2): the kernels' splitting and in-order merging under both.
pub(crate) fn in_pools_of_1_and_3(f: impl Fn() + Sync + Send) {
    for threads in [1, 3] {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool").install(&f);
    }
}
