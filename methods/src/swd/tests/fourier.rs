//! Spectral Fourier dropout: identities, pruning against a naive DCT and quantile on the host,
//! the dropout mask, unbiasedness, gradients.

use autograd::signal::{dct, dct2, idct, idct2};
use autograd::strategies::f64_tensor;
use autograd::{DType, Tensor};
use layers::{rng, Mode, Module};
use proptest::prelude::*;

use super::{gradcheck_with_seed, max_diff, randn64};
use crate::swd::{SpectralFourierDropout1d, SpectralFourierDropout2d};

/// The orthonormal DCT-II matrix `C[k][i]` of size `n` (closed form).
fn dct_matrix(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|k| {
            let s = if k == 0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
            (0..n).map(|i| s * (std::f64::consts::PI * (2 * i + 1) as f64 * k as f64 / (2 * n) as f64).cos()).collect()
        })
        .collect()
}

/// The orthonormal DCT-II (or its inverse) of one row-major `[h, w]` map, separably; a 1-D
/// transform of length `n` is `h = 1, w = n`.
fn naive_dct2(x: &[f64], h: usize, w: usize, inverse: bool) -> Vec<f64> {
    let (ch, cw) = (dct_matrix(h), dct_matrix(w));
    let coef = |c: &Vec<Vec<f64>>, k: usize, i: usize| if inverse { c[i][k] } else { c[k][i] };
    let mut rows = vec![0.0; h * w];
    for r in 0..h {
        for k in 0..w {
            rows[r * w + k] = (0..w).map(|i| coef(&cw, k, i) * x[r * w + i]).sum();
        }
    }
    let mut out = vec![0.0; h * w];
    for k in 0..h {
        for c in 0..w {
            out[k * w + c] = (0..h).map(|r| coef(&ch, k, r) * rows[r * w + c]).sum();
        }
    }
    out
}

/// `numpy.quantile(v, q)` (linear interpolation).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// The reference output of pruning only (`p = 0`): per map, DCT, zero `|c| < quantile`, inverse.
/// Returns the output and the number of coefficients pruned per map.
fn reference_prune(x: &Tensor, eta: f64, two_d: bool) -> (Tensor, Vec<usize>) {
    let s = x.shape();
    let (h, w) = if two_d { (s[2], s[3]) } else { (1, s[2..].iter().product()) };
    let v = x.to_f64_vec().unwrap();
    let mut out = vec![];
    let mut pruned = vec![];
    for map in v.chunks(h * w) {
        let mut c = naive_dct2(map, h, w, false);
        let thr = quantile(&c.iter().map(|a| a.abs()).collect::<Vec<_>>(), eta);
        pruned.push(c.iter().filter(|a| a.abs() < thr).count());
        c.iter_mut().filter(|a| a.abs() < thr).for_each(|a| *a = 0.0);
        out.extend(naive_dct2(&c, h, w, true));
    }
    (Tensor::from_vec(out, s).unwrap(), pruned)
}

fn layer(two_d: bool, p: f64, eta: f64) -> Box<dyn Module> {
    if two_d {
        Box::new(SpectralFourierDropout2d::new(p, eta).unwrap())
    } else {
        Box::new(SpectralFourierDropout1d::new(p, eta).unwrap())
    }
}

/// The layer's coefficients: 1-D DCT of flattened maps or 2-D DCT of the maps.
fn coeffs(x: &Tensor, two_d: bool) -> Vec<f64> {
    let s = x.shape();
    let c = if two_d { dct2(x) } else { dct(&x.reshape_to(&[s[0], s[1], s[2] * s[3]]).unwrap()) };
    c.unwrap().to_f64_vec().unwrap()
}

#[test]
fn eval_mode_and_no_drop_no_prune_are_exact_identities() {
    let x = Tensor::randn(&[2, 3, 5, 4], 0).unwrap();
    for two_d in [false, true] {
        assert_eq!(
            layer(two_d, 0.5, 0.3).forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(),
            x.to_vec::<f32>().unwrap()
        );
        assert_eq!(
            layer(two_d, 0.0, 0.0).forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap(),
            x.to_vec::<f32>().unwrap()
        );
        rng::manual_seed(0);
        assert_eq!(layer(two_d, 0.3, 0.2).forward(&x, Mode::Train).unwrap().shape(), &[2, 3, 5, 4]);
    }
}

#[test]
fn pruning_zeroes_the_coefficients_below_the_per_map_quantile() {
    for (shape, two_d) in [([2, 3, 4, 5], false), ([2, 3, 4, 5], true), ([1, 2, 17, 17], true), ([1, 2, 6, 7], false)] {
        let x = randn64(&shape, 1);
        let n = shape[2] * shape[3];
        for eta in [0.0, 0.25, 0.5, 0.9] {
            let y = layer(two_d, 0.0, eta).forward(&x, Mode::Train).unwrap();
            let (want, pruned) = reference_prune(&x, eta, two_d);
            assert!(max_diff(&y, &want) < 1e-10, "{shape:?} 2-D {two_d} eta {eta}");
            for k in pruned {
                assert!((k as f64 - eta * n as f64).abs() <= 1.0, "{k} of {n} pruned at eta {eta}");
            }
        }
    }
}

