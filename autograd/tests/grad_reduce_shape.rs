//! Gradchecks for reductions, shape ops, matmul and softmax (f64, proptest over shapes and
//! views), second-order gradients, and backward's error cases.

mod common;

use autograd::strategies::{f64_tensor, make_view, shape, ViewKind};
use autograd::{BackwardOptions, DType, Result, Tensor};
use proptest::prelude::*;

use common::prop_gradcheck as check;

/// Distinct values (no ties) for max/min.
fn distinct(shape: &[usize], kind: ViewKind, seed: u64) -> Tensor {
    let n: usize = shape.iter().product::<usize>() * 2 + 2;
    let mut v: Vec<f64> =
        (0..n).map(|i| ((i as u64 * 2654435761 + seed) % 1009) as f64 / 97.0 + i as f64 * 1e-3).collect();
    v.dedup();
    make_view(shape, kind, &v)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn reductions(t in shape(3, 4).prop_flat_map(|s| f64_tensor(s, -2.0, 2.0)), mask in 1usize..8, keep in any::<bool>()) {
        let axes: Vec<usize> = (0..t.ndim()).filter(|d| mask & (1 << d) != 0).collect();
        let axes = if axes.is_empty() { vec![0] } else { axes };
        let w = |s: &Tensor| s.sin(); // a nonlinear readout so that every output matters differently
        check("sum", |x| w(&x[0].sum(&axes, keep)?)?.sum_all(), std::slice::from_ref(&t))?;
        check("mean", |x| w(&x[0].mean(&axes, keep)?)?.sum_all(), std::slice::from_ref(&t))?;
        let n: usize = axes.iter().map(|&a| t.shape()[a]).product();
        if n > 1 {
            check("var", |x| w(&x[0].var(&axes, 1, keep)?)?.sum_all(), std::slice::from_ref(&t))?;
        }
        check("var_biased", |x| w(&x[0].var(&axes, 0, keep)?)?.sum_all(), std::slice::from_ref(&t))?;
        check("sum_all/mean_all", |x| x[0].sum_all()?.mul(&x[0].mean_all()?), std::slice::from_ref(&t))?;
    }

    #[test]
    fn max_min(s in shape(3, 4), seed in any::<u64>(), axis in 0usize..3) {
        let t = distinct(&s, ViewKind::Permuted, seed);
        let axis = axis % t.ndim();
        check("max", |x| x[0].max(&[axis], false)?.sin()?.sum_all(), std::slice::from_ref(&t))?;
        check("min", |x| x[0].min(&[axis], true)?.sin()?.sum_all(), std::slice::from_ref(&t))?;
    }

    #[test]
    fn views_and_copies(t in shape(3, 4).prop_flat_map(|s| f64_tensor(s, -2.0, 2.0))) {
        let nd = t.ndim();
        let s = t.shape().to_vec();
        let readout = |y: Tensor| -> Result<Tensor> { y.sin()?.sum_all() };
        check("reshape", |x| readout(x[0].reshape(&[-1])?), std::slice::from_ref(&t))?;
        check("flatten", |x| readout(x[0].flatten(0, nd - 1)?.unsqueeze(0)?), std::slice::from_ref(&t))?;
        let perm: Vec<usize> = (0..nd).rev().collect();
        check("permute", |x| readout(x[0].permute(&perm)?.contiguous()?.mul_scalar(2.0)?), std::slice::from_ref(&t))?;
        check("transpose", |x| readout(x[0].transpose(0, nd - 1)?), std::slice::from_ref(&t))?;
        check("narrow", |x| readout(x[0].narrow(nd - 1, s[nd - 1] / 2, s[nd - 1] - s[nd - 1] / 2)?), std::slice::from_ref(&t))?;
        check("slice step 2", |x| readout(x[0].slice(0, 0, s[0], 2)?), std::slice::from_ref(&t))?;
        check("slice step 3 from 1", |x| readout(x[0].slice(nd - 1, s[nd - 1].min(1), s[nd - 1], 3)?), std::slice::from_ref(&t))?;
        let mut big = vec![2];
        big.extend(&s);
        check("expand", |x| readout(x[0].expand(&big)?), std::slice::from_ref(&t))?;
        check("pad", |x| readout(x[0].pad(&vec![(1, 2); nd], 0.5)?), std::slice::from_ref(&t))?;
        check("repeat", |x| readout(x[0].repeat(&vec![2; nd])?), std::slice::from_ref(&t))?;
        check("cat", |x| readout(Tensor::cat(&[&x[0], &x[0].mul_scalar(3.0)?], nd - 1)?), std::slice::from_ref(&t))?;
        check("stack", |x| readout(Tensor::stack(&[&x[0], &x[0].exp()?], 0)?), std::slice::from_ref(&t))?;
        check("select", |x| readout(x[0].select(0, s[0] - 1)?), std::slice::from_ref(&t))?;
        check("view", |x| readout(x[0].contiguous()?.view(&[-1, 1])?), std::slice::from_ref(&t))?;
        check("squeeze", |x| readout(x[0].unsqueeze(1)?.squeeze(1)?), std::slice::from_ref(&t))?;
        check("broadcast_to", |x| readout(x[0].broadcast_to(&big)?), std::slice::from_ref(&t))?;
        check("sum_to", |x| readout(x[0].expand(&big)?.mul_scalar(1.5)?.sum_to(&s)?), std::slice::from_ref(&t))?;
        check("to_device", |x| readout(x[0].to_device(autograd::Device::Cpu)?), std::slice::from_ref(&t))?;
    }

    #[test]
    fn matmul_shapes(m in 1usize..5, k in 1usize..5, n in 1usize..5, b in 1usize..3, kind in 0usize..4) {
        let kinds = [ViewKind::Contiguous, ViewKind::Permuted, ViewKind::Narrowed, ViewKind::Stepped];
        let vals: Vec<f64> = (0..200).map(|i| ((i * 37 % 23) as f64 - 11.0) / 7.0).collect();
        let a = make_view(&[b, m, k], kinds[kind], &vals);
        let w = make_view(&[k, n], kinds[(kind + 1) % 4], &vals[5..]);
        let v = make_view(&[k], kinds[kind], &vals[3..]);
        check("matmul batched x 2-D (broadcast batch)", |x| x[0].matmul(&x[1])?.sin()?.sum_all(), &[a.clone(), w.clone()])?;
        check("matmul x vector", |x| x[0].matmul(&x[1])?.sin()?.sum_all(), &[a.clone(), v.clone()])?;
        check("vector x matrix", |x| x[0].matmul(&x[1])?.sin()?.sum_all(), &[v.clone(), w.clone()])?;
        check("vector dot", |x| x[0].matmul(&x[1])?.sin(), &[v.clone(), v.mul_scalar(0.5).unwrap()])?;
    }

    /// `linear` with and without its bias, every view kind of input, weight and bias, inputs of
    /// rank 1-3 (the rows folded into one product), and its gradients' own gradients.
    #[test]
    fn linear_shapes(lead in proptest::collection::vec(1usize..4, 0..3), fin in 1usize..5, fout in 1usize..5, kind in 0usize..4) {
        let kinds = [ViewKind::Contiguous, ViewKind::Permuted, ViewKind::Narrowed, ViewKind::Stepped];
        let vals: Vec<f64> = (0..300).map(|i| ((i * 37 % 23) as f64 - 11.0) / 7.0).collect();
        let mut xs = lead.clone();
        xs.push(fin);
        let x = make_view(&xs, kinds[kind], &vals);
        let w = make_view(&[fout, fin], kinds[(kind + 1) % 4], &vals[5..]);
        let b = make_view(&[fout], kinds[(kind + 2) % 4], &vals[3..]);
        check("linear", |t| t[0].linear(&t[1], Some(&t[2]))?.sin()?.sum_all(), &[x.clone(), w.clone(), b.clone()])?;
        check("linear without bias", |t| t[0].linear(&t[1], None)?.sin()?.sum_all(), &[x.clone(), w.clone()])?;
        let second = |t: &[Tensor]| common::grad_norm(t, |u| u[0].linear(&u[1], Some(&u[2]))?.sin()?.sum_all());
        check("linear second order", second, &[x, w, b])?;
    }

    #[test]
    fn softmax_family(t in shape(3, 5).prop_flat_map(|s| f64_tensor(s, -3.0, 3.0)), axis in 0usize..3) {
        let axis = axis % t.ndim();
        let w = Tensor::arange(0.0, t.numel() as f64, 1.0, DType::F64).unwrap().reshape_to(t.shape()).unwrap().sin().unwrap();
        let wc = w.clone();
        check("softmax", move |x| x[0].softmax(axis)?.mul(&w)?.sum_all(), std::slice::from_ref(&t))?;
        check("log_softmax", move |x| x[0].log_softmax(axis)?.mul(&wc)?.sum_all(), std::slice::from_ref(&t))?;
    }
}

