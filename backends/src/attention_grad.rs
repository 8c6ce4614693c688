//! The gradient of multi-head self-attention on a packed `qkv` buffer (timm's layout): the
//! operands' checks and the composite fallback a backend gets when it has no fused kernel (see
//! [`crate::Fused::packed_attention_backward`]).

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

/// Checks `qkv` `[B, N, 3C]`, the probabilities `p` `[B, H, N, N]` and the output gradient `g`
/// `[B, N, C]` for `heads` heads; errors name the op and the shapes.
pub fn check(lqkv: &Layout, lp: &Layout, lg: &Layout, heads: usize) -> Result<AttentionDims> {
    const OP: &str = "packed_attention_backward";
    let s = lqkv.shape();
    if s.len() != 3 || heads == 0 || s[2] == 0 || !s[2].is_multiple_of(3 * heads) {
        return Err(Error::invalid(OP, format!("qkv {s:?} is not [B, N, 3 * heads * D] with {heads} heads")));
    }
    let dims = AttentionDims { b: s[0], n: s[1], h: heads, d: s[2] / (3 * heads) };
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
    let AttentionDims { b, n, h, d } = check(lqkv, lp, lg, heads)?;
    let (qkv, lqkv) = (be.contiguous(qkv, lqkv)?, Layout::contiguous(&[b, n, 3, h, d]));
    let (g, lgo) = (be.contiguous(g, lg)?, Layout::contiguous(&[b, n, h, d]).transpose(1, 2)?);
    let parts = lqkv.permute(&[2, 0, 3, 1, 4])?;
    let (lq, lk, lv) = (parts.select(0, 0)?, parts.select(0, 1)?, parts.select(0, 2)?);
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
