//! Multi-head self-attention on a packed `qkv` buffer (timm's layout): the operands' checks and
//! the composites a backend gets when it has no fused kernels (see
//! [`crate::Fused::packed_attention`] and [`crate::Fused::packed_attention_backward`]).

use crate::ops::BinaryOp;
use crate::{Error, Fused, Layout, Result};

/// The sizes of a packed attention: batch, tokens, heads, head width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// Batch `B`.
    pub b: usize,
    /// Tokens `N`.
    pub n: usize,
    /// Heads `H`.
    pub h: usize,
    /// Features per head `D` (`C = H·D`).
    pub d: usize,
}

/// The sizes of `qkv` `[B, N, 3C]` with `heads` heads; errors name `op` and the shape.
pub fn dims(op: &'static str, lqkv: &Layout, heads: usize) -> Result<AttentionDims> {
    let s = lqkv.shape();
    if s.len() != 3 || heads == 0 || s[2] == 0 || !s[2].is_multiple_of(3 * heads) {
        return Err(Error::invalid(op, format!("qkv {s:?} is not [B, N, 3 * heads * D] with {heads} heads")));
    }
    Ok(AttentionDims { b: s[0], n: s[1], h: heads, d: s[2] / (3 * heads) })
}

/// Checks `qkv` `[B, N, 3C]`, the probabilities `p` `[B, H, N, N]` and the output gradient `g`
/// `[B, N, C]` for `heads` heads; errors name the op and the shapes.
pub fn check(lqkv: &Layout, lp: &Layout, lg: &Layout, heads: usize) -> Result<AttentionDims> {
    const OP: &str = "packed_attention_backward";
    let s = lqkv.shape();
    let dims = dims(OP, lqkv, heads)?;
    let (b, n, c) = (dims.b, dims.n, heads * dims.d);
    if lp.shape() != [b, heads, n, n] || lg.shape() != [b, n, c] {
        return Err(Error::invalid(
            OP,
            format!(
                "probabilities {:?} and output gradient {:?} do not match qkv {s:?} ([{b}, {heads}, {n}, {n}] and [{b}, {n}, {c}])",
                lp.shape(),
                lg.shape()
            ),
        ));
    }
    Ok(dims)
}

/// `qkv` `[B, N, 3C]` as contiguous `[B, N, 3, H, D]` and its queries, keys and values as
/// `[B, H, N, D]` views.
fn split<B: Fused + ?Sized>(
    be: &B,
    qkv: &B::Storage,
    lqkv: &Layout,
    AttentionDims { b, n, h, d }: AttentionDims,
) -> Result<(B::Storage, [Layout; 3])> {
    let qkv = be.contiguous(qkv, lqkv)?;
    let parts = Layout::contiguous(&[b, n, 3, h, d]).permute(&[2, 0, 3, 1, 4])?;
    Ok((qkv, [parts.select(0, 0)?, parts.select(0, 1)?, parts.select(0, 2)?]))
}

/// [`crate::Fused::packed_attention`] from a matmul, a scale, the softmax, a matmul and a copy
/// that merges the heads: `p = softmax((q kᵀ) · scale)`, `y = p v` as `[B, N, C]`.
pub fn packed_attention_composite<B: Fused + ?Sized>(
    be: &B,
    qkv: &B::Storage,
    lqkv: &Layout,
    heads: usize,
    scale: f64,
) -> Result<(B::Storage, B::Storage)> {
    let dims = dims("packed_attention", lqkv, heads)?;
    let AttentionDims { b, n, h, d } = dims;
    let (qkv, [lq, lk, lv]) = split(be, qkv, lqkv, dims)?;
    let scores = Layout::contiguous(&[b, h, n, n]);
    let s = be.matmul(&qkv, &lq, &qkv, &lk.transpose(2, 3)?)?;
    let s = be.binary_scalar(BinaryOp::Mul, &s, &scores, scale, false)?;
    let p = be.softmax(&s, &scores, 3, false)?;
    let y = be.matmul(&p, &scores, &qkv, &lv)?;
    let y = be.contiguous(&y, &Layout::contiguous(&[b, h, n, d]).transpose(1, 2)?)?;
    Ok((y, p))
}

/// [`crate::Fused::packed_attention_backward`] from matmuls, the softmax backward and a concat:
/// with `q`, `k`, `v` and `go` the per-head `[B, H, N, D]` views of `qkv` and `g`,
/// `gv = pᵀ go`, `gs = softmax_backward(p, go vᵀ) · scale`, `gq = gs k`, `gk = gsᵀ q`,
/// concatenated back into `[B, N, 3, H, D]`.
#[allow(clippy::too_many_arguments)]
pub fn packed_attention_backward_composite<B: Fused + ?Sized>(
    be: &B,
    qkv: &B::Storage,
    lqkv: &Layout,
    p: &B::Storage,
    lp: &Layout,
    g: &B::Storage,
    lg: &Layout,
    heads: usize,
    scale: f64,
) -> Result<B::Storage> {
    let dims = check(lqkv, lp, lg, heads)?;
    let AttentionDims { b, n, h, d } = dims;
    let (qkv, [lq, lk, lv]) = split(be, qkv, lqkv, dims)?;
    let (g, lgo) = (be.contiguous(g, lg)?, Layout::contiguous(&[b, n, h, d]).transpose(1, 2)?);
    let scores = Layout::contiguous(&[b, h, n, n]);
    let gv = be.matmul(p, &lp.transpose(2, 3)?, &g, &lgo)?;
    let gp = be.matmul(&g, &lgo, &qkv, &lv.transpose(2, 3)?)?;
    let gs = be.softmax_backward(p, lp, &gp, &scores, 3, false)?;
    let gs = be.binary_scalar(BinaryOp::Mul, &gs, &scores, scale, false)?;
    let gq = be.matmul(&gs, &scores, &qkv, &lk)?;
    let gk = be.matmul(&gs, &scores.transpose(2, 3)?, &qkv, &lq)?;
    // Each `[B, H, N, D]` gradient as a `[B, N, 1, H, D]` view, concatenated along the 3.
    let part = Layout::new(vec![b, n, 1, h, d], vec![h * n * d, d, 0, n * d, 1], 0)?;
    be.concat(&[(&gq, &part), (&gk, &part), (&gv, &part)], 2)
}
