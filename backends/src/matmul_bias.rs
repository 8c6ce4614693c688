//! A matrix product with a bias row added to every row of its result (a linear layer's
//! forward, `x Wᵀ + b`): the operands' checks and the composite fallback a backend gets when
//! it has no fused kernel (see [`crate::Fused::matmul_bias`]).

use crate::ops::BinaryOp;
use crate::{Backend, Error, Layout, Result};

/// Checks `[M, K] x [K, N] + [N]`; returns `(M, K, N)`. Errors name the op and the shapes.
pub fn check(la: &Layout, lb: &Layout, lbias: &Layout) -> Result<(usize, usize, usize)> {
    const OP: &str = "matmul_bias";
    let (sa, sb) = (la.shape(), lb.shape());
    if sa.len() != 2 || sb.len() != 2 || sa[1] != sb[0] {
        return Err(Error::shape(OP, sa, sb));
    }
    if lbias.shape() != [sb[1]] {
        return Err(Error::invalid(
            OP,
            format!("bias of shape {:?} for a product of {} columns ({sa:?} x {sb:?})", lbias.shape(), sb[1]),
        ));
    }
    Ok((sa[0], sa[1], sb[1]))
}

/// [`crate::Fused::matmul_bias`] from [`Backend::matmul`] and a broadcast [`Backend::binary`]
/// add: the product, then the bias added to every row in a pass of its own.
pub fn matmul_bias_composite<B: Backend + ?Sized>(
    b: &B,
    a: &B::Storage,
    la: &Layout,
    w: &B::Storage,
    lw: &Layout,
    bias: &B::Storage,
    lbias: &Layout,
) -> Result<B::Storage> {
    let (m, _, n) = check(la, lw, lbias)?;
    let (da, dw, dbias) = (b.dtype(a), b.dtype(w), b.dtype(bias));
    if da != dw || da != dbias {
        let rhs = if da != dw { dw } else { dbias };
        return Err(Error::DTypeMismatch { op: "matmul_bias", lhs: da, rhs });
    }
    let y = b.matmul(a, la, w, lw)?;
    b.binary(BinaryOp::Add, &y, &Layout::contiguous(&[m, n]), bias, &lbias.broadcast_to(&[m, n])?)
}
