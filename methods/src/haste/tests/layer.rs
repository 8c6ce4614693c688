//! The spec's tests of the hash and of [`HasteConv2d`]: the no-collision identity for every
//! stride, padding and patch size, exact duplicates, the single bucket, monotonicity in `L`,
//! scale invariance, determinism, and the operation count.

use autograd::{Conv2dParams, Tensor};
use layers::{Conv2d, Mode, Module};
use proptest::prelude::*;

use crate::haste::{buckets, center, Centering, HasteConv2d, HasteSettings, PatchCost, Projection};
use crate::testing::max_diff;

fn settings(hyperplanes: usize, patch: usize, seed: u64) -> HasteSettings {
    HasteSettings { hyperplanes, sparsity: 2.0 / 3.0, patch, centering: Centering::Channels, seed }
}

fn conv(c: usize, o: usize, k: usize, stride: usize, pad: usize, bias: bool, seed: u64) -> Conv2d {
    let w = Tensor::randn(&[o, c, k, k], seed).unwrap();
    let b = bias.then(|| Tensor::randn(&[o], seed + 1).unwrap());
    let params = Conv2dParams { stride: (stride, stride), padding: (pad, pad), ..Conv2dParams::default() };
    Conv2d::from_tensors(w, b, params)
}

fn haste(c: &Conv2d, s: HasteSettings) -> HasteConv2d {
    HasteConv2d::from_conv(c, s).unwrap()
}

/// The largest difference relative to the dense output's largest magnitude.
fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.to_f64_vec().unwrap().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    max_diff(a, b) / scale.max(1e-12)
}

