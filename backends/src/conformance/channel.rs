//! Per-channel (batch-norm) primitives: statistics, backward sums and the channel-wise
//! multiply-add, on every view kind, against naive per-channel loops.

use super::{assert_close, download, host, logical, tol, upload, views_of, TestRng};
use crate::{Backend, DType, Fused, Layout};

const SHAPES: [&[usize]; 5] = [&[5, 3], &[3, 4, 5], &[2, 3, 5, 7], &[1, 7, 1, 3], &[33, 2, 2, 2]];

/// The row-major values of a view grouped by channel: `per[c]` holds channel `c`'s elements.
fn per_channel(vals: &[f64], shape: &[usize]) -> Vec<Vec<f64>> {
    let (c, s): (usize, usize) = (shape[1], shape[2..].iter().product());
    let mut per = vec![Vec::new(); c];
    for (i, &v) in vals.iter().enumerate() {
        per[(i / s) % c].push(v);
    }
    per
}

/// A random `[C]` vector in `dtype`: its stored values and its buffer.
fn vector<B: Backend>(b: &B, rng: &mut TestRng, c: usize, dtype: DType) -> (Vec<f64>, B::Storage) {
    let v = rng.vec(c, -2.0, 2.0);
    (host(&v, dtype).to_f64_vec(), upload(b, &v, dtype))
}

