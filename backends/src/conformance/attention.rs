//! Conformance checks for packed multi-head self-attention (`Fused::packed_attention`) and its
//! backward pass (`Fused::packed_attention_backward`).

use super::*;

/// Naive f64 loops for the gradient of `qkv` `[B, N, 3C]` (see the op's docs), logical values.
fn naive(qkv: &[f64], p: &[f64], g: &[f64], (b, n, h, d): (usize, usize, usize, usize), scale: f64) -> Vec<f64> {
    let c = h * d;
    let mut out = vec![0.0; b * n * 3 * c];
    for bi in 0..b {
        for hi in 0..h {
            let x = |which: usize, i: usize, e: usize| qkv[(bi * n + i) * 3 * c + which * c + hi * d + e];
            let go = |i: usize, e: usize| g[(bi * n + i) * c + hi * d + e];
            let pr = |i: usize, j: usize| p[((bi * h + hi) * n + i) * n + j];
            let gp = |i: usize, j: usize| (0..d).map(|e| go(i, e) * x(2, j, e)).sum::<f64>();
            let mut gs = vec![0.0; n * n];
            for i in 0..n {
                let dot: f64 = (0..n).map(|l| gp(i, l) * pr(i, l)).sum();
                for j in 0..n {
                    gs[i * n + j] = pr(i, j) * (gp(i, j) - dot) * scale;
                }
            }
            for i in 0..n {
                for e in 0..d {
                    let row = (bi * n + i) * 3 * c + hi * d + e;
                    out[row] = (0..n).map(|j| gs[i * n + j] * x(1, j, e)).sum();
                    out[row + c] = (0..n).map(|j| gs[j * n + i] * x(0, j, e)).sum();
                    out[row + 2 * c] = (0..n).map(|j| pr(j, i) * go(j, e)).sum();
                }
            }
        }
    }
    out
}

/// The gradient of `qkv` against naive loops, in f32 and f64, for odd sizes (one token, one
/// head, head widths 1-9, 65 tokens as in ViT-Tiny/4) and every kind of view of each operand;
/// mismatched shapes are errors naming the op.
pub fn check_packed_attention_backward<B: Backend + Fused>(be: &B) {
    let mut rng = TestRng::new(16);
    for (b, n, h, d) in [(1, 1, 1, 1), (2, 5, 3, 4), (1, 7, 2, 9), (2, 65, 3, 8)] {
        let c = h * d;
        let (vq, vp, vg) = (views_of(&[b, n, 3 * c]), views_of(&[b, h, n, n]), views_of(&[b, n, c]));
        for (i, view) in vq.iter().enumerate() {
            let (lp, lg) = (&vp[(i + 1) % vp.len()], &vg[(i + 2) % vg.len()]);
            for dtype in [DType::F32, DType::F64] {
                let (dq, dp, dg) = (
                    rng.vec(view.buffer_len, -1.0, 1.0),
                    rng.vec(lp.buffer_len, 0.0, 1.0),
                    rng.vec(lg.buffer_len, -1.0, 1.0),
                );
                let stored = |v: &[f64], l: &Layout| logical(&host(v, dtype).to_f64_vec(), l);
                let want = naive(
                    &stored(&dq, &view.layout),
                    &stored(&dp, &lp.layout),
                    &stored(&dg, &lg.layout),
                    (b, n, h, d),
                    0.35,
                );
                let out = be
                    .packed_attention_backward(
                        &upload(be, &dq, dtype),
                        &view.layout,
                        &upload(be, &dp, dtype),
                        &lp.layout,
                        &upload(be, &dg, dtype),
                        &lg.layout,
                        h,
                        0.35,
                    )
                    .unwrap();
                let got = download(be, &out, &Layout::contiguous(&[b, n, 3 * c]));
                let (rt, at_) = match dtype {
                    DType::F32 => (1e-4, 1e-5 * (n as f64 + 1.0)),
                    _ => (1e-11, 1e-12),
                };
                let what = format!(
                    "packed_attention_backward {dtype} B {b} N {n} H {h} D {d} {}/{}/{}",
                    view.kind, lp.kind, lg.kind
                );
                assert_close(&got, &want, rt, at_, &what);
            }
        }
    }
    let s = upload(be, &[0.0; 64], DType::F32);
    let l = |shape: &[usize]| Layout::contiguous(shape);
    let err = |lq: &Layout, lp: &Layout, lg: &Layout, heads| {
        be.packed_attention_backward(&s, lq, &s, lp, &s, lg, heads, 1.0).unwrap_err().to_string()
    };
    assert!(err(&l(&[1, 2, 6]), &l(&[1, 2, 2, 2]), &l(&[1, 2, 2]), 4)
        .starts_with("packed_attention_backward: qkv [1, 2, 6]"));
    assert!(err(&l(&[1, 2, 6]), &l(&[1, 1, 2, 3]), &l(&[1, 2, 2]), 1).contains("probabilities [1, 1, 2, 3]"));
}

