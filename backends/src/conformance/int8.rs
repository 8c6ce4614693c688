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
