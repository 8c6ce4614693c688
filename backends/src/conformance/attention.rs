//! Conformance check for the packed attention backward (`Fused::packed_attention_backward`).

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
