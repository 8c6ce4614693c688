//! The geometry of a 2-D convolution: every size a pass needs, checked once.

use crate::ops::Conv2dParams;
use crate::{Error, Result};

/// Every size a convolution needs, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) o: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    pub(crate) sh: usize,
    pub(crate) sw: usize,
    pub(crate) ph: usize,
    pub(crate) pw: usize,
    pub(crate) dh: usize,
    pub(crate) dw: usize,
    pub(crate) g: usize,
}

impl Geom {
    /// The geometry of input `x` (`[N, C, H, W]`) convolved with weight `w`
    /// (`[O, C/groups, kH, kW]`), or an error naming `conv2d` and both shapes.
    pub(crate) fn new(x: &[usize], w: &[usize], p: &Conv2dParams) -> Result<Self> {
        if w.len() == 4 && (w[2] == 0 || w[3] == 0) {
            return Err(Error::invalid("conv2d", format!("empty kernel in weight {w:?} (input {x:?})")));
        }
        let y = p.output_shape(x, w)?;
        Ok(Geom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            o: w[0],
            kh: w[2],
            kw: w[3],
            oh: y[2],
            ow: y[3],
            sh: p.stride.0,
            sw: p.stride.1,
            ph: p.padding.0,
            pw: p.padding.1,
            dh: p.dilation.0,
            dw: p.dilation.1,
            g: p.groups,
        })
    }
    /// Input channels per group.
    pub(crate) fn cg(&self) -> usize {
        self.c / self.g
    }
    /// Output channels per group.
    pub(crate) fn og(&self) -> usize {
        self.o / self.g
    }
    /// Taps of one filter plane.
    pub(crate) fn kk(&self) -> usize {
        self.kh * self.kw
    }
    /// Rows of the im2col matrix of one group.
    pub(crate) fn ckk(&self) -> usize {
        self.cg() * self.kk()
    }
    /// Elements of one input plane.
    pub(crate) fn in_plane(&self) -> usize {
        self.h * self.w
    }
    /// Elements of one output plane.
    pub(crate) fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    /// `[N, C, H, W]`.
    pub(crate) fn x_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    /// `[O, C/groups, kH, kW]`.
    pub(crate) fn w_shape(&self) -> [usize; 4] {
        [self.o, self.cg(), self.kh, self.kw]
    }
    /// `[N, O, oH, oW]`.
    pub(crate) fn y_shape(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }
    /// A 1x1 kernel with stride 1 and no padding: the input planes are the GEMM operand.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    /// One group per channel on both sides (`groups == C_in == C_out`, more than one).
    pub(crate) fn is_depthwise(&self) -> bool {
        self.g > 1 && self.g == self.c && self.g == self.o
    }
    /// A `k`x`k` kernel with stride `s` both ways, no dilation and one group.
    pub(crate) fn is_dense_square(&self, k: usize, s: usize) -> bool {
        self.kh == k && self.kw == k && self.sh == s && self.sw == s && self.dh == 1 && self.dw == 1 && self.g == 1
    }
    /// Output rows per im2col tile so that a tile holds about `budget` elements.
    pub(crate) fn tile_rows(&self, budget: usize) -> usize {
        (budget / (self.ckk() * self.ow).max(1)).clamp(1, self.oh)
    }
}

/// Checks a `gy` shape against what the forward pass with input `x_shape` and weight `w_shape`
/// would produce.
fn check_gy(op: &'static str, x_shape: &[usize], w_shape: &[usize], gy: &[usize], p: &Conv2dParams) -> Result<Geom> {
    let g = Geom::new(x_shape, w_shape, p).map_err(|e| relabel(op, e))?;
    if gy != g.y_shape() {
        return Err(Error::invalid(
            op,
            format!(
                "gradient {gy:?} does not match the output {:?} of input {x_shape:?} and weight {w_shape:?} ({p:?})",
                g.y_shape()
            ),
        ));
    }
    Ok(g)
}

/// Re-labels an error from `Conv2dParams::output_shape` (which names `conv2d`) with `op`.
fn relabel(op: &'static str, e: Error) -> Error {
    match e {
        Error::InvalidArgument { msg, .. } => Error::InvalidArgument { op, msg },
        Error::ShapeMismatch { lhs, rhs, .. } => Error::ShapeMismatch { op, lhs, rhs },
        e => e,
    }
}

/// Checks the operands of `conv2d_backward_data` (gradient `[N, O, oH, oW]`, weight
/// `[O, C/groups, kH, kW]`, input size `input_hw`) and returns the geometry.
pub(crate) fn geom_backward_data(
    sg: &[usize],
    sw: &[usize],
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<Geom> {
    const OP: &str = "conv2d_backward_data";
    if sg.len() != 4 || sw.len() != 4 {
        return Err(Error::invalid(
            OP,
            format!("expected 4-D gradient and weight, got gradient {sg:?} and weight {sw:?}"),
        ));
    }
    let c = sw[1]
        .checked_mul(p.groups)
        .ok_or_else(|| Error::invalid(OP, format!("weight {sw:?} with groups={} is too large", p.groups)))?;
    check_gy(OP, &[sg[0], c, input_hw.0, input_hw.1], sw, sg, p)
}

/// Checks the operands of `conv2d_backward_weight` (input `[N, C, H, W]`, gradient
/// `[N, O, oH, oW]`, kernel size `kernel_hw`) and returns the geometry.
pub(crate) fn geom_backward_weight(
    sx: &[usize],
    sg: &[usize],
    p: &Conv2dParams,
    kernel_hw: (usize, usize),
) -> Result<Geom> {
    const OP: &str = "conv2d_backward_weight";
    if sx.len() != 4 || sg.len() != 4 {
        return Err(Error::invalid(
            OP,
            format!("expected 4-D input and gradient, got input {sx:?} and gradient {sg:?}"),
        ));
    }
    if p.groups == 0 || !sx[1].is_multiple_of(p.groups) || !sg[1].is_multiple_of(p.groups) || sx[0] != sg[0] {
        return Err(Error::invalid(
            OP,
            format!(
                "input {sx:?} and gradient {sg:?} do not agree for groups={} (need equal batch sizes and channels divisible by groups)",
                p.groups
            ),
        ));
    }
    let w_shape = [sg[1], sx[1] / p.groups, kernel_hw.0, kernel_hw.1];
    check_gy(OP, sx, &w_shape, sg, p)
}
