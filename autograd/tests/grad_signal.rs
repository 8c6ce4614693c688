//! `autograd::signal`: perfect reconstruction for any length, agreement of the two DWT
//! algorithms, the adjoint identity through the tape's VJP, gradchecks (first and second order,
//! strided views), f32/f64 agreement, and errors.

mod common;

use autograd::signal::{dct, dct2, dwt, dwt2, idct, idct2, idwt, idwt2, Dwt, Dwt2, DwtAlgorithm, DwtCoeffs, Wavelet};
use autograd::strategies::{f64_tensor, make_view, view_kind};
use autograd::{gradcheck, BackwardOptions, DType, GradcheckOptions, Tensor};
use common::{assert_f32_close, grad_norm, randn64};
use proptest::prelude::*;

fn wavelet() -> impl Strategy<Value = Wavelet> {
    proptest::sample::select(Wavelet::ALL.to_vec())
}

fn algorithm() -> impl Strategy<Value = DwtAlgorithm> {
    proptest::sample::select(vec![DwtAlgorithm::Auto, DwtAlgorithm::Matrix, DwtAlgorithm::Conv])
}

/// Leading dims (0 to 2 of them) followed by `last`.
fn lead_shape(last: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..4, 0..3).prop_map(move |mut s| {
        s.push(last);
        s
    })
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    assert_eq!(a.len(), b.len());
    a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max)
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.to_f64_vec().unwrap().iter().zip(b.to_f64_vec().unwrap()).map(|(p, q)| p * q).sum()
}

/// `Jᵀ y` of `f` at `x`, from the tape.
fn vjp(f: impl Fn(&Tensor) -> autograd::Result<Tensor>, x: &Tensor, y: &Tensor) -> Tensor {
    let x = x.detach().requires_grad_();
    let out = f(&x).unwrap();
    let g = out.backward_with(BackwardOptions { seed: Some(y.clone()), ..Default::default() }).unwrap();
    g.get(&x).unwrap().clone()
}

