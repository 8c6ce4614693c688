//! Conformance checks for elementwise ops, comparisons, select, casts, concat and pad.

use super::*;
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::Error;

const SHAPES: [&[usize]; 6] = [&[1], &[7], &[3, 33], &[2, 3, 7], &[127, 3], &[5, 1, 4, 3]];

/// Unary float ops on every view kind, f32 and f64, against f64 references.
pub fn check_unary_float<B: Backend>(b: &B) {
    let mut rng = TestRng::new(1);
    for &(op, lo, hi) in UnaryOp::CHECKED {
        for dtype in [DType::F32, DType::F64] {
            for shape in SHAPES {
                for v in views_of(shape) {
                    let data = rng.vec(v.buffer_len, lo, hi);
                    // Compare with the reference evaluated on the values as stored in `dtype`.
                    let stored = host(&data, dtype).to_f64_vec();
                    let s = upload(b, &data, dtype);
                    let out = b.unary(op, &s, &v.layout).unwrap();
                    let got = download(b, &out, &Layout::contiguous(shape));
                    let want: Vec<f64> = logical(&stored, &v.layout).iter().map(|&x| op.reference(x)).collect();
                    let (rt, at) = tol(dtype);
                    let at = if dtype == DType::F32 {
                        at.max(1e-6 * want.iter().fold(1.0f64, |m, w| m.max(w.abs())))
                    } else {
                        at
                    };
                    assert_close(&got, &want, rt, at, &format!("{} {dtype} {shape:?} {}", op.name(), v.kind));
                }
            }
        }
    }
}

/// Integer-capable unary ops on integer dtypes; transcendental ops on integers are errors.
pub fn check_unary_int<B: Backend>(b: &B) {
    let mut rng = TestRng::new(2);
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Square,
        UnaryOp::Relu,
        UnaryOp::Sign,
        UnaryOp::Clamp { min: -3.0, max: 4.0 },
    ];
    for dtype in [DType::I64, DType::I32, DType::I8] {
        for op in ops {
            for v in views_of(&[3, 7]) {
                let data: Vec<f64> = rng.vec(v.buffer_len, -10.0, 10.0).iter().map(|x| x.round()).collect();
                let s = upload(b, &data, dtype);
                let got = download(b, &b.unary(op, &s, &v.layout).unwrap(), &Layout::contiguous(&[3, 7]));
                let want: Vec<f64> = logical(&data, &v.layout).iter().map(|&x| op.reference(x)).collect();
                assert_close(&got, &want, 0.0, 0.0, &format!("{} {dtype} {}", op.name(), v.kind));
            }
        }
        let s = upload(b, &[1.0, 2.0], dtype);
        let e = b.unary(UnaryOp::Exp, &s, &Layout::contiguous(&[2])).unwrap_err();
        assert_eq!(e, Error::UnsupportedDType { op: "exp", dtype });
    }
    // u8: relu/abs are identities.
    let s = upload(b, &[0.0, 7.0, 255.0], DType::U8);
    let got = download(b, &b.unary(UnaryOp::Abs, &s, &Layout::contiguous(&[3])).unwrap(), &Layout::contiguous(&[3]));
    assert_eq!(got, vec![0.0, 7.0, 255.0]);
}

/// The activation backward ops (`g · f'(x)`) over broadcast views, f32 and f64, against closed
/// forms; integer operands are errors.
pub fn check_activation_backward<B: Backend>(b: &B) {
    let mut rng = TestRng::new(13);
    for (op, _) in BinaryOp::ACTIVATION_BACKWARD {
        // x stays where the f64 reference erf is exact; ReLU6 also crosses 6.
        let (lo, hi) = if op == BinaryOp::Relu6Backward { (-3.0, 9.0) } else { (-4.0, 4.0) };
        for dtype in [DType::F32, DType::F64] {
            check_binary_broadcasts(
                b,
                op,
                dtype,
                |len, rhs| {
                    if rhs {
                        rng.vec(len, lo, hi)
                    } else {
                        rng.vec(len, -3.0, 3.0)
                    }
                },
            );
        }
        let l = Layout::contiguous(&[2]);
        let i = upload(b, &[1.0, -1.0], DType::I64);
        let e = b.binary(op, &i, &l, &i, &l).unwrap_err();
        assert_eq!(e, Error::UnsupportedDType { op: op.name(), dtype: DType::I64 });
    }
}

