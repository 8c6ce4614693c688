//! Conformance checks for the int8 kernels: i8 x i8 -> i32 matmul and the ternary 1x1 conv.

use super::*;
use crate::Error;

/// Random i8 values over the full range.
fn i8_data(rng: &mut TestRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.below(256) as f64 - 128.0).collect()
}

/// Batched i8 matmul (exact i32 results) over odd sizes and strided views of both operands.
pub fn check_int8_matmul<B: Backend>(b: &B) {
    let mut rng = TestRng::new(61);
    let dims: [(usize, usize, usize, usize); 6] =
        [(1, 1, 1, 1), (1, 3, 7, 33), (2, 33, 127, 7), (1, 7, 300, 270), (3, 5, 1, 9), (1, 127, 33, 3)];
    for (batch, m, k, n) in dims {
        let (sa, sb) = if batch == 1 { (vec![m, k], vec![k, n]) } else { (vec![batch, m, k], vec![batch, k, n]) };
        let (va, vb) = (views_of(&sa), views_of(&sb));
        for (i, v1) in va.iter().enumerate() {
            let v2 = &vb[(i + rng.below(vb.len())) % vb.len()];
            let da = i8_data(&mut rng, v1.buffer_len);
            let db = i8_data(&mut rng, v2.buffer_len);
            let (a, bb) = (upload(b, &da, DType::I8), upload(b, &db, DType::I8));
            let out = b.matmul(&a, &v1.layout, &bb, &v2.layout).unwrap();
            assert_eq!(b.dtype(&out), DType::I32, "i8 matmul result dtype");
            let got = download(b, &out, &Layout::contiguous(&[batch, m, n]));
            let (la, lb) = (logical(&da, &v1.layout), logical(&db, &v2.layout));
            let mut want = vec![0.0; batch * m * n];
            for bi in 0..batch {
                for r in 0..m {
                    for c in 0..n {
                        want[(bi * m + r) * n + c] =
                            (0..k).map(|p| la[(bi * m + r) * k + p] * lb[(bi * k + p) * n + c]).sum::<f64>();
                    }
                }
            }
            assert_eq!(got, want, "i8 matmul [{batch}, {m}, {k}] x [{batch}, {k}, {n}] a {} b {}", v1.kind, v2.kind);
        }
    }
}

/// Ternary 1x1 convolution against a naive loop: odd sizes, strided views of `x` and `w`,
/// all-zero weight rows; non-ternary weights, wrong dtypes and shapes are errors.
pub fn check_ternary_conv1x1<B: Backend>(b: &B) {
    let mut rng = TestRng::new(62);
    let cases: [([usize; 4], usize); 6] = [
        ([1, 1, 1, 1], 1),
        ([2, 7, 3, 5], 3),
        ([3, 33, 7, 7], 17),
        ([1, 127, 4, 3], 2),
        ([2, 3, 33, 1], 7),
        ([1, 5, 64, 65], 4),
    ];
    for (xs, o) in cases {
        let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
        let hw = h * w;
        let (vx, vw) = (views_of(&xs), views_of(&[o, c]));
        for (i, v1) in vx.iter().enumerate() {
            let v2 = &vw[i % vw.len()];
            let dx = i8_data(&mut rng, v1.buffer_len);
            let mut dw: Vec<f64> = (0..v2.buffer_len).map(|_| rng.below(3) as f64 - 1.0).collect();
            if i == 0 {
                // One output channel with no nonzero weight.
                for ci in 0..c {
                    let idx = [0, ci];
                    let pos =
                        v2.layout.offset() + idx.iter().zip(v2.layout.strides()).map(|(a, s)| a * s).sum::<usize>();
                    dw[pos] = 0.0;
                }
            }
            let (x, wt) = (upload(b, &dx, DType::I8), upload(b, &dw, DType::I8));
            let out = b.ternary_conv1x1(&x, &v1.layout, &wt, &v2.layout).unwrap();
            assert_eq!(b.dtype(&out), DType::I32, "ternary_conv1x1 result dtype");
            let got = download(b, &out, &Layout::contiguous(&[n, o, h, w]));
            let (lx, lw) = (logical(&dx, &v1.layout), logical(&dw, &v2.layout));
            let mut want = vec![0.0; n * o * hw];
            for ni in 0..n {
                for oc in 0..o {
                    for p in 0..hw {
                        want[(ni * o + oc) * hw + p] =
                            (0..c).map(|ci| lw[oc * c + ci] * lx[(ni * c + ci) * hw + p]).sum();
                    }
                }
            }
            assert_eq!(got, want, "ternary_conv1x1 x {xs:?} ({}) w [{o}, {c}] ({})", v1.kind, v2.kind);
        }
    }
    let x = upload(b, &[1.0; 12], DType::I8);
    let lx = Layout::contiguous(&[1, 3, 2, 2]);
    let w = upload(b, &[1.0, 0.0, 2.0], DType::I8);
    let e = b.ternary_conv1x1(&x, &lx, &w, &Layout::contiguous(&[1, 3])).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { op: "ternary_conv1x1", .. }), "{e}");
    let w = upload(b, &[1.0, 0.0, -1.0, 1.0], DType::I8);
    let e = b.ternary_conv1x1(&x, &lx, &w, &Layout::contiguous(&[2, 2])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "ternary_conv1x1", .. }), "{e}");
    let wf = upload(b, &[1.0, 0.0, -1.0], DType::F32);
    let e = b.ternary_conv1x1(&x, &lx, &wf, &Layout::contiguous(&[1, 3])).unwrap_err();
    assert!(matches!(e, Error::UnsupportedDType { .. }), "{e}");
    let xf = upload(b, &[1.0; 12], DType::F32);
    let w = upload(b, &[1.0, 0.0, -1.0], DType::I8);
    let e = b.ternary_conv1x1(&xf, &lx, &w, &Layout::contiguous(&[1, 3])).unwrap_err();
    assert!(matches!(e, Error::UnsupportedDType { .. }), "{e}");
}