fn cat_bands(c: &DwtCoeffs) -> autograd::Result<Tensor> {
    let bands = c.to_pywt_order();
    let refs: Vec<&Tensor> = bands.iter().collect();
    Tensor::cat(&refs, bands[0].ndim() - 1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn dwt_reconstructs_every_length(
        (x, w, level, alg) in (1usize..200).prop_flat_map(|n| lead_shape(n).prop_flat_map(|s| f64_tensor(s, -2.0, 2.0)))
            .prop_flat_map(|x| (Just(x), wavelet(), 1usize..5, algorithm()))
    ) {
        let n = x.shape()[x.ndim() - 1];
        let plan = Dwt::new(w, n, level).unwrap().with_algorithm(alg);
        let c = plan.forward_packed(&x).unwrap();
        prop_assert_eq!(c.shape()[c.ndim() - 1], plan.coeffs_len());
        let err = max_abs_diff(&plan.inverse_packed(&c).unwrap(), &x);
        prop_assert!(err < 1e-12, "{} N={} level {} {:?}: error {}", w, n, level, alg, err);
    }

    #[test]
    fn matrix_and_conv_algorithms_agree(n in 1usize..120, w in wavelet(), level in 1usize..5, seed in 0u64..1000) {
        let x = randn64(&[3, n], seed);
        let plan = Dwt::new(w, n, level).unwrap();
        let a = plan.clone().with_algorithm(DwtAlgorithm::Matrix).forward_packed(&x).unwrap();
        let b = plan.with_algorithm(DwtAlgorithm::Conv).forward_packed(&x).unwrap();
        prop_assert!(max_abs_diff(&a, &b) < 1e-12);
    }

    /// `⟨DWT x, y⟩ = ⟨x, DWTᵀ y⟩` with `DWTᵀ y` from the tape, and `DWTᵀ = IDWT` (orthogonal
    /// wavelets, zero padding): the backward pass of the analysis is the synthesis, and the
    /// backward pass of the synthesis is the analysis.
    #[test]
    fn adjoint_identity(n in 1usize..100, w in wavelet(), level in 1usize..4, alg in algorithm(), seed in 0u64..1000) {
        let plan = Dwt::new(w, n, level).unwrap().with_algorithm(alg);
        let x = randn64(&[2, n], seed);
        let y = randn64(&[2, plan.coeffs_len()], seed + 1);
        let dwt_t_y = vjp(|t| plan.forward_packed(t), &x, &y);
        let lhs = dot(&plan.forward_packed(&x).unwrap(), &y);
        prop_assert!((lhs - dot(&x, &dwt_t_y)).abs() < 1e-10 * (1.0 + lhs.abs()));
        prop_assert!(max_abs_diff(&dwt_t_y, &plan.inverse_packed(&y).unwrap()) < 1e-12);
        let idwt_t_x = vjp(|t| plan.inverse_packed(t), &y, &x);
        prop_assert!(max_abs_diff(&idwt_t_x, &plan.forward_packed(&x).unwrap()) < 1e-12);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Long signals take the convolution path under `Auto`.
    #[test]
    fn long_signals_reconstruct(n in 385usize..900, w in wavelet(), level in 1usize..5, seed in 0u64..1000) {
        let x = randn64(&[2, n], seed);
        let c = dwt(&x, w, level).unwrap();
        prop_assert!(max_abs_diff(&idwt(&c, w, n).unwrap(), &x) < 1e-12);
    }

    #[test]
    fn dwt2_reconstructs(h in 1usize..20, wd in 1usize..20, w in wavelet(), alg in algorithm(), kind in view_kind(), seed in 0u64..1000) {
        let x = make_view(&[2, h, wd], kind, &randn64(&[4 * h * wd + 2], seed).to_f64_vec().unwrap());
        let plan = Dwt2::new(w, (h, wd)).unwrap().with_algorithm(alg);
        let c = plan.forward(&x).unwrap();
        prop_assert!(max_abs_diff(&plan.inverse(&c).unwrap(), &x) < 1e-12);
        for b in c.bands() {
            prop_assert_eq!(b.shape(), &[2, plan.band_hw().0, plan.band_hw().1][..]);
        }
        // The adjoint identity through the tape's VJP.
        let packed = plan.forward_packed(&x).unwrap();
        let z = randn64(packed.shape(), seed + 2);
        let lhs = dot(&packed, &z);
        prop_assert!((lhs - dot(&x, &vjp(|t| plan.forward_packed(t), &x, &z))).abs() < 1e-10 * (1.0 + lhs.abs()));
    }

    #[test]
    fn dwt_gradcheck(
        (x, w, level, alg) in (1usize..24).prop_flat_map(|n| lead_shape(n).prop_flat_map(|s| f64_tensor(s, -1.0, 1.0)))
            .prop_flat_map(|x| (Just(x), wavelet(), 1usize..4, algorithm()))
    ) {
        let n = x.shape()[x.ndim() - 1];
        let plan = Dwt::new(w, n, level).unwrap().with_algorithm(alg);
        gradcheck(|t| plan.forward_packed(&t[0]), std::slice::from_ref(&x), &GradcheckOptions::default()).unwrap();
        gradcheck(|t| cat_bands(&dwt(&t[0], w, level)?), &[x], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn idwt_gradcheck(n in 1usize..24, w in wavelet(), level in 1usize..4, alg in algorithm(), kind in view_kind(), seed in 0u64..1000) {
        let plan = Dwt::new(w, n, level).unwrap().with_algorithm(alg);
        let t = plan.coeffs_len();
        let c = make_view(&[2, t], kind, &randn64(&[4 * t + 2], seed).to_f64_vec().unwrap());
        gradcheck(|x| plan.inverse_packed(&x[0]), std::slice::from_ref(&c), &GradcheckOptions::default()).unwrap();
        // From separate bands (each its own input).
        let coeffs = plan.forward(&randn64(&[2, n], seed + 1)).unwrap();
        let bands: Vec<Tensor> = std::iter::once(coeffs.approx.detach()).chain(coeffs.details.iter().map(|d| d.detach())).collect();
        gradcheck(
            |b| idwt(&DwtCoeffs { approx: b[0].clone(), details: b[1..].to_vec() }, w, n),
            &bands,
            &GradcheckOptions::default(),
        ).unwrap();
    }

    #[test]
    fn dwt2_gradcheck(h in 1usize..9, wd in 1usize..9, w in wavelet(), alg in algorithm(), kind in view_kind(), seed in 0u64..1000) {
        let x = make_view(&[2, h, wd], kind, &randn64(&[4 * h * wd + 2], seed).to_f64_vec().unwrap());
        let plan = Dwt2::new(w, (h, wd)).unwrap().with_algorithm(alg);
        gradcheck(|t| plan.forward_packed(&t[0]), std::slice::from_ref(&x), &GradcheckOptions::default()).unwrap();
        gradcheck(|t| dwt2(&t[0], w)?.horizontal.mul(&dwt2(&t[0], w)?.vertical), &[x], &GradcheckOptions::default()).unwrap();
        let (nh, nw) = plan.band_hw();
        let c = make_view(&[2, 2 * nh, 2 * nw], kind, &randn64(&[16 * nh * nw + 2], seed + 1).to_f64_vec().unwrap());
        gradcheck(|t| plan.inverse_packed(&t[0]), &[c], &GradcheckOptions::default()).unwrap();
        let bands = plan.forward(&randn64(&[2, h, wd], seed + 2)).unwrap();
        let inputs: Vec<Tensor> = bands.bands().iter().map(|b| b.detach()).collect();
        gradcheck(
            |b| idwt2(&autograd::signal::Dwt2Coeffs {
                approx: b[0].clone(), horizontal: b[1].clone(), vertical: b[2].clone(), diagonal: b[3].clone(),
            }, w, (h, wd)),
            &inputs,
            &GradcheckOptions::default(),
        ).unwrap();
    }

    #[test]
    fn dct_gradcheck(x in (1usize..4, 1usize..9, 1usize..9).prop_flat_map(|(b, h, w)| f64_tensor(vec![b, h, w], -1.0, 1.0))) {
        for f in [dct, idct, dct2, idct2] {
            gradcheck(|t| f(&t[0]), std::slice::from_ref(&x), &GradcheckOptions::default()).unwrap();
        }
    }

    #[test]
    fn dct_round_trips_and_is_orthonormal(b in 1usize..4, h in 1usize..20, w in 1usize..20, seed in 0u64..1000) {
        let x = randn64(&[b, h, w], seed);
        prop_assert!(max_abs_diff(&idct(&dct(&x).unwrap()).unwrap(), &x) < 1e-12);
        prop_assert!(max_abs_diff(&idct2(&dct2(&x).unwrap()).unwrap(), &x) < 1e-12);
        let energy = |t: &Tensor| dot(t, t);
        prop_assert!((energy(&dct2(&x).unwrap()) - energy(&x)).abs() < 1e-10 * energy(&x));
    }
}

/// The transforms' backward passes are differentiable again (the convolution path records
/// `conv2d_backward_data`, whose derivative is `conv2d`).
#[test]
fn second_order_gradcheck() {
    for alg in [DwtAlgorithm::Matrix, DwtAlgorithm::Conv] {
        let plan = Dwt::new(Wavelet::Db3, 11, 2).unwrap().with_algorithm(alg);
        let x = randn64(&[2, 11], 4);
        let v = randn64(&[2, plan.coeffs_len()], 5);
        gradcheck(
            |t| grad_norm(t, |t| plan.forward_packed(&t[0])?.square()?.mul(&v)?.sum_all()),
            &[x],
            &GradcheckOptions::default(),
        )
        .unwrap();
        let c = randn64(&[2, plan.coeffs_len()], 6);
        let u = randn64(&[2, 11], 7);
        gradcheck(
            |t| grad_norm(t, |t| plan.inverse_packed(&t[0])?.square()?.mul(&u)?.sum_all()),
            &[c],
            &GradcheckOptions::default(),
        )
        .unwrap();
    }
    let x = randn64(&[5, 6], 8);
    gradcheck(|t| grad_norm(t, |t| dct2(&t[0])?.square()?.sum_all()), &[x], &GradcheckOptions::default()).unwrap();
}

#[test]
fn f32_matches_f64() {
    for (alg, n) in [(DwtAlgorithm::Matrix, 196), (DwtAlgorithm::Conv, 196), (DwtAlgorithm::Auto, 1000)] {
        let x64 = randn64(&[4, n], 1);
        let x32 = x64.to_dtype(DType::F32).unwrap();
        let plan = Dwt::new(Wavelet::Db3, n, 3).unwrap().with_algorithm(alg);
        let (c64, c32) = (plan.forward_packed(&x64).unwrap(), plan.forward_packed(&x32).unwrap());
        assert_eq!(c32.dtype(), DType::F32);
        assert_f32_close(&c64.to_f64_vec().unwrap(), &c32.to_f64_vec().unwrap(), "dwt");
        let y32 = plan.inverse_packed(&c32).unwrap();
        assert_f32_close(&x64.to_f64_vec().unwrap(), &y32.to_f64_vec().unwrap(), "idwt");
    }
    let x64 = randn64(&[3, 14, 14], 2);
    let x32 = x64.to_dtype(DType::F32).unwrap();
    let plan = Dwt2::new(Wavelet::Db3, (14, 14)).unwrap();
    let (a, b) = (plan.forward_packed(&x64).unwrap(), plan.forward_packed(&x32).unwrap());
    assert_f32_close(&a.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap(), "dwt2");
    assert_f32_close(&x64.to_f64_vec().unwrap(), &plan.inverse_packed(&b).unwrap().to_f64_vec().unwrap(), "idwt2");
    let (a, b) = (dct2(&x64).unwrap(), dct2(&x32).unwrap());
    assert_f32_close(&a.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap(), "dct2");
    assert_f32_close(&x64.to_f64_vec().unwrap(), &idct2(&b).unwrap().to_f64_vec().unwrap(), "idct2");
}

fn err_of<T: std::fmt::Debug>(r: autograd::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn errors_name_the_op_and_shapes() {
    let x = Tensor::zeros(&[2, 10]);
    let e = err_of(dwt(&x, Wavelet::Db3, 0));
    assert!(e.contains("dwt") && e.contains("level") && e.contains('0'), "{e}");
    let e = err_of(dwt(&x, Wavelet::Db3, 33));
    assert!(e.contains("dwt") && e.contains("33"), "{e}");
    let e = err_of(dwt(&Tensor::zeros(&[3, 0]), Wavelet::Db1, 1));
    assert!(e.contains("dwt") && e.contains("empty"), "{e}");
    let e = err_of(dwt(&Tensor::scalar(1.0f32), Wavelet::Db1, 1));
    assert!(e.contains("dwt") && e.contains("0-D"), "{e}");
    let e = err_of(dwt(&Tensor::from_vec(vec![1i64, 2], &[2]).unwrap(), Wavelet::Db1, 1));
    assert!(e.contains("dwt") && e.contains("i64"), "{e}");
    let e = err_of(Wavelet::from_name("db42"));
    assert!(e.contains("wavelet") && e.contains("db42"), "{e}");
    // A plan applied to the wrong length.
    let plan = Dwt::new(Wavelet::Db2, 12, 2).unwrap();
    let e = err_of(plan.forward_packed(&x));
    assert!(e.contains("dwt") && e.contains("[2, 10]") && e.contains("12"), "{e}");
    let e = err_of(plan.inverse_packed(&x));
    assert!(e.contains("idwt") && e.contains("[2, 10]"), "{e}");
    // idwt: a target length the bands cannot come from, and missing bands.
    let c = dwt(&x, Wavelet::Db3, 2).unwrap();
    let e = err_of(idwt(&c, Wavelet::Db3, 20));
    assert!(e.contains("idwt") && e.contains("20") && e.contains("[2, 7]"), "{e}");
    let short = DwtCoeffs { approx: c.approx.clone(), details: vec![c.details[0].clone()] };
    let e = err_of(idwt(&short, Wavelet::Db3, 10));
    assert!(e.contains("idwt"), "{e}");
    let e = err_of(idwt(&c, Wavelet::Db3, 0));
    assert!(e.contains("idwt") && e.contains("empty"), "{e}");
    let mixed = DwtCoeffs { approx: c.approx.to_dtype(DType::F64).unwrap(), details: c.details.clone() };
    let e = err_of(idwt(&mixed, Wavelet::Db3, 10));
    assert!(e.contains("idwt") && e.contains("f64"), "{e}");
    // 2-D.
    let e = err_of(dwt2(&Tensor::zeros(&[5]), Wavelet::Db1));
    assert!(e.contains("dwt2") && e.contains("[5]"), "{e}");
    let e = err_of(dwt2(&Tensor::zeros(&[0, 5]), Wavelet::Db1));
    assert!(e.contains("dwt2") && e.contains("empty"), "{e}");
    let c2 = dwt2(&Tensor::zeros(&[2, 6, 6]), Wavelet::Db2).unwrap();
    let e = err_of(idwt2(&c2, Wavelet::Db2, (9, 6)));
    assert!(e.contains("idwt2") && e.contains("[2, 4, 4]"), "{e}");
    let plan2 = Dwt2::new(Wavelet::Db2, (6, 6)).unwrap();
    let e = err_of(plan2.forward_packed(&Tensor::zeros(&[6, 5])));
    assert!(e.contains("dwt2") && e.contains("[6, 5]"), "{e}");
    // DCT.
    let e = err_of(dct(&Tensor::zeros(&[3, 0])));
    assert!(e.contains("dct") && e.contains("[3, 0]"), "{e}");
    let e = err_of(dct2(&Tensor::zeros(&[4])));
    assert!(e.contains("dct2") && e.contains("[4]"), "{e}");
    let e = err_of(idct(&Tensor::from_vec(vec![1u8], &[1]).unwrap()));
    assert!(e.contains("idct") && e.contains("u8"), "{e}");
}

/// The band operators equal the transform, band scaling and inverse they stand for.
#[test]
fn band_operators_match_the_round_trip() {
    use autograd::Device;
    for (w, n, level) in [(Wavelet::Db3, 16, 3), (Wavelet::Db3, 64, 3), (Wavelet::Db1, 7, 2), (Wavelet::Db4, 49, 1)] {
        for alg in [DwtAlgorithm::Matrix, DwtAlgorithm::Conv] {
            let plan = Dwt::new(w, n, level).unwrap().with_algorithm(alg);
            let scales: Vec<f64> = (0..=level).map(|b| 0.5 + b as f64 * 0.7).collect();
            let m = plan.band_operator(&scales, DType::F64, Device::Cpu).unwrap();
            let per: Vec<f64> =
                plan.band_lens().iter().zip(&scales).flat_map(|(&n, &s)| std::iter::repeat_n(s, n)).collect();
            let s = Tensor::from_vec(per, &[plan.coeffs_len()]).unwrap();
            let x = randn64(&[3, n], 11);
            let want = plan.inverse_packed(&plan.forward_packed(&x).unwrap().mul(&s).unwrap()).unwrap();
            assert!(max_abs_diff(&x.matmul(&m).unwrap(), &want) < 1e-12, "{w} {n} {level} {alg:?}");
        }
    }
    for (h, wd) in [(4, 4), (8, 8), (5, 7), (1, 3)] {
        let plan = Dwt2::new(Wavelet::Db3, (h, wd)).unwrap();
        let scales = [1.0, 0.0, 2.0, 0.5];
        let m = plan.band_operator(&scales, DType::F64, Device::Cpu).unwrap();
        let x = randn64(&[2, h, wd], 12);
        let c = plan.forward(&x).unwrap();
        let scaled = autograd::signal::Dwt2Coeffs {
            approx: c.approx.mul_scalar(scales[0]).unwrap(),
            horizontal: c.horizontal.mul_scalar(scales[1]).unwrap(),
            vertical: c.vertical.mul_scalar(scales[2]).unwrap(),
            diagonal: c.diagonal.mul_scalar(scales[3]).unwrap(),
        };
        let want = plan.inverse(&scaled).unwrap();
        let got = x.reshape_to(&[2, h * wd]).unwrap().matmul(&m).unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-12, "{h}x{wd}");
    }
    let e = Dwt::new(Wavelet::Db3, 16, 3).unwrap().band_operator(&[1.0; 3], DType::F32, Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("dwt_band_operator") && e.to_string().contains("3 band scales"), "{e}");
}

/// Maps above `DCT2_KRON_MAX_PIXELS` take the separable path: its gradient too.
#[test]
fn large_dct2_gradcheck() {
    let x = randn64(&[1, 17, 16], 13);
    for f in [dct2, idct2] {
        gradcheck(|t| f(&t[0]), std::slice::from_ref(&x), &GradcheckOptions::default()).unwrap();
    }
}