/// Broadcast shape pairs (the result shape is the NumPy broadcast).
pub const BROADCAST_PAIRS: [(&[usize], &[usize]); 7] = [
    (&[7], &[7]),
    (&[3, 1, 5], &[4, 1]),
    (&[1], &[2, 33]),
    (&[127, 3], &[3]),
    (&[2, 3, 4], &[2, 1, 4]),
    (&[1, 3, 1], &[5, 1, 7]),
    (&[], &[3, 2]),
];

/// Runs `op` on every broadcast pair of [`BROADCAST_PAIRS`] over every view kind, with operands
/// from `data(len, is_rhs)`, and compares with [`BinaryOp::reference`] on the values as stored in `dtype`.
fn check_binary_broadcasts<B: Backend>(
    b: &B,
    op: BinaryOp,
    dtype: DType,
    mut data: impl FnMut(usize, bool) -> Vec<f64>,
) {
    let int = !dtype.is_float();
    for (sa, sb) in BROADCAST_PAIRS {
        let out_shape = crate::broadcast_shapes("test", sa, sb).unwrap();
        for (va, vb) in views_of(sa).into_iter().zip(views_of(sb).into_iter().rev()) {
            let (da, db) = (data(va.buffer_len, false), data(vb.buffer_len, true));
            let (sta, stb) = (host(&da, dtype).to_f64_vec(), host(&db, dtype).to_f64_vec());
            let la = va.layout.broadcast_to(&out_shape).unwrap();
            let lb = vb.layout.broadcast_to(&out_shape).unwrap();
            let out = b.binary(op, &upload(b, &da, dtype), &la, &upload(b, &db, dtype), &lb).unwrap();
            let got = download(b, &out, &Layout::contiguous(&out_shape));
            let want: Vec<f64> =
                logical(&sta, &la).iter().zip(logical(&stb, &lb)).map(|(&x, y)| op.reference(x, y, int)).collect();
            let (rt, at) = tol(dtype);
            let what = format!("{} {dtype} {sa:?}x{sb:?} {}/{}", op.name(), va.kind, vb.kind);
            assert_close(&got, &want, rt, at, &what);
        }
    }
}

/// Binary ops with broadcasting over views, all dtypes that support each op.
pub fn check_binary<B: Backend>(b: &B) {
    let mut rng = TestRng::new(3);
    let ops: Vec<BinaryOp> = BinaryOp::ALL.iter().copied().filter(|op| !op.is_activation_backward()).collect();
    for &op in &ops {
        for dtype in [DType::F32, DType::F64, DType::I64, DType::I32] {
            let int = !dtype.is_float();
            if int && op.float_only() {
                continue;
            }
            let (lo, hi) = if op == BinaryOp::Pow { (0.1, 3.0) } else { (-20.0, 20.0) };
            check_binary_broadcasts(b, op, dtype, |len, rhs| {
                let mut d = rng.vec(len, lo, hi);
                if int {
                    // Integer divisors stay nonzero.
                    d.iter_mut().for_each(|x| *x = if rhs && x.round() == 0.0 { 3.0 } else { x.round() });
                }
                d
            });
        }
    }
    // Scalar variants on both sides.
    let data = rng.vec(21, 0.5, 4.0);
    let l = Layout::contiguous(&[3, 7]).transpose(0, 1).unwrap();
    for &op in &ops {
        for dtype in [DType::F32, DType::F64] {
            let stored = host(&data, dtype).to_f64_vec();
            let s = upload(b, &data, dtype);
            for scalar_first in [false, true] {
                let out = b.binary_scalar(op, &s, &l, 1.75, scalar_first).unwrap();
                let got = download(b, &out, &Layout::contiguous(l.shape()));
                let want: Vec<f64> = logical(&stored, &l)
                    .iter()
                    .map(|&x| if scalar_first { op.reference(1.75, x, false) } else { op.reference(x, 1.75, false) })
                    .collect();
                let (rt, at) = tol(dtype);
                assert_close(&got, &want, rt, at, &format!("{} scalar_first={scalar_first} {dtype}", op.name()));
            }
        }
    }
}