/// The reference code of one float: `round(clamp(x·mul / div, lo, hi)) − zero` with each
/// operation rounded in the input's dtype (`f32` when `single`), NaN -> 0.
fn reference_code(x: f64, mul: f64, div: f64, (lo, hi): (f64, f64), zero: i32, single: bool) -> f64 {
    let v = if single {
        let x = x as f32;
        f64::from(if mul == 1.0 { x } else { x * mul as f32 } / div as f32)
    } else {
        (if mul == 1.0 { x } else { x * mul }) / div
    };
    if v.is_nan() {
        return 0.0;
    }
    v.clamp(lo, hi).round_ties_even() - f64::from(zero)
}

/// `quantize_i8` against the per-element reference: f32 and f64, contiguous and strided views,
/// signed and unsigned (offset) codes, values on exact ties, beyond the range, ±∞ and NaN;
/// bad scalars and integer inputs are errors.
pub fn check_quantize_i8<B: Backend + Fused>(b: &B) {
    let mut rng = TestRng::new(63);
    // (mul, div, range, zero): LSQ signed and unsigned (`x / step`), PACT (`x · 255 / α`).
    let params: [(f64, f64, (f64, f64), i32); 3] =
        [(1.0, 0.037, (-128.0, 127.0), 0), (1.0, 0.0213, (0.0, 255.0), 128), (255.0, 3.7, (0.0, 255.0), 128)];
    for dtype in [DType::F32, DType::F64] {
        for shape in [vec![1usize], vec![3, 5, 7], vec![2, 3, 33, 65], vec![2, 40_001]] {
            for v in views_of(&shape) {
                for &(mul, div, range, zero) in &params {
                    let step = div / mul;
                    let mut data: Vec<f64> = (0..v.buffer_len)
                        .map(|i| match i % 7 {
                            // Exact ties of the scaled value (and of the codes' range ends).
                            0 => (rng.below(600) as f64 - 300.0 + 0.5) * step,
                            _ => rng.range(-300.0, 300.0) * step,
                        })
                        .collect();
                    for (i, special) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY].into_iter().enumerate() {
                        if let Some(x) = data.get_mut(v.layout.offset() + i) {
                            *x = special;
                        }
                    }
                    let x = upload(b, &data, dtype);
                    let out = b.quantize_i8(&x, &v.layout, mul, div, range, zero).unwrap();
                    assert_eq!(b.dtype(&out), DType::I8, "quantize_i8 result dtype");
                    let got = download(b, &out, &Layout::contiguous(&shape));
                    let want: Vec<f64> = logical(&data, &v.layout)
                        .iter()
                        .map(|&x| reference_code(x, mul, div, range, zero, dtype == DType::F32))
                        .collect();
                    assert_eq!(
                        got, want,
                        "quantize_i8 {dtype:?} {shape:?} ({}) mul {mul} div {div} zero {zero}",
                        v.kind
                    );
                }
            }
        }
    }
    let x = upload(b, &[1.0; 4], DType::F32);
    let l = Layout::contiguous(&[4]);
    for (mul, div, range, zero) in
        [(1.0, 0.0, (0.0, 1.0), 0), (0.0, 1.0, (0.0, 1.0), 0), (1.0, 1.0, (0.0, 255.0), 0), (1.0, 1.0, (2.0, 1.0), 0)]
    {
        let e = b.quantize_i8(&x, &l, mul, div, range, zero).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { op: "quantize_i8", .. }), "{e}");
    }
    let xi = upload(b, &[1.0; 4], DType::I32);
    assert!(b.quantize_i8(&xi, &l, 1.0, 1.0, (0.0, 1.0), 0).is_err());
}