#[test]
fn survivors_are_dropped_with_probability_p_and_rescaled() {
    let x = randn64(&[4, 8, 6, 6], 2);
    for two_d in [false, true] {
        for (rescale, p) in [(true, 0.3), (false, 0.3), (true, 0.6)] {
            let y = if two_d {
                SpectralFourierDropout2d::new(p, 0.0).unwrap().with_rescale(rescale).forward_with_seed(&x, 7)
            } else {
                SpectralFourierDropout1d::new(p, 0.0).unwrap().with_rescale(rescale).forward_with_seed(&x, 7)
            }
            .unwrap();
            let scale = if rescale { 1.0 / (1.0 - p) } else { 1.0 };
            let (cx, cy) = (coeffs(&x, two_d), coeffs(&y, two_d));
            let mut dropped = 0;
            for (a, b) in cx.iter().zip(&cy) {
                if b.abs() < 1e-12 {
                    dropped += 1;
                } else {
                    assert!((b - a * scale).abs() < 1e-10, "{a} -> {b}");
                }
            }
            let rate = dropped as f64 / cx.len() as f64;
            assert!((rate - p).abs() < 0.05, "drop rate {rate} for p = {p}");
        }
    }
}

#[test]
fn pruning_then_dropout_compose() {
    // p > 0 and eta > 0: zeros where the reference prunes, and each survivor kept-and-rescaled
    // or dropped.
    let x = randn64(&[2, 4, 5, 5], 3);
    let (p, eta) = (0.2, 0.4);
    for two_d in [false, true] {
        rng::manual_seed(4);
        let y = layer(two_d, p, eta).forward(&x, Mode::Train).unwrap();
        let (pruned_ref, _) = reference_prune(&x, eta, two_d);
        let (cr, cy) = (coeffs(&pruned_ref, two_d), coeffs(&y, two_d));
        let mut dropped_survivors = 0;
        for (a, b) in cr.iter().zip(&cy) {
            if a.abs() < 1e-12 {
                assert!(b.abs() < 1e-10, "a pruned coefficient came back: {b}");
            } else if b.abs() < 1e-12 {
                dropped_survivors += 1;
            } else {
                assert!((b - a / (1.0 - p)).abs() < 1e-10);
            }
        }
        assert!(dropped_survivors > 0);
    }
}

#[test]
fn without_pruning_the_mean_over_masks_is_the_input() {
    let x = randn64(&[1, 1, 6, 6], 5);
    for two_d in [false, true] {
        let l = layer(two_d, 0.2, 0.0);
        rng::manual_seed(6);
        let k = 3000;
        let mut sum = x.mul_scalar(0.0).unwrap();
        for _ in 0..k {
            sum = sum.add(&l.forward(&x, Mode::Train).unwrap()).unwrap();
        }
        let err = max_diff(&sum.div_scalar(k as f64).unwrap(), &x);
        assert!(err < 0.08, "mean over {k} masks is {err} away from X");
    }
}

#[test]
fn backward_uses_the_forward_mask() {
    // y = Cᵀ diag(m) C x, so d<y, r>/dx = Cᵀ diag(m) C r with m read off the forward's output.
    let x = randn64(&[2, 3, 4, 4], 7);
    let r = randn64(&[2, 3, 4, 4], 8);
    for two_d in [false, true] {
        let l = layer(two_d, 0.4, 0.3);
        rng::manual_seed(9);
        let xl = x.detach().requires_grad_();
        let y = l.forward(&xl, Mode::Train).unwrap();
        let gx = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap().get(&xl).unwrap().clone();
        let (cx, cy, cr) = (coeffs(&x, two_d), coeffs(&y, two_d), coeffs(&r, two_d));
        let masked: Vec<f64> = cx.iter().zip(&cy).zip(&cr).map(|((a, b), c)| b / a * c).collect();
        let masked = Tensor::from_vec(masked, &[2, 3, 4, 4]).unwrap();
        let want = if two_d {
            idct2(&masked).unwrap()
        } else {
            idct(&masked.reshape_to(&[2, 3, 16]).unwrap()).unwrap().reshape_to(&[2, 3, 4, 4]).unwrap()
        };
        assert!(max_diff(&gx, &want) < 1e-10);
    }
}

#[test]
fn bad_input_is_an_error() {
    assert!(SpectralFourierDropout1d::new(1.2, 0.1).is_err());
    assert!(SpectralFourierDropout2d::new(0.1, -0.5).is_err());
    let e = layer(true, 0.1, 0.1).forward(&Tensor::ones(&[2, 3, 4]), Mode::Train).unwrap_err().to_string();
    assert!(e.contains("SpectralFourierDropout2d") && e.contains("[2, 3, 4]"), "{e}");
    let e = layer(false, 0.1, 0.1).forward(&Tensor::ones(&[5, 4]), Mode::Train).unwrap_err().to_string();
    assert!(e.contains("SpectralFourierDropout1d") && e.contains("[5, 4]"), "{e}");
    let ints = Tensor::ones(&[1, 1, 4, 4]).to_dtype(DType::I64).unwrap();
    assert!(layer(false, 0.1, 0.1).forward(&ints, Mode::Train).is_err());
}

fn gradcheck_case() -> impl Strategy<Value = (Tensor, bool, f64, f64, u64)> {
    (1usize..3, 1usize..3, 1usize..6, 2usize..6, any::<bool>(), 0.0f64..0.8, 0.0f64..0.6, any::<u64>()).prop_flat_map(
        |(b, c, h, w, two_d, p, eta, seed)| {
            (f64_tensor(vec![b, c, h, w], -2.0, 2.0), Just(two_d), Just(p), Just(eta), Just(seed))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn gradcheck_with_a_fixed_mask((x, two_d, p, eta, seed) in gradcheck_case()) {
        let l = layer(two_d, p, eta);
        gradcheck_with_seed(l.as_ref(), x, seed);
    }
}