/// Images whose channels are noisy mixtures of `bases` base channels: redundant, as trained
/// feature maps are, so moderate `L` finds collisions.
fn redundant(n: usize, c: usize, h: usize, bases: usize, noise: f32, seed: u64) -> Tensor {
    let base = Tensor::randn(&[n, bases, h, h], seed).unwrap().to_vec::<f32>().unwrap();
    let eps = Tensor::randn(&[n, c, h, h], seed + 7).unwrap().to_vec::<f32>().unwrap();
    let plane = h * h;
    let mut x = vec![0.0f32; n * c * plane];
    for i in 0..n {
        for ch in 0..c {
            let b = ch % bases;
            for p in 0..plane {
                let v = base[(i * bases + b) * plane + p] + noise * eps[(i * c + ch) * plane + p];
                x[(i * c + ch) * plane + p] = v.max(0.0);
            }
        }
    }
    Tensor::from_vec(x, &[n, c, h, h]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// With 64 dense hyperplanes no two random channels collide: HASTE is the dense convolution,
    /// for every stride, padding, kernel and patch size (patch stitching and halos). The input
    /// size is built from the output size so that every patch is whole and its window holds 25
    /// values or more, most of them input: in a small window (or one that is mostly padding)
    /// random channels can point the same way and collide legitimately. Partial patches at the
    /// edges are covered by the single-bucket test.
    #[test]
    fn without_collisions_the_output_is_the_dense_convolution(
        c in 2usize..10, o in 1usize..6, k in prop::sample::select(vec![1usize, 3, 5]), pad_pick in 0usize..3,
        stride in 1usize..3, patch in prop::sample::select(vec![0usize, 3, 4, 5]), tiles in 1usize..3,
        free_oh in 5usize..9, n in 1usize..3, seed in 0u64..1000,
    ) {
        let pad = pad_pick.min(k / 2);
        let oh = if patch == 0 { free_oh } else { patch * tiles };
        let side = if patch == 0 { oh } else { patch };
        prop_assume!((side - 1) * stride + k >= 5);
        let h = (oh - 1) * stride + k - 2 * pad;
        let dense = conv(c, o, k, stride, pad, true, seed);
        let layer = haste(&dense, HasteSettings { sparsity: 0.0, ..settings(64, patch, seed) });
        let x = Tensor::randn(&[n, c, h, h], seed + 3).unwrap();
        let want = dense.forward(&x, Mode::Eval).unwrap();
        let got = layer.forward(&x, Mode::Eval).unwrap();
        prop_assert_eq!(got.shape(), want.shape());
        prop_assert_eq!(want.shape()[2], oh);
        let st = layer.stats();
        prop_assert_eq!(st.kept, st.channels, "no collision expected");
        prop_assert!(rel_diff(&got, &want) < 1e-5, "{}", rel_diff(&got, &want));
    }

    /// Exact duplicate channels always collide and give the dense output, with fewer channels
    /// (whole patches of 25 values or more, as above).
    #[test]
    fn exact_duplicates_collide_and_give_the_dense_output(
        c in 3usize..10, o in 1usize..5, stride in 1usize..3, patch in prop::sample::select(vec![0usize, 3]),
        tiles in 1usize..3, free_oh in 3usize..8, seed in 0u64..1000, c1 in 0usize..10, shift in 0usize..10,
    ) {
        let oh = if patch == 0 { free_oh } else { patch * tiles };
        let h = (oh - 1) * stride + 1;
        let dense = conv(c, o, 3, stride, 1, false, seed);
        let mut x = Tensor::randn(&[1, c, h, h], seed + 5).unwrap().to_vec::<f32>().unwrap();
        let c1 = c1 % c;
        let c2 = (c1 + 1 + shift % (c - 1)) % c;
        let plane = h * h;
        let copy = x[c1 * plane..(c1 + 1) * plane].to_vec();
        x[c2 * plane..(c2 + 1) * plane].copy_from_slice(&copy);
        let x = Tensor::from_vec(x, &[1, c, h, h]).unwrap();
        let layer = haste(&dense, HasteSettings { sparsity: 0.0, ..settings(64, patch, seed) });
        let got = layer.forward(&x, Mode::Eval).unwrap();
        let st = layer.stats();
        prop_assert_eq!(st.kept + st.patches, st.channels, "exactly the duplicate pair merges in every patch");
        prop_assert!(rel_diff(&got, &dense.forward(&x, Mode::Eval).unwrap()) < 1e-5);
    }

    /// A fixed seed gives bit-identical outputs; a power-of-two scale of the input scales the
    /// output exactly (the buckets do not change).
    #[test]
    fn determinism_and_scale_invariance(
        c in 4usize..12, h in 4usize..10, patch in prop::sample::select(vec![0usize, 2, 4]),
        hyperplanes in 1usize..12, seed in 0u64..1000, e in -8i32..9,
    ) {
        let dense = conv(c, 3, 3, 1, 1, false, seed);
        let x = redundant(2, c, h, 3, 0.3, seed);
        let a = haste(&dense, settings(hyperplanes, patch, seed)).forward(&x, Mode::Eval).unwrap();
        let layer = haste(&dense, settings(hyperplanes, patch, seed));
        let b = layer.forward(&x, Mode::Eval).unwrap();
        prop_assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        let alpha = 2f64.powi(e);
        let scaled = haste(&dense, settings(hyperplanes, patch, seed));
        let y = scaled.forward(&x.mul_scalar(alpha).unwrap(), Mode::Eval).unwrap();
        prop_assert_eq!(y.to_vec::<f32>().unwrap(), b.mul_scalar(alpha).unwrap().to_vec::<f32>().unwrap());
        prop_assert_eq!(scaled.stats().kept, layer.stats().kept);
    }
}

/// `L = 0`: every channel of every patch in one bucket, so the output is
/// `conv(mean_c X_c, Σ_c W_{:,c})` whatever the patch size.
#[test]
fn a_single_bucket_is_the_mean_channel_against_the_summed_filter() {
    for (stride, pad, patch) in [(1, 1, 0), (2, 1, 0), (1, 0, 3), (2, 2, 2), (1, 1, 5)] {
        let dense = conv(6, 4, 3, stride, pad, true, 11);
        let x = Tensor::randn(&[2, 6, 9, 9], 12).unwrap();
        let layer = haste(&dense, settings(0, patch, 1));
        let got = layer.forward(&x, Mode::Eval).unwrap();
        let mean = x.mean(&[1], true).unwrap();
        let summed = dense.weight.tensor().sum(&[1], true).unwrap();
        let b = dense.bias.as_ref().unwrap().tensor();
        let want = mean.conv2d(&summed, Some(&b), dense.params).unwrap();
        assert!(rel_diff(&got, &want) < 1e-5, "stride {stride} pad {pad} patch {patch}: {}", rel_diff(&got, &want));
        assert_eq!(layer.stats().kept, layer.stats().patches);
    }
}

/// The mean fraction of channels kept does not decrease with `L` (averaged over 8 seeds, on
/// redundant maps), and spans from one bucket to almost no merging.
#[test]
fn compression_is_monotonic_in_the_number_of_hyperplanes() {
    let dense = conv(32, 8, 3, 1, 1, false, 3);
    let x = redundant(4, 32, 8, 6, 0.4, 4);
    let mut last = 0.0;
    let mut fractions = Vec::new();
    for l in [0usize, 1, 2, 4, 6, 8, 12, 16, 24, 32] {
        let mut kept = 0.0;
        for seed in 0..8 {
            let layer = haste(&dense, settings(l, 2, seed));
            layer.forward(&x, Mode::Eval).unwrap();
            kept += layer.stats().kept_fraction() / 8.0;
        }
        assert!(kept >= last, "L {l}: kept {kept} < {last}");
        last = kept;
        fractions.push(kept);
    }
    assert!((fractions[0] - 1.0 / 32.0).abs() < 1e-12, "{fractions:?}");
    assert!(fractions[9] > 0.9 && fractions[4] < 0.9, "{fractions:?}");
}

/// The hash itself: the projection's distribution, codes invariant to positive scaling,
/// centering as defined, buckets ordered by first channel.
#[test]
fn the_projection_hash_and_buckets() {
    let r = Projection::new(16, 3000, 2.0 / 3.0, 9).unwrap();
    let (mut plus, mut minus) = (0, 0);
    for l in 0..16 {
        for i in 0..3000 {
            match r.entry(l, i) {
                1 => plus += 1,
                -1 => minus += 1,
                _ => {}
            }
        }
    }
    assert_eq!(plus + minus, r.nonzeros());
    let total = 16.0 * 3000.0;
    assert!((plus as f64 / total - 1.0 / 6.0).abs() < 0.01 && (minus as f64 / total - 1.0 / 6.0).abs() < 0.01);
    assert_ne!(Projection::new(16, 3000, 2.0 / 3.0, 10).unwrap(), r);
    assert!(Projection::new(65, 4, 0.5, 0).is_err() && Projection::new(4, 4, 1.0, 0).is_err());
    // A code is the sign pattern of the projections.
    let v: Vec<f32> = (0..3000).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
    let code = r.code(&v);
    for l in 0..16 {
        let s: f64 = (0..3000).map(|i| f64::from(r.entry(l, i)) * f64::from(v[i])).sum();
        assert_eq!(code >> l & 1 == 1, s > 0.0, "bit {l}");
    }
    // Centering: channel means subtracted per position, or each channel's own mean.
    let x = [1.0f32, 2.0, 3.0, 5.0, 6.0, 7.0];
    let mut out = Vec::new();
    center(&x, 2, 3, Centering::Channels, &mut out);
    assert_eq!(out, [-2.0, -2.0, -2.0, 2.0, 2.0, 2.0]);
    center(&x, 2, 3, Centering::Spatial, &mut out);
    assert_eq!(out, [-1.0, 0.0, 1.0, -1.0, 0.0, 1.0]);
    // Positive scale: the same codes.
    let proj = Projection::new(12, 3, 0.0, 1).unwrap();
    for alpha in [0.37f32, 3.0, 1e3] {
        let y: Vec<f32> = x.iter().map(|v| v * alpha).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        center(&x, 2, 3, Centering::Channels, &mut a);
        center(&y, 2, 3, Centering::Channels, &mut b);
        assert_eq!(proj.code(&a[..3]), proj.code(&b[..3]));
        assert_eq!(proj.code(&a[3..]), proj.code(&b[3..]));
    }
    assert_eq!(buckets(&[7, 7, 7]), (vec![0, 1, 2], vec![0, 3]));
    assert_eq!(buckets(&[]), (vec![], vec![0]));
}

/// The operation count: the formula's terms, a negative reduction when nothing merges (the
/// overhead), and the layer's recorded count equal to the sum over its patches.
#[test]
fn the_operation_count_includes_the_overhead() {
    let c = PatchCost::new(64, 40, 128, 100, 100, 2100, 9, 64, Centering::Channels);
    assert_eq!(c.conv, 128 * 40 * 9 * 64);
    assert_eq!(c.centering, 2 * 64 * 100);
    assert_eq!(c.hashing, 64 * 2100);
    assert_eq!(c.input_merge, 64 * 100);
    assert_eq!(c.filter_merge, 128 * 24 * 9);
    let none = PatchCost::new(64, 64, 128, 100, 100, 2100, 9, 64, Centering::Channels);
    let dense = crate::haste::dense_macs(64, 128, 9, 8, 8);
    let red = crate::haste::reduction(none.total(), dense);
    assert!(red < 0.0 && red > -0.05, "{red}");
    // The layer's count: with 64 hyperplanes nothing merges, so the overhead alone separates
    // it from the dense count, and the MAC counter sees the same number.
    let dense_conv = conv(16, 8, 3, 1, 1, false, 1);
    let layer = haste(&dense_conv, settings(64, 0, 1));
    let x = Tensor::randn(&[1, 16, 8, 8], 2).unwrap();
    let report = layers::mac::count_macs(&layer, &x).unwrap();
    let st = layer.stats();
    assert_eq!(st.dense, 8 * 16 * 9 * 64);
    assert_eq!(st.cost.conv, st.dense);
    let proj = layer.projection(10, 10).unwrap();
    assert_eq!(st.cost.hashing, 16 * proj.nonzeros() as u64);
    assert_eq!(st.cost.centering, 2 * 16 * 100);
    assert_eq!(report.total_macs, st.cost.total());
    assert!(crate::haste::reduction(report.total_macs, st.dense) < 0.0);
}

#[test]
fn grouped_and_dilated_convolutions_are_refused() {
    let mut c = conv(4, 4, 3, 1, 1, false, 0);
    c.params.dilation = (2, 2);
    let e = HasteConv2d::from_conv(&c, settings(4, 0, 0)).err().unwrap().to_string();
    assert!(e.contains("dilation"), "{e}");
    let e = HasteConv2d::from_conv(&conv(4, 4, 3, 1, 1, false, 0), settings(70, 0, 0)).err().unwrap().to_string();
    assert!(e.contains("64"), "{e}");
}
