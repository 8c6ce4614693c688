//! Gradient checks of `rfft2` / `irfft2` (odd and even sizes, strided inputs), first and second
//! order, f32-vs-f64 agreement, and error messages.

use autograd::strategies::{f64_tensor, make_view, view_kind};
use autograd::{gradcheck, BackwardOptions, DType, GradcheckOptions, Tensor};
use proptest::prelude::*;

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

/// A random real signal of `shape` (its spectrum is a valid half spectrum for `irfft2`).
fn signal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, seed).unwrap().to_dtype(DType::F64).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rfft2_gradcheck((x, _b) in (1usize..3, 1usize..6, 1usize..6)
        .prop_flat_map(|(b, h, w)| (f64_tensor(vec![b, h, w], -1.0, 1.0), Just(b)))) {
        gradcheck(|t| t[0].rfft2(), &[x], &opts()).unwrap();
    }

    #[test]
    fn irfft2_gradcheck(b in 1usize..3, h in 1usize..6, w in 1usize..6, seed in 0u64..1000, kind in view_kind()) {
        // Any half spectrum, including imaginary parts on self-conjugate bins (which irfft2
        // ignores: their gradient must be zero).
        let z = Tensor::randn(&[b, h, w / 2 + 1, 2], seed).unwrap().to_f64_vec().unwrap();
        let z = make_view(&[b, h, w / 2 + 1, 2], kind, &z);
        gradcheck(|t| t[0].irfft2((h, w)), &[z], &opts()).unwrap();
    }

    #[test]
    fn fft_round_trip_gradcheck(h in 1usize..6, w in 1usize..6, seed in 0u64..1000) {
        let x = signal(&[h, w], seed);
        gradcheck(|t| t[0].rfft2()?.irfft2((h, w))?.mul(&t[0]), &[x], &opts()).unwrap();
    }
}

/// `sum((df/dx)^2)` with the gradient recorded (`create_graph`), so that gradcheck differentiates
/// through the backward pass. Recording is forced on: gradcheck evaluates under `no_grad`.
fn second_order(x: &Tensor, f: impl Fn(&Tensor) -> autograd::Result<Tensor>) -> autograd::Result<Tensor> {
    autograd::enable_grad(|| {
        let x = if x.requires_grad() { x.clone() } else { x.detach().requires_grad_() };
        let y = f(&x)?;
        let g = y.backward_with(BackwardOptions { create_graph: true, ..Default::default() })?;
        g.get(&x).unwrap().square()?.sum_all()
    })
}

#[test]
fn rfft2_second_order() {
    for (h, w) in [(3, 4), (4, 5), (2, 2), (5, 3)] {
        let x = signal(&[h, w], 3);
        let v = signal(&[h, w / 2 + 1, 2], 4);
        // f(x) = sum(v * rfft2(x)^2): second derivatives through rfft2's backward.
        gradcheck(|t| second_order(&t[0], |x| x.rfft2()?.square()?.mul(&v)?.sum_all()), &[x], &opts()).unwrap();
    }
}

#[test]
fn irfft2_second_order() {
    for (h, w) in [(3, 4), (4, 5)] {
        let z = signal(&[h, w / 2 + 1, 2], 5);
        gradcheck(|t| second_order(&t[0], |z| z.irfft2((h, w))?.square()?.sum_all()), &[z], &opts()).unwrap();
    }
}

#[test]
fn rfft2_f32_matches_f64() {
    for (h, w) in [(4, 6), (5, 7), (1, 1), (8, 3)] {
        let x64 = signal(&[2, h, w], 9);
        let x32 = x64.to_dtype(DType::F32).unwrap();
        let a = x64.rfft2().unwrap().to_f64_vec().unwrap();
        let b = x32.rfft2().unwrap().to_f64_vec().unwrap();
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {q}");
        }
        let a = x64.rfft2().unwrap().irfft2((h, w)).unwrap().to_f64_vec().unwrap();
        let b = x32.rfft2().unwrap().irfft2((h, w)).unwrap().to_f64_vec().unwrap();
        let x = x64.to_f64_vec().unwrap();
        for ((p, q), r) in a.iter().zip(&b).zip(&x) {
            assert!((p - r).abs() < 1e-10 && (q - r).abs() <= 1e-4 * (1.0 + r.abs()), "{p} {q} {r}");
        }
    }
}

#[test]
fn fft_errors_name_the_op_and_shapes() {
    let e = Tensor::zeros(&[4]).rfft2().unwrap_err().to_string();
    assert!(e.contains("rfft2") && e.contains("[4]"), "{e}");
    let e = Tensor::zeros(&[3, 3, 2]).irfft2((3, 6)).unwrap_err().to_string();
    assert!(e.contains("irfft2") && e.contains("[3, 3, 2]") && e.contains("4"), "{e}");
}