/// Naive f64 loops for the forward: `(y [B, N, C], p [B, H, N, N])`.
fn naive_forward(qkv: &[f64], (b, n, h, d): (usize, usize, usize, usize), scale: f64) -> (Vec<f64>, Vec<f64>) {
    let c = h * d;
    let (mut y, mut p) = (vec![0.0; b * n * c], vec![0.0; b * h * n * n]);
    for bi in 0..b {
        for hi in 0..h {
            let x = |which: usize, i: usize, e: usize| qkv[(bi * n + i) * 3 * c + which * c + hi * d + e];
            for i in 0..n {
                let s: Vec<f64> =
                    (0..n).map(|j| (0..d).map(|e| x(0, i, e) * x(1, j, e)).sum::<f64>() * scale).collect();
                let top = s.iter().copied().fold(f64::MIN, f64::max);
                let total: f64 = s.iter().map(|v| (v - top).exp()).sum();
                let row = &mut p[((bi * h + hi) * n + i) * n..][..n];
                for (r, v) in row.iter_mut().zip(&s) {
                    *r = (v - top).exp() / total;
                }
                for e in 0..d {
                    y[(bi * n + i) * c + hi * d + e] = (0..n).map(|j| row[j] * x(2, j, e)).sum();
                }
            }
        }
    }
    (y, p)
}

/// The forward's outputs and probabilities against naive loops, in f32 and f64, for the sizes of
/// [`check_packed_attention_backward`] and every kind of view of `qkv`; a bad shape is an error
/// naming the op.
pub fn check_packed_attention<B: Backend + Fused>(be: &B) {
    let mut rng = TestRng::new(17);
    for (b, n, h, d) in [(1, 1, 1, 1), (2, 5, 3, 4), (1, 7, 2, 9), (2, 65, 3, 8)] {
        let c = h * d;
        for view in views_of(&[b, n, 3 * c]) {
            for dtype in [DType::F32, DType::F64] {
                let data = rng.vec(view.buffer_len, -2.0, 2.0);
                let (want_y, want_p) =
                    naive_forward(&logical(&host(&data, dtype).to_f64_vec(), &view.layout), (b, n, h, d), 0.4);
                let (y, p) = be.packed_attention(&upload(be, &data, dtype), &view.layout, h, 0.4).unwrap();
                let got_y = download(be, &y, &Layout::contiguous(&[b, n, c]));
                let got_p = download(be, &p, &Layout::contiguous(&[b, h, n, n]));
                let (rt, at_) = match dtype {
                    DType::F32 => (1e-4, 1e-5 * (d as f64).sqrt()),
                    _ => (1e-11, 1e-12),
                };
                let what = format!("packed_attention {dtype} B {b} N {n} H {h} D {d} {}", view.kind);
                assert_close(&got_p, &want_p, rt, at_, &format!("{what}: probabilities"));
                assert_close(&got_y, &want_y, rt, at_, &format!("{what}: output"));
            }
        }
    }
    let s = upload(be, &[0.0; 12], DType::F32);
    let e = be.packed_attention(&s, &Layout::contiguous(&[1, 2, 6]), 4, 1.0).unwrap_err().to_string();
    assert!(e.starts_with("packed_attention: qkv [1, 2, 6]"), "{e}");
}
