//! Per-channel primitives (the kernels of batch normalization): shapes and the composite
//! fallback a backend gets when it has no fused kernel.
//!
//! Each op views its input as `[N, C, S]`: dim 0 is the batch, dim 1 the channel, and every
//! later dim is flattened into `S` (`[N, C]` has `S = 1`). Per-channel vectors are contiguous
//! `[C]` buffers of the input's dtype.

use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::{Backend, Error, Fused, Layout, Result};

/// `x`'s extents as `[N, C, S]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelGeom {
    /// Batch size (dim 0).
    pub n: usize,
    /// Channels (dim 1).
    pub c: usize,
    /// Elements per (image, channel): the product of the dims after 1.
    pub s: usize,
}

impl ChannelGeom {
    /// The geometry of a layout of rank ≥ 2, or an error naming `op`.
    pub fn of(op: &'static str, l: &Layout) -> Result<ChannelGeom> {
        let shape = l.shape();
        if shape.len() < 2 {
            return Err(Error::invalid(op, format!("needs an input of rank >= 2 ([N, C, ...]), got {shape:?}")));
        }
        Ok(ChannelGeom { n: shape[0], c: shape[1], s: shape[2..].iter().product() })
    }

    /// Elements reduced into each channel (`N·S`).
    pub fn per_channel(&self) -> usize {
        self.n * self.s
    }

    /// The contiguous `[N, C, S]` layout.
    pub fn layout(&self) -> Layout {
        Layout::contiguous(&[self.n, self.c, self.s])
    }

    /// A `[C]` vector broadcast over `[N, C, S]`.
    pub fn broadcast_vector(&self) -> Result<Layout> {
        Layout::new(vec![self.n, self.c, self.s], vec![0, 1, 0], 0)
    }
}

/// `(x's storage, its [N, C, S] layout)`: the view itself when it reshapes without a copy,
/// else a contiguous copy.
pub(crate) fn as_ncs<B: Backend + ?Sized>(b: &B, x: &B::Storage, l: &Layout, g: &ChannelGeom) -> Result<Owned<B>> {
    reshaped(b, x, l, &[g.n, g.c, g.s])
}

/// The view reshaped to `shape` without a copy when its strides allow, else a contiguous copy.
pub(crate) fn reshaped<B: Backend + ?Sized>(b: &B, x: &B::Storage, l: &Layout, shape: &[usize]) -> Result<Owned<B>> {
    match l.reshape(shape)? {
        Some(v) => Ok(Owned::Borrowed(v)),
        None => Ok(Owned::Copied(b.contiguous(x, l)?, Layout::contiguous(shape))),
    }
}

/// A view reshaped in place, or copied.
pub(crate) enum Owned<B: Backend + ?Sized> {
    Borrowed(Layout),
    Copied(B::Storage, Layout),
}

impl<B: Backend + ?Sized> Owned<B> {
    pub(crate) fn get<'a>(&'a self, orig: &'a B::Storage) -> (&'a B::Storage, &'a Layout) {
        match self {
            Owned::Borrowed(l) => (orig, l),
            Owned::Copied(s, l) => (s, l),
        }
    }
}

const AXES: [usize; 2] = [0, 2];

/// [`Fused::channel_stats`] from `reduce`: mean and biased variance per channel.
pub fn stats_composite<B: Backend + ?Sized>(b: &B, x: &B::Storage, l: &Layout) -> Result<(B::Storage, B::Storage)> {
    let g = ChannelGeom::of("channel_stats", l)?;
    let own = as_ncs(b, x, l, &g)?;
    let (xs, xl) = own.get(x);
    let mean = b.reduce(ReduceOp::Mean, xs, xl, &AXES, false)?;
    let var = b.reduce(ReduceOp::Var { correction: 0 }, xs, xl, &AXES, false)?;
    Ok((mean, var))
}

/// [`Fused::channel_sums`] from `binary` and `reduce`: `Σ g` and `Σ g·(x − mean[c])`.
pub fn sums_composite<B: Backend + ?Sized>(
    b: &B,
    gr: &B::Storage,
    lg: &Layout,
    x: &B::Storage,
    lx: &Layout,
    mean: &B::Storage,
) -> Result<(B::Storage, B::Storage)> {
    let geom = check_pair("channel_sums", lg, lx)?;
    let (og, ox) = (as_ncs(b, gr, lg, &geom)?, as_ncs(b, x, lx, &geom)?);
    let ((gs, gl), (xs, xl)) = (og.get(gr), ox.get(x));
    let vec = geom.broadcast_vector()?;
    let sum_g = b.reduce(ReduceOp::Sum, gs, gl, &AXES, false)?;
    let centered = b.binary(BinaryOp::Sub, xs, xl, mean, &vec)?;
    let prod = b.binary(BinaryOp::Mul, gs, gl, &centered, &geom.layout())?;
    let sum_gx = b.reduce(ReduceOp::Sum, &prod, &geom.layout(), &AXES, false)?;
    Ok((sum_g, sum_gx))
}

