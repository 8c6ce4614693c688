//! Conformance checks for gather, scatter-add and index-select against naive loops.

use super::*;
use crate::Error;

/// The multi-index of linear position `lin` in `shape`.
fn unravel(mut lin: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = lin % shape[d];
        lin /= shape[d];
    }
    idx
}

/// The linear position of a multi-index in a contiguous `shape`.
fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

const INDEX_DTYPES: [DType; 3] = [DType::I64, DType::I32, DType::U32];

/// An index tensor of `shape` with values below `size`, uploaded as a (possibly strided) view:
/// returns the storage, its layout and the logical values.
fn index_view<B: Backend>(
    b: &B,
    rng: &mut TestRng,
    shape: &[usize],
    size: usize,
    dtype: DType,
) -> (B::Storage, Layout, Vec<f64>) {
    let views = views_of(shape);
    let v = views[rng.below(views.len())].clone();
    let buf: Vec<f64> = (0..v.buffer_len).map(|_| rng.below(size) as f64).collect();
    let vals = logical(&buf, &v.layout);
    (upload(b, &buf, dtype), v.layout, vals)
}

/// `torch.gather` on every axis of contiguous and strided views, every index dtype, index sizes
/// smaller than the input outside the axis and larger along it; plus the error cases.
pub fn check_gather<B: Backend>(b: &B) {
    let mut rng = TestRng::new(31);
    let shapes: [&[usize]; 5] = [&[1], &[7], &[3, 33], &[2, 7, 3], &[127]];
    for shape in shapes {
        for v in views_of(shape) {
            let data = rng.vec(v.buffer_len, -10.0, 10.0).iter().map(|x| x.round()).collect::<Vec<_>>();
            for (di, dtype) in [DType::F32, DType::F64, DType::I64, DType::I8].into_iter().enumerate() {
                let x = upload(b, &data, dtype);
                for axis in 0..shape.len() {
                    let ishape: Vec<usize> = (0..shape.len())
                        .map(|d| {
                            if d == axis {
                                1 + rng.below(shape[d] + 2)
                            } else {
                                shape[d] - rng.below(2).min(shape[d] - 1)
                            }
                        })
                        .collect();
                    let idtype = INDEX_DTYPES[(di + axis) % 3];
                    let (is, il, iv) = index_view(b, &mut rng, &ishape, shape[axis], idtype);
                    let out = b.gather(&x, &v.layout, axis, &is, &il).unwrap();
                    let got = download(b, &out, &Layout::contiguous(&ishape));
                    let want: Vec<f64> = (0..iv.len())
                        .map(|lin| {
                            let mut mi = unravel(lin, &ishape);
                            mi[axis] = iv[lin] as usize;
                            at(&data, &v.layout, &mi)
                        })
                        .collect();
                    assert_eq!(got, want, "gather {dtype} {shape:?} axis {axis} {} index {idtype} {ishape:?}", v.kind);
                }
            }
        }
    }
    // Errors: an index equal to the size, a negative one, a float index, a wrong rank.
    let x = upload(b, &[0.0; 21], DType::F32);
    let lx = Layout::contiguous(&[3, 7]);
    let li = Layout::contiguous(&[3, 2]);
    let bad = upload(b, &[0.0, 1.0, 2.0, 7.0, 0.0, 0.0], DType::I64);
    assert_eq!(
        b.gather(&x, &lx, 1, &bad, &li).unwrap_err(),
        Error::IndexOutOfRange { op: "gather", index: 7, size: 7 }
    );
    let neg = upload(b, &[0.0, -1.0, 0.0, 0.0, 0.0, 0.0], DType::I64);
    assert_eq!(
        b.gather(&x, &lx, 1, &neg, &li).unwrap_err(),
        Error::IndexOutOfRange { op: "gather", index: -1, size: 7 }
    );
    let fidx = upload(b, &[0.0; 6], DType::F32);
    assert!(matches!(b.gather(&x, &lx, 1, &fidx, &li), Err(Error::UnsupportedDType { op: "gather", .. })));
    let ok = upload(b, &[0.0; 6], DType::I64);
    let e = b.gather(&x, &lx, 1, &ok, &Layout::contiguous(&[6])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "gather", .. }), "{e}");
    let e = b.gather(&x, &lx, 1, &ok, &Layout::contiguous(&[6, 1])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "gather", .. }), "{e}");
    assert!(matches!(b.gather(&x, &lx, 2, &ok, &li), Err(Error::AxisOutOfRange { .. })));
}

