//! Helpers shared by the methods' unit tests.

use autograd::{DType, Device, Tensor};

use crate::registry::RunInfo;

/// The largest absolute elementwise difference of two tensors of one shape.
pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// A standard normal f64 tensor.
pub(crate) fn randn64(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, seed).unwrap().to_dtype(DType::F64).unwrap()
}

/// A one-epoch CPU run of `model` on the embedded Fashion-MNIST (10 classes, 1x28x28).
pub(crate) fn run_info(model: &str) -> RunInfo {
    RunInfo {
        model: model.into(),
        width: 1.0,
        dataset: "fashion-mnist-embedded".into(),
        num_classes: 10,
        input_shape: [1, 28, 28],
        epochs: 1,
        steps_per_epoch: 1,
        seed: 0,
        device: Device::Cpu,
    }
}
