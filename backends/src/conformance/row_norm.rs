//! Layer-norm primitives (forward and backward over `[R, D]` rows) on every view kind, with and
//! without the affine parameters, against naive per-row loops.

use super::{assert_close, download, host, logical, tol, upload, views_of, TestRng};
use crate::{DType, Error, Fused, Layout};

/// Shapes with the number of normalized elements per row: several trailing axes, one row, more
/// rows than one parallel block, and an input large enough to be split across threads.
const CASES: [(&[usize], usize); 6] =
    [(&[5, 8], 8), (&[3, 4, 6], 24), (&[2, 3, 33], 33), (&[130, 17], 17), (&[1, 7], 7), (&[200, 180], 180)];

/// Per-row reference: `(x̂, mean, rstd)`.
fn normalize_ref(x: &[f64], d: usize, eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut xh, mut means, mut rstds) = (vec![], vec![], vec![]);
    for row in x.chunks(d) {
        let m = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - m).powi(2)).sum::<f64>() / d as f64;
        let rs = 1.0 / (var + eps).sqrt();
        xh.extend(row.iter().map(|v| (v - m) * rs));
        means.push(m);
        rstds.push(rs);
    }
    (xh, means, rstds)
}

/// `layer_norm` and `layer_norm_backward` against naive loops, plus their errors.
pub fn check_layer_norm<B: Fused>(b: &B) {
    let mut rng = TestRng::new(41);
    let eps = 1e-5;
    for (shape, d) in CASES {
        let out = Layout::contiguous(shape);
        for v in views_of(shape) {
            for dtype in [DType::F32, DType::F64] {
                let (rt, at) = tol(dtype);
                // Rows sit at different offsets so that centering matters.
                let xd: Vec<f64> =
                    rng.vec(v.buffer_len, -1.0, 1.0).iter().enumerate().map(|(i, x)| x + (i % 7) as f64).collect();
                let gd = rng.vec(v.buffer_len, -1.0, 1.0);
                let (wd, bd) = (rng.vec(d, -2.0, 2.0), rng.vec(d, -1.0, 1.0));
                let (xs, gs, ws, bs) =
                    (upload(b, &xd, dtype), upload(b, &gd, dtype), upload(b, &wd, dtype), upload(b, &bd, dtype));
                let x = logical(&host(&xd, dtype).to_f64_vec(), &v.layout);
                let g = logical(&host(&gd, dtype).to_f64_vec(), &v.layout);
                let (w, bias) = (host(&wd, dtype).to_f64_vec(), host(&bd, dtype).to_f64_vec());
                let (xh, means, rstds) = normalize_ref(&x, d, eps);
                let rows = Layout::contiguous(&[x.len() / d]);
                for (with_w, with_b) in [(true, true), (true, false), (false, true), (false, false)] {
                    let what = |op: &str| format!("{op} {dtype} {shape:?} {} weight={with_w} bias={with_b}", v.kind);
                    let (wo, bo) = (with_w.then_some(&ws), with_b.then_some(&bs));
                    let (y, mean, rstd) = b.layer_norm(&xs, &v.layout, d, wo, bo, eps).unwrap();
                    let want: Vec<f64> = (0..x.len())
                        .map(|i| {
                            let j = i % d;
                            xh[i] * if with_w { w[j] } else { 1.0 } + if with_b { bias[j] } else { 0.0 }
                        })
                        .collect();
                    assert_close(&download(b, &y, &out), &want, rt * 10.0, at * 10.0, &what("layer_norm y"));
                    assert_close(&download(b, &mean, &rows), &means, rt, at, &what("layer_norm mean"));
                    assert_close(&download(b, &rstd, &rows), &rstds, rt * 10.0, at * 10.0, &what("layer_norm rstd"));

                    let (gx, gw, gb) =
                        b.layer_norm_backward(&gs, &v.layout, &xs, &v.layout, d, &mean, &rstd, wo).unwrap();
                    let gh: Vec<f64> = (0..x.len()).map(|i| g[i] * if with_w { w[i % d] } else { 1.0 }).collect();
                    let mut want_gx = vec![0.0; x.len()];
                    for (r, rs) in rstds.iter().enumerate() {
                        let span = r * d..(r + 1) * d;
                        let a = gh[span.clone()].iter().sum::<f64>() / d as f64;
                        let c = span.clone().map(|i| gh[i] * xh[i]).sum::<f64>() / d as f64;
                        for i in span {
                            want_gx[i] = rs * (gh[i] - a - xh[i] * c);
                        }
                    }
                    let want_gw: Vec<f64> =
                        (0..d).map(|j| (j..x.len()).step_by(d).map(|i| g[i] * xh[i]).sum()).collect();
                    let want_gb: Vec<f64> = (0..d).map(|j| (j..x.len()).step_by(d).map(|i| g[i]).sum()).collect();
                    let cols = Layout::contiguous(&[d]);
                    let scale = (x.len() / d) as f64;
                    assert_close(
                        &download(b, &gx, &out),
                        &want_gx,
                        rt * 50.0,
                        at * 50.0,
                        &what("layer_norm_backward gx"),
                    );
                    assert_close(
                        &download(b, &gw, &cols),
                        &want_gw,
                        rt * scale,
                        at * scale,
                        &what("layer_norm_backward gw"),
                    );
                    assert_close(
                        &download(b, &gb, &cols),
                        &want_gb,
                        rt * scale,
                        at * scale,
                        &what("layer_norm_backward gb"),
                    );
                }
            }
        }
    }
    // Rows that do not tile the input, a weight of the wrong length, integers, shape mismatches.
    let l = Layout::contiguous(&[2, 3]);
    let x = upload(b, &[1.0; 6], DType::F32);
    let err = b.layer_norm(&x, &l, 4, None, None, eps).unwrap_err().to_string();
    assert!(err.contains("layer_norm") && err.contains("4 elements"), "{err}");
    let short = upload(b, &[1.0; 2], DType::F32);
    let err = b.layer_norm(&x, &l, 3, Some(&short), None, eps).unwrap_err().to_string();
    assert!(err.contains("layer_norm") && err.contains("weight"), "{err}");
    let xi = upload(b, &[1.0; 6], DType::I64);
    let err = b.layer_norm(&xi, &l, 3, None, None, eps).unwrap_err();
    assert_eq!(err, Error::UnsupportedDType { op: "layer_norm", dtype: DType::I64 });
    let (_, mean, rstd) = b.layer_norm(&x, &l, 3, None, None, eps).unwrap();
    let err = b.layer_norm_backward(&x, &Layout::contiguous(&[3, 2]), &x, &l, 3, &mean, &rstd, None).unwrap_err();
    assert!(err.to_string().contains("layer_norm_backward"), "{err}");
}