/// Errors: shape and dtype mismatches name the op and both operands; integer division by zero.
pub fn check_binary_errors<B: Backend>(b: &B) {
    let a = upload(b, &[1.0; 6], DType::F32);
    let c = upload(b, &[1.0; 6], DType::F64);
    let (l23, l32) = (Layout::contiguous(&[2, 3]), Layout::contiguous(&[3, 2]));
    let e = b.binary(BinaryOp::Add, &a, &l23, &a, &l32).unwrap_err();
    assert_eq!(e.to_string(), "add: shape mismatch between [2, 3] and [3, 2]");
    let e = b.binary(BinaryOp::Mul, &a, &l23, &c, &l23).unwrap_err();
    assert_eq!(e.to_string(), "mul: dtype mismatch between f32 and f64");
    let i = upload(b, &[1.0, 0.0], DType::I64);
    let l2 = Layout::contiguous(&[2]);
    let e = b.binary(BinaryOp::Div, &i, &l2, &i, &l2).unwrap_err();
    assert!(e.to_string().contains("division by zero"), "{e}");
    // A view past the end of its buffer is an error, not a crash.
    let e = b.unary(UnaryOp::Neg, &a, &Layout::contiguous(&[7])).unwrap_err();
    assert!(e.to_string().contains("reaches past"), "{e}");
}

/// Comparisons (tensor and scalar) and `where` over broadcast views.
pub fn check_compare_where<B: Backend>(b: &B) {
    let mut rng = TestRng::new(4);
    let ops = [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];
    let cmp = |op: CmpOp, x: f64, y: f64| {
        (match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        }) as u8 as f64
    };
    for dtype in [DType::F32, DType::F64, DType::I64, DType::U8] {
        for (sa, sb) in BROADCAST_PAIRS {
            let out_shape = crate::broadcast_shapes("test", sa, sb).unwrap();
            let la = Layout::contiguous(sa).broadcast_to(&out_shape).unwrap();
            let lb = Layout::contiguous(sb).broadcast_to(&out_shape).unwrap();
            // Small integers so that equality happens often.
            let da: Vec<f64> = rng.vec(sa.iter().product(), 0.0, 4.0).iter().map(|x| x.floor()).collect();
            let db: Vec<f64> = rng.vec(sb.iter().product(), 0.0, 4.0).iter().map(|x| x.floor()).collect();
            let (sa_, sb_) = (upload(b, &da, dtype), upload(b, &db, dtype));
            for op in ops {
                let got = download(b, &b.compare(op, &sa_, &la, &sb_, &lb).unwrap(), &Layout::contiguous(&out_shape));
                let want: Vec<f64> =
                    logical(&da, &la).iter().zip(logical(&db, &lb)).map(|(&x, y)| cmp(op, x, y)).collect();
                assert_eq!(got, want, "compare {op:?} {dtype} {sa:?} {sb:?}");
                let got = download(b, &b.compare_scalar(op, &sa_, &la, 2.0).unwrap(), &Layout::contiguous(&out_shape));
                let want: Vec<f64> = logical(&da, &la).iter().map(|&x| cmp(op, x, 2.0)).collect();
                assert_eq!(got, want, "compare_scalar {op:?} {dtype}");
            }
            let cond = b.compare(CmpOp::Lt, &sa_, &la, &sb_, &lb).unwrap();
            let lc = Layout::contiguous(&out_shape);
            let got = download(b, &b.where_cond(&cond, &lc, &sa_, &la, &sb_, &lb).unwrap(), &lc);
            let want: Vec<f64> =
                logical(&da, &la).iter().zip(logical(&db, &lb)).map(|(&x, y)| if x < y { x } else { y }).collect();
            assert_eq!(got, want, "where {dtype} {sa:?} {sb:?}");
        }
    }
}

/// Contiguous copies and casts of every view kind between dtypes.
pub fn check_copy_cast<B: Backend>(b: &B) {
    let mut rng = TestRng::new(5);
    for shape in SHAPES {
        for v in views_of(shape) {
            let data: Vec<f64> = rng.vec(v.buffer_len, -100.0, 100.0);
            for from in [DType::F32, DType::F64, DType::I64, DType::I32] {
                let stored = host(&data, from).to_f64_vec();
                let s = upload(b, &data, from);
                let got = download(b, &b.contiguous(&s, &v.layout).unwrap(), &Layout::contiguous(shape));
                assert_eq!(got, logical(&stored, &v.layout), "contiguous {from} {shape:?} {}", v.kind);
                for to in [DType::F32, DType::F64, DType::I64, DType::I32, DType::I8, DType::U8] {
                    let got = download(b, &b.cast(&s, &v.layout, to).unwrap(), &Layout::contiguous(shape));
                    let want: Vec<f64> =
                        logical(&stored, &v.layout).iter().map(|&x| host(&[x], to).to_f64_vec()[0]).collect();
                    assert_eq!(got, want, "cast {from}->{to} {shape:?} {}", v.kind);
                }
            }
        }
    }
}

