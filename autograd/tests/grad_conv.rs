//! Gradient checks of `conv2d` (stride, padding, dilation, groups, depthwise, bias, strided
//! inputs) and of its two backward passes as ops, first and second order; f32-vs-f64 agreement;
//! error messages.

mod common;

use autograd::strategies::f64_tensor;
use autograd::{gradcheck, Conv2dParams, DType, GradcheckOptions, Tensor};
use common::{assert_f32_close, grad_norm, randn64};
use proptest::prelude::*;

/// A random convolution problem: input, weight, bias shapes and parameters.
#[derive(Clone, Debug)]
struct Case {
    x: Vec<usize>,
    w: Vec<usize>,
    p: Conv2dParams,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..3,              // n
        1usize..3,              // groups
        1usize..3,              // channels per group
        1usize..3,              // outputs per group
        any::<bool>(),          // depthwise
        (1usize..4, 1usize..4), // kernel
        (1usize..3, 1usize..3), // stride
        (0usize..2, 0usize..2), // padding
        (1usize..3, 1usize..3), // dilation
        (0usize..3, 0usize..3), // extra input size
    )
        .prop_map(|(n, g, cg, og, depthwise, k, s, pad, d, extra)| {
            let (g, cg, og) = if depthwise { (g + 1, 1, 1) } else { (g, cg, og) };
            let span = |k: usize, d: usize| d * (k - 1) + 1;
            let h = (span(k.0, d.0) + extra.0).saturating_sub(2 * pad.0).max(1);
            let w = (span(k.1, d.1) + extra.1).saturating_sub(2 * pad.1).max(1);
            Case {
                x: vec![n, g * cg, h, w],
                w: vec![g * og, cg, k.0, k.1],
                p: Conv2dParams { stride: s, padding: pad, dilation: d, groups: g },
            }
        })
        .prop_filter("the kernel fits", |c| c.p.output_shape(&c.x, &c.w).is_ok())
}

fn problem() -> impl Strategy<Value = (Case, Tensor, Tensor, Tensor)> {
    case().prop_flat_map(|c| {
        let o = c.w[0];
        (
            Just(c.clone()),
            f64_tensor(c.x.clone(), -1.0, 1.0),
            f64_tensor(c.w.clone(), -1.0, 1.0),
            f64_tensor(vec![o], -1.0, 1.0),
        )
    })
}

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_gradcheck((c, x, w, b) in problem()) {
        let p = c.p;
        gradcheck(|t| t[0].conv2d(&t[1], Some(&t[2]), p), &[x, w, b], &opts()).unwrap();
    }

    #[test]
    fn conv2d_backward_data_gradcheck((c, _x, w, _b) in problem(), seed in 0u64..1000) {
        let p = c.p;
        let gy = randn64(&p.output_shape(&c.x, &c.w).unwrap(), seed);
        let hw = (c.x[2], c.x[3]);
        gradcheck(|t| t[0].conv2d_backward_data(&t[1], p, hw), &[gy, w], &opts()).unwrap();
    }

    #[test]
    fn conv2d_backward_weight_gradcheck((c, x, _w, _b) in problem(), seed in 0u64..1000) {
        let p = c.p;
        let gy = randn64(&p.output_shape(&c.x, &c.w).unwrap(), seed);
        let khw = (c.w[2], c.w[3]);
        gradcheck(|t| t[0].conv2d_backward_weight(&t[1], p, khw), &[x, gy], &opts()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Double backward: gradcheck of the squared norm of conv2d's gradients (a GraSP-style
    /// Hessian-gradient product goes through exactly these rules).
    #[test]
    fn conv2d_second_order((c, x, w, b) in problem()) {
        let p = c.p;
        gradcheck(
            |t| grad_norm(t, |u| u[0].conv2d(&u[1], Some(&u[2]), p)?.tanh()?.sum_all()),
            &[x, w, b],
            &opts(),
        )
        .unwrap();
    }
}

#[test]
fn conv2d_f32_matches_f64() {
    let cases = [
        (
            vec![2, 4, 9, 7],
            vec![6, 2, 3, 3],
            Conv2dParams { stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 2 },
        ),
        (
            vec![1, 3, 8, 8],
            vec![3, 1, 3, 3],
            Conv2dParams { stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 3 },
        ),
        (vec![2, 5, 6, 6], vec![4, 5, 1, 1], Conv2dParams::default()),
    ];
    for (i, (xs, ws, p)) in cases.into_iter().enumerate() {
        let (x, w, b) = (randn64(&xs, i as u64), randn64(&ws, 10 + i as u64), randn64(&[ws[0]], 20 + i as u64));
        let y64 = x.conv2d(&w, Some(&b), p).unwrap();
        let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let y32 = f32(&x).conv2d(&f32(&w), Some(&f32(&b)), p).unwrap();
        assert_eq!(y32.dtype(), DType::F32);
        assert_f32_close(&y64.to_f64_vec().unwrap(), &y32.to_f64_vec().unwrap(), "conv2d");
        let gy = randn64(y64.shape(), 30);
        let d64 = gy.conv2d_backward_data(&w, p, (xs[2], xs[3])).unwrap();
        let d32 = f32(&gy).conv2d_backward_data(&f32(&w), p, (xs[2], xs[3])).unwrap();
        assert_f32_close(&d64.to_f64_vec().unwrap(), &d32.to_f64_vec().unwrap(), "conv2d_backward_data");
        let w64 = x.conv2d_backward_weight(&gy, p, (ws[2], ws[3])).unwrap();
        let w32 = f32(&x).conv2d_backward_weight(&f32(&gy), p, (ws[2], ws[3])).unwrap();
        assert_f32_close(&w64.to_f64_vec().unwrap(), &w32.to_f64_vec().unwrap(), "conv2d_backward_weight");
    }
}

#[test]
fn conv2d_errors_name_the_op_and_shapes() {
    let x = Tensor::zeros(&[1, 3, 5, 5]);
    let w = Tensor::zeros(&[2, 2, 3, 3]);
    let e = x.conv2d(&w, None, Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("[1, 3, 5, 5]") && e.contains("[2, 2, 3, 3]"), "{e}");

    let w = Tensor::zeros(&[2, 3, 3, 3]);
    let e = x.conv2d(&w, Some(&Tensor::zeros(&[3])), Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("bias") && e.contains("[3]"), "{e}");

    let e = x.conv2d(&w.to_dtype(DType::F64).unwrap(), None, Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.contains("conv2d"), "{e}");

    let big = Tensor::zeros(&[2, 3, 7, 7]);
    let e = x.conv2d(&big, None, Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("[2, 3, 7, 7]") && e.contains("[1, 3, 5, 5]"), "{e}");

    let gy = Tensor::zeros(&[1, 2, 4, 4]);
    let e = gy.conv2d_backward_data(&w, Conv2dParams::default(), (5, 5)).unwrap_err().to_string();
    assert!(e.contains("conv2d_backward_data") && e.contains("[1, 2, 4, 4]"), "{e}");
    let e = x.conv2d_backward_weight(&gy, Conv2dParams::default(), (3, 3)).unwrap_err().to_string();
    assert!(e.contains("conv2d_backward_weight") && e.contains("[1, 2, 4, 4]"), "{e}");
}