/// `channel_stats`, `channel_sums`, `channel_fma` (with and without the second term),
/// `channel_fma_relu` (with and without a residual, ReLU and ReLU6) and the gated
/// `channel_sums_gated` and `channel_fma_gated` (both masks).
pub fn check_channel_ops<B: Fused>(b: &B) {
    let mut rng = TestRng::new(31);
    // Whether some ReLU6 output was capped at 6 (the inputs' channel offsets reach past it).
    let mut capped = false;
    for shape in SHAPES {
        let c = shape[1];
        let s: usize = shape[2..].iter().product();
        let out = Layout::contiguous(shape);
        for v in views_of(shape) {
            for dtype in [DType::F32, DType::F64] {
                let what = |op: &str| format!("{op} {dtype} {shape:?} {}", v.kind);
                let (rt, at) = tol(dtype);
                // Channels sit at different offsets so that centering matters.
                let xd: Vec<f64> =
                    rng.vec(v.buffer_len, -1.0, 1.0).iter().enumerate().map(|(i, x)| x + (i % 5) as f64).collect();
                let gd = rng.vec(v.buffer_len, -1.0, 1.0);
                let (xs, gs) = (upload(b, &xd, dtype), upload(b, &gd, dtype));
                let xl = per_channel(&logical(&host(&xd, dtype).to_f64_vec(), &v.layout), shape);
                let gl = per_channel(&logical(&host(&gd, dtype).to_f64_vec(), &v.layout), shape);

                let (mean, var) = b.channel_stats(&xs, &v.layout).unwrap();
                let vl = Layout::contiguous(&[c]);
                let want_m: Vec<f64> = xl.iter().map(|x| x.iter().sum::<f64>() / x.len() as f64).collect();
                let want_v: Vec<f64> = xl
                    .iter()
                    .zip(&want_m)
                    .map(|(x, m)| x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64)
                    .collect();
                assert_close(&download(b, &mean, &vl), &want_m, rt, at, &what("channel_stats mean"));
                assert_close(&download(b, &var, &vl), &want_v, rt * 10.0, at * 10.0, &what("channel_stats var"));

                let (md, mb) = vector(b, &mut rng, c, dtype);
                let (sg, sgx) = b.channel_sums(&gs, &v.layout, &xs, &v.layout, &mb).unwrap();
                let want_g: Vec<f64> = gl.iter().map(|g| g.iter().sum()).collect();
                let want_gx: Vec<f64> =
                    (0..c).map(|k| gl[k].iter().zip(&xl[k]).map(|(g, x)| g * (x - md[k])).sum()).collect();
                let scale = (shape[0] * s) as f64;
                assert_close(&download(b, &sg, &vl), &want_g, rt * scale, at * scale, &what("channel_sums g"));
                assert_close(&download(b, &sgx, &vl), &want_gx, rt * scale, at * scale, &what("channel_sums gx"));

                let ((ad, ab), (dd, db), (yd, yb)) =
                    (vector(b, &mut rng, c, dtype), vector(b, &mut rng, c, dtype), vector(b, &mut rng, c, dtype));
                let xlog = logical(&host(&xd, dtype).to_f64_vec(), &v.layout);
                let glog = logical(&host(&gd, dtype).to_f64_vec(), &v.layout);
                for with_y in [false, true] {
                    let extra = with_y.then_some((&gs, &v.layout, &yb));
                    let got = download(b, &b.channel_fma(&xs, &v.layout, &ab, &db, extra).unwrap(), &out);
                    let want: Vec<f64> = (0..xlog.len())
                        .map(|i| {
                            let k = (i / s) % c;
                            xlog[i] * ad[k] + dd[k] + if with_y { glog[i] * yd[k] } else { 0.0 }
                        })
                        .collect();
                    assert_close(&got, &want, rt, at * 10.0, &what(&format!("channel_fma (second term {with_y})")));
                }
                for relu6 in [false, true] {
                    let act = |p: f64| if relu6 { p.clamp(0.0, 6.0) } else { p.max(0.0) };
                    let what = |op: &str| what(&format!("{op} (relu6 {relu6})"));
                    // The shift is centered on the products, so about half the outputs clip.
                    // The residual is `g` in the same view kind.
                    for with_r in [false, true] {
                        let residual = with_r.then_some((&gs, &v.layout));
                        let fused = b.channel_fma_relu(&xs, &v.layout, &ab, &db, residual, relu6).unwrap();
                        let got = download(b, &fused, &out);
                        let want: Vec<f64> = (0..xlog.len())
                            .map(|i| {
                                let k = (i / s) % c;
                                act(xlog[i] * ad[k] + dd[k] + if with_r { glog[i] } else { 0.0 })
                            })
                            .collect();
                        assert!(want.contains(&0.0) && want.iter().any(|&v| v > 0.0));
                        capped |= relu6 && want.contains(&6.0);
                        assert_close(
                            &got,
                            &want,
                            rt,
                            at * 10.0,
                            &what(&format!("channel_fma_relu (residual {with_r})")),
                        );
                    }

                    // Gated by the activation's mask of `x·a + d`: the mask is taken from the
                    // backend's own pre-activation (the reference in f64 could round the other
                    // way at 0 or 6).
                    let pre = download(b, &b.channel_fma(&xs, &v.layout, &ab, &db, None).unwrap(), &out);
                    let pass: Vec<bool> = pre.iter().map(|&p| p > 0.0 && (!relu6 || p < 6.0)).collect();
                    assert!(pass.contains(&true) && pass.contains(&false));
                    let gated: Vec<f64> = (0..glog.len()).map(|i| if pass[i] { glog[i] } else { 0.0 }).collect();
                    let gated_c = per_channel(&gated, shape);
                    let (sg, sgx) =
                        b.channel_sums_gated(&gs, &v.layout, &xs, &v.layout, &mb, (&ab, &db), relu6).unwrap();
                    let want_g: Vec<f64> = gated_c.iter().map(|g| g.iter().sum()).collect();
                    let want_gx: Vec<f64> =
                        (0..c).map(|k| gated_c[k].iter().zip(&xl[k]).map(|(g, x)| g * (x - md[k])).sum()).collect();
                    let (rs, ats) = (rt * scale, at * scale);
                    assert_close(&download(b, &sg, &vl), &want_g, rs, ats, &what("channel_sums_gated g"));
                    assert_close(&download(b, &sgx, &vl), &want_gx, rs, ats, &what("channel_sums_gated gx"));
                    let fused = b
                        .channel_fma_gated(&xs, &v.layout, &yb, &mb, (&gs, &v.layout, &db), (&ab, &db), relu6)
                        .unwrap();
                    let got = download(b, &fused, &out);
                    let want: Vec<f64> = (0..xlog.len())
                        .map(|i| {
                            let k = (i / s) % c;
                            xlog[i] * yd[k] + md[k] + gated[i] * dd[k]
                        })
                        .collect();
                    assert_close(&got, &want, rt, at * 10.0, &what("channel_fma_gated"));
                }
            }
        }
    }
    assert!(capped, "no ReLU6 output reached the cap");
    // A rank-1 input has no channel dim.
    let x = upload(b, &[1.0, 2.0], DType::F32);
    let err = b.channel_stats(&x, &Layout::contiguous(&[2])).unwrap_err().to_string();
    assert!(err.contains("channel_stats") && err.contains("rank"), "{err}");
}