/// [`Fused::channel_fma`] from `binary`: `x·scale[c] + shift[c]` (+ `y·y_scale[c]`).
pub fn fma_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    scale: &B::Storage,
    shift: &B::Storage,
    extra: Option<(&B::Storage, &Layout, &B::Storage)>,
) -> Result<B::Storage> {
    let geom = ChannelGeom::of("channel_fma", lx)?;
    let ox = as_ncs(b, x, lx, &geom)?;
    let (xs, xl) = ox.get(x);
    let vec = geom.broadcast_vector()?;
    let full = geom.layout();
    let mut out = b.binary(BinaryOp::Mul, xs, xl, scale, &vec)?;
    out = b.binary(BinaryOp::Add, &out, &full, shift, &vec)?;
    if let Some((y, ly, y_scale)) = extra {
        check_pair("channel_fma", ly, lx)?;
        let oy = as_ncs(b, y, ly, &geom)?;
        let (ys, yl) = oy.get(y);
        let t = b.binary(BinaryOp::Mul, ys, yl, y_scale, &vec)?;
        out = b.binary(BinaryOp::Add, &out, &full, &t, &full)?;
    }
    Ok(out)
}

/// The activation after a channel multiply-add, ReLU6 when `relu6` and ReLU otherwise: its
/// forward op and its backward op (the gradient masked by the pre-activation).
fn relu_ops(relu6: bool) -> (UnaryOp, BinaryOp) {
    if relu6 {
        (UnaryOp::Relu6, BinaryOp::Relu6Backward)
    } else {
        (UnaryOp::Relu, BinaryOp::ReluBackward)
    }
}

/// [`Fused::channel_fma_relu`] from `channel_fma`, `binary` and `unary`.
pub fn fma_relu_composite<B: Fused + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    scale: &B::Storage,
    shift: &B::Storage,
    residual: Option<(&B::Storage, &Layout)>,
    relu6: bool,
) -> Result<B::Storage> {
    let (act, _) = relu_ops(relu6);
    let full = Layout::contiguous(lx.shape());
    let mut y = b.channel_fma(x, lx, scale, shift, None)?;
    if let Some((r, lr)) = residual {
        check_pair("channel_fma_relu", lr, lx)?;
        y = b.binary(BinaryOp::Add, &y, &full, r, lr)?;
    }
    b.unary(act, &y, &full)
}

/// `g` where `p = x·gate.0[c] + gate.1[c] > 0` (and `p < 6` when `relu6`), else 0, contiguous with `x`'s
/// shape: ReLU's or ReLU6's backward against the recomputed pre-activation (the forward pass's
/// own `channel_fma`).
#[allow(clippy::too_many_arguments)]
fn gated<B: Fused + ?Sized>(
    b: &B,
    op: &'static str,
    g: &B::Storage,
    lg: &Layout,
    x: &B::Storage,
    lx: &Layout,
    (gs, gd): (&B::Storage, &B::Storage),
    relu6: bool,
) -> Result<B::Storage> {
    let (_, backward) = relu_ops(relu6);
    check_pair(op, lg, lx)?;
    let pre = b.channel_fma(x, lx, gs, gd, None)?;
    b.binary(backward, g, lg, &pre, &Layout::contiguous(lx.shape()))
}

/// [`Fused::channel_sums_gated`] from `channel_fma`, `binary` and [`sums_composite`].
pub fn sums_gated_composite<B: Fused + ?Sized>(
    b: &B,
    g: &B::Storage,
    lg: &Layout,
    x: &B::Storage,
    lx: &Layout,
    mean: &B::Storage,
    gate: (&B::Storage, &B::Storage),
    relu6: bool,
) -> Result<(B::Storage, B::Storage)> {
    let masked = gated(b, "channel_sums_gated", g, lg, x, lx, gate, relu6)?;
    b.channel_sums(&masked, &Layout::contiguous(lx.shape()), x, lx, mean)
}

/// [`Fused::channel_fma_gated`] from `channel_fma` and `binary`.
pub fn fma_gated_composite<B: Fused + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    scale: &B::Storage,
    shift: &B::Storage,
    (g, lg, g_scale): (&B::Storage, &Layout, &B::Storage),
    gate: (&B::Storage, &B::Storage),
    relu6: bool,
) -> Result<B::Storage> {
    let masked = gated(b, "channel_fma_gated", g, lg, x, lx, gate, relu6)?;
    b.channel_fma(x, lx, scale, shift, Some((&masked, &Layout::contiguous(lx.shape()), g_scale)))
}

/// The common geometry of two operands that must have the same shape.
pub fn check_pair(op: &'static str, la: &Layout, lb: &Layout) -> Result<ChannelGeom> {
    if la.shape() != lb.shape() {
        return Err(Error::ShapeMismatch { op, lhs: la.shape().to_vec(), rhs: lb.shape().to_vec() });
    }
    ChannelGeom::of(op, la)
}
