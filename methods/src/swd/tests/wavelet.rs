//! Spectral wavelet dropout: identities, shapes, band-wise behavior checked against an
//! independent transform (the convolution path of `autograd::signal`), unbiasedness, gradients.

use autograd::signal::{Dwt, Dwt2, DwtAlgorithm, Wavelet};
use autograd::strategies::f64_tensor;
use autograd::{DType, Tensor};
use layers::{rng, Mode, Module};
use proptest::prelude::*;

use super::{dot, gradcheck_with_seed, max_diff, randn64};
use crate::swd::{MaskGranularity, SpectralWaveletDropout1d, SpectralWaveletDropout2d};

const GRANULARITIES: [MaskGranularity; 3] =
    [MaskGranularity::PerCall, MaskGranularity::PerSample, MaskGranularity::PerChannel];

/// The reference output for explicit masks, through the convolution path of the transforms:
/// transform every map, multiply detail band `j` of map `(b, c)` by `1/(1 − p)` or 0 as `keep`
/// says for that map's mask group (approximation untouched), invert.
fn reference(x: &Tensor, keep: &[bool], g: MaskGranularity, p: f64, two_d: bool) -> Tensor {
    let s = x.shape().to_vec();
    let (gb, gc) = g.groups(s[0], s[1]);
    let scale = |band: &Tensor, j: usize| {
        let per_map: Vec<f64> = (0..s[0] * s[1])
            .map(|map| {
                let group = (map / s[1]) % gb * gc + (map % s[1]) % gc;
                if keep[group * 3 + j] {
                    1.0 / (1.0 - p)
                } else {
                    0.0
                }
            })
            .collect();
        let mut shape = vec![s[0], s[1]];
        shape.resize(band.ndim(), 1);
        band.mul(&Tensor::from_vec(per_map, &shape).unwrap()).unwrap()
    };
    if two_d {
        let plan = Dwt2::new(Wavelet::Db3, (s[2], s[3])).unwrap().with_algorithm(DwtAlgorithm::Conv);
        let mut c = plan.forward(x).unwrap();
        c.horizontal = scale(&c.horizontal, 0);
        c.vertical = scale(&c.vertical, 1);
        c.diagonal = scale(&c.diagonal, 2);
        plan.inverse(&c).unwrap()
    } else {
        let n = s[2..].iter().product();
        let plan = Dwt::new(Wavelet::Db3, n, 3).unwrap().with_algorithm(DwtAlgorithm::Conv);
        let mut c = plan.forward(&x.reshape_to(&[s[0], s[1], n]).unwrap()).unwrap();
        c.details = c.details.iter().enumerate().map(|(j, d)| scale(d, j)).collect();
        plan.inverse(&c).unwrap().reshape_to(&s).unwrap()
    }
}

/// The mask (one of the eight) that each `(sample, channel)` map of `y` was made with from `x`.
fn recover_masks(x: &Tensor, y: &Tensor, p: f64, two_d: bool) -> Vec<u32> {
    let (b, c) = (x.shape()[0], x.shape()[1]);
    let per_map = |t: &Tensor| -> Vec<Vec<f64>> {
        let v = t.to_f64_vec().unwrap();
        v.chunks(v.len() / (b * c)).map(|m| m.to_vec()).collect()
    };
    let outputs: Vec<Vec<Vec<f64>>> = (0..8u32)
        .map(|pattern| {
            let keep: Vec<bool> = (0..3).map(|j| pattern >> j & 1 == 1).collect();
            per_map(&forward_with_keep(two_d, p, MaskGranularity::PerCall, x, &keep))
        })
        .collect();
    per_map(y)
        .iter()
        .enumerate()
        .map(|(map, ym)| {
            let close = |o: &Vec<f64>| o.iter().zip(ym).all(|(a, b)| (a - b).abs() < 1e-10);
            let hits: Vec<u32> = (0..8).filter(|&pat| close(&outputs[pat as usize][map])).collect();
            assert_eq!(hits.len(), 1, "map {map} matches masks {hits:?}");
            hits[0]
        })
        .collect()
}

fn layer(two_d: bool, p: f64, g: MaskGranularity) -> Box<dyn Module> {
    if two_d {
        Box::new(SpectralWaveletDropout2d::new(p).unwrap().with_granularity(g))
    } else {
        Box::new(SpectralWaveletDropout1d::new(p).unwrap().with_granularity(g))
    }
}

fn forward_with_keep(two_d: bool, p: f64, g: MaskGranularity, x: &Tensor, keep: &[bool]) -> Tensor {
    if two_d {
        SpectralWaveletDropout2d::new(p).unwrap().with_granularity(g).forward_with_keep(x, keep).unwrap()
    } else {
        SpectralWaveletDropout1d::new(p).unwrap().with_granularity(g).forward_with_keep(x, keep).unwrap()
    }
}

