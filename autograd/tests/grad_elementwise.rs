//! Gradchecks (f64, proptest over shapes, values and views) for elementwise ops, and f32/f64
//! forward agreement.

use autograd::strategies::{broadcast_pair, f64_tensor, f64_tensor_avoiding, shape};
use autograd::{gradcheck, DType, GradcheckOptions, Result, Tensor};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

type UnaryFn = fn(&Tensor) -> Result<Tensor>;
type BinaryFn = fn(&Tensor, &Tensor) -> Result<Tensor>;

/// Every unary op with the value range it is checked on and the points its derivative jumps at.
fn unary_cases() -> Vec<(&'static str, UnaryFn, f64, f64, Vec<f64>)> {
    vec![
        ("neg", |t| t.neg(), -3.0, 3.0, vec![]),
        ("abs", |t| t.abs(), -3.0, 3.0, vec![0.0]),
        ("exp", |t| t.exp(), -3.0, 3.0, vec![]),
        ("log", |t| t.log(), 0.2, 5.0, vec![]),
        ("sqrt", |t| t.sqrt(), 0.2, 5.0, vec![]),
        ("rsqrt", |t| t.rsqrt(), 0.2, 5.0, vec![]),
        ("recip", |t| t.recip(), 0.2, 5.0, vec![]),
        ("square", |t| t.square(), -3.0, 3.0, vec![]),
        ("sin", |t| t.sin(), -3.0, 3.0, vec![]),
        ("cos", |t| t.cos(), -3.0, 3.0, vec![]),
        ("tanh", |t| t.tanh(), -3.0, 3.0, vec![]),
        ("sigmoid", |t| t.sigmoid(), -6.0, 6.0, vec![]),
        ("relu", |t| t.relu(), -3.0, 3.0, vec![0.0]),
        ("relu6", |t| t.relu6(), -2.0, 8.0, vec![0.0, 6.0]),
        ("erf", |t| t.erf(), -3.0, 3.0, vec![]),
        ("atan", |t| t.atan(), -4.0, 4.0, vec![]),
        ("asinh", |t| t.asinh(), -4.0, 4.0, vec![]),
        ("gelu", |t| t.gelu(), -4.0, 4.0, vec![]),
        ("gelu_tanh", |t| t.gelu_tanh(), -4.0, 4.0, vec![]),
        ("silu", |t| t.silu(), -5.0, 5.0, vec![]),
        ("sign", |t| t.sign(), -3.0, 3.0, vec![0.0]),
        ("round", |t| t.round(), -3.0, 3.0, vec![-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]),
        ("floor", |t| t.floor(), -3.0, 3.0, vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]),
        ("ceil", |t| t.ceil(), -3.0, 3.0, vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]),
        ("clamp", |t| t.clamp(-1.0, 0.5), -3.0, 3.0, vec![-1.0, 0.5]),
        ("powf", |t| t.powf(2.5), 0.2, 3.0, vec![]),
        ("add_scalar", |t| t.add_scalar(1.5), -3.0, 3.0, vec![]),
        ("sub_scalar", |t| t.sub_scalar(1.5), -3.0, 3.0, vec![]),
        ("rsub_scalar", |t| t.rsub_scalar(1.5), -3.0, 3.0, vec![]),
        ("mul_scalar", |t| t.mul_scalar(-2.5), -3.0, 3.0, vec![]),
        ("div_scalar", |t| t.div_scalar(4.0), -3.0, 3.0, vec![]),
        ("rdiv_scalar", |t| t.rdiv_scalar(2.0), 0.3, 3.0, vec![]),
        ("scalar_pow", |t| t.scalar_pow(1.7), -2.0, 2.0, vec![]),
        ("maximum_scalar", |t| t.maximum_scalar(0.25), -2.0, 2.0, vec![0.25]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn unary_ops_gradcheck(s in shape(3, 4), seed in any::<u64>()) {
        for (name, f, lo, hi, kinks) in unary_cases() {
            let mut runner = proptest::test_runner::TestRunner::new_with_rng(
                ProptestConfig::with_cases(1),
                proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed_bytes(seed)),
            );
            let t = f64_tensor_avoiding(s.clone(), lo, hi, kinks, 0.01).new_tree(&mut runner).unwrap().current();
            let r = gradcheck(|x| f(&x[0])?.sum_all(), std::slice::from_ref(&t), &GradcheckOptions::default());
            prop_assert!(r.is_ok(), "{name} on {:?} ({:?} strides): {}", t.shape(), t.strides(), r.unwrap_err());
            // f32 forward agrees with f64 forward.
            let y64 = f(&t).unwrap().to_f64_vec().unwrap();
            let y32 = f(&t.to_dtype(DType::F32).unwrap()).unwrap().to_f64_vec().unwrap();
            for (a, b) in y64.iter().zip(&y32) {
                prop_assert!((a - b).abs() <= 1e-5 + 1e-4 * a.abs(), "{name}: f32 {b} vs f64 {a}");
            }
        }
    }

    #[test]
    fn binary_ops_gradcheck_with_broadcasting((sa, sb) in broadcast_pair(3, 4), seed in any::<u64>()) {
        let ops: Vec<(&str, BinaryFn, f64, f64)> = vec![
            ("add", |a, b| a.add(b), -2.0, 2.0),
            ("sub", |a, b| a.sub(b), -2.0, 2.0),
            ("mul", |a, b| a.mul(b), -2.0, 2.0),
            ("div", |a, b| a.div(b), 0.5, 2.0),
            ("pow", |a, b| a.pow(b), 0.5, 2.0),
            ("maximum", |a, b| a.maximum(b), -2.0, 2.0),
            ("minimum", |a, b| a.minimum(b), -2.0, 2.0),
            ("operators", |a, b| (&(a * b)? - &(a / 3.0)?)?.add(b), -2.0, 2.0),
        ];
        for (name, f, lo, hi) in ops {
            let mut runner = proptest::test_runner::TestRunner::new_with_rng(
                ProptestConfig::with_cases(1),
                proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed_bytes(seed)),
            );
            let a = f64_tensor(sa.clone(), lo, hi).new_tree(&mut runner).unwrap().current();
            let b = f64_tensor(sb.clone(), lo, hi).new_tree(&mut runner).unwrap().current();
            let r = gradcheck(|x| f(&x[0], &x[1])?.sum_all(), &[a.clone(), b.clone()], &GradcheckOptions::default());
            prop_assert!(r.is_ok(), "{name} {sa:?} {sb:?}: {}", r.unwrap_err());
            let y64 = f(&a, &b).unwrap().to_f64_vec().unwrap();
            let y32 = f(&a.to_dtype(DType::F32).unwrap(), &b.to_dtype(DType::F32).unwrap()).unwrap().to_f64_vec().unwrap();
            for (x, y) in y64.iter().zip(&y32) {
                prop_assert!((x - y).abs() <= 1e-5 + 1e-4 * x.abs(), "{name}: f32 {y} vs f64 {x}");
            }
        }
    }

    #[test]
    fn where_gradcheck((sa, sb) in broadcast_pair(3, 4), a in any::<u64>()) {
        let cond = Tensor::rand(&sa, a).unwrap().compare_scalar(0.5, autograd::backends::ops::CmpOp::Lt).unwrap();
        let x = Tensor::randn(&sa, a ^ 1).unwrap().to_dtype(DType::F64).unwrap();
        let y = Tensor::randn(&sb, a ^ 2).unwrap().to_dtype(DType::F64).unwrap();
        let r = gradcheck(|t| Tensor::where_(&cond, &t[0], &t[1])?.square()?.sum_all(), &[x, y], &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&seed.to_le_bytes());
    b[8..16].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
    b
}