/// `requantize` against `((acc + terms) as f32)·scale + shift` in f32, with and without the
/// per-image terms and the clamp, contiguous and strided accumulators; wrong dtypes are errors.
pub fn check_requantize<B: Backend + Fused>(b: &B) {
    let mut rng = TestRng::new(64);
    for shape in [vec![1usize, 1], vec![3, 5], vec![2, 3, 7, 5], vec![4, 17, 33, 9], vec![1, 64, 130, 130]] {
        let (n, c) = (shape[0], shape[1]);
        let s: usize = shape[2..].iter().product();
        for v in views_of(&shape) {
            let acc: Vec<f64> = (0..v.buffer_len).map(|_| rng.below(2_000_001) as f64 - 1_000_000.0).collect();
            let terms: Vec<f64> = (0..c * s).map(|_| rng.below(20_001) as f64 - 10_000.0).collect();
            let scale: Vec<f64> = (0..c).map(|_| f64::from(rng.range(-1e-3, 1e-3) as f32)).collect();
            let shift: Vec<f64> = (0..c).map(|_| f64::from(rng.range(-2.0, 2.0) as f32)).collect();
            let (a, t) = (upload(b, &acc, DType::I32), upload(b, &terms, DType::I32));
            let (m, d) = (upload(b, &scale, DType::F32), upload(b, &shift, DType::F32));
            for (with_terms, clamp) in
                [(false, None), (true, None), (true, Some((0.0, 6.0))), (false, Some((-1.0, 0.5)))]
            {
                let out = b.requantize(&a, &v.layout, with_terms.then_some(&t), &m, &d, clamp).unwrap();
                assert_eq!(b.dtype(&out), DType::F32, "requantize result dtype");
                let got = download(b, &out, &Layout::contiguous(&shape));
                let logical_acc = logical(&acc, &v.layout);
                let (mut want, mut size) = (vec![0.0; got.len()], vec![0.0; got.len()]);
                for i in 0..n * c * s {
                    let (ch, pos) = ((i / s) % c, i % (c * s));
                    let sum = logical_acc[i] as i32 + if with_terms { terms[pos] as i32 } else { 0 };
                    let y = f64::from(sum as f32 * scale[ch] as f32 + shift[ch] as f32);
                    want[i] = clamp.map_or(y, |(lo, hi)| y.clamp(lo, hi));
                    size[i] = (f64::from(sum) * scale[ch]).abs() + shift[ch].abs();
                }
                // One rounding of difference where a device fuses the multiply-add.
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 2.0 * f64::from(f32::EPSILON) * size[i],
                        "requantize {shape:?} ({}) terms {with_terms} clamp {clamp:?}: element {i} is {g}, reference {w}",
                        v.kind
                    );
                }
            }
        }
    }
    let l = Layout::contiguous(&[2, 3, 2]);
    let acc = upload(b, &[1.0; 12], DType::I32);
    let (m, d) = (upload(b, &[1.0; 3], DType::F32), upload(b, &[0.0; 3], DType::F32));
    let accf = upload(b, &[1.0; 12], DType::F32);
    assert!(b.requantize(&accf, &l, None, &m, &d, None).is_err());
    let m64 = upload(b, &[1.0; 3], DType::F64);
    assert!(b.requantize(&acc, &l, None, &m64, &d, None).is_err());
    let tf = upload(b, &[1.0; 6], DType::F32);
    assert!(b.requantize(&acc, &l, Some(&tf), &m, &d, None).is_err());
}

