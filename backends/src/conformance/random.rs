//! Conformance checks for the counter-based random fill (see `cpu::random` for the formulas).

use super::*;
use crate::ops::Distribution;
use crate::{CpuBackend, Error};

/// Every supported (dtype, distribution) pair, with parameters away from the defaults.
fn cases() -> Vec<(DType, Distribution)> {
    let u = Distribution::Uniform { low: -2.0, high: 3.0 };
    let n = Distribution::Normal { mean: 1.0, std: 2.0 };
    let p = Distribution::Bernoulli { p: 0.3 };
    vec![
        (DType::F32, u),
        (DType::F64, u),
        (DType::F32, n),
        (DType::F64, n),
        (DType::F32, p),
        (DType::F64, p),
        (DType::U8, p),
    ]
}

fn fill<B: Backend>(b: &B, dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Vec<f64> {
    let s = b.random(dtype, n, dist, seed, offset).unwrap();
    download(b, &s, &Layout::contiguous(&[n]))
}

/// Same seed, same numbers; another seed, other numbers; `fill(n, offset 0)[k..]` equals
/// `fill(n - k, offset k)`; and results do not depend on the number of threads (1 and 3).
pub fn check_random_streams<B: Backend>(b: &B) {
    let n = 100_003;
    for (dtype, dist) in cases() {
        let what = format!("random {dtype} {dist:?}");
        let a = fill(b, dtype, n, dist, 1234, 0);
        assert_eq!(a, fill(b, dtype, n, dist, 1234, 0), "{what}: not deterministic");
        let other = fill(b, dtype, n, dist, 1235, 0);
        let same = a.iter().zip(&other).filter(|(x, y)| x == y).count();
        // Independent Bernoulli(0.3) streams agree on 58% of elements; continuous ones on none.
        let limit = if matches!(dist, Distribution::Bernoulli { .. }) { n * 62 / 100 } else { n / 100 };
        assert!(same < limit, "{what}: seeds 1234 and 1235 agree on {same} of {n} elements");
        for k in [1usize, 4095, 33_333] {
            assert_eq!(a[k..], fill(b, dtype, n - k, dist, 1234, k as u64)[..], "{what}: offset {k}");
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let t = pool.install(|| fill(b, dtype, n, dist, 1234, 0));
            assert_eq!(a, t, "{what}: differs with {threads} threads");
        }
        // A seed above 2^32 (the key's high word) and an offset above 2^32 (the counter's).
        let hi = fill(b, dtype, 64, dist, 0xDEAD_BEEF_0000_0001, (1u64 << 32) + 5);
        assert_eq!(hi, fill(b, dtype, 64, dist, 0xDEAD_BEEF_0000_0001, (1u64 << 32) + 5), "{what}: high words");
        assert_ne!(hi, fill(b, dtype, 64, dist, 1, 5), "{what}: high words are ignored");
    }
}

/// The generator is Philox4x32-10 as specified: the first uniform of seed 0 comes from the
/// published known answer for counter 0, key 0 (first word `0x6627e8d5`); and every backend
/// agrees with the CPU backend (bit for bit for uniform and Bernoulli, to a few ulps for normal).
pub fn check_random_matches_reference<B: Backend>(b: &B) {
    let u = fill(b, DType::F32, 1, Distribution::Uniform { low: 0.0, high: 1.0 }, 0, 0);
    assert_eq!(u[0], (0x6627_e8d5u32 >> 8) as f64 / 16_777_216.0, "uniform f32 element 0 of seed 0");
    let u = fill(b, DType::F64, 1, Distribution::Uniform { low: 0.0, high: 1.0 }, 0, 0);
    let bits = ((0x6627_e8d5u64 << 32) | 0xe169_c58d) >> 11;
    assert_eq!(u[0], bits as f64 / 9_007_199_254_740_992.0, "uniform f64 element 0 of seed 0");
    let n = 4099;
    for (dtype, dist) in cases() {
        let got = fill(b, dtype, n, dist, 99, 17);
        let want = fill(&CpuBackend, dtype, n, dist, 99, 17);
        let what = format!("random {dtype} {dist:?} against the CPU reference");
        match dist {
            Distribution::Normal { .. } => {
                let rtol = if dtype == DType::F32 { 1e-5 } else { 1e-13 };
                assert_close(&got, &want, rtol, rtol, &what)
            }
            _ => assert_eq!(got, want, "{what}"),
        }
    }
}

/// Moments of 100k samples within 5 standard errors; ranges; degenerate parameters; errors.
pub fn check_random_distributions<B: Backend>(b: &B) {
    let n = 100_000;
    let nf = n as f64;
    let within = |what: &str, got: f64, want: f64, se: f64| {
        assert!((got - want).abs() <= 5.0 * se, "{what}: {got} is more than 5 standard errors ({se}) from {want}");
    };
    for dtype in [DType::F32, DType::F64] {
        // Uniform on [-2, 3): mean 0.5, variance 25/12, fourth central moment 5^4/80.
        let (lo, hi) = (-2.0, 3.0);
        let x = fill(b, dtype, n, Distribution::Uniform { low: lo, high: hi }, 7, 0);
        assert!(x.iter().all(|&v| (lo..hi).contains(&v)), "uniform {dtype}: a sample is outside [{lo}, {hi})");
        let (m, v) = moments(&x);
        let var: f64 = (hi - lo) * (hi - lo) / 12.0;
        within(&format!("uniform {dtype} mean"), m, 0.5, (var / nf).sqrt());
        within(&format!("uniform {dtype} variance"), v, var, ((625.0 / 80.0 - var * var) / nf).sqrt());
        // Uniform on a narrow interval away from 0 never rounds up to `high`.
        let x = fill(b, dtype, 10_000, Distribution::Uniform { low: 1.0, high: 1.0 + 1e-6 }, 8, 0);
        assert!(x.iter().all(|&v| (1.0..1.0 + 1e-6).contains(&v) || v == 1.0), "uniform {dtype}: narrow range");
        // Normal(1, 2): variance 4, variance of the sample variance 2 sigma^4 / n.
        let x = fill(b, dtype, n, Distribution::Normal { mean: 1.0, std: 2.0 }, 9, 0);
        assert!(x.iter().all(|v| v.is_finite()), "normal {dtype}: non-finite sample");
        let (m, v) = moments(&x);
        within(&format!("normal {dtype} mean"), m, 1.0, (4.0 / nf).sqrt());
        within(&format!("normal {dtype} variance"), v, 4.0, (2.0 * 16.0 / nf).sqrt());
        let tail = x.iter().filter(|&&v| (v - 1.0).abs() > 2.0 * 1.959_964).count() as f64 / nf;
        within(&format!("normal {dtype} two-sided 5% tail"), tail, 0.05, (0.05 * 0.95 / nf).sqrt());
        let zero = fill(b, dtype, 100, Distribution::Normal { mean: 3.0, std: 0.0 }, 9, 0);
        assert!(zero.iter().all(|&v| v == 3.0), "normal {dtype} with std 0");
    }
    for dtype in [DType::F32, DType::F64, DType::U8] {
        for p in [0.3, 0.5, 0.999] {
            let x = fill(b, dtype, n, Distribution::Bernoulli { p }, 11, 0);
            assert!(x.iter().all(|&v| v == 0.0 || v == 1.0), "bernoulli {dtype}: values other than 0 and 1");
            let f = x.iter().sum::<f64>() / nf;
            within(&format!("bernoulli {dtype} p {p} frequency"), f, p, (p * (1.0 - p) / nf).sqrt());
        }
        let zeros = fill(b, dtype, 1000, Distribution::Bernoulli { p: 0.0 }, 12, 0);
        assert!(zeros.iter().all(|&v| v == 0.0), "bernoulli {dtype} p 0");
        let ones = fill(b, dtype, 1000, Distribution::Bernoulli { p: 1.0 }, 12, 0);
        assert!(ones.iter().all(|&v| v == 1.0), "bernoulli {dtype} p 1");
    }
    // The same (seed, offset) gives the same mask whatever the output dtype.
    let m8 = fill(b, DType::U8, 999, Distribution::Bernoulli { p: 0.5 }, 13, 3);
    assert_eq!(m8, fill(b, DType::F32, 999, Distribution::Bernoulli { p: 0.5 }, 13, 3), "bernoulli u8 vs f32 mask");
    assert_eq!(m8, fill(b, DType::F64, 999, Distribution::Bernoulli { p: 0.5 }, 13, 3), "bernoulli u8 vs f64 mask");
    // Errors.
    let u = Distribution::Uniform { low: 0.0, high: 1.0 };
    for dtype in [DType::I64, DType::I32, DType::U8, DType::I8] {
        assert!(matches!(b.random(dtype, 3, u, 0, 0), Err(Error::UnsupportedDType { .. })), "uniform {dtype}");
    }
    assert!(matches!(
        b.random(DType::U8, 3, Distribution::Normal { mean: 0.0, std: 1.0 }, 0, 0),
        Err(Error::UnsupportedDType { .. })
    ));
    for bad in [
        Distribution::Uniform { low: 1.0, high: 0.0 },
        Distribution::Uniform { low: 0.0, high: f64::INFINITY },
        Distribution::Normal { mean: 0.0, std: -1.0 },
        Distribution::Bernoulli { p: -0.1 },
        Distribution::Bernoulli { p: f64::NAN },
    ] {
        assert!(matches!(b.random(DType::F32, 3, bad, 0, 0), Err(Error::InvalidArgument { .. })), "{bad:?}");
    }
    assert_eq!(
        b.random(DType::F32, 0, u, 0, 0).map(|s| b.to_host(&s, &Layout::contiguous(&[0])).unwrap().len()),
        Ok(0)
    );
}

/// Sample mean and (population) variance.
fn moments(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (m, x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n)
}
