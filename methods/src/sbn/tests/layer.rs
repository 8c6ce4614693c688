//! The layer against the spec's test list: FFT round trip, the NumPy float64 reference of
//! Algorithm 1 (train and eval), pre-affine statistics, scale invariance, Parseval, running
//! statistics, eval independence, gradchecks, and the fused op against the literal FFT form.

use autograd::{gradcheck, DType, GradcheckOptions, Tensor};
use layers::{Mode, Module, ModuleExt};
use serde_json::Value;

use super::{max_diff, randn64};
use crate::sbn::{literal, Correction, Implementation, SpectralBatchNorm2d};

/// The fixture script's inputs: `((i²·31 + 17i + 7·seed) mod 1009) / 504.5 − 1 + 0.25`.
fn signal(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64).map(|i| ((i * i * 31 + i * 17 + seed * 7) % 1009) as f64 / 504.5 - 1.0 + 0.25).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs NumPy {w}");
    }
}

fn vec64(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec().unwrap()
}

/// A float64 layer with the fixture's γ and β.
fn fixture_layer(c: usize, correction: Correction, implementation: Implementation) -> SpectralBatchNorm2d {
    let l = SpectralBatchNorm2d::new(c).with_correction(correction).with_implementation(implementation);
    l.convert(DType::F64, autograd::Device::Cpu).unwrap();
    let gamma: Vec<f64> = signal(c, 2).iter().map(|v| v + 1.0).collect();
    let beta: Vec<f64> = signal(c, 3).iter().map(|v| v * 0.5).collect();
    l.weight.set_data(&Tensor::from_vec(gamma, &[c]).unwrap()).unwrap();
    l.bias.set_data(&Tensor::from_vec(beta, &[c]).unwrap()).unwrap();
    l
}