type UnaryOp = Box<dyn Fn(&Tensor) -> Result<Tensor>>;

/// Every op of this file as a function of one tensor (matmul against a fixed second operand).
fn f32_cases(s: &[usize]) -> Vec<(&'static str, UnaryOp)> {
    let nd = s.len();
    let last = nd - 1;
    let k = s[last];
    let full: Vec<usize> = (0..nd).collect();
    vec![
        ("sum", Box::new(move |x: &Tensor| x.sum(&[last], false))),
        ("sum_all", Box::new(|x: &Tensor| x.sum_all())),
        ("mean", Box::new(move |x: &Tensor| x.mean(&full, true))),
        ("max", Box::new(move |x: &Tensor| x.max(&[0], false))),
        ("min", Box::new(move |x: &Tensor| x.min(&[last], true))),
        ("var", Box::new(move |x: &Tensor| x.var(&[last], usize::from(k > 1), false))),
        ("softmax", Box::new(move |x: &Tensor| x.softmax(last))),
        ("log_softmax", Box::new(|x: &Tensor| x.log_softmax(0))),
        ("permute+contiguous", Box::new(move |x: &Tensor| x.permute(&(0..nd).rev().collect::<Vec<_>>())?.contiguous())),
        ("pad", Box::new(move |x: &Tensor| x.pad(&vec![(1, 1); nd], -0.5))),
        ("repeat", Box::new(move |x: &Tensor| x.repeat(&vec![2; nd]))),
        ("cat", Box::new(move |x: &Tensor| Tensor::cat(&[x, &x.exp()?], last))),
        ("stack", Box::new(|x: &Tensor| Tensor::stack(&[x, x], 0))),
        ("slice", Box::new(move |x: &Tensor| x.slice(last, 0, k, 2)?.contiguous())),
        (
            "matmul",
            Box::new(move |x: &Tensor| {
                let w = Tensor::arange(0.0, (k * 3) as f64, 1.0, x.dtype())?.reshape_to(&[k, 3])?.cos()?;
                x.matmul(&w)
            }),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The f32 kernels compute what the f64 ones do, within f32 precision.
    #[test]
    fn f32_forward_agrees_with_f64(t in shape(3, 5).prop_flat_map(|s| f64_tensor(s, -3.0, 3.0))) {
        let t32 = t.to_dtype(DType::F32).unwrap();
        let t64 = t32.to_dtype(DType::F64).unwrap();
        for (name, f) in f32_cases(t.shape()) {
            let a = f(&t64).unwrap().to_f64_vec().unwrap();
            let b = f(&t32).unwrap();
            prop_assert_eq!(b.dtype(), DType::F32);
            let b = b.to_f64_vec().unwrap();
            let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                prop_assert!((p - q).abs() <= 1e-5 * scale, "{}: element {}: f64 {} vs f32 {}", name, i, p, q);
            }
        }
    }
}

#[test]
fn hessian_vector_product_matches_finite_differences_of_gradients() {
    // f(x) = Σ tanh(x)² · softmax(x)  (a non-quadratic function with a dense Hessian)
    let f = |x: &Tensor| -> Result<Tensor> { x.tanh()?.square()?.mul(&x.softmax(0)?)?.sum_all() };
    let x0 = vec![0.3f64, -0.7, 1.1, 0.2, -1.4];
    let v = vec![0.5f64, -1.0, 0.25, 2.0, -0.3];
    let grad_at = |xs: &[f64]| -> Vec<f64> {
        let x = Tensor::from_vec(xs.to_vec(), &[5]).unwrap().requires_grad_();
        f(&x).unwrap().backward().unwrap().get(&x).unwrap().to_vec::<f64>().unwrap()
    };
    // HVP by double backward: d/dx (g(x) · v).
    let x = Tensor::from_vec(x0.clone(), &[5]).unwrap().requires_grad_();
    let g = f(&x).unwrap().backward_with(BackwardOptions { create_graph: true, ..Default::default() }).unwrap();
    let gv = g.get(&x).unwrap().mul(&Tensor::from_vec(v.clone(), &[5]).unwrap()).unwrap().sum_all().unwrap();
    let hvp = gv.backward().unwrap().get(&x).unwrap().to_vec::<f64>().unwrap();
    // Finite difference of gradients along v.
    let eps = 1e-6;
    let plus: Vec<f64> = x0.iter().zip(&v).map(|(a, b)| a + eps * b).collect();
    let minus: Vec<f64> = x0.iter().zip(&v).map(|(a, b)| a - eps * b).collect();
    let (gp, gm) = (grad_at(&plus), grad_at(&minus));
    for i in 0..5 {
        let fd = (gp[i] - gm[i]) / (2.0 * eps);
        assert!((hvp[i] - fd).abs() < 1e-6 + 1e-5 * fd.abs(), "element {i}: hvp {} vs fd {fd}", hvp[i]);
    }
}

#[test]
fn to_dtype_converts_the_gradient_back() {
    // Finite differences cannot see through an f32 round trip, so this one is checked directly.
    let x = Tensor::from_vec(vec![0.5f64, -1.0], &[2]).unwrap().requires_grad_();
    let y = x.to_dtype(DType::F32).unwrap().mul_scalar(3.0).unwrap().to_dtype(DType::F64).unwrap().sum_all().unwrap();
    let g = y.backward().unwrap();
    let g = g.get(&x).unwrap();
    assert_eq!(g.dtype(), DType::F64);
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![3.0, 3.0]);
}

