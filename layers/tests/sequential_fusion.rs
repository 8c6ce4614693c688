//! `Sequential` runs a `ReLU` or `ReLU6` child fused into the child before it: the same outputs
//! and gradients as running the two in turn, in training and evaluation, and the fused kernels
//! are the ones that ran (the profiler's op names).

use autograd::profile::{self, Pass};
use autograd::Tensor;
use layers::{BatchNorm2d, Conv2d, Conv2dOptions, Identity, Mode, Module, ReLU, ReLU6, Sequential};

/// The profiler counts every thread's ops: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `[2, 3, 4, 4]` inputs spread wide enough that batch norm's output passes 6 with weight 4.
fn input(seed: u64) -> Tensor {
    Tensor::randn(&[2, 3, 4, 4], seed).unwrap().mul_scalar(3.0).unwrap()
}

/// A batch norm with weight 4 and bias 1, so that ReLU6 caps some outputs.
fn norm() -> BatchNorm2d {
    let bn = BatchNorm2d::new(3);
    bn.weight.as_ref().unwrap().set_data(&Tensor::full(&[3], 4.0)).unwrap();
    bn.bias.as_ref().unwrap().set_data(&Tensor::full(&[3], 1.0)).unwrap();
    bn
}

/// Output and input gradient of `net` in `mode` (the weighted sum's gradient).
fn run(net: &dyn Module, x: &Tensor, mode: Mode) -> (Vec<f32>, Vec<f32>) {
    let x = x.detach().requires_grad_();
    let y = net.forward(&x, mode).unwrap();
    let w = Tensor::randn(y.shape(), 9).unwrap();
    let g = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    (y.to_vec::<f32>().unwrap(), g.get(&x).unwrap().to_vec::<f32>().unwrap())
}

#[test]
fn fused_activations_match_the_layers_in_turn() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = input(1);
    for relu6 in [false, true] {
        let act = |seq: Sequential| if relu6 { seq.push(ReLU6) } else { seq.push(ReLU) };
        let fused = act(Sequential::new().push(norm()));
        // An identity between them stops the fusion: the layers run in turn.
        let plain = act(Sequential::new().push(norm()).push(Identity));
        for mode in [Mode::Train, Mode::Eval] {
            let (y, gx) = run(&fused, &x, mode);
            let (z, gz) = run(&plain, &x, mode);
            assert_eq!(y, z, "relu6 {relu6} {mode:?}");
            assert!(y.contains(&0.0));
            assert_eq!(y.contains(&6.0), relu6, "relu6 {relu6} {mode:?}: the cap");
            for (a, b) in gx.iter().zip(&gz) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "relu6 {relu6} {mode:?}: {a} vs {b}");
            }
        }
        // Both ran the same running statistics updates.
        let stats = |s: &Sequential| s.layers[0].buffers()[0].1.get().to_vec::<f32>().unwrap();
        assert_eq!(stats(&fused), stats(&plain));
    }
}

#[test]
fn the_fused_kernels_run_and_other_layers_are_untouched() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = input(2);
    let conv = || Conv2d::new(3, 3, 3, Conv2dOptions::default().padding(1)).unwrap();
    // conv -> bn -> relu6 -> conv -> relu: the ReLU6 fuses into batch norm, the ReLU after a
    // convolution runs as its own op (the convolution has no fused form).
    let net = Sequential::new().push(conv()).push(norm()).push(ReLU6).push(conv()).push(ReLU);
    // (Evaluation without gradients: with them, the folded norm's tail is the composite.)
    let calls = |mode: Mode| {
        profile::enable();
        if mode.is_train() {
            net.forward(&x, mode).unwrap();
        } else {
            autograd::no_grad(|| net.forward(&x, mode)).unwrap();
        }
        profile::disable();
        let r = profile::take_report();
        let n = |op: &str| r.get(op, Pass::Forward).map_or(0, |o| o.calls);
        (n("batch_norm_relu6"), n("channel_affine_relu6"), n("relu6"), n("relu"))
    };
    assert_eq!(calls(Mode::Train), (1, 0, 0, 1));
    assert_eq!(calls(Mode::Eval), (0, 1, 0, 1));
}
