//! The sparse convolution against the dense one (the same weight, densified) on odd shapes:
//! strides 1-3, paddings 0-2, dilations 1-2, groups, non-square kernels, empty rows, a
//! fully dense and an all-zero pattern, f32 (AVX-512 where present) and f64, in thread pools of
//! 1 and 3.

use super::super::conv;
use super::super::testing::{assert_close_scaled, in_pools_of_1_and_3, values};
use super::*;

/// A deterministic mask of `shape` keeping about `density` of the entries (output channel 1
/// always empty when there are at least 3 channels).
fn mask(shape: [usize; 4], density: f64, seed: u64) -> Vec<f32> {
    let block = shape[1] * shape[2] * shape[3];
    values::<f64>(shape.iter().product(), seed)
        .into_iter()
        .enumerate()
        .map(|(i, r)| f32::from((r + 1.0) / 2.0 < density && !(shape[0] >= 3 && i / block == 1)))
        .collect()
}

struct Case {
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dParams,
    density: f64,
}

fn params(stride: (usize, usize), padding: (usize, usize), dilation: (usize, usize), groups: usize) -> Conv2dParams {
    Conv2dParams { stride, padding, dilation, groups }
}

fn cases() -> Vec<Case> {
    vec![
        Case { x: [2, 3, 7, 9], w: [5, 3, 3, 3], p: params((1, 1), (1, 1), (1, 1), 1), density: 0.3 },
        Case { x: [3, 4, 11, 10], w: [6, 4, 3, 3], p: params((2, 2), (1, 1), (1, 1), 1), density: 0.2 },
        Case { x: [1, 4, 9, 13], w: [4, 2, 2, 3], p: params((3, 2), (2, 0), (1, 2), 2), density: 0.5 },
        Case { x: [2, 6, 8, 8], w: [6, 1, 3, 3], p: params((1, 1), (2, 2), (2, 2), 6), density: 0.6 },
        Case { x: [4, 8, 5, 5], w: [3, 8, 1, 1], p: params((1, 1), (0, 0), (1, 1), 1), density: 0.4 },
        Case { x: [2, 3, 6, 6], w: [4, 3, 3, 3], p: params((2, 1), (0, 1), (1, 1), 1), density: 1.0 },
        Case { x: [1, 2, 5, 5], w: [3, 2, 3, 3], p: params((1, 1), (1, 1), (1, 1), 1), density: 0.0 },
        // Inputs narrower than the stride, padding wider than it: whole phase-plane columns of
        // padding.
        Case { x: [3, 2, 4, 2], w: [3, 2, 3, 3], p: params((3, 3), (2, 2), (1, 1), 1), density: 0.7 },
        Case { x: [2, 3, 5, 1], w: [2, 3, 2, 1], p: params((2, 2), (1, 0), (2, 1), 1), density: 0.8 },
        // Column phases that hold no input column (stride 3 over one column, no padding).
        Case { x: [2, 2, 5, 1], w: [3, 2, 1, 1], p: params((3, 3), (0, 0), (1, 1), 1), density: 0.7 },
        // A long run (38 x 34 grid, several chunks) with a 5x5 kernel.
        Case { x: [2, 3, 34, 30], w: [4, 3, 5, 5], p: params((1, 1), (2, 2), (1, 1), 1), density: 0.1 },
    ]
}

fn dense_of<T: FloatElement>(pattern: &SparsePattern, v: &[T]) -> Vec<T> {
    let mut w = vec![T::zero(); pattern.shape.iter().product()];
    for (i, &x) in pattern.flat_indices().iter().zip(v) {
        w[*i] = x;
    }
    w
}

fn storage<T: FloatElement>(v: Vec<T>) -> CpuStorage {
    CpuStorage::from_vec(v)
}

fn slice<T: FloatElement>(s: &CpuStorage) -> Vec<T> {
    s.as_slice::<T>().expect("dtype").to_vec()
}

