//! The shapes of a batched matrix product.

use crate::{Error, Layout, Result};

/// Checks `[..., M, K] x [..., K, N]` with equal batch dims; returns (batch, M, K, N, out shape).
pub(crate) fn matmul_dims(la: &Layout, lb: &Layout) -> Result<(usize, usize, usize, usize, Vec<usize>)> {
    let (sa, sb) = (la.shape(), lb.shape());
    let nd = sa.len();
    if nd < 2 || sb.len() != nd || sa[..nd - 2] != sb[..nd - 2] || sa[nd - 1] != sb[nd - 2] {
        return Err(Error::shape("matmul", sa, sb));
    }
    let (m, k, n) = (sa[nd - 2], sa[nd - 1], sb[nd - 1]);
    let batch: usize = sa[..nd - 2].iter().product();
    let mut out = sa[..nd - 2].to_vec();
    out.extend([m, n]);
    Ok((batch, m, k, n, out))
}