/// `torch.scatter_add` with duplicate indices on every axis, strided base/index/source views,
/// float and integer dtypes; plus the error cases.
pub fn check_scatter_add<B: Backend>(b: &B) {
    let mut rng = TestRng::new(32);
    let shapes: [&[usize]; 5] = [&[1], &[7], &[3, 33], &[2, 7, 3], &[127]];
    for shape in shapes {
        for v in views_of(shape) {
            let base = rng.vec(v.buffer_len, -4.0, 4.0).iter().map(|x| x.round()).collect::<Vec<_>>();
            for (di, dtype) in [DType::F32, DType::F64, DType::I32].into_iter().enumerate() {
                let bs = upload(b, &base, dtype);
                for axis in 0..shape.len() {
                    let ishape: Vec<usize> = (0..shape.len())
                        .map(|d| {
                            if d == axis {
                                1 + rng.below(2 * shape[d])
                            } else {
                                shape[d] - rng.below(2).min(shape[d] - 1)
                            }
                        })
                        .collect();
                    let idtype = INDEX_DTYPES[(di + axis) % 3];
                    let (is, il, iv) = index_view(b, &mut rng, &ishape, shape[axis], idtype);
                    let sviews = views_of(&ishape);
                    let sv = sviews[rng.below(sviews.len())].clone();
                    let sbuf: Vec<f64> = rng.vec(sv.buffer_len, -3.0, 3.0).iter().map(|x| x.round()).collect();
                    let ss = upload(b, &sbuf, dtype);
                    let out = b.scatter_add(&bs, &v.layout, axis, &is, &il, &ss, &sv.layout).unwrap();
                    let got = download(b, &out, &Layout::contiguous(shape));
                    let mut want = logical(&base, &v.layout);
                    let src = logical(&sbuf, &sv.layout);
                    for lin in 0..iv.len() {
                        let mut mi = unravel(lin, &ishape);
                        mi[axis] = iv[lin] as usize;
                        want[ravel(&mi, shape)] += src[lin];
                    }
                    assert_eq!(
                        got, want,
                        "scatter_add {dtype} {shape:?} axis {axis} {} index {idtype} {ishape:?} src {}",
                        v.kind, sv.kind
                    );
                }
            }
        }
    }
    let base = upload(b, &[0.0; 6], DType::F32);
    let lb = Layout::contiguous(&[2, 3]);
    let idx = upload(b, &[0.0, 3.0], DType::I32);
    let li = Layout::contiguous(&[1, 2]);
    let src = upload(b, &[1.0, 1.0], DType::F32);
    assert_eq!(
        b.scatter_add(&base, &lb, 1, &idx, &li, &src, &li).unwrap_err(),
        Error::IndexOutOfRange { op: "scatter_add", index: 3, size: 3 }
    );
    let idx = upload(b, &[0.0, 1.0], DType::I32);
    let e = b.scatter_add(&base, &lb, 1, &idx, &li, &src, &Layout::contiguous(&[2])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "scatter_add", .. }), "{e}");
    let src64 = upload(b, &[1.0, 1.0], DType::F64);
    assert!(matches!(
        b.scatter_add(&base, &lb, 1, &idx, &li, &src64, &li),
        Err(Error::DTypeMismatch { op: "scatter_add", .. })
    ));
    let fidx = upload(b, &[0.0, 1.0], DType::F32);
    assert!(matches!(
        b.scatter_add(&base, &lb, 1, &fidx, &li, &src, &li),
        Err(Error::UnsupportedDType { op: "scatter_add", .. })
    ));
}

/// `torch.index_select` on every axis, with repeated, empty and strided index vectors.
pub fn check_index_select<B: Backend>(b: &B) {
    let mut rng = TestRng::new(33);
    let shapes: [&[usize]; 5] = [&[1], &[7], &[3, 33], &[2, 7, 3], &[127]];
    for shape in shapes {
        for v in views_of(shape) {
            let data = rng.vec(v.buffer_len, -10.0, 10.0).iter().map(|x| x.round()).collect::<Vec<_>>();
            for (di, dtype) in [DType::F32, DType::F64, DType::U8].into_iter().enumerate() {
                let data: Vec<f64> =
                    if dtype == DType::U8 { data.iter().map(|x| x.abs()).collect() } else { data.clone() };
                let x = upload(b, &data, dtype);
                for axis in 0..shape.len() {
                    let len = rng.below(2 * shape[axis] + 1);
                    let idtype = INDEX_DTYPES[(di + axis) % 3];
                    let (is, il, iv) = index_view(b, &mut rng, &[len], shape[axis], idtype);
                    let out = b.index_select(&x, &v.layout, axis, &is, &il).unwrap();
                    let mut oshape = shape.to_vec();
                    oshape[axis] = len;
                    let got = download(b, &out, &Layout::contiguous(&oshape));
                    let want: Vec<f64> = (0..oshape.iter().product::<usize>())
                        .map(|lin| {
                            let mut mi = unravel(lin, &oshape);
                            mi[axis] = iv[mi[axis]] as usize;
                            at(&data, &v.layout, &mi)
                        })
                        .collect();
                    assert_eq!(
                        got, want,
                        "index_select {dtype} {shape:?} axis {axis} {} index {idtype} [{len}]",
                        v.kind
                    );
                }
            }
        }
    }
    let x = upload(b, &[0.0; 21], DType::F64);
    let lx = Layout::contiguous(&[3, 7]);
    let idx = upload(b, &[2.0, 3.0], DType::U32);
    assert_eq!(
        b.index_select(&x, &lx, 0, &idx, &Layout::contiguous(&[2])).unwrap_err(),
        Error::IndexOutOfRange { op: "index_select", index: 3, size: 3 }
    );
    assert!(b.index_select(&x, &lx, 0, &idx, &Layout::contiguous(&[1, 2])).is_err());
    let fidx = upload(b, &[0.0], DType::F64);
    assert!(matches!(
        b.index_select(&x, &lx, 0, &fidx, &Layout::contiguous(&[1])),
        Err(Error::UnsupportedDType { op: "index_select", .. })
    ));
}
