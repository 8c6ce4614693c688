//! Conformance checks for reductions, arg-reductions, softmax and batched matmul.

use super::*;
use crate::ops::{ArgReduceOp, ReduceOp};

/// Reads the multi-index of linear position `lin` in `shape`.
fn unravel(mut lin: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = lin % shape[d];
        lin /= shape[d];
    }
    idx
}

/// The naive reduction of `data` (viewed by `l`) over `axes`: the groups of values per output.
fn groups(data: &[f64], l: &Layout, axes: &[usize]) -> Vec<Vec<f64>> {
    let kept: Vec<usize> = (0..l.ndim()).filter(|d| !axes.contains(d)).collect();
    let kshape: Vec<usize> = kept.iter().map(|&d| l.shape()[d]).collect();
    let n_out: usize = kshape.iter().product();
    let mut out = vec![vec![]; n_out];
    for lin in 0..l.numel() {
        let idx = unravel(lin, l.shape());
        let mut o = 0;
        for &d in &kept {
            o = o * l.shape()[d] + idx[d];
        }
        out[o].push(at(data, l, &idx));
    }
    out
}

/// Sum, mean, max, min and variance over every subset of axes, with and without keepdim.
pub fn check_reduce<B: Backend>(b: &B) {
    let mut rng = TestRng::new(11);
    let shapes: [&[usize]; 4] = [&[7], &[3, 33], &[2, 7, 3], &[4, 1, 5, 3]];
    let ops = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Var { correction: 1 },
        ReduceOp::Var { correction: 0 },
    ];
    for shape in shapes {
        let nd = shape.len();
        for v in views_of(shape) {
            let data = rng.vec(v.buffer_len, -3.0, 3.0);
            for dtype in [DType::F32, DType::F64] {
                let stored = host(&data, dtype).to_f64_vec();
                let s = upload(b, &data, dtype);
                for mask in 1..(1usize << nd) {
                    let axes: Vec<usize> = (0..nd).filter(|d| mask & (1 << d) != 0).collect();
                    for keepdim in [false, true] {
                        for op in ops {
                            let out = b.reduce(op, &s, &v.layout, &axes, keepdim).unwrap();
                            let g = groups(&stored, &v.layout, &axes);
                            let want: Vec<f64> = g
                                .iter()
                                .map(|g| {
                                    let n = g.len() as f64;
                                    let mean = g.iter().sum::<f64>() / n;
                                    match op {
                                        ReduceOp::Sum => g.iter().sum(),
                                        ReduceOp::Mean => mean,
                                        ReduceOp::Max => g.iter().copied().fold(f64::MIN, f64::max),
                                        ReduceOp::Min => g.iter().copied().fold(f64::MAX, f64::min),
                                        ReduceOp::Var { correction } => {
                                            let d = n - correction as f64;
                                            if d > 0.0 {
                                                g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d
                                            } else {
                                                f64::NAN
                                            }
                                        }
                                    }
                                })
                                .collect();
                            let out_shape: Vec<usize> = if keepdim {
                                (0..nd).map(|d| if axes.contains(&d) { 1 } else { shape[d] }).collect()
                            } else {
                                (0..nd).filter(|d| !axes.contains(d)).map(|d| shape[d]).collect()
                            };
                            let got = download(b, &out, &Layout::contiguous(&out_shape));
                            let (rt, at) = tol(dtype);
                            assert_close(
                                &got,
                                &want,
                                rt * 10.0,
                                at * 10.0,
                                &format!("{op:?} {dtype} {shape:?} axes {axes:?} {}", v.kind),
                            );
                        }
                    }
                }
            }
        }
    }
    // Integer sums are exact; max keeps NaN.
    let s = upload(b, &[3.0, -4.0, 100.0, 7.0], DType::I64);
    let got = download(
        b,
        &b.reduce(ReduceOp::Sum, &s, &Layout::contiguous(&[2, 2]), &[0], false).unwrap(),
        &Layout::contiguous(&[2]),
    );
    assert_eq!(got, vec![103.0, 3.0]);
    let s = upload(b, &[1.0, f64::NAN, 2.0], DType::F32);
    let got = download(
        b,
        &b.reduce(ReduceOp::Max, &s, &Layout::contiguous(&[3]), &[0], false).unwrap(),
        &Layout::contiguous(&[]),
    );
    assert!(got[0].is_nan());
    assert!(b.reduce(ReduceOp::Sum, &s, &Layout::contiguous(&[3]), &[1], false).is_err());
}

