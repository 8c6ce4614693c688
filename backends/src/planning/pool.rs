//! The shape checks of the pooling ops and their gradients.

use crate::ops::Pool2dParams;
use crate::{Error, Layout, Result};

/// Checks the shapes of a max-pool backward pass (gradient and indices alike, N and C equal to
/// the input's) and returns `(input, gradient)` as `[N, C, H, W]`; shared by every backend.
pub(crate) fn max_pool_backward_shapes(
    lgy: &Layout,
    li: &Layout,
    input_shape: &[usize],
) -> Result<([usize; 4], [usize; 4])> {
    const OP: &str = "max_pool2d_backward";
    let input = four_d(OP, input_shape)?;
    let sg = four_d(OP, lgy.shape())?;
    if li.shape() != lgy.shape() {
        return Err(Error::shape(OP, lgy.shape(), li.shape()));
    }
    if sg[0] != input[0] || sg[1] != input[1] {
        return Err(Error::invalid(
            OP,
            format!("gradient {:?} does not match input shape {input_shape:?} in N and C", lgy.shape()),
        ));
    }
    Ok((input, sg))
}

/// Checks that an average-pool gradient has the shape the forward pass gives `input_shape` and
/// returns the input as `[N, C, H, W]`; shared by every backend.
pub(crate) fn avg_pool_backward_shape(lgy: &Layout, p: &Pool2dParams, input_shape: &[usize]) -> Result<[usize; 4]> {
    const OP: &str = "avg_pool2d_backward";
    let input = four_d(OP, input_shape)?;
    let want = p.output_shape(OP, input_shape)?;
    if lgy.shape() != want.as_slice() {
        return Err(Error::invalid(
            OP,
            format!("gradient {:?} does not match the output {want:?} of input {input_shape:?} ({p:?})", lgy.shape()),
        ));
    }
    Ok(input)
}

/// `shape` as `[N, C, H, W]`, or an error naming `op`.
pub(crate) fn four_d(op: &'static str, shape: &[usize]) -> Result<[usize; 4]> {
    match shape {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::invalid(op, format!("expected a 4-D NCHW shape, got {shape:?}"))),
    }
}

/// Checks an adaptive pooling of `input` (NCHW) to `out_hw` (both non-empty) and returns the
/// input shape.
pub(crate) fn check_adaptive(op: &'static str, input: &[usize], out_hw: (usize, usize)) -> Result<[usize; 4]> {
    let s = four_d(op, input)?;
    if out_hw.0 == 0 || out_hw.1 == 0 || s[2] == 0 || s[3] == 0 {
        return Err(Error::invalid(op, format!("cannot pool input {input:?} to output size {out_hw:?}")));
    }
    Ok(s)
}
