//! Gradient checks of `index_select`, `gather`, `scatter_add`, `topk`, `sort` (random shapes,
//! axes, repeated indices, strided inputs), first and second order; f32-vs-f64 agreement; error
//! messages. `topk`/`sort` inputs hold distinct values, so no ties (at a tie the gradient goes to
//! the lower index, as the kernels choose).

mod common;

use autograd::strategies::{f64_tensor, f64_tensor_distinct, shape};
use autograd::{gradcheck, DType, GradcheckOptions, Tensor};
use common::{assert_f32_close, grad_norm};
use proptest::prelude::*;

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

/// A shape, an axis of it, and an index shape that fits `torch.gather`/`scatter_add`: at most
/// the shape's sizes outside `axis`, any length along it.
fn shape_axis_index() -> impl Strategy<Value = (Vec<usize>, usize, Vec<usize>)> {
    shape(3, 4).prop_flat_map(|s| {
        let nd = s.len();
        (Just(s), 0..nd).prop_flat_map(|(s, axis)| {
            let dims: Vec<_> =
                s.iter().enumerate().map(|(d, &n)| if d == axis { 1..5usize } else { 1..n + 1 }).collect();
            (Just(s), Just(axis), dims)
        })
    })
}

/// An i64 index tensor of `ishape` with entries in `0..bound`.
fn index(ishape: Vec<usize>, bound: usize) -> impl Strategy<Value = Tensor> {
    let n: usize = ishape.iter().product();
    proptest::collection::vec(0..bound as i64, n..=n).prop_map(move |v| Tensor::from_vec(v, &ishape).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn index_select_gradcheck(
        (x, axis, idx) in shape(3, 4).prop_flat_map(|s| (Just(s.clone()), 0..s.len())).prop_flat_map(|(s, axis)| {
            let n = s[axis];
            (f64_tensor(s, -1.0, 1.0), Just(axis), (1usize..6).prop_flat_map(move |k| index(vec![k], n)))
        })
    ) {
        gradcheck(|t| t[0].index_select(axis, &idx), std::slice::from_ref(&x), &opts()).unwrap();
        gradcheck(|t| grad_norm(t, |u| u[0].index_select(axis, &idx)?.tanh()?.sum_all()), &[x], &opts()).unwrap();
    }

    #[test]
    fn gather_gradcheck(
        (x, axis, idx) in shape_axis_index().prop_flat_map(|(s, axis, is)| {
            let n = s[axis];
            (f64_tensor(s, -1.0, 1.0), Just(axis), index(is, n))
        })
    ) {
        gradcheck(|t| t[0].gather(axis, &idx), std::slice::from_ref(&x), &opts()).unwrap();
        gradcheck(|t| grad_norm(t, |u| u[0].gather(axis, &idx)?.tanh()?.sum_all()), &[x], &opts()).unwrap();
    }

    #[test]
    fn scatter_add_gradcheck(
        (base, axis, idx, src) in shape_axis_index().prop_flat_map(|(s, axis, is)| {
            let n = s[axis];
            (f64_tensor(s, -1.0, 1.0), Just(axis), index(is.clone(), n), f64_tensor(is, -1.0, 1.0))
        })
    ) {
        gradcheck(|t| t[0].scatter_add(axis, &idx, &t[1]), &[base.clone(), src.clone()], &opts()).unwrap();
        gradcheck(|t| grad_norm(t, |u| u[0].scatter_add(axis, &idx, &u[1])?.tanh()?.sum_all()), &[base, src], &opts())
            .unwrap();
    }

    #[test]
    fn topk_sort_gradcheck(
        (x, axis, k, largest, desc) in shape(3, 5).prop_flat_map(|s| (Just(s.clone()), 0..s.len())).prop_flat_map(|(s, axis)| {
            let n = s[axis];
            (f64_tensor_distinct(s), Just(axis), 1..n + 1, any::<bool>(), any::<bool>())
        })
    ) {
        gradcheck(|t| Ok(t[0].topk(k, axis, largest)?.0), std::slice::from_ref(&x), &opts()).unwrap();
        gradcheck(|t| Ok(t[0].sort(axis, desc)?.0), std::slice::from_ref(&x), &opts()).unwrap();
        gradcheck(|t| grad_norm(t, |u| u[0].sort(axis, desc)?.0.tanh()?.sum_all()), &[x], &opts()).unwrap();
    }
}

#[test]
fn indexing_f32_matches_f64() {
    let x = common::randn64(&[4, 5, 3], 1);
    let x32 = x.to_dtype(DType::F32).unwrap();
    let i1 = Tensor::from_vec(vec![4i64, 0, 2, 2], &[4]).unwrap();
    let ig = Tensor::from_vec((0..24).map(|i| (i * 7 % 5) as i64).collect::<Vec<_>>(), &[4, 2, 3]).unwrap();
    let src = common::randn64(&[4, 2, 3], 2);
    let pairs = [
        (x.index_select(1, &i1).unwrap(), x32.index_select(1, &i1).unwrap()),
        (x.gather(1, &ig).unwrap(), x32.gather(1, &ig).unwrap()),
        (x.scatter_add(1, &ig, &src).unwrap(), x32.scatter_add(1, &ig, &src.to_dtype(DType::F32).unwrap()).unwrap()),
        (x.topk(3, 1, true).unwrap().0, x32.topk(3, 1, true).unwrap().0),
        (x.sort(2, false).unwrap().0, x32.sort(2, false).unwrap().0),
    ];
    for (a, b) in pairs {
        assert_eq!(b.dtype(), DType::F32);
        assert_f32_close(&a.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap(), "indexing");
    }
    assert_eq!(
        x.argsort(0, true).unwrap().to_vec::<i64>().unwrap(),
        x32.argsort(0, true).unwrap().to_vec::<i64>().unwrap()
    );
    assert_eq!(x.topk(3, 1, false).unwrap().1.dtype(), DType::I64);
}

#[test]
fn indexing_errors_name_the_op_and_shapes() {
    let x = Tensor::zeros(&[3, 4]);
    let i = Tensor::from_vec(vec![0i64, 5], &[2]).unwrap();
    let e = x.index_select(1, &i).unwrap_err().to_string();
    assert!(e.contains("index_select"), "{e}");
    let i = Tensor::from_vec(vec![0i64; 10], &[2, 5]).unwrap();
    let e = x.gather(0, &i).unwrap_err().to_string();
    assert!(e.contains("gather") && e.contains("[3, 4]") && e.contains("[2, 5]"), "{e}");
    let e = x.scatter_add(0, &i, &Tensor::zeros(&[2, 5])).unwrap_err().to_string();
    assert!(e.contains("scatter_add") && e.contains("[3, 4]") && e.contains("[2, 5]"), "{e}");
    let e = x.topk(5, 1, true).unwrap_err().to_string();
    assert!(e.contains("topk") && e.contains("[3, 4]"), "{e}");
    let e = x.sort(2, false).unwrap_err().to_string();
    assert!(e.contains("sort"), "{e}");
    let e = x.gather(0, &Tensor::zeros(&[1, 1])).unwrap_err().to_string();
    assert!(e.contains("gather") && e.contains("f32"), "{e}");
}
