//! Gradient checks of max, average and adaptive average pooling (kernel, stride, padding,
//! ceil_mode, count_include_pad, strided inputs) and of their backward passes as ops, first and
//! second order; f32-vs-f64 agreement; error messages. Max-pooling inputs hold distinct values
//! (a random permutation), so no window has a tie.

mod common;

use autograd::strategies::{f64_tensor, f64_tensor_distinct, make_view, ViewKind};
use autograd::{gradcheck, DType, GradcheckOptions, Pool2dParams, Tensor};
use common::{assert_f32_close, grad_norm, randn64};
use proptest::prelude::*;

fn params() -> impl Strategy<Value = (Vec<usize>, Pool2dParams)> {
    (
        1usize..3,
        1usize..3,
        (1usize..4, 1usize..4),
        (1usize..3, 1usize..3),
        (0usize..2, 0usize..2),
        any::<bool>(),
        any::<bool>(),
        (0usize..4, 0usize..4),
    )
        .prop_map(|(n, c, k, s, pad, ceil_mode, count_include_pad, extra)| {
            let padding = (pad.0.min(k.0 / 2), pad.1.min(k.1 / 2));
            let p = Pool2dParams { kernel: k, stride: s, padding, ceil_mode, count_include_pad };
            (vec![n, c, k.0 + extra.0, k.1 + extra.1], p)
        })
        .prop_filter("the window fits", |(x, p)| p.output_shape("test", x).is_ok())
}

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn max_pool2d_gradcheck((x, p) in params().prop_flat_map(|(s, p)| (f64_tensor_distinct(s), Just(p)))) {
        gradcheck(|t| t[0].max_pool2d(p), &[x], &opts()).unwrap();
    }

    #[test]
    fn max_pool2d_backward_gradcheck((x, p) in params().prop_flat_map(|(s, p)| (f64_tensor_distinct(s), Just(p))), seed in 0u64..1000) {
        let (_, idx) = x.max_pool2d_with_indices(p).unwrap();
        let gy = randn64(idx.shape(), seed);
        let shape = x.shape().to_vec();
        gradcheck(|t| t[0].max_pool2d_backward(&idx, &shape), &[gy], &opts()).unwrap();
    }

    #[test]
    fn avg_pool2d_gradcheck((x, p) in params().prop_flat_map(|(s, p)| (f64_tensor(s, -1.0, 1.0), Just(p)))) {
        gradcheck(|t| t[0].avg_pool2d(p), &[x], &opts()).unwrap();
    }

    #[test]
    fn avg_pool2d_backward_gradcheck((s, p) in params(), seed in 0u64..1000) {
        let gy = randn64(&p.output_shape("test", &s).unwrap(), seed);
        gradcheck(|t| t[0].avg_pool2d_backward(p, &s), &[gy], &opts()).unwrap();
    }

    #[test]
    fn adaptive_avg_pool2d_gradcheck(
        (x, out) in (1usize..3, 1usize..3, 1usize..8, 1usize..8, 1usize..5, 1usize..5)
            .prop_flat_map(|(n, c, h, w, oh, ow)| (f64_tensor(vec![n, c, h, w], -1.0, 1.0), Just((oh, ow))))
    ) {
        gradcheck(|t| t[0].adaptive_avg_pool2d(out), std::slice::from_ref(&x), &opts()).unwrap();
        let gy = randn64(&[x.shape()[0], x.shape()[1], out.0, out.1], 1);
        let shape = x.shape().to_vec();
        gradcheck(|t| t[0].adaptive_avg_pool2d_backward(&shape), &[gy], &opts()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Double backward through each pooling op (tanh makes the second derivative nonzero).
    #[test]
    fn pool_second_order((x, p) in params().prop_flat_map(|(s, p)| (f64_tensor_distinct(s), Just(p)))) {
        gradcheck(|t| grad_norm(t, |u| u[0].max_pool2d(p)?.tanh()?.sum_all()), std::slice::from_ref(&x), &opts()).unwrap();
        gradcheck(|t| grad_norm(t, |u| u[0].avg_pool2d(p)?.tanh()?.sum_all()), std::slice::from_ref(&x), &opts()).unwrap();
        gradcheck(|t| grad_norm(t, |u| u[0].adaptive_avg_pool2d((2, 1))?.tanh()?.sum_all()), &[x], &opts()).unwrap();
    }
}

#[test]
fn pool_f32_matches_f64() {
    let x = make_view(&[2, 3, 9, 8], ViewKind::Permuted, &randn64(&[2 * 3 * 9 * 8], 3).to_f64_vec().unwrap());
    let x32 = x.to_dtype(DType::F32).unwrap();
    let p = Pool2dParams { kernel: (3, 2), stride: (2, 2), padding: (1, 1), ceil_mode: true, count_include_pad: false };
    let pairs = [
        (x.max_pool2d(p).unwrap(), x32.max_pool2d(p).unwrap()),
        (x.avg_pool2d(p).unwrap(), x32.avg_pool2d(p).unwrap()),
        (x.adaptive_avg_pool2d((4, 3)).unwrap(), x32.adaptive_avg_pool2d((4, 3)).unwrap()),
    ];
    for (a, b) in pairs {
        assert_eq!(b.dtype(), DType::F32);
        assert_f32_close(&a.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap(), "pooling");
    }
}

#[test]
fn pool_errors_name_the_op_and_shapes() {
    let e = Tensor::zeros(&[3, 4, 4]).max_pool2d(Pool2dParams::square(2)).unwrap_err().to_string();
    assert!(e.contains("max_pool2d") && e.contains("[3, 4, 4]"), "{e}");
    let e = Tensor::zeros(&[1, 1, 2, 2]).avg_pool2d(Pool2dParams::square(3)).unwrap_err().to_string();
    assert!(e.contains("avg_pool2d") && e.contains("[1, 1, 2, 2]"), "{e}");
    let e = Tensor::zeros(&[1, 2]).adaptive_avg_pool2d((1, 1)).unwrap_err().to_string();
    assert!(e.contains("adaptive_avg_pool2d") && e.contains("[1, 2]"), "{e}");
    let e = Tensor::zeros(&[1, 1, 3, 3])
        .avg_pool2d_backward(Pool2dParams::square(2), &[1, 1, 4, 4])
        .unwrap_err()
        .to_string();
    assert!(e.contains("avg_pool2d_backward") && e.contains("[1, 1, 3, 3]"), "{e}");
}
