//! Conformance of the sparse convolutions (`sparse_conv2d` and its two gradients) against the
//! naive dense loops of [`super::conv`] on the densified weight: every case of
//! [`CONV_CASES`] and random ones, patterns from empty to dense (with an empty output
//! channel), strided views of every operand, f32 and f64, and the errors.

use super::conv::{
    naive_conv2d, naive_conv2d_backward_data, naive_conv2d_backward_weight, random_conv_cases, random_view, ConvCase,
    CONV_CASES,
};
use super::{assert_close, download, host, tol, TestRng};
use crate::ops::{Conv2dParams, SparsePattern};
use crate::{DType, Error, Fused, Layout};

/// A random pattern of `shape` keeping about `density` of the entries; output channel 1 is
/// empty when there are at least 3.
fn random_pattern(rng: &mut TestRng, shape: [usize; 4], density: f64) -> SparsePattern {
    let block = shape[1] * shape[2] * shape[3];
    let mask: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|i| f32::from(rng.uniform() < density && !(shape[0] >= 3 && i / block == 1)))
        .collect();
    SparsePattern::from_mask(shape, &mask).expect("a valid mask")
}

/// Runs the three passes of one case with the given view kinds (`x`, `values`, `gy`) and
/// checks them against the dense loops on the densified weight.
fn check_case<B: Fused>(b: &B, rng: &mut TestRng, case: &ConvCase, density: f64, dtype: DType, kinds: [usize; 3]) {
    let (xs, ws, ys) = (case.x, case.w_shape(), case.y_shape());
    let pattern = random_pattern(rng, ws, density);
    let nnz = pattern.nnz();
    let what = format!("{case:?} density {density} (nnz {nnz}) {dtype} views {kinds:?}");
    let (sx, lx, x) = random_view(b, rng, &xs, kinds[0], dtype);
    let (sv, lv, v) = random_view(b, rng, &[nnz], if nnz == 0 { 0 } else { kinds[1] }, dtype);
    let (sg, lg, gy) = random_view(b, rng, &ys, kinds[2], dtype);
    let mut w = vec![0.0; ws.iter().product()];
    for (i, &val) in pattern.flat_indices().iter().zip(&v) {
        w[*i] = val;
    }
    let (rtol, atol) = tol(dtype);
    let atol_for = |terms: usize| atol * (terms as f64).sqrt().max(1.0);

    let y =
        b.sparse_conv2d(&sx, &lx, &sv, &lv, &pattern, &case.p).unwrap_or_else(|e| panic!("sparse_conv2d {what}: {e}"));
    let y = download(b, &y, &Layout::contiguous(&ys));
    let terms = ws[1] * ws[2] * ws[3];
    assert_close(&y, &naive_conv2d(&x, xs, &w, ws, &case.p), rtol, atol_for(terms), &format!("sparse_conv2d {what}"));

    let dx = b
        .sparse_conv2d_backward_data(&sg, &lg, &sv, &lv, &pattern, &case.p, (xs[2], xs[3]))
        .unwrap_or_else(|e| panic!("sparse_conv2d_backward_data {what}: {e}"));
    let dx = download(b, &dx, &Layout::contiguous(&xs));
    let dx_ref = naive_conv2d_backward_data(&gy, &w, xs, ws, &case.p);
    let terms = case.o / case.p.groups * ws[2] * ws[3];
    assert_close(&dx, &dx_ref, rtol, atol_for(terms), &format!("sparse_conv2d_backward_data {what}"));

    let dv = b
        .sparse_conv2d_backward_weight(&sx, &lx, &sg, &lg, &pattern, &case.p)
        .unwrap_or_else(|e| panic!("sparse_conv2d_backward_weight {what}: {e}"));
    let dv = download(b, &dv, &Layout::contiguous(&[nnz]));
    let dw_ref = naive_conv2d_backward_weight(&x, &gy, xs, ws, &case.p);
    let dv_ref: Vec<f64> = pattern.flat_indices().iter().map(|&i| dw_ref[i]).collect();
    let terms = ys[0] * ys[2] * ys[3];
    assert_close(&dv, &dv_ref, rtol, atol_for(terms), &format!("sparse_conv2d_backward_weight {what}"));
}

/// The three passes over every hand-picked and 20 random convolution cases, at densities from
/// 0 to 1, on every view kind.
pub fn check_sparse_conv2d<B: Fused>(b: &B) {
    const DENSITIES: [f64; 5] = [0.3, 0.0, 1.0, 0.6, 0.1];
    let mut rng = TestRng::new(27);
    for (i, case) in CONV_CASES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            check_case(b, &mut rng, case, DENSITIES[i % 5], dtype, [i, i / 4 + 1, i / 2 + 2]);
        }
    }
    for (i, case) in random_conv_cases(&mut rng, 20).iter().enumerate() {
        let dtype = if i % 2 == 0 { DType::F32 } else { DType::F64 };
        check_case(b, &mut rng, case, DENSITIES[(i + 2) % 5], dtype, [i % 4, (i / 4) % 4, (i / 8) % 4]);
    }
}

