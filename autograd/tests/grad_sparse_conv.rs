//! Gradient checks of `sparse_conv2d` (stride, padding, dilation, groups, bias, random
//! patterns) and of its two backward passes as ops, first and second order; its forward
//! against the dense `conv2d` of the densified weight, in f64 and f32.

mod common;

use std::sync::Arc;

use autograd::backends::ops::SparsePattern;
use autograd::strategies::f64_tensor;
use autograd::{gradcheck, Conv2dParams, DType, GradcheckOptions, Tensor};
use common::{assert_f32_close, grad_norm, randn64};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    x: Vec<usize>,
    p: Conv2dParams,
    pattern: Arc<SparsePattern>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..3,              // n
        1usize..3,              // groups
        1usize..3,              // channels per group
        1usize..3,              // outputs per group
        (1usize..4, 1usize..4), // kernel
        (1usize..3, 1usize..3), // stride
        (0usize..2, 0usize..2), // padding
        (1usize..3, 1usize..3), // dilation
        (0usize..3, 0usize..3), // extra input size
        proptest::collection::vec(any::<bool>(), 72),
    )
        .prop_map(|(n, g, cg, og, k, s, pad, d, extra, keep)| {
            let span = |k: usize, d: usize| d * (k - 1) + 1;
            let h = (span(k.0, d.0) + extra.0).saturating_sub(2 * pad.0).max(1);
            let w = (span(k.1, d.1) + extra.1).saturating_sub(2 * pad.1).max(1);
            let shape = [g * og, cg, k.0, k.1];
            let mask: Vec<f32> = (0..shape.iter().product()).map(|i: usize| f32::from(keep[i % 72])).collect();
            Case {
                x: vec![n, g * cg, h, w],
                p: Conv2dParams { stride: s, padding: pad, dilation: d, groups: g },
                pattern: Arc::new(SparsePattern::from_mask(shape, &mask).unwrap()),
            }
        })
        .prop_filter("the kernel fits and something is stored", |c| {
            c.p.output_shape(&c.x, &c.pattern.shape).is_ok() && c.pattern.nnz() > 0
        })
}

fn problem() -> impl Strategy<Value = (Case, Tensor, Tensor, Tensor)> {
    case().prop_flat_map(|c| {
        let (o, nnz) = (c.pattern.shape[0], c.pattern.nnz());
        (
            Just(c.clone()),
            f64_tensor(c.x.clone(), -1.0, 1.0),
            f64_tensor(vec![nnz], -1.0, 1.0),
            f64_tensor(vec![o], -1.0, 1.0),
        )
    })
}

fn dense(pattern: &SparsePattern, v: &Tensor) -> Tensor {
    let mut w = vec![0.0f64; pattern.shape.iter().product()];
    for (i, x) in pattern.flat_indices().into_iter().zip(v.to_f64_vec().unwrap()) {
        w[i] = x;
    }
    Tensor::from_vec(w, &pattern.shape).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sparse_conv2d_gradcheck_and_dense_agreement((c, x, v, b) in problem()) {
        let (p, pat) = (c.p, c.pattern.clone());
        let y = x.sparse_conv2d(&v, &pat, Some(&b), p).unwrap();
        let want = x.conv2d(&dense(&pat, &v), Some(&b), p).unwrap();
        let (y, want) = (y.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
        prop_assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "forward differs from conv2d");
        gradcheck(|t| t[0].sparse_conv2d(&t[1], &pat, Some(&t[2]), p), &[x, v, b], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn sparse_conv2d_backward_data_gradcheck((c, _x, v, _b) in problem(), seed in 0u64..1000) {
        let (p, pat) = (c.p, c.pattern.clone());
        let gy = randn64(&p.output_shape(&c.x, &pat.shape).unwrap(), seed);
        let hw = (c.x[2], c.x[3]);
        gradcheck(|t| t[0].sparse_conv2d_backward_data(&t[1], &pat, p, hw), &[gy, v], &GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn sparse_conv2d_backward_weight_gradcheck((c, x, _v, _b) in problem(), seed in 0u64..1000) {
        let (p, pat) = (c.p, c.pattern.clone());
        let gy = randn64(&p.output_shape(&c.x, &pat.shape).unwrap(), seed);
        gradcheck(|t| t[0].sparse_conv2d_backward_weight(&t[1], &pat, p), &[x, gy], &GradcheckOptions::default()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn sparse_conv2d_second_order((c, x, v, b) in problem()) {
        let (p, pat) = (c.p, c.pattern.clone());
        gradcheck(
            |t| grad_norm(t, |u| u[0].sparse_conv2d(&u[1], &pat, Some(&u[2]), p)?.tanh()?.sum_all()),
            &[x, v, b],
            &GradcheckOptions::default(),
        )
        .unwrap();
    }
}

#[test]
fn sparse_conv2d_f32_matches_f64() {
    let mask: Vec<f32> = (0..6 * 2 * 3 * 3).map(|i| f32::from(i % 7 == 0 || i % 5 == 1)).collect();
    let pat = Arc::new(SparsePattern::from_mask([6, 2, 3, 3], &mask).unwrap());
    let p = Conv2dParams { stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 2 };
    let (x, v) = (randn64(&[2, 4, 9, 7], 1), randn64(&[pat.nnz()], 2));
    let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let y64 = x.sparse_conv2d(&v, &pat, None, p).unwrap();
    let y32 = f32(&x).sparse_conv2d(&f32(&v), &pat, None, p).unwrap();
    assert_f32_close(&y64.to_f64_vec().unwrap(), &y32.to_f64_vec().unwrap(), "sparse_conv2d");
    let gy = randn64(y64.shape(), 3);
    let d64 = gy.sparse_conv2d_backward_data(&v, &pat, p, (9, 7)).unwrap();
    let d32 = f32(&gy).sparse_conv2d_backward_data(&f32(&v), &pat, p, (9, 7)).unwrap();
    assert_f32_close(&d64.to_f64_vec().unwrap(), &d32.to_f64_vec().unwrap(), "sparse_conv2d_backward_data");
    let w64 = x.sparse_conv2d_backward_weight(&gy, &pat, p).unwrap();
    let w32 = f32(&x).sparse_conv2d_backward_weight(&f32(&gy), &pat, p).unwrap();
    assert_f32_close(&w64.to_f64_vec().unwrap(), &w32.to_f64_vec().unwrap(), "sparse_conv2d_backward_weight");
}

#[test]
fn sparse_conv2d_errors_name_the_op() {
    let pat = Arc::new(SparsePattern::from_mask([2, 3, 1, 1], &[1.0; 6]).unwrap());
    let x = Tensor::zeros(&[1, 3, 4, 4]);
    let e = x.sparse_conv2d(&Tensor::zeros(&[5]), &pat, None, Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.contains("sparse_conv2d") && e.contains("[5]"), "{e}");
    let e = Tensor::zeros(&[1, 2, 4, 4]).sparse_conv2d(&Tensor::zeros(&[6]), &pat, None, Conv2dParams::default());
    assert!(e.unwrap_err().to_string().contains("conv2d"));
}