#[test]
fn gradients_accumulate_across_backward_calls_and_can_be_cleared() {
    let w = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap().requires_grad_();
    for _ in 0..3 {
        w.mul_scalar(2.0).unwrap().sum_all().unwrap().backward().unwrap();
    }
    assert_eq!(w.grad().unwrap().to_vec::<f64>().unwrap(), vec![6.0, 6.0]);
    w.zero_grad();
    assert!(w.grad().is_none());
}

#[test]
fn retain_grad_keeps_a_non_leaf_gradient() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap().requires_grad_();
    let h = x.square().unwrap();
    h.retain_grad();
    h.mul_scalar(3.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(h.grad().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 3.0]);
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![6.0, 12.0]);
}

#[test]
fn backward_errors_are_results() {
    let x = Tensor::ones(&[3]).requires_grad_();
    let y = x.mul_scalar(2.0).unwrap();
    let e = y.backward().unwrap_err().to_string();
    assert!(e.contains("needs a scalar") && e.contains("[3]"), "{e}");
    let e = Tensor::ones(&[1]).backward().unwrap_err().to_string();
    assert!(e.contains("does not require a gradient"), "{e}");
    // A second backward over a freed graph is an error, not a wrong answer.
    let z = x.exp().unwrap().sum_all().unwrap();
    z.backward().unwrap();
    let e = z.backward().unwrap_err().to_string();
    assert!(e.contains("already freed"), "{e}");
    // ... unless the graph is retained.
    let z = x.exp().unwrap().sum_all().unwrap();
    z.backward_with(BackwardOptions { retain_graph: true, ..Default::default() }).unwrap();
    assert!(z.backward().is_ok());
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let x = Tensor::ones(&[2]).requires_grad_();
    assert!(!autograd::no_grad(|| x.exp().unwrap()).requires_grad());
    assert!(!x.exp().unwrap().detach().requires_grad());
    assert!(x.exp().unwrap().requires_grad());
}
