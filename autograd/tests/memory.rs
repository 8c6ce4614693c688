//! Memory must not grow with training steps: 200 SGD steps of a small conv net, counting the
//! live storage buffers ([`autograd::live_buffers`]). One test in its own binary, so no other
//! test allocates concurrently.

use autograd::{live_buffers, no_grad, Conv2dParams, DType, Pool2dParams, Tensor};

#[test]
fn training_loop_memory_is_flat() {
    let x = Tensor::randn(&[8, 1, 8, 8], 1).unwrap();
    let labels = Tensor::from_vec((0..8).map(|i| (i % 3) as i64).collect::<Vec<_>>(), &[8, 1]).unwrap();
    let w1 = Tensor::randn(&[4, 1, 3, 3], 2).unwrap().mul_scalar(0.3).unwrap().requires_grad_();
    let b1 = Tensor::zeros(&[4]).requires_grad_();
    let w2 = Tensor::randn(&[64, 3], 3).unwrap().mul_scalar(0.1).unwrap().requires_grad_();
    let params = [&w1, &b1, &w2];
    let conv = Conv2dParams { padding: (1, 1), ..Conv2dParams::default() };

    let step = || -> f64 {
        let h = x.conv2d(&w1, Some(&b1), conv).unwrap().relu().unwrap();
        let h = h.max_pool2d(Pool2dParams::square(2)).unwrap().flatten(1, 3).unwrap();
        let logp = h.matmul(&w2).unwrap().log_softmax(1).unwrap();
        let loss = logp.gather(1, &labels).unwrap().mean_all().unwrap().neg().unwrap();
        let value = loss.item().unwrap();
        loss.backward().unwrap();
        no_grad(|| {
            for p in params {
                let g = p.grad().unwrap();
                p.set_data(&p.sub(&g.mul_scalar(0.1).unwrap()).unwrap()).unwrap();
                p.zero_grad();
            }
        });
        value
    };

    let first = step();
    for _ in 0..4 {
        step();
    }
    let after_warmup = live_buffers();
    let mut last = first;
    for _ in 0..195 {
        last = step();
        let now = live_buffers();
        assert!(
            now.0 <= after_warmup.0 && now.1 <= after_warmup.1,
            "live buffers grew from {after_warmup:?} to {now:?}"
        );
    }
    assert!(last < first, "training did not reduce the loss: {first} -> {last}");

    // The counter does see what a leak would hold: graphs kept alive add buffers.
    let before = live_buffers();
    let kept: Vec<Tensor> = (0..3).map(|_| x.conv2d(&w1, Some(&b1), conv).unwrap().relu().unwrap()).collect();
    let during = live_buffers();
    assert!(during.0 > before.0 && during.1 > before.1, "{before:?} -> {during:?}");
    drop(kept);
    assert_eq!(live_buffers(), before);
    assert_eq!(w1.dtype(), DType::F32);
}