/// Concatenation along each axis (views as parts) and padding with a value.
pub fn check_concat_pad<B: Backend>(b: &B) {
    let mut rng = TestRng::new(6);
    for dtype in [DType::F32, DType::F64, DType::I64, DType::U8] {
        for axis in 0..3 {
            let sizes = [1, 3, 7];
            let mut parts = vec![];
            for (i, &n) in sizes.iter().enumerate() {
                let mut shape = vec![2, 3, 5];
                shape[axis] = n;
                let v = views_of(&shape).swap_remove(i % 4);
                let data: Vec<f64> = rng.vec(v.buffer_len, 0.0, 100.0).iter().map(|x| x.floor()).collect();
                parts.push((upload(b, &data, dtype), v.layout, data));
            }
            let refs: Vec<(&B::Storage, &Layout)> = parts.iter().map(|(s, l, _)| (s, l)).collect();
            let out = b.concat(&refs, axis).unwrap();
            let mut out_shape = vec![2, 3, 5];
            out_shape[axis] = 11;
            let got = download(b, &out, &Layout::contiguous(&out_shape));
            // Reference: read element by element from the part that owns the index.
            let ol = Layout::contiguous(&out_shape);
            let mut want = vec![];
            for lin in 0..ol.numel() {
                let mut idx = vec![0; 3];
                let mut rem = lin;
                for d in (0..3).rev() {
                    idx[d] = rem % out_shape[d];
                    rem /= out_shape[d];
                }
                let mut k = idx[axis];
                for (_, l, data) in &parts {
                    if k < l.shape()[axis] {
                        let mut j = idx.clone();
                        j[axis] = k;
                        want.push(at(data, l, &j));
                        break;
                    }
                    k -= l.shape()[axis];
                }
            }
            assert_eq!(got, want, "concat {dtype} axis {axis}");
        }
    }
    let e = b
        .concat(
            &[
                (&upload(b, &[1.0; 6], DType::F32), &Layout::contiguous(&[2, 3])),
                (&upload(b, &[1.0; 6], DType::F32), &Layout::contiguous(&[3, 2])),
            ],
            0,
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "concat: shape mismatch between [2, 3] and [3, 2]");
    // pad (the larger shapes are large enough for a multi-threaded kernel), on every axis and
    // on the last axis only (the line-copy path, also with one-element lines: interleaving).
    type Pads = [(usize, usize); 3];
    let cases: [([usize; 3], Pads); 6] = [
        ([3, 4, 5], [(0, 1), (2, 0), (1, 3)]),
        ([40, 30, 50], [(0, 1), (2, 0), (1, 3)]),
        ([3, 4, 5], [(0, 0), (0, 0), (1, 3)]),
        ([40, 30, 50], [(0, 0), (0, 0), (2, 1)]),
        ([40, 300, 1], [(0, 0), (0, 0), (0, 1)]),
        ([2, 3, 0], [(0, 0), (0, 0), (1, 1)]),
    ];
    for (shape, pads) in cases {
        let out_shape: Vec<usize> = shape.iter().zip(pads).map(|(d, (a, b))| d + a + b).collect();
        for dtype in [DType::F32, DType::F64, DType::I32] {
            for v in views_of(&shape) {
                let data: Vec<f64> = rng.vec(v.buffer_len, 0.0, 10.0).iter().map(|x| x.floor()).collect();
                let out = b.pad(&upload(b, &data, dtype), &v.layout, &pads, -1.0).unwrap();
                let got = download(b, &out, &Layout::contiguous(&out_shape));
                let mut want = vec![];
                for i in 0..out_shape[0] {
                    for j in 0..out_shape[1] {
                        for k in 0..out_shape[2] {
                            let idx = [i, j, k];
                            let src: Option<Vec<usize>> =
                                (0..3).map(|d| idx[d].checked_sub(pads[d].0).filter(|&s| s < shape[d])).collect();
                            want.push(match src {
                                Some(s) => at(&data, &v.layout, &s),
                                None => -1.0,
                            });
                        }
                    }
                }
                assert_eq!(got, want, "pad {dtype} {shape:?} {pads:?} {}", v.kind);
            }
        }
    }
}