/// `lsq_quantize` and its backward against per-element references: f32 and f64, contiguous and
/// strided views, values on exact ties and beyond the range, signed and unsigned ranges; the
/// forward exactly, `gx` exactly, the step gradient to summation rounding; a step of two
/// elements, a bad range and integer inputs are errors.
pub fn check_lsq_quantize<B: Backend + Fused>(b: &B) {
    let mut rng = TestRng::new(65);
    for dtype in [DType::F32, DType::F64] {
        let single = dtype == DType::F32;
        // Each value rounded to the dtype, as the device holds it.
        let r = |v: f64| if single { f64::from(v as f32) } else { v };
        for shape in [vec![1usize], vec![3, 5, 7], vec![2, 3, 33, 65], vec![2, 40_001]] {
            for v in views_of(&shape) {
                for (s, range) in [(0.037, (-128.0, 127.0)), (0.0213, (0.0, 255.0)), (1.5, (-1.0, 1.0))] {
                    let s = r(s);
                    let x: Vec<f64> = (0..v.buffer_len)
                        .map(|i| match i % 5 {
                            0 => r((rng.below(600) as f64 - 300.0 + 0.5) * s),
                            _ => r(rng.range(-300.0, 300.0) * s),
                        })
                        .collect();
                    let g: Vec<f64> = (0..v.buffer_len).map(|_| r(rng.range(-1.0, 1.0))).collect();
                    let (xs, gs, ss) = (upload(b, &x, dtype), upload(b, &g, dtype), upload(b, &[s], dtype));
                    let what = format!("lsq_quantize {dtype:?} {shape:?} ({}) s {s} range {range:?}", v.kind);
                    let out = b.lsq_quantize(&xs, &v.layout, &ss, range).unwrap();
                    let got = download(b, &out, &Layout::contiguous(&shape));
                    let (lx, lg) = (logical(&x, &v.layout), logical(&g, &v.layout));
                    let quotient = |x: f64| if single { f64::from(x as f32 / s as f32) } else { x / s };
                    let want: Vec<f64> =
                        lx.iter().map(|&x| r(quotient(x).clamp(range.0, range.1).round_ties_even() * s)).collect();
                    assert_eq!(got, want, "{what}");
                    let (gx, gstep) = b.lsq_quantize_backward(&gs, &v.layout, &xs, &v.layout, &ss, range).unwrap();
                    let gx = download(b, &gx, &Layout::contiguous(&shape));
                    let gstep = download(b, &gstep, &Layout::contiguous(&[1]))[0];
                    let (mut want_gx, mut want_gs, mut size) = (vec![0.0; lx.len()], 0.0, 0.0);
                    for (i, (&x, &g)) in lx.iter().zip(&lg).enumerate() {
                        let q = quotient(x);
                        let t = if q < range.0 {
                            range.0
                        } else if q > range.1 {
                            range.1
                        } else {
                            want_gx[i] = g;
                            r(q.round_ties_even() - q)
                        };
                        want_gs += g * t;
                        size += (g * t).abs();
                    }
                    assert_eq!(gx, want_gx, "{what}: gx");
                    let tol = if single { 1e-5 } else { 1e-12 };
                    assert!(
                        (gstep - want_gs).abs() <= tol * (1.0 + size),
                        "{what}: step gradient {gstep} vs {want_gs}"
                    );
                }
            }
        }
    }
    let x = upload(b, &[1.0; 4], DType::F32);
    let l = Layout::contiguous(&[4]);
    let s = upload(b, &[0.5], DType::F32);
    assert!(b.lsq_quantize(&x, &l, &s, (1.0, -1.0)).is_err());
    assert!(b.lsq_quantize(&x, &l, &s, (f64::NAN, 1.0)).is_err());
    let xi = upload(b, &[1.0; 4], DType::I32);
    assert!(b.lsq_quantize(&xi, &l, &s, (-1.0, 1.0)).is_err());
    let g = upload(b, &[1.0; 3], DType::F32);
    assert!(b.lsq_quantize_backward(&g, &Layout::contiguous(&[3]), &x, &l, &s, (-1.0, 1.0)).is_err());
}
