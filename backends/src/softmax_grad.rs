//! The input gradient of softmax and log-softmax along one axis, from the op's output: the
//! composite fallback a backend gets when it has no fused kernel (see
//! [`crate::Fused::softmax_backward`]).

use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::{Backend, Error, Layout, Result};

/// Checks the operands of a softmax backward: equal shapes, `axis` inside them.
pub fn check(op: &'static str, ly: &Layout, lg: &Layout, axis: usize) -> Result<()> {
    if ly.shape() != lg.shape() {
        return Err(Error::shape(op, ly.shape(), lg.shape()));
    }
    if axis >= ly.ndim() {
        return Err(Error::AxisOutOfRange { op, axis, ndim: ly.ndim() });
    }
    Ok(())
}

/// [`crate::Fused::softmax_backward`] from `reduce`, `unary` and `binary`: softmax
/// `y·(g − Σ g·y)`, log-softmax `g − e^y·Σ g`, the sums along `axis`.
pub fn softmax_backward_composite<B: Backend + ?Sized>(
    b: &B,
    y: &B::Storage,
    ly: &Layout,
    g: &B::Storage,
    lg: &Layout,
    axis: usize,
    log: bool,
) -> Result<B::Storage> {
    const OP: &str = "softmax_backward";
    check(OP, ly, lg, axis)?;
    let shape = ly.shape();
    let full = Layout::contiguous(shape);
    let mut reduced = shape.to_vec();
    reduced[axis] = 1;
    let spread = Layout::contiguous(&reduced).broadcast_to(shape)?;
    if log {
        let total = b.reduce(ReduceOp::Sum, g, lg, &[axis], true)?;
        let e = b.unary(UnaryOp::Exp, y, ly)?;
        let scaled = b.binary(BinaryOp::Mul, &e, &full, &total, &spread)?;
        b.binary(BinaryOp::Sub, g, lg, &scaled, &full)
    } else {
        let gy = b.binary(BinaryOp::Mul, g, lg, y, ly)?;
        let dot = b.reduce(ReduceOp::Sum, &gy, &full, &[axis], true)?;
        let centered = b.binary(BinaryOp::Sub, g, lg, &dot, &spread)?;
        b.binary(BinaryOp::Mul, y, ly, &centered, &full)
    }
}
