//! Gradient checks in f64 with every tensor on `Device::Cuda(0)` (feature `cuda`): the same ops'
//! backward rules, evaluated by the CUDA backend, against finite differences; and the forward
//! values and gradients against the CPU's. Without a GPU each test prints that it was skipped.
#![cfg(feature = "cuda")]

mod common;

use autograd::{gradcheck, Conv2dParams, Device, GradcheckOptions, Pool2dParams, Result, Tensor};
use common::randn64;

const GPU: Device = Device::Cuda(0);

/// Whether a GPU can be used (prints the skip otherwise).
fn gpu(test: &str) -> bool {
    if autograd::backends::cuda_is_available() {
        return true;
    }
    println!("skipped {test}: no CUDA driver or GPU");
    false
}

/// Runs `f` on GPU tensors: gradcheck there, then forward values and gradients against the CPU.
fn check(what: &str, shapes: &[&[usize]], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let cpu: Vec<Tensor> = shapes.iter().enumerate().map(|(i, s)| randn64(s, 100 + i as u64)).collect();
    let dev: Vec<Tensor> = cpu.iter().map(|t| t.to_device(GPU).unwrap()).collect();
    assert!(dev.iter().all(|t| t.device() == GPU));
    gradcheck(&f, &dev, &GradcheckOptions::default()).unwrap_or_else(|e| panic!("{what} on cuda:0: {e:?}"));
    let run = |xs: &[Tensor]| {
        let leaves: Vec<Tensor> = xs.iter().map(|x| x.detach().requires_grad_()).collect();
        let y = f(&leaves).unwrap();
        let g = y.backward().unwrap();
        let grads: Vec<Vec<f64>> = leaves.iter().map(|x| g.get(x).unwrap().to_f64_vec().unwrap()).collect();
        (y.to_f64_vec().unwrap(), grads)
    };
    let (yc, gc) = run(&cpu);
    let (yg, gg) = run(&dev);
    let close = |a: &[f64], b: &[f64], part: &str| {
        assert_eq!(a.len(), b.len(), "{what} {part}: lengths");
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!((p - q).abs() <= 1e-9 * (1.0 + p.abs()), "{what} {part}[{i}]: cpu {p} vs cuda {q}");
        }
    };
    close(&yc, &yg, "value");
    for (i, (a, b)) in gc.iter().zip(&gg).enumerate() {
        close(a, b, &format!("gradient {i}"));
    }
}

#[test]
fn elementwise_and_reductions() {
    if !gpu("elementwise_and_reductions") {
        return;
    }
    check("tanh(x) * y, summed", &[&[3, 5], &[3, 5]], |t| t[0].tanh()?.mul(&t[1])?.sum_all());
    check("mean over an axis", &[&[4, 3, 2]], |t| t[0].square()?.mean(&[1], false)?.sum_all());
    check("broadcast add and relu", &[&[2, 3, 4], &[4]], |t| t[0].add(&t[1])?.relu()?.sum_all());
}

#[test]
fn matmul_and_softmax() {
    if !gpu("matmul_and_softmax") {
        return;
    }
    check("matmul", &[&[2, 3, 4], &[2, 4, 5]], |t| t[0].matmul(&t[1])?.tanh()?.sum_all());
    check("softmax", &[&[3, 7]], |t| t[0].softmax(1)?.square()?.sum_all());
}

#[test]
fn conv_and_pool() {
    if !gpu("conv_and_pool") {
        return;
    }
    let p = Conv2dParams { stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 2 };
    check("conv2d", &[&[2, 4, 7, 6], &[6, 2, 3, 2]], move |t| t[0].conv2d(&t[1], None, p)?.tanh()?.sum_all());
    let dw = Conv2dParams { padding: (1, 1), groups: 3, ..Default::default() };
    check("depthwise conv2d", &[&[2, 3, 5, 5], &[3, 1, 3, 3]], move |t| {
        t[0].conv2d(&t[1], None, dw)?.square()?.sum_all()
    });
    let pool =
        Pool2dParams { kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceil_mode: true, count_include_pad: false };
    check("max_pool2d", &[&[2, 2, 7, 6]], move |t| t[0].max_pool2d(pool)?.square()?.sum_all());
    check("avg_pool2d", &[&[2, 2, 7, 6]], move |t| t[0].avg_pool2d(pool)?.square()?.sum_all());
}
