//! Helpers shared by the layers integration tests: the PyTorch fixture file and comparisons.
#![allow(dead_code)]

use autograd::Tensor;
use serde_json::Value;

/// The PyTorch reference values written by `tests/fixtures/make_optim_fixtures.py`.
pub fn fixtures() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/optim_fixtures.json");
    let text = std::fs::read_to_string(path).expect("the fixture file is committed");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The numbers of a JSON array.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

/// A `{"shape": [..], "data": [..]}` entry as an f64 tensor.
pub fn f64_tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    Tensor::from_vec(floats(&v["data"]), &shape).unwrap()
}

/// A `{"shape": [..], "data": [..]}` entry as an i64 tensor.
pub fn i64_tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<i64> = v["data"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
    Tensor::from_vec(data, &shape).unwrap()
}

/// Asserts `|a − b| <= tol · max(1, |b|)` elementwise.
pub fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * y.abs().max(1.0), "{what}[{i}]: {x} vs {y}");
    }
}
