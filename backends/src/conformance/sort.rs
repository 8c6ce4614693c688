//! Conformance checks for sort and top-k against a naive stable sort.

use super::*;
use crate::Error;
use std::cmp::Ordering;

/// PyTorch's order: NaN above every number, NaNs equal.
fn cmp_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap(),
    }
}

/// The rows of a view along `axis` (in row-major order of the other dims) and the shape of the
/// other dims.
fn lines(data: &[f64], l: &Layout, axis: usize) -> Vec<Vec<f64>> {
    let others: Vec<usize> = (0..l.ndim()).filter(|&d| d != axis).collect();
    let n: usize = others.iter().map(|&d| l.shape()[d]).product();
    let mut out = Vec::with_capacity(n);
    for o in 0..n {
        let mut idx = vec![0; l.ndim()];
        let mut rem = o;
        for &d in others.iter().rev() {
            idx[d] = rem % l.shape()[d];
            rem /= l.shape()[d];
        }
        out.push(
            (0..l.shape()[axis])
                .map(|i| {
                    idx[axis] = i;
                    at(data, l, &idx)
                })
                .collect(),
        );
    }
    out
}

/// Scatters per-line results (each `k` long) back into a contiguous tensor with dim `axis` of
/// size `k`.
fn unlines(rows: &[Vec<f64>], shape: &[usize], axis: usize, k: usize) -> Vec<f64> {
    let mut oshape = shape.to_vec();
    oshape[axis] = k;
    let strides = crate::contiguous_strides(&oshape);
    let others: Vec<usize> = (0..shape.len()).filter(|&d| d != axis).collect();
    let mut out = vec![0.0; oshape.iter().product()];
    for (o, row) in rows.iter().enumerate() {
        let mut base = 0;
        let mut rem = o;
        for &d in others.iter().rev() {
            base += (rem % oshape[d]) * strides[d];
            rem /= oshape[d];
        }
        for (j, &v) in row.iter().enumerate() {
            out[base + j * strides[axis]] = v;
        }
    }
    out
}

/// The naive stable sort of a line: (values, indices), ties to the lower index.
fn naive_sort(line: &[f64], descending: bool) -> (Vec<f64>, Vec<f64>) {
    let mut p: Vec<(f64, usize)> = line.iter().copied().zip(0..).collect();
    p.sort_by(|a, b| if descending { cmp_nan_last(b.0, a.0) } else { cmp_nan_last(a.0, b.0) });
    (p.iter().map(|x| x.0).collect(), p.iter().map(|x| x.1 as f64).collect())
}

/// Test data with many ties (few distinct values), negative zeros and, for floats, NaNs.
fn tie_data(rng: &mut TestRng, n: usize, dtype: DType) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let r = rng.below(12);
            match r {
                0 if dtype.is_float() => f64::NAN,
                1 if dtype.is_float() => -0.0,
                _ if dtype == DType::U8 => r as f64,
                _ => r as f64 - 5.0,
            }
        })
        .collect()
}

const SHAPES: [&[usize]; 6] = [&[1], &[7], &[3, 33], &[2, 7, 3], &[127], &[33, 1]];
const DTYPES: [DType; 5] = [DType::F32, DType::F64, DType::I64, DType::I32, DType::U8];

fn check_values(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // -0.0 == 0.0 and NaN == NaN here; the indices pin down which element came where.
        assert!(g == w || (g.is_nan() && w.is_nan()), "{what}: element {i} is {g}, want {w}");
    }
}

/// Stable ascending and descending sort along every axis, with ties, NaNs and strided views,
/// for every numeric dtype.
pub fn check_sort<B: Backend>(b: &B) {
    let mut rng = TestRng::new(41);
    for shape in SHAPES {
        for v in views_of(shape) {
            for dtype in DTYPES {
                let data = tie_data(&mut rng, v.buffer_len, dtype);
                let x = upload(b, &data, dtype);
                for axis in 0..shape.len() {
                    for descending in [false, true] {
                        let (vs, is) = b.sort(&x, &v.layout, axis, descending).unwrap();
                        let lo = Layout::contiguous(shape);
                        assert_eq!(b.dtype(&is), DType::I64, "sort indices dtype");
                        let got_v = download(b, &vs, &lo);
                        let got_i = download(b, &is, &lo);
                        let sorted: Vec<(Vec<f64>, Vec<f64>)> =
                            lines(&data, &v.layout, axis).iter().map(|l| naive_sort(l, descending)).collect();
                        let n = shape[axis];
                        let want_v = unlines(&sorted.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), shape, axis, n);
                        let want_i = unlines(&sorted.iter().map(|s| s.1.clone()).collect::<Vec<_>>(), shape, axis, n);
                        let what = format!("sort {dtype} {shape:?} axis {axis} descending {descending} {}", v.kind);
                        check_values(&got_v, &want_v, &what);
                        assert_eq!(got_i, want_i, "{what}: indices");
                    }
                }
            }
        }
    }
    let x = upload(b, &[1.0, 2.0], DType::F32);
    assert!(matches!(b.sort(&x, &Layout::contiguous(&[2]), 1, false), Err(Error::AxisOutOfRange { .. })));
}

/// Top-k (largest and smallest, several k including 0 and the full length) along every axis;
/// ties go to the lower index; k larger than the dimension is an error.
pub fn check_topk<B: Backend>(b: &B) {
    let mut rng = TestRng::new(42);
    for shape in SHAPES {
        for v in views_of(shape) {
            for dtype in DTYPES {
                let data = tie_data(&mut rng, v.buffer_len, dtype);
                let x = upload(b, &data, dtype);
                for axis in 0..shape.len() {
                    let n = shape[axis];
                    let mut ks = vec![0, 1, n / 2, n];
                    ks.dedup();
                    for k in ks {
                        for largest in [true, false] {
                            let (vs, is) = b.topk(&x, &v.layout, k, axis, largest).unwrap();
                            let mut oshape = shape.to_vec();
                            oshape[axis] = k;
                            let lo = Layout::contiguous(&oshape);
                            let got_v = download(b, &vs, &lo);
                            let got_i = download(b, &is, &lo);
                            let sorted: Vec<(Vec<f64>, Vec<f64>)> =
                                lines(&data, &v.layout, axis).iter().map(|l| naive_sort(l, largest)).collect();
                            let want_v =
                                unlines(&sorted.iter().map(|s| s.0[..k].to_vec()).collect::<Vec<_>>(), shape, axis, k);
                            let want_i =
                                unlines(&sorted.iter().map(|s| s.1[..k].to_vec()).collect::<Vec<_>>(), shape, axis, k);
                            let what = format!("topk {dtype} {shape:?} axis {axis} k {k} largest {largest} {}", v.kind);
                            check_values(&got_v, &want_v, &what);
                            assert_eq!(got_i, want_i, "{what}: indices");
                        }
                    }
                }
            }
        }
    }
    let x = upload(b, &[3.0, 1.0, 2.0], DType::F32);
    let l = Layout::contiguous(&[3]);
    let e = b.topk(&x, &l, 4, 0, true).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { op: "topk", .. }), "{e}");
    assert!(matches!(b.topk(&x, &l, 1, 1, true), Err(Error::AxisOutOfRange { .. })));
}
