//! Tests of the spectral dropout layers and their placement.

mod fourier;
mod placement;
mod recipe;
mod wavelet;

use autograd::{gradcheck, DType, GradcheckOptions, Tensor};
use layers::{rng, Mode, Module};

/// The largest absolute elementwise difference of two tensors of one shape.
fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// A standard normal f64 tensor.
fn randn64(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, seed).unwrap().to_dtype(DType::F64).unwrap()
}

/// `<a, b>` over all elements.
fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.to_f64_vec().unwrap().iter().zip(b.to_f64_vec().unwrap()).map(|(x, y)| x * y).sum()
}

/// Finite-difference gradient check of `sum(layer(x)²)` in training mode with the seed
/// generator reset to `seed` before every evaluation (a fixed mask).
fn gradcheck_with_seed(layer: &dyn Module, x: Tensor, seed: u64) {
    let f = |t: &[Tensor]| {
        rng::manual_seed(seed);
        layer.forward(&t[0], Mode::Train)?.square()
    };
    gradcheck(f, &[x], &GradcheckOptions::default()).unwrap();
}