#[test]
fn ties_split_the_gradient_of_maximum() {
    let a = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap().requires_grad_();
    let b = Tensor::from_vec(vec![1.0f64, 3.0], &[2]).unwrap().requires_grad_();
    let g = a.maximum(&b).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&a).unwrap().to_vec::<f64>().unwrap(), vec![0.5, 0.0]);
    assert_eq!(g.get(&b).unwrap().to_vec::<f64>().unwrap(), vec![0.5, 1.0]);
}

#[test]
fn relu_gradient_is_zero_at_zero() {
    let x = Tensor::from_vec(vec![-1.0f64, 0.0, 2.0], &[3]).unwrap().requires_grad_();
    let g = x.relu().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![0.0, 0.0, 1.0]);
}

#[test]
fn errors_name_the_op_and_operands() {
    let a = Tensor::zeros(&[2, 3]);
    let b = Tensor::zeros(&[4, 3]);
    assert_eq!(a.add(&b).unwrap_err().to_string(), "add: shape mismatch between [2, 3] and [4, 3]");
    let c = Tensor::zeros(&[2, 3]).to_dtype(DType::F64).unwrap();
    assert_eq!(a.mul(&c).unwrap_err().to_string(), "mul: dtype mismatch between f32 and f64");
    assert!(a.clamp(1.0, 0.0).unwrap_err().to_string().starts_with("clamp:"));
}
