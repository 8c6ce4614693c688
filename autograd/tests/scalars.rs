//! Regression: scalar arithmetic on 0-D tensors (the CPU `binary_scalar` kernel used to fail
//! broadcasting its `[1]` scalar to a 0-D shape, so `x.mean_all()?.backward()` failed).

use autograd::Tensor;

#[test]
fn zero_dim_scalar_ops_and_their_gradients() {
    let s = Tensor::scalar(3.0f64);
    assert_eq!(s.mul_scalar(2.0).unwrap().item().unwrap(), 6.0);
    assert_eq!(s.rsub_scalar(1.0).unwrap().item().unwrap(), -2.0);
    assert_eq!(s.div_scalar(2.0).unwrap().shape(), &[] as &[usize]);
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap().requires_grad_();
    let g = x.mean_all().unwrap().neg().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![-0.25; 4]);
}
