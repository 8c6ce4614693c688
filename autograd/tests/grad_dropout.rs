//! Dropout and Dropout2d: gradients (the saved scaled mask), masks by seed, eval mode, errors.

mod common;

use autograd::strategies::{f64_tensor, shape};
use autograd::{gradcheck, DType, GradcheckOptions, Tensor};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn dropout_gradcheck(x in shape(4, 4).prop_flat_map(|s| f64_tensor(s, -1.0, 1.0)), p in 0.0f64..0.9, seed in 0u64..100) {
        gradcheck(|t| t[0].dropout(p, seed, true), std::slice::from_ref(&x), &GradcheckOptions::default()).unwrap();
        if x.ndim() >= 2 {
            gradcheck(|t| t[0].dropout2d(p, seed, true), &[x], &GradcheckOptions::default()).unwrap();
        }
    }
}

#[test]
fn dropout_masks() {
    let x = Tensor::ones(&[20000]);
    let y = x.dropout(0.3, 11, true).unwrap().to_vec::<f32>().unwrap();
    let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64;
    assert!((kept - 0.7).abs() < 0.02, "kept {kept}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    // Same seed, same mask; another seed, another mask.
    assert_eq!(y, x.dropout(0.3, 11, true).unwrap().to_vec::<f32>().unwrap());
    assert_ne!(y, x.dropout(0.3, 12, true).unwrap().to_vec::<f32>().unwrap());
    // Eval mode and p = 0 are the identity; p = 1 drops everything.
    assert_eq!(x.dropout(0.3, 11, false).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 20000]);
    assert_eq!(x.dropout(0.0, 11, true).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 20000]);
    assert_eq!(x.dropout(1.0, 11, true).unwrap().to_vec::<f32>().unwrap(), vec![0.0; 20000]);

    // dropout2d: one draw per (n, c), constant over the plane.
    let x = Tensor::ones(&[8, 16, 3, 3]);
    let y = x.dropout2d(0.5, 5, true).unwrap().to_vec::<f32>().unwrap();
    for plane in y.chunks(9) {
        assert!(plane.iter().all(|&v| v == plane[0]) && (plane[0] == 0.0 || plane[0] == 2.0));
    }
    // The gradient is the mask.
    let w = x.to_dtype(DType::F64).unwrap().requires_grad_();
    let g = w.dropout2d(0.5, 5, true).unwrap().sum_all().unwrap().backward().unwrap();
    let gv = g.get(&w).unwrap().to_f64_vec().unwrap();
    assert_eq!(gv, y.iter().map(|&v| v as f64).collect::<Vec<_>>());
}

#[test]
fn dropout_errors() {
    let e = Tensor::ones(&[3]).dropout(1.5, 0, true).unwrap_err().to_string();
    assert!(e.contains("dropout") && e.contains("1.5"), "{e}");
    let e = Tensor::ones(&[3]).dropout2d(0.5, 0, true).unwrap_err().to_string();
    assert!(e.contains("dropout2d") && e.contains("[3]"), "{e}");
}

#[test]
fn dropout_f32_matches_f64() {
    let x = common::randn64(&[4, 6, 5], 3);
    let x32 = x.to_dtype(DType::F32).unwrap();
    for (a, b) in [
        (x.dropout(0.4, 9, true).unwrap(), x32.dropout(0.4, 9, true).unwrap()),
        (x.dropout2d(0.4, 9, true).unwrap(), x32.dropout2d(0.4, 9, true).unwrap()),
    ] {
        assert_eq!(b.dtype(), DType::F32);
        common::assert_f32_close(&a.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap(), "dropout");
    }
}
