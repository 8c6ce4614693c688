//! The op profiler on a small known graph: names, call counts, forward/backward split, nested
//! ops of backward rules not counted twice, unrecorded ops counted, nothing counted when off.
//!
//! The profiler's counters are global, so the tests of this file take one lock each.

use autograd::profile::{self, Pass, Report};
use autograd::{no_grad, Tensor};
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn calls(r: &Report, name: &str, pass: Pass) -> u64 {
    r.get(name, pass).map(|o| o.calls).unwrap_or(0)
}

/// `loss = sum(relu(x @ w)) + sum(x @ w)`, backward, then an SGD-like update under `no_grad`.
fn step(x: &Tensor, w: &Tensor) {
    let h = x.matmul(w).unwrap();
    let loss = h.relu().unwrap().sum_all().unwrap().add(&h.sum_all().unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(w).unwrap();
    no_grad(|| w.set_data(&w.sub(&g.mul_scalar(0.01).unwrap()).unwrap()).unwrap());
    x.zero_grad();
    w.zero_grad();
}

#[test]
fn a_known_graph_is_profiled_per_op_and_pass() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = Tensor::randn(&[64, 96], 1).unwrap().requires_grad_();
    let w = Tensor::randn(&[96, 48], 2).unwrap().requires_grad_();
    let ((), r) = profile::measure(|| {
        step(&x, &w);
        step(&x, &w);
    });
    assert!(!profile::is_enabled());
    // Forward: each op once per step; `sum` twice (two sum_all), `add` once (the loss).
    for (name, n) in [("matmul", 2), ("relu", 2), ("sum", 4), ("add", 2), ("mul_scalar", 2), ("sub", 2)] {
        assert_eq!(calls(&r, name, Pass::Forward), n, "forward {name}: {r:?}");
    }
    // Backward: one rule per recorded node; `h` receives two gradients, summed once per step.
    for (name, n) in [("matmul", 2), ("relu", 2), ("sum", 4), ("add", 2), ("grad_accumulate", 2)] {
        assert_eq!(calls(&r, name, Pass::Backward), n, "backward {name}: {r:?}");
    }
    // Under no_grad nothing is recorded, so the update has no backward entries.
    assert_eq!(calls(&r, "mul_scalar", Pass::Backward), 0);
    // The matmuls inside matmul's backward rule (and relu's `mul`) belong to their rules only.
    assert_eq!(calls(&r, "mul", Pass::Forward), 0, "{r:?}");
    for pass in [Pass::Forward, Pass::Backward] {
        assert!(r.get("matmul", pass).unwrap().time > Duration::ZERO, "{pass} matmul has a time");
    }
    // Sorted by time, and the entries fit in the measured wall time.
    assert!(r.ops.windows(2).all(|p| p[0].time >= p[1].time));
    assert!(r.attributed() <= r.elapsed);
    assert_eq!(r.unattributed(), r.elapsed - r.attributed());
}

#[test]
fn nothing_is_counted_while_profiling_is_off() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = Tensor::randn(&[8, 8], 3).unwrap().requires_grad_();
    profile::enable();
    profile::disable();
    step(&x, &x.detach().requires_grad_());
    let r = profile::take_report();
    assert!(r.ops.is_empty(), "{r:?}");
    // A report clears the counters: a second one after profiled work holds only that work.
    profile::enable();
    x.matmul(&x).unwrap();
    let first = profile::take_report();
    assert_eq!(calls(&first, "matmul", Pass::Forward), 1);
    x.exp().unwrap();
    profile::disable();
    let second = profile::take_report();
    assert_eq!(calls(&second, "matmul", Pass::Forward), 0);
    assert_eq!(calls(&second, "exp", Pass::Forward), 1);
}

#[test]
fn convolutions_name_the_algorithm_of_each_pass() {
    use autograd::backends::cpu::conv::algorithm;
    use autograd::backends::ops::ConvPass;
    use autograd::{Conv2dParams, DType};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = Tensor::randn(&[2, 16, 12, 12], 1).unwrap().requires_grad_();
    let w = Tensor::randn(&[16, 16, 3, 3], 2).unwrap().requires_grad_();
    let p = Conv2dParams { padding: (1, 1), ..Default::default() };
    let (grads, r) = profile::measure(|| x.conv2d(&w, None, p).unwrap().sum_all().unwrap().backward());
    grads.unwrap();
    let (xs, ws) = ([2, 16, 12, 12], [16, 16, 3, 3]);
    let mut backward = Duration::ZERO;
    for pass in [ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeight] {
        let name = algorithm(pass, DType::F32, &xs, &ws, &p).unwrap().name();
        let a = r.algorithm(pass.op_name(), name).unwrap_or_else(|| panic!("no {pass:?} by {name}: {r:?}"));
        assert_eq!(a.calls, 1, "{pass:?}");
        if pass != ConvPass::Forward {
            backward += a.time;
        }
    }
    assert_eq!(r.algorithms.len(), 3, "{r:?}");
    // The gradient convolutions ran inside conv2d's backward rule: listed by algorithm only.
    assert!(r.get("conv2d_backward_data", Pass::Forward).is_none());
    assert!(backward <= r.get("conv2d", Pass::Backward).unwrap().time);
    assert!(r.algorithms[0].time <= r.elapsed);
}