/// Spec test 2: the whole layer (train mode, its running statistics with both corrections, then
/// eval mode on another input) equals the NumPy float64 reference of Algorithm 1
/// (`tests/fixtures/make_sbn_fixtures.py`), for even, odd and unit widths, in both
/// implementations.
#[test]
fn matches_the_numpy_reference_in_train_and_eval_mode() {
    let text = include_str!("fixtures/sbn_reference.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let shape: Vec<usize> =
            case["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let n: usize = shape.iter().product();
        let c = shape[1];
        let x = Tensor::from_vec(signal(n, 1), &shape).unwrap();
        let x2 = Tensor::from_vec(signal(n, 4), &shape).unwrap();
        for implementation in [Implementation::Fused, Implementation::Fft] {
            for correction in [Correction::Samples, Correction::Paper] {
                let what = format!("{shape:?} {implementation:?} {correction:?}");
                let l = fixture_layer(c, correction, implementation);
                let y = l.forward(&x, Mode::Train).unwrap();
                assert_close(&vec64(&y), &floats(&case["train_y"]), 1e-11, &format!("{what} train y"));
                let name = correction.name();
                for (buf, key) in [
                    (&l.running_mean_real, "running_mean_re"),
                    (&l.running_mean_imag, "running_mean_im"),
                    (&l.running_var, "running_var"),
                ] {
                    assert_close(
                        &vec64(&buf.get()),
                        &floats(&case[format!("{key}_{name}")]),
                        1e-12,
                        &format!("{what} {key}"),
                    );
                }
                if correction == Correction::Samples {
                    let y2 = l.forward(&x2, Mode::Eval).unwrap();
                    assert_close(&vec64(&y2), &floats(&case["eval_y"]), 1e-11, &format!("{what} eval y"));
                }
            }
        }
        // The batch statistics themselves.
        let (_, mr, mi, var) = x.spectral_batch_norm_train(None, None, 1e-5).unwrap();
        assert_close(&vec64(&mr), &floats(&case["mean_re"]), 1e-12, "mean_re");
        assert_close(&vec64(&mi), &floats(&case["mean_im"]), 1e-12, "mean_im");
        assert_close(&vec64(&var), &floats(&case["var"]), 1e-12, "var");
    }
}

/// Spec test 1: `irfft2(rfft2(x), s=(H, W)) == x` for even and odd sizes.
#[test]
fn fft_round_trip_is_exact_for_even_and_odd_sizes() {
    for (h, w) in [(4, 4), (5, 7), (8, 6), (3, 1), (1, 5), (7, 8)] {
        let x = randn64(&[2, 3, h, w], 7);
        let back = x.rfft2().unwrap().irfft2((h, w)).unwrap();
        assert!(max_diff(&back, &x) < 1e-12, "{h}x{w}");
    }
}

/// Spec test 3: before the affine step, per channel, `x̄ = (X̂ − μ)/sqrt(σ² + eps)` has a zero
/// complex mean over batch and bins and `mean |x̄|² = σ²/(σ² + eps)`, with the statistics the
/// fused op returns (so they are the spectrum's). (Checked on `x̄` itself: `irfft2` projects a
/// spectrum that is not Hermitian-consistent, so the layer's output does not carry `x̄`.)
#[test]
fn pre_affine_statistics_are_zero_mean_and_unit_power() {
    let (c, eps) = (3, 1e-2);
    let x = randn64(&[6, c, 5, 6], 1).mul_scalar(0.7).unwrap().add_scalar(0.4).unwrap();
    let (_, mr, mi, var) = x.spectral_batch_norm_train(None, None, eps).unwrap();
    let mean = Tensor::stack(&[&mr, &mi], 1).unwrap().reshape_to(&[1, c, 1, 1, 2]).unwrap();
    let xbar = x
        .rfft2()
        .unwrap()
        .sub(&mean)
        .unwrap()
        .div(&var.add_scalar(eps).unwrap().sqrt().unwrap().reshape_to(&[1, c, 1, 1, 1]).unwrap())
        .unwrap();
    let m = vec64(&xbar.mean(&[0, 2, 3], false).unwrap()); // [C, 2]
    let power = vec64(&xbar.square().unwrap().sum(&[4], false).unwrap().mean(&[0, 2, 3], false).unwrap());
    for k in 0..c {
        let v = vec64(&var)[k];
        assert!(m[2 * k].abs() < 1e-12 && m[2 * k + 1].abs() < 1e-12, "channel {k}: mean {m:?}");
        assert!((power[k] - v / (v + eps)).abs() < 1e-12, "channel {k}: {}", power[k]);
    }
}

/// Spec test 4: in training mode `SBN(c·x) ≈ SBN(x)` for `c > 0`, as batch norm (exact with
/// `eps = 0`, up to eps otherwise).
#[test]
fn is_scale_invariant_in_train_mode() {
    let x = randn64(&[4, 2, 4, 5], 2).add_scalar(0.3).unwrap();
    let l = SpectralBatchNorm2d::new(2);
    l.convert(DType::F64, autograd::Device::Cpu).unwrap();
    l.weight.set_data(&Tensor::from_vec(vec![1.5f64, 0.5], &[2]).unwrap()).unwrap();
    l.bias.set_data(&Tensor::from_vec(vec![0.2f64, -0.4], &[2]).unwrap()).unwrap();
    let y = l.forward(&x, Mode::Train).unwrap();
    for c in [0.1, 3.0, 250.0] {
        let yc = l.forward(&x.mul_scalar(c).unwrap(), Mode::Train).unwrap();
        assert!(max_diff(&yc, &y) < 1e-3, "c = {c}: {}", max_diff(&yc, &y));
    }
    let (y0, ..) = x.spectral_batch_norm_train(None, None, 0.0).unwrap();
    let (yc, ..) = x.mul_scalar(40.0).unwrap().spectral_batch_norm_train(None, None, 0.0).unwrap();
    assert!(max_diff(&y0, &yc) < 1e-12);
}

/// Spec test 5 (Parseval): with γ = 1, β = 0 and a zero-mean input, `‖y‖ ≈ ‖x‖ / sqrt(HW·E[x²])`
/// per channel. An orthonormal transform would drop the `sqrt(HW)` (a norm 8 times larger for
/// 8x8 maps): the check catches a wrong FFT normalization.
#[test]
fn parseval_scaling_catches_a_wrong_fft_normalization() {
    let (b, c, h, w) = (64, 3, 8, 8);
    // Zero-mean maps (the mean over bins is then small), channels of different power.
    let x = randn64(&[b, c, h, w], 3).mul(&Tensor::from_vec(vec![0.5f64, 2.0, 7.0], &[1, 3, 1, 1]).unwrap()).unwrap();
    let (y, ..) = x.spectral_batch_norm_train(None, None, 1e-5).unwrap();
    let per_channel = |t: &Tensor| vec64(&t.square().unwrap().sum(&[0, 2, 3], false).unwrap());
    let (ey, ex) = (per_channel(&y), per_channel(&x));
    for k in 0..c {
        let mean_sq = ex[k] / (b * h * w) as f64; // E[x²]
        let want = ex[k].sqrt() / ((h * w) as f64 * mean_sq).sqrt(); // ‖x‖ / sqrt(HW·E[x²])
        let got = ey[k].sqrt();
        assert!((got / want - 1.0).abs() < 0.05, "channel {k}: ‖y‖ {got} vs {want}");
        // Orthonormal FFT would have given ‖y‖ ≈ ‖x‖/sqrt(E[x²]), HW = 64 times larger in power.
        assert!(got < 0.2 * ex[k].sqrt() / mean_sq.sqrt());
    }
}

/// Spec test 7: one training step from the initial buffers gives `μ_r = λμ` and
/// `σ_r² = λσ²n/(n − 1) + (1 − λ)` with `n = B·H·(W/2+1)` (or the paper's `C·H·W/2`), and the
/// eval output of a sample does not depend on the other samples of its batch.
#[test]
fn running_statistics_follow_the_formulas_and_eval_is_per_sample() {
    let (b, c, h, w) = (5, 3, 4, 5);
    let x = randn64(&[b, c, h, w], 4).add_scalar(0.5).unwrap();
    let (_, mr, mi, var) = x.spectral_batch_norm_train(None, None, 1e-5).unwrap();
    for (correction, n) in [(Correction::Samples, (b * h * 3) as f64), (Correction::Paper, (c * h * w) as f64 / 2.0)] {
        let mut l = SpectralBatchNorm2d::new(c).with_correction(correction);
        l.convert(DType::F64, autograd::Device::Cpu).unwrap();
        l.momentum = 0.25;
        l.forward(&x, Mode::Train).unwrap();
        let want_var: Vec<f64> = vec64(&var).iter().map(|v| 0.25 * v * n / (n - 1.0) + 0.75).collect();
        assert_close(&vec64(&l.running_var.get()), &want_var, 1e-12, "running var");
        let scaled = |t: &Tensor| vec64(t).iter().map(|v| 0.25 * v).collect::<Vec<_>>();
        assert_close(&vec64(&l.running_mean_real.get()), &scaled(&mr), 1e-12, "running mean re");
        assert_close(&vec64(&l.running_mean_imag.get()), &scaled(&mi), 1e-12, "running mean im");
        assert_eq!(l.num_batches_tracked.get().item().unwrap(), 1.0);
        // Eval: sample 0 alone or in a batch with others gives the same output.
        let alone = l.forward(&x.narrow(0, 0, 1).unwrap(), Mode::Eval).unwrap();
        let other = randn64(&[b, c, h, w], 9);
        let mixed = Tensor::cat(&[&x.narrow(0, 0, 1).unwrap(), &other.narrow(0, 1, b - 1).unwrap()], 0).unwrap();
        let in_batch = l.forward(&mixed, Mode::Eval).unwrap().narrow(0, 0, 1).unwrap();
        assert!(max_diff(&alone, &in_batch) < 1e-13);
    }
}

/// Spec test 6: float64 finite differences through the whole layer (input, γ and β), train and
/// eval mode, both implementations (the literal one through its DFTs).
#[test]
fn gradcheck_through_the_layer() {
    for implementation in [Implementation::Fused, Implementation::Fft] {
        for (shape, seed) in [([3usize, 2, 4, 5], 5u64), ([2, 2, 3, 4], 6), ([4, 1, 2, 1], 7)] {
            let l = SpectralBatchNorm2d::new(shape[1]).with_implementation(implementation);
            l.convert(DType::F64, autograd::Device::Cpu).unwrap();
            l.running_mean_real.set(randn64(&[shape[1]], 11));
            l.running_var.set(randn64(&[shape[1]], 12).abs().unwrap().add_scalar(0.5).unwrap());
            let r = randn64(&shape, seed + 100);
            let x = randn64(&shape, seed).add_scalar(0.2).unwrap();
            let gamma = Tensor::from_vec(vec![1.3f64; shape[1]], &[shape[1]]).unwrap();
            let beta = Tensor::from_vec(vec![-0.3f64; shape[1]], &[shape[1]]).unwrap();
            for mode in [Mode::Train, Mode::Eval] {
                let f = |t: &[Tensor]| {
                    l.weight.bind(t[1].clone());
                    l.bias.bind(t[2].clone());
                    l.forward(&t[0], mode)?.mul(&r)?.sum_all()
                };
                gradcheck(f, &[x.clone(), gamma.clone(), beta.clone()], &GradcheckOptions::default())
                    .unwrap_or_else(|e| panic!("{implementation:?} {shape:?} {mode:?}: {e}"));
            }
        }
    }
}

/// The fused op and the literal FFT form agree in value and gradient in float32 on a ResNet
/// stage-3-sized input (16 channels of 8x8 maps).
#[test]
fn fused_and_literal_forms_agree_in_f32() {
    let x = Tensor::randn(&[16, 16, 8, 8], 8).unwrap().add_scalar(0.1).unwrap();
    let r = Tensor::randn(&[16, 16, 8, 8], 9).unwrap();
    let run = |implementation| {
        let l = SpectralBatchNorm2d::new(16).with_implementation(implementation);
        let x = x.detach().requires_grad_();
        let y = l.forward(&x, Mode::Train).unwrap();
        let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = g.get(&x).unwrap().clone();
        let gw = g.get(&l.weight.leaf()).unwrap().clone();
        (y, gx, gw, l.running_var.get())
    };
    let (a, b) = (run(Implementation::Fused), run(Implementation::Fft));
    assert!(max_diff(&a.0, &b.0) < 1e-4, "y {}", max_diff(&a.0, &b.0));
    assert!(max_diff(&a.1, &b.1) < 1e-4, "dx {}", max_diff(&a.1, &b.1));
    assert!(max_diff(&a.2, &b.2) < 1e-3, "dgamma {}", max_diff(&a.2, &b.2));
    assert!(max_diff(&a.3, &b.3) < 1e-4, "running var");
    // The literal module by itself, eval mode.
    let (z, o) = (Tensor::zeros(&[16]), Tensor::ones(&[16]));
    let e = literal::eval(&x, &z, &z, &o, None, None, 0.0).unwrap();
    assert!(max_diff(&e, &x) < 1e-5, "identity statistics");
}

#[test]
fn names_buffers_and_errors() {
    let l = SpectralBatchNorm2d::new(4);
    let names: Vec<String> = l.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["running_mean_real", "running_mean_imag", "running_var", "num_batches_tracked"]);
    let params: Vec<String> = l.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(params, ["weight", "bias"]);
    let e = l.forward(&Tensor::zeros(&[2, 3, 4, 4]), Mode::Train).unwrap_err().to_string();
    assert!(e.contains("SpectralBatchNorm2d") && e.contains("[2, 3, 4, 4]"), "{e}");
    assert!(Correction::parse("literal").is_err());
}