#[test]
fn eval_mode_and_p_zero_are_exact_identities() {
    let x = Tensor::randn(&[3, 4, 7, 5], 1).unwrap();
    for two_d in [false, true] {
        for g in GRANULARITIES {
            let eval = layer(two_d, 0.5, g).forward(&x, Mode::Eval).unwrap();
            assert_eq!(eval.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
            let p0 = layer(two_d, 0.0, g).forward(&x, Mode::Train).unwrap();
            assert_eq!(p0.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        }
    }
}

#[test]
fn all_kept_with_p_zero_reconstructs_the_input() {
    // The training-mode computation itself (not the p = 0 shortcut) is a perfect reconstruction.
    for (shape, two_d) in [(vec![2, 3, 6, 6], false), (vec![2, 3, 25, 25], false), (vec![2, 2, 9, 7], true)] {
        let x = randn64(&shape, 2);
        for g in GRANULARITIES {
            let (gb, gc) = g.groups(shape[0], shape[1]);
            let y = forward_with_keep(two_d, 0.0, g, &x, &vec![true; gb * gc * 3]);
            assert!(max_diff(&y, &x) < 1e-12, "{shape:?} {g:?}");
        }
    }
}

#[test]
fn output_shape_equals_input_shape() {
    rng::manual_seed(0);
    for shape in [[1, 1, 1, 1], [2, 3, 4, 4], [2, 5, 7, 3], [1, 2, 32, 32]] {
        let x = Tensor::randn(&shape, 3).unwrap();
        for two_d in [false, true] {
            for g in GRANULARITIES {
                assert_eq!(layer(two_d, 0.3, g).forward(&x, Mode::Train).unwrap().shape(), &shape);
            }
        }
    }
    // 1-D also takes [B, C, L] signals.
    let x = Tensor::randn(&[2, 3, 50], 4).unwrap();
    assert_eq!(layer(false, 0.3, MaskGranularity::PerChannel).forward(&x, Mode::Train).unwrap().shape(), &[2, 3, 50]);
}

#[test]
fn all_details_dropped_gives_the_low_pass_reconstruction() {
    // Reference: the convolution-path transform with every detail band zeroed.
    for shape in [[2, 3, 8, 8], [1, 2, 5, 7], [2, 2, 24, 24]] {
        let x = randn64(&shape, 5);
        let n = shape[2] * shape[3];
        let plan = Dwt::new(Wavelet::Db3, n, 3).unwrap().with_algorithm(DwtAlgorithm::Conv);
        let mut c = plan.forward(&x.reshape_to(&[shape[0], shape[1], n]).unwrap()).unwrap();
        for d in &mut c.details {
            *d = d.mul_scalar(0.0).unwrap();
        }
        let low = plan.inverse(&c).unwrap().reshape_to(&shape).unwrap();
        let plan2 = Dwt2::new(Wavelet::Db3, (shape[2], shape[3])).unwrap().with_algorithm(DwtAlgorithm::Conv);
        let mut c2 = plan2.forward(&x).unwrap();
        for d in [&mut c2.horizontal, &mut c2.vertical, &mut c2.diagonal] {
            *d = d.mul_scalar(0.0).unwrap();
        }
        let low2 = plan2.inverse(&c2).unwrap();
        for g in GRANULARITIES {
            let (gb, gc) = g.groups(shape[0], shape[1]);
            let none = vec![false; gb * gc * 3];
            assert!(max_diff(&forward_with_keep(false, 0.3, g, &x, &none), &low) < 1e-12, "1-D {shape:?} {g:?}");
            assert!(max_diff(&forward_with_keep(true, 0.3, g, &x, &none), &low2) < 1e-12, "2-D {shape:?} {g:?}");
        }
        // p = 1 in training mode drops every detail band.
        rng::manual_seed(1);
        assert!(max_diff(&layer(false, 1.0, MaskGranularity::PerCall).forward(&x, Mode::Train).unwrap(), &low) < 1e-12);
        // ... and keeping a band at p = 1 would scale it by infinity: refused, naming the band.
        for two_d in [false, true] {
            let one = if two_d {
                SpectralWaveletDropout2d::new(1.0).unwrap().forward_with_keep(&x, &[false, true, false])
            } else {
                SpectralWaveletDropout1d::new(1.0).unwrap().forward_with_keep(&x, &[false, true, false])
            };
            let e = one.unwrap_err().to_string();
            assert!(e.contains("band 2") && e.contains("inf"), "{e}");
        }
    }
}

#[test]
fn restricted_levels_drop_only_their_bands() {
    // The paper's 1D-SWD3 ablation: only the coarsest band may be dropped; the finer ones pass
    // through unscaled whatever their flag, so the output equals the full layer's with those
    // bands kept at scale 1, i.e. the level-3 band dropped or scaled alone.
    let x = randn64(&[2, 3, 8, 8], 7);
    let p = 0.25;
    let swd3 = SpectralWaveletDropout1d::new(p).unwrap().with_droppable_levels(&[3]).unwrap();
    assert_eq!(swd3.droppable_levels(), [3]);
    let plan = Dwt::new(Wavelet::Db3, 64, 3).unwrap().with_algorithm(DwtAlgorithm::Conv);
    for keep3 in [false, true] {
        let mut c = plan.forward(&x.reshape_to(&[2, 3, 64]).unwrap()).unwrap();
        let s = if keep3 { 1.0 / (1.0 - p) } else { 0.0 };
        c.details[2] = c.details[2].mul_scalar(s).unwrap(); // finest first: details[2] is level 3
        let want = plan.inverse(&c).unwrap().reshape_to(&[2, 3, 8, 8]).unwrap();
        for other in [[false, false], [true, false], [true, true]] {
            let got = swd3.forward_with_keep(&x, &[other[0], other[1], keep3]).unwrap();
            assert!(max_diff(&got, &want) < 1e-12, "keep3 {keep3} others {other:?}");
        }
    }
    assert!(SpectralWaveletDropout1d::new(p).unwrap().with_droppable_levels(&[0]).is_err());
    assert!(SpectralWaveletDropout1d::new(p).unwrap().with_droppable_levels(&[]).is_err());
}

#[test]
fn each_detail_band_is_scaled_by_its_mask_and_the_approximation_never_changes() {
    // Every keep pattern, on the operator path (short maps, per-call), the packed path and the
    // long-map path (N > OPERATOR_MAX_LEN), against the convolution-path reference.
    let p = 0.3;
    for shape in [[2, 3, 6, 6], [3, 2, 5, 9], [1, 2, 23, 23]] {
        let x = randn64(&shape, 6);
        for two_d in [false, true] {
            for pattern in 0..8u32 {
                let keep: Vec<bool> = (0..3).map(|j| pattern >> j & 1 == 1).collect();
                let y = forward_with_keep(two_d, p, MaskGranularity::PerCall, &x, &keep);
                let want = reference(&x, &keep, MaskGranularity::PerCall, p, two_d);
                assert!(max_diff(&y, &want) < 1e-12, "{shape:?} 2-D {two_d} keep {keep:?}");
            }
            for g in [MaskGranularity::PerSample, MaskGranularity::PerChannel] {
                let (gb, gc) = g.groups(shape[0], shape[1]);
                let keep: Vec<bool> = (0..gb * gc * 3).map(|i| (i * 7 + 3) % 5 < 3).collect();
                let y = forward_with_keep(two_d, p, g, &x, &keep);
                assert!(max_diff(&y, &reference(&x, &keep, g, p, two_d)) < 1e-12, "{shape:?} 2-D {two_d} {g:?}");
            }
        }
    }
}

#[test]
fn drawn_masks_are_band_masks_and_follow_the_seed() {
    let x = randn64(&[4, 3, 6, 6], 7);
    for two_d in [false, true] {
        for g in GRANULARITIES {
            let l = layer(two_d, 0.5, g);
            rng::manual_seed(11);
            let a = l.forward(&x, Mode::Train).unwrap();
            let b = l.forward(&x, Mode::Train).unwrap();
            rng::manual_seed(11);
            assert_eq!(l.forward(&x, Mode::Train).unwrap().to_vec::<f64>().unwrap(), a.to_vec::<f64>().unwrap());
            // Maps in one group share their mask; different groups draw independently.
            let masks = recover_masks(&x, &a, 0.5, two_d);
            let (gb, gc) = g.groups(4, 3);
            let group = |map: usize| (map / 3) % gb * gc + (map % 3) % gc;
            for i in 0..12 {
                for j in 0..12 {
                    if group(i) == group(j) {
                        assert_eq!(masks[i], masks[j], "{g:?}: maps {i} and {j} share a mask");
                    }
                }
            }
            let distinct: std::collections::HashSet<_> = masks.iter().collect();
            assert_eq!(distinct.len() > 1, gb * gc > 1, "{g:?}: independent masks per group");
            assert_ne!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap(), "the next call draws a new mask");
        }
    }
}

#[test]
fn averaging_over_masks_gives_the_input() {
    // Exactly: the probability-weighted sum over all eight masks is X.
    let p = 0.3;
    let x = randn64(&[2, 3, 9, 9], 8);
    for two_d in [false, true] {
        let mut mean = x.mul_scalar(0.0).unwrap();
        for pattern in 0..8u32 {
            let keep: Vec<bool> = (0..3).map(|j| pattern >> j & 1 == 1).collect();
            let prob: f64 = keep.iter().map(|&k| if k { 1.0 - p } else { p }).product();
            let y = forward_with_keep(two_d, p, MaskGranularity::PerCall, &x, &keep);
            mean = mean.add(&y.mul_scalar(prob).unwrap()).unwrap();
        }
        assert!(max_diff(&mean, &x) < 1e-12);
    }
    // Empirically: the mean of many drawn masks converges to X (standard error here ~0.01).
    rng::manual_seed(3);
    let x = randn64(&[1, 1, 8, 8], 9);
    for two_d in [false, true] {
        let l = layer(two_d, 0.2, MaskGranularity::PerCall);
        let k = 3000;
        let mut sum = x.mul_scalar(0.0).unwrap();
        for _ in 0..k {
            sum = sum.add(&l.forward(&x, Mode::Train).unwrap()).unwrap();
        }
        let err = max_diff(&sum.div_scalar(k as f64).unwrap(), &x);
        assert!(err < 0.08, "mean over {k} masks is {err} away from X");
        // A single draw is far from X (otherwise this test could not fail).
        assert!((0..20).any(|_| max_diff(&l.forward(&x, Mode::Train).unwrap(), &x) > 0.1));
    }
}

#[test]
fn backward_uses_the_forward_mask() {
    // y = x M with a symmetric M fixed by the mask, so d<y, r>/dx = r M = the layer applied to r
    // with the same mask; and <y, r> = <x, grad>.
    let x = randn64(&[3, 2, 7, 7], 10);
    let r = randn64(&[3, 2, 7, 7], 11);
    for two_d in [false, true] {
        for g in GRANULARITIES {
            let l = layer(two_d, 0.5, g);
            rng::manual_seed(21);
            let xl = x.detach().requires_grad_();
            let y = l.forward(&xl, Mode::Train).unwrap();
            let grads = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            let gx = grads.get(&xl).unwrap();
            rng::manual_seed(21);
            let same_mask_on_r = l.forward(&r, Mode::Train).unwrap();
            assert!(max_diff(gx, &same_mask_on_r) < 1e-12, "{two_d} {g:?}");
            assert!((dot(&y, &r) - dot(&x, gx)).abs() < 1e-10);
        }
    }
}

#[test]
fn f32_and_f64_agree() {
    let x = Tensor::randn(&[2, 3, 6, 6], 12).unwrap();
    for two_d in [false, true] {
        for g in GRANULARITIES {
            let l = layer(two_d, 0.4, g);
            rng::manual_seed(5);
            let y32 = l.forward(&x, Mode::Train).unwrap();
            rng::manual_seed(5);
            let y64 = l.forward(&x.to_dtype(DType::F64).unwrap(), Mode::Train).unwrap();
            assert_eq!(y32.dtype(), DType::F32);
            assert!(max_diff(&y32, &y64) < 1e-4);
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    assert!(SpectralWaveletDropout1d::new(1.5).is_err());
    assert!(SpectralWaveletDropout2d::new(-0.1).is_err());
    assert!(SpectralWaveletDropout1d::new(0.1).unwrap().with_level(0).is_err());
    let l1 = SpectralWaveletDropout1d::new(0.1).unwrap();
    let l2 = SpectralWaveletDropout2d::new(0.1).unwrap();
    let e = l1.forward(&Tensor::ones(&[3, 4]), Mode::Train).unwrap_err().to_string();
    assert!(e.contains("SpectralWaveletDropout1d") && e.contains("[3, 4]"), "{e}");
    let e = l2.forward(&Tensor::ones(&[2, 3, 4]), Mode::Train).unwrap_err().to_string();
    assert!(e.contains("SpectralWaveletDropout2d") && e.contains("[2, 3, 4]"), "{e}");
    let e = l1.forward_with_keep(&Tensor::ones(&[2, 3, 4, 4]), &[true; 4]).unwrap_err().to_string();
    assert!(e.contains("4 keep flags"), "{e}");
    let ints = Tensor::ones(&[1, 1, 4, 4]).to_dtype(DType::I64).unwrap();
    assert!(l2.forward(&ints, Mode::Train).is_err());
}

fn gradcheck_case() -> impl Strategy<Value = (Tensor, bool, usize, f64, u64)> {
    (1usize..3, 1usize..3, 1usize..7, 1usize..7, any::<bool>(), 0usize..3, 0.1f64..0.9, any::<u64>()).prop_flat_map(
        |(b, c, h, w, two_d, g, p, seed)| {
            (f64_tensor(vec![b, c, h, w], -2.0, 2.0), Just(two_d), Just(g), Just(p), Just(seed))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn gradcheck_with_a_fixed_mask((x, two_d, g, p, seed) in gradcheck_case()) {
        let l = layer(two_d, p, GRANULARITIES[g]);
        gradcheck_with_seed(l.as_ref(), x, seed);
    }
}
