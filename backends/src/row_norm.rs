//! Row normalization (the kernels of layer normalization): shapes and the composite fallback a
//! backend gets when it has no fused kernel.
//!
//! The input is viewed as `[R, D]` rows in row-major order: `D` is the number of normalized
//! elements (the product of the trailing normalized axes) and `R` the number of rows. Per-row
//! vectors (`mean`, `rstd`) are contiguous `[R]` buffers and per-column vectors (`weight`,
//! `bias` and their gradients) contiguous `[D]` buffers, all of the input's dtype.

use crate::channel::{reshaped, Owned};
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::{Backend, Error, Layout, Result};

/// `x`'s extents as `[R, D]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowGeom {
    /// Rows.
    pub r: usize,
    /// Elements per row.
    pub d: usize,
}

impl RowGeom {
    /// The geometry of a view normalized over its last `d` elements per row, or an error naming
    /// `op` when `d` is zero or does not divide the element count.
    pub fn of(op: &'static str, l: &Layout, d: usize) -> Result<RowGeom> {
        let n = l.numel();
        if d == 0 || !n.is_multiple_of(d) {
            return Err(Error::invalid(
                op,
                format!("rows of {d} elements do not tile an input of shape {:?}", l.shape()),
            ));
        }
        Ok(RowGeom { r: n / d, d })
    }

    /// The contiguous `[R, D]` layout.
    pub fn layout(&self) -> Layout {
        Layout::contiguous(&[self.r, self.d])
    }

    /// An `[R]` vector broadcast along each row.
    pub fn per_row(&self) -> Result<Layout> {
        Layout::new(vec![self.r, self.d], vec![1, 0], 0)
    }

    /// A `[D]` vector broadcast over the rows.
    pub fn per_column(&self) -> Result<Layout> {
        Layout::new(vec![self.r, self.d], vec![0, 1], 0)
    }
}

/// The view as `[R, D]` rows (see [`reshaped`]).
fn as_rows<B: Backend + ?Sized>(b: &B, x: &B::Storage, l: &Layout, g: &RowGeom) -> Result<Owned<B>> {
    reshaped(b, x, l, &[g.r, g.d])
}

/// `(x − mean_r) · rstd_r` for `x` viewed as rows.
fn normalized<B: Backend + ?Sized>(
    b: &B,
    (xs, xl): (&B::Storage, &Layout),
    g: &RowGeom,
    mean: &B::Storage,
    rstd: &B::Storage,
) -> Result<B::Storage> {
    let (row, full) = (g.per_row()?, g.layout());
    let centered = b.binary(BinaryOp::Sub, xs, xl, mean, &row)?;
    b.binary(BinaryOp::Mul, &centered, &full, rstd, &row)
}

/// [`crate::Fused::layer_norm`] from `reduce`, `unary` and `binary`.
pub fn layer_norm_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    d: usize,
    weight: Option<&B::Storage>,
    bias: Option<&B::Storage>,
    eps: f64,
) -> Result<(B::Storage, B::Storage, B::Storage)> {
    let g = RowGeom::of("layer_norm", lx, d)?;
    let own = as_rows(b, x, lx, &g)?;
    let (xs, xl) = own.get(x);
    let mean = b.reduce(ReduceOp::Mean, xs, xl, &[1], false)?;
    let var = b.reduce(ReduceOp::Var { correction: 0 }, xs, xl, &[1], false)?;
    let vl = Layout::contiguous(&[g.r]);
    let rstd = b.unary(UnaryOp::Rsqrt, &b.binary_scalar(BinaryOp::Add, &var, &vl, eps, false)?, &vl)?;
    let mut y = normalized(b, (xs, xl), &g, &mean, &rstd)?;
    let (col, full) = (g.per_column()?, g.layout());
    if let Some(w) = weight {
        y = b.binary(BinaryOp::Mul, &y, &full, w, &col)?;
    }
    if let Some(bias) = bias {
        y = b.binary(BinaryOp::Add, &y, &full, bias, &col)?;
    }
    Ok((y, mean, rstd))
}

/// [`crate::Fused::layer_norm_backward`] from `reduce` and `binary`.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward_composite<B: Backend + ?Sized>(
    b: &B,
    gr: &B::Storage,
    lg: &Layout,
    x: &B::Storage,
    lx: &Layout,
    d: usize,
    mean: &B::Storage,
    rstd: &B::Storage,
    weight: Option<&B::Storage>,
) -> Result<(B::Storage, B::Storage, B::Storage)> {
    let g = check_pair("layer_norm_backward", lg, lx, d)?;
    let (og, ox) = (as_rows(b, gr, lg, &g)?, as_rows(b, x, lx, &g)?);
    let ((gs, gl), xv) = (og.get(gr), ox.get(x));
    let (row, col, full) = (g.per_row()?, g.per_column()?, g.layout());
    let xh = normalized(b, xv, &g, mean, rstd)?;
    let gb = b.reduce(ReduceOp::Sum, gs, gl, &[0], false)?;
    let gw = b.reduce(ReduceOp::Sum, &b.binary(BinaryOp::Mul, gs, gl, &xh, &full)?, &full, &[0], false)?;
    // ĝ = g·w; gx = rstd·(ĝ − mean_j ĝ − x̂·mean_j(ĝ x̂)).
    let gh = match weight {
        Some(w) => b.binary(BinaryOp::Mul, gs, gl, w, &col)?,
        None => b.contiguous(gs, gl)?,
    };
    let a = b.reduce(ReduceOp::Mean, &gh, &full, &[1], false)?;
    let c = b.reduce(ReduceOp::Mean, &b.binary(BinaryOp::Mul, &gh, &full, &xh, &full)?, &full, &[1], false)?;
    let t = b.binary(BinaryOp::Sub, &gh, &full, &a, &row)?;
    let t = b.binary(BinaryOp::Sub, &t, &full, &b.binary(BinaryOp::Mul, &xh, &full, &c, &row)?, &full)?;
    let gx = b.binary(BinaryOp::Mul, &t, &full, rstd, &row)?;
    Ok((gx, gw, gb))
}

/// The common geometry of a gradient and an input that must have the same shape.
pub fn check_pair(op: &'static str, lg: &Layout, lx: &Layout, d: usize) -> Result<RowGeom> {
    if lg.shape() != lx.shape() {
        return Err(Error::ShapeMismatch { op, lhs: lg.shape().to_vec(), rhs: lx.shape().to_vec() });
    }
    RowGeom::of(op, lx, d)
}