/// Malformed patterns, values that do not match the pattern, mixed dtypes and gradients of the
/// wrong shape come back as errors naming the op; empty planes and batches are valid.
pub fn check_sparse_conv2d_errors<B: Fused>(b: &B) {
    let p = Conv2dParams::default();
    let f = |shape: &[usize], dtype: DType| {
        let n: usize = shape.iter().product();
        (b.from_host(&host(&vec![0.5; n], dtype)).unwrap(), Layout::contiguous(shape))
    };
    let pattern = SparsePattern::from_mask([2, 3, 1, 1], &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]).unwrap();
    let (x, lx) = f(&[2, 3, 4, 4], DType::F32);
    let (v, lv) = f(&[3], DType::F32);
    let (gy, lgy) = f(&[2, 2, 4, 4], DType::F32);
    assert!(b.sparse_conv2d(&x, &lx, &v, &lv, &pattern, &p).is_ok());

    let (v2, lv2) = f(&[2], DType::F32);
    let e = b.sparse_conv2d(&x, &lx, &v2, &lv2, &pattern, &p).unwrap_err().to_string();
    assert!(e.contains("sparse_conv2d") && e.contains("values of shape [2]"), "message: {e}");
    let e = b.sparse_conv2d_backward_data(&gy, &lgy, &v2, &lv2, &pattern, &p, (4, 4)).unwrap_err().to_string();
    assert!(e.contains("sparse_conv2d_backward_data") && e.contains("values of shape [2]"), "message: {e}");

    let mut broken = pattern.clone();
    broken.cols[0] = 7;
    let e = b.sparse_conv2d(&x, &lx, &v, &lv, &broken, &p).unwrap_err().to_string();
    assert!(e.contains("sparse_conv2d") && e.contains("malformed"), "message: {e}");
    let e = b.sparse_conv2d_backward_weight(&x, &lx, &gy, &lgy, &broken, &p).unwrap_err().to_string();
    assert!(e.contains("sparse_conv2d_backward_weight") && e.contains("malformed"), "message: {e}");

    let (v64, lv64) = f(&[3], DType::F64);
    let e = b.sparse_conv2d(&x, &lx, &v64, &lv64, &pattern, &p);
    assert!(matches!(e, Err(Error::DTypeMismatch { op: "sparse_conv2d", .. })), "{e:?}");
    let e = b.sparse_conv2d_backward_data(&gy, &lgy, &v64, &lv64, &pattern, &p, (4, 4));
    assert!(matches!(e, Err(Error::DTypeMismatch { op: "sparse_conv2d_backward_data", .. })), "{e:?}");
    let (gy64, lgy64) = f(&[2, 2, 4, 4], DType::F64);
    let e = b.sparse_conv2d_backward_weight(&x, &lx, &gy64, &lgy64, &pattern, &p);
    assert!(matches!(e, Err(Error::DTypeMismatch { op: "sparse_conv2d_backward_weight", .. })), "{e:?}");

    // The input's channels disagree with the pattern's, the gradient with the forward shapes.
    let (x4, lx4) = f(&[2, 4, 4, 4], DType::F32);
    assert!(b.sparse_conv2d(&x4, &lx4, &v, &lv, &pattern, &p).is_err(), "4 channels for a [2, 3, 1, 1] weight");
    let (gy3, lgy3) = f(&[2, 3, 4, 4], DType::F32);
    assert!(b.sparse_conv2d_backward_data(&gy3, &lgy3, &v, &lv, &pattern, &p, (4, 4)).is_err(), "3 output channels");
    assert!(b.sparse_conv2d_backward_weight(&x, &lx, &gy3, &lgy3, &pattern, &p).is_err(), "3 output channels");

    // An empty plane with padding: the output is all padding, zeros; its gradients are empty
    // or zero.
    let pad = Conv2dParams { padding: (1, 1), ..p };
    let (xe, lxe) = f(&[1, 3, 0, 2], DType::F32);
    let y = b.sparse_conv2d(&xe, &lxe, &v, &lv, &pattern, &pad).unwrap();
    assert_eq!(download(b, &y, &Layout::contiguous(&[1, 2, 2, 4])), vec![0.0; 16]);
    let (gye, lgye) = f(&[1, 2, 2, 4], DType::F32);
    let dx = b.sparse_conv2d_backward_data(&gye, &lgye, &v, &lv, &pattern, &pad, (0, 2)).unwrap();
    assert!(download(b, &dx, &Layout::contiguous(&[1, 3, 0, 2])).is_empty());
    let dv = b.sparse_conv2d_backward_weight(&xe, &lxe, &gye, &lgye, &pattern, &pad).unwrap();
    assert_eq!(download(b, &dv, &Layout::contiguous(&[3])), vec![0.0; 3]);

    // Empty batch: valid, empty results (and a zero gradient of the values).
    let (x0, lx0) = f(&[0, 3, 4, 4], DType::F32);
    let (gy0, lgy0) = f(&[0, 2, 4, 4], DType::F32);
    let y = b.sparse_conv2d(&x0, &lx0, &v, &lv, &pattern, &p).unwrap();
    assert!(download(b, &y, &Layout::contiguous(&[0, 2, 4, 4])).is_empty());
    let dx = b.sparse_conv2d_backward_data(&gy0, &lgy0, &v, &lv, &pattern, &p, (4, 4)).unwrap();
    assert!(download(b, &dx, &Layout::contiguous(&[0, 3, 4, 4])).is_empty());
    let dv = b.sparse_conv2d_backward_weight(&x0, &lx0, &gy0, &lgy0, &pattern, &p).unwrap();
    assert_eq!(download(b, &dv, &Layout::contiguous(&[3])), vec![0.0; 3]);
}