fn check_case<T: FloatElement>(c: &Case, seed: u64, tol: f64) {
    let pattern = SparsePattern::from_mask(c.w, &mask(c.w, c.density, seed)).unwrap();
    let nnz = pattern.nnz();
    let x = values::<T>(c.x.iter().product(), seed + 1);
    let v = values::<T>(nnz, seed + 2);
    let (lx, lv, lw) = (Layout::contiguous(&c.x), Layout::contiguous(&[nnz]), Layout::contiguous(&c.w));
    let (xs, vs, ws) = (storage(x.clone()), storage(v.clone()), storage(dense_of(&pattern, &v)));
    let y = sparse_conv2d(&xs, &lx, &vs, &lv, &pattern, &c.p).unwrap();
    let want = conv::conv2d(&xs, &lx, &ws, &lw, &c.p).unwrap();
    let what = format!("{:?} {:?} {:?} density {}", c.x, c.w, c.p, c.density);
    assert_close_scaled(&format!("forward {what}"), &slice::<T>(&y), &slice::<T>(&want), tol);
    let ys = c.p.output_shape(&c.x, &c.w).unwrap();
    let gy = storage(values::<T>(ys.iter().product(), seed + 3));
    let lgy = Layout::contiguous(&ys);
    let dx = sparse_conv2d_backward_data(&gy, &lgy, &vs, &lv, &pattern, &c.p, (c.x[2], c.x[3])).unwrap();
    let want = conv::conv2d_backward_data(&gy, &lgy, &ws, &lw, &c.p, (c.x[2], c.x[3])).unwrap();
    assert_close_scaled(&format!("backward data {what}"), &slice::<T>(&dx), &slice::<T>(&want), tol);
    let dv = sparse_conv2d_backward_weight(&xs, &lx, &gy, &lgy, &pattern, &c.p).unwrap();
    let dw = slice::<T>(&conv::conv2d_backward_weight(&xs, &lx, &gy, &lgy, &c.p, (c.w[2], c.w[3])).unwrap());
    let want: Vec<T> = pattern.flat_indices().iter().map(|&i| dw[i]).collect();
    assert_close_scaled(&format!("backward values {what}"), &slice::<T>(&dv), &want, tol * 10.0);
}

#[test]
fn the_three_passes_match_the_dense_convolution() {
    in_pools_of_1_and_3(|| {
        for (i, c) in cases().iter().enumerate() {
            check_case::<f64>(c, 10 * i as u64, 1e-12);
            check_case::<f32>(c, 10 * i as u64, 2e-5);
        }
    });
}

#[test]
fn the_composite_fallback_matches_the_kernel() {
    let c = &cases()[1];
    let pattern = SparsePattern::from_mask(c.w, &mask(c.w, c.density, 3)).unwrap();
    let x = storage(values::<f32>(c.x.iter().product(), 4));
    let v = storage(values::<f32>(pattern.nnz(), 5));
    let (lx, lv) = (Layout::contiguous(&c.x), Layout::contiguous(&[pattern.nnz()]));
    let kernel = sparse_conv2d(&x, &lx, &v, &lv, &pattern, &c.p).unwrap();
    let composite = crate::sparse_conv::conv2d_composite(&crate::CpuBackend, &x, &lx, &v, &lv, &pattern, &c.p).unwrap();
    assert_close_scaled("composite", &slice::<f32>(&kernel), &slice::<f32>(&composite), 2e-5);
}

#[test]
fn bad_operands_are_errors() {
    let pattern = SparsePattern::from_mask([2, 1, 1, 1], &[1.0, 1.0]).unwrap();
    let x = storage(vec![1.0f32; 4]);
    let lx = Layout::contiguous(&[1, 1, 2, 2]);
    let e =
        sparse_conv2d(&x, &lx, &storage(vec![1.0f32]), &Layout::contiguous(&[1]), &pattern, &Conv2dParams::default());
    assert!(e.unwrap_err().to_string().contains("values of shape [1]"));
    let e = sparse_conv2d(
        &x,
        &lx,
        &storage(vec![1.0f64; 2]),
        &Layout::contiguous(&[2]),
        &pattern,
        &Conv2dParams::default(),
    );
    assert!(e.is_err());
    let mut broken = pattern.clone();
    broken.cols[0] = 7;
    let e =
        sparse_conv2d(&x, &lx, &storage(vec![1.0f32; 2]), &Layout::contiguous(&[2]), &broken, &Conv2dParams::default());
    assert!(e.unwrap_err().to_string().contains("malformed"));
}