/// argmax/argmin along each axis; ties go to the lowest index.
pub fn check_arg_reduce<B: Backend>(b: &B) {
    let mut rng = TestRng::new(12);
    for shape in [&[7usize][..], &[3, 33], &[2, 7, 3]] {
        for v in views_of(shape) {
            // Few distinct values: plenty of ties.
            let data: Vec<f64> = rng.vec(v.buffer_len, 0.0, 3.0).iter().map(|x| x.floor()).collect();
            for dtype in [DType::F32, DType::I64] {
                let s = upload(b, &data, dtype);
                for axis in 0..shape.len() {
                    for op in [ArgReduceOp::ArgMax, ArgReduceOp::ArgMin] {
                        let out = b.arg_reduce(op, &s, &v.layout, axis, false).unwrap();
                        let out_shape: Vec<usize> = (0..shape.len()).filter(|&d| d != axis).map(|d| shape[d]).collect();
                        let got = download(b, &out, &Layout::contiguous(&out_shape));
                        let want: Vec<f64> = groups(&data, &v.layout, &[axis])
                            .iter()
                            .map(|g| {
                                let mut best = 0;
                                for (i, &x) in g.iter().enumerate() {
                                    let better = if op == ArgReduceOp::ArgMax { x > g[best] } else { x < g[best] };
                                    if better {
                                        best = i;
                                    }
                                }
                                best as f64
                            })
                            .collect();
                        assert_eq!(got, want, "{op:?} {dtype} {shape:?} axis {axis} {}", v.kind);
                    }
                }
            }
        }
    }
}

/// Softmax and log-softmax along each axis, including huge inputs (stability).
pub fn check_softmax<B: Backend>(b: &B) {
    let mut rng = TestRng::new(13);
    for shape in [&[7usize][..], &[3, 33], &[2, 7, 3], &[127, 2]] {
        for v in views_of(shape) {
            for shift in [0.0, 1000.0] {
                let data: Vec<f64> = rng.vec(v.buffer_len, -5.0, 5.0).iter().map(|x| x + shift).collect();
                for dtype in [DType::F32, DType::F64] {
                    let stored = host(&data, dtype).to_f64_vec();
                    let s = upload(b, &data, dtype);
                    for axis in 0..shape.len() {
                        for log in [false, true] {
                            let got =
                                download(b, &b.softmax(&s, &v.layout, axis, log).unwrap(), &Layout::contiguous(shape));
                            // Reference: per element, over its group along `axis`.
                            let l = &v.layout;
                            let want: Vec<f64> = (0..l.numel())
                                .map(|lin| {
                                    let idx = unravel(lin, shape);
                                    let vals: Vec<f64> = (0..shape[axis])
                                        .map(|k| {
                                            let mut j = idx.clone();
                                            j[axis] = k;
                                            at(&stored, l, &j)
                                        })
                                        .collect();
                                    let m = vals.iter().copied().fold(f64::MIN, f64::max);
                                    let lse = m + vals.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                                    let x = at(&stored, l, &idx);
                                    if log {
                                        x - lse
                                    } else {
                                        (x - lse).exp()
                                    }
                                })
                                .collect();
                            let (rt, at_) = tol(dtype);
                            assert_close(
                                &got,
                                &want,
                                rt * 5.0,
                                at_ * 5.0,
                                &format!("softmax log={log} {dtype} {shape:?} axis {axis} {}", v.kind),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The softmax input gradient along each axis, on every view kind of both operands, against
/// the closed forms `y·(g − Σ g·y)` and `g − e^y·Σ g`; and its shape and axis errors.
pub fn check_softmax_backward<B: Fused>(b: &B) {
    let mut rng = TestRng::new(29);
    for shape in [&[7usize][..], &[3, 33], &[2, 7, 3], &[127, 2], &[40, 65]] {
        for v in views_of(shape) {
            let (yd, gd) = (rng.vec(v.buffer_len, -1.0, 1.0), rng.vec(v.buffer_len, -2.0, 2.0));
            for dtype in [DType::F32, DType::F64] {
                let (ys, gs) = (host(&yd, dtype).to_f64_vec(), host(&gd, dtype).to_f64_vec());
                let (y, g) = (upload(b, &yd, dtype), upload(b, &gd, dtype));
                let l = &v.layout;
                for axis in 0..shape.len() {
                    for log in [false, true] {
                        let got = download(
                            b,
                            &b.softmax_backward(&y, l, &g, l, axis, log).unwrap(),
                            &Layout::contiguous(shape),
                        );
                        let want: Vec<f64> = (0..l.numel())
                            .map(|lin| {
                                let idx = unravel(lin, shape);
                                let along = |k: usize, data: &[f64]| {
                                    let mut j = idx.clone();
                                    j[axis] = k;
                                    at(data, l, &j)
                                };
                                let (yi, gi) = (at(&ys, l, &idx), at(&gs, l, &idx));
                                if log {
                                    let total: f64 = (0..shape[axis]).map(|k| along(k, &gs)).sum();
                                    gi - yi.exp() * total
                                } else {
                                    let dot: f64 = (0..shape[axis]).map(|k| along(k, &gs) * along(k, &ys)).sum();
                                    yi * (gi - dot)
                                }
                            })
                            .collect();
                        let (rt, at_) = tol(dtype);
                        assert_close(
                            &got,
                            &want,
                            rt * 10.0,
                            at_ * 10.0,
                            &format!("softmax_backward log={log} {dtype} {shape:?} axis {axis} {}", v.kind),
                        );
                    }
                }
            }
        }
    }
    let (y, g) = (upload(b, &[0.5; 6], DType::F32), upload(b, &[1.0; 6], DType::F32));
    let (l23, l32) = (Layout::contiguous(&[2, 3]), Layout::contiguous(&[3, 2]));
    let err = b.softmax_backward(&y, &l23, &g, &l32, 1, false).unwrap_err().to_string();
    assert!(err.contains("softmax_backward") && err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
    let err = b.softmax_backward(&y, &l23, &g, &l23, 2, false).unwrap_err().to_string();
    assert!(err.contains("softmax_backward"), "{err}");
}

fn naive_matmul(a: &[f64], la: &Layout, bd: &[f64], lb: &Layout) -> Vec<f64> {
    let nd = la.ndim();
    let (m, k, n) = (la.shape()[nd - 2], la.shape()[nd - 1], lb.shape()[nd - 1]);
    let batch: usize = la.shape()[..nd - 2].iter().product();
    let bshape = &la.shape()[..nd - 2];
    let mut out = vec![];
    for bi in 0..batch {
        let bidx = unravel(bi, bshape);
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    let mut ia = bidx.clone();
                    ia.extend([i, p]);
                    let mut ib = bidx.clone();
                    ib.extend([p, j]);
                    acc += at(a, la, &ia) * at(bd, lb, &ib);
                }
                out.push(acc);
            }
        }
    }
    out
}

/// Batched matmul: odd sizes, transposed and narrowed operands, broadcast batches, f32/f64/i8.
pub fn check_matmul<B: Backend>(b: &B) {
    let mut rng = TestRng::new(14);
    let cases: [(&[usize], usize, usize, usize); 8] = [
        (&[], 1, 1, 1),
        (&[], 3, 7, 33),
        (&[], 127, 33, 7),
        (&[], 65, 130, 70),
        (&[2], 7, 3, 5),
        (&[3, 2], 5, 7, 3),
        (&[4], 33, 17, 9),
        (&[1], 200, 150, 180),
    ];
    for (batch, m, k, n) in cases {
        let mut sa = batch.to_vec();
        sa.extend([m, k]);
        let mut sb = batch.to_vec();
        sb.extend([k, n]);
        for (va, vb) in views_of(&sa).into_iter().zip(views_of(&sb).into_iter().rev()) {
            for dtype in [DType::F32, DType::F64, DType::I8] {
                let (lo, hi) = if dtype == DType::I8 { (-128.0, 128.0) } else { (-1.0, 1.0) };
                let da: Vec<f64> = rng
                    .vec(va.buffer_len, lo, hi)
                    .iter()
                    .map(|x| if dtype == DType::I8 { x.floor() } else { *x })
                    .collect();
                let db: Vec<f64> = rng
                    .vec(vb.buffer_len, lo, hi)
                    .iter()
                    .map(|x| if dtype == DType::I8 { x.floor() } else { *x })
                    .collect();
                let (sta, stb) = (host(&da, dtype).to_f64_vec(), host(&db, dtype).to_f64_vec());
                let out = b.matmul(&upload(b, &da, dtype), &va.layout, &upload(b, &db, dtype), &vb.layout).unwrap();
                let mut so = batch.to_vec();
                so.extend([m, n]);
                let got = download(b, &out, &Layout::contiguous(&so));
                let want = naive_matmul(&sta, &va.layout, &stb, &vb.layout);
                let (rt, at_) = match dtype {
                    DType::F32 => (1e-4, 1e-5 * (k as f64).sqrt()),
                    DType::F64 => (1e-12, 1e-12),
                    _ => (0.0, 0.0),
                };
                assert_close(&got, &want, rt, at_, &format!("matmul {dtype} {sa:?}x{sb:?} {}/{}", va.kind, vb.kind));
            }
        }
    }
    // A broadcast batch (stride 0) operand.
    let a = rng.vec(3 * 4, -1.0, 1.0);
    let bd = rng.vec(5 * 4 * 2, -1.0, 1.0);
    let la = Layout::contiguous(&[1, 3, 4]).broadcast_to(&[5, 3, 4]).unwrap();
    let lb = Layout::contiguous(&[5, 4, 2]);
    let got = download(
        b,
        &b.matmul(&upload(b, &a, DType::F64), &la, &upload(b, &bd, DType::F64), &lb).unwrap(),
        &Layout::contiguous(&[5, 3, 2]),
    );
    assert_close(&got, &naive_matmul(&a, &la, &bd, &lb), 1e-12, 1e-12, "matmul broadcast batch");
    // Errors name both shapes.
    let s = upload(b, &[0.0; 12], DType::F32);
    let e = b.matmul(&s, &Layout::contiguous(&[3, 4]), &s, &Layout::contiguous(&[3, 4])).unwrap_err();
    assert_eq!(e.to_string(), "matmul: shape mismatch between [3, 4] and [3, 4]");
}

/// The product with a bias row (`Fused::matmul_bias`): odd sizes, empty rows and inner
/// dimensions, sizes that split over threads, every kind of view of each operand (a bias with
/// a stride and a broadcast one included) in f32 and f64, against naive loops; mixed dtypes
/// and mismatched shapes are errors naming the op.
pub fn check_matmul_bias<B: Backend + Fused>(b: &B) {
    let mut rng = TestRng::new(15);
    // The last two split over threads by rows and by columns (the bias then starts mid-row).
    let cases: [(usize, usize, usize); 8] =
        [(1, 1, 1), (3, 7, 33), (127, 33, 7), (0, 5, 4), (6, 0, 9), (65, 130, 70), (300, 64, 96), (40, 300, 200)];
    for (m, k, n) in cases {
        let views_n = views_of(&[n]);
        for (i, (va, vb)) in views_of(&[m, k]).into_iter().zip(views_of(&[k, n]).into_iter().rev()).enumerate() {
            let vbias = &views_n[i % views_n.len()];
            for dtype in [DType::F32, DType::F64] {
                let (da, db, dc) = (
                    rng.vec(va.buffer_len, -1.0, 1.0),
                    rng.vec(vb.buffer_len, -1.0, 1.0),
                    rng.vec(vbias.buffer_len, -1.0, 1.0),
                );
                let (sta, stb, stc) =
                    (host(&da, dtype).to_f64_vec(), host(&db, dtype).to_f64_vec(), host(&dc, dtype).to_f64_vec());
                let out = b
                    .matmul_bias(
                        &upload(b, &da, dtype),
                        &va.layout,
                        &upload(b, &db, dtype),
                        &vb.layout,
                        &upload(b, &dc, dtype),
                        &vbias.layout,
                    )
                    .unwrap();
                let got = download(b, &out, &Layout::contiguous(&[m, n]));
                let bias = logical(&stc, &vbias.layout);
                let want: Vec<f64> = naive_matmul(&sta, &va.layout, &stb, &vb.layout)
                    .iter()
                    .enumerate()
                    .map(|(e, p)| p + bias[e % n])
                    .collect();
                let (rt, at_) = match dtype {
                    DType::F32 => (1e-4, 1e-5 * (k as f64 + 1.0).sqrt()),
                    _ => (1e-12, 1e-12),
                };
                let what = format!("matmul_bias {dtype} [{m}, {k}]x[{k}, {n}] {}/{}/{}", va.kind, vb.kind, vbias.kind);
                assert_close(&got, &want, rt, at_, &what);
            }
        }
    }
    // A bias broadcast from one value (stride 0).
    let (a, w, c) = (rng.vec(4 * 3, -1.0, 1.0), rng.vec(3 * 5, -1.0, 1.0), [0.75]);
    let (la, lw) = (Layout::contiguous(&[4, 3]), Layout::contiguous(&[3, 5]));
    let lc = Layout::contiguous(&[1]).broadcast_to(&[5]).unwrap();
    let out = b
        .matmul_bias(&upload(b, &a, DType::F64), &la, &upload(b, &w, DType::F64), &lw, &upload(b, &c, DType::F64), &lc)
        .unwrap();
    let want: Vec<f64> = naive_matmul(&a, &la, &w, &lw).iter().map(|p| p + 0.75).collect();
    assert_close(&download(b, &out, &Layout::contiguous(&[4, 5])), &want, 1e-12, 1e-12, "matmul_bias broadcast bias");
    // Errors name the op and the shapes.
    let s = upload(b, &[0.0; 15], DType::F32);
    let e = b.matmul_bias(
        &s,
        &Layout::contiguous(&[3, 4]),
        &s,
        &Layout::contiguous(&[3, 4]),
        &s,
        &Layout::contiguous(&[4]),
    );
    assert_eq!(e.unwrap_err().to_string(), "matmul_bias: shape mismatch between [3, 4] and [3, 4]");
    let e = b.matmul_bias(
        &s,
        &Layout::contiguous(&[3, 4]),
        &s,
        &Layout::contiguous(&[4, 3]),
        &s,
        &Layout::contiguous(&[4]),
    );
    assert!(e.unwrap_err().to_string().contains("bias of shape [4] for a product of 3 columns"));
    let d = upload(b, &[0.0; 3], DType::F64);
    let e = b.matmul_bias(
        &s,
        &Layout::contiguous(&[3, 4]),
        &s,
        &Layout::contiguous(&[4, 3]),
        &d,
        &Layout::contiguous(&[3]),
    );
    assert!(e.unwrap_err().to_string().starts_with("matmul_bias"), "mixed dtypes name the op");
}
