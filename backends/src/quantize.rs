//! Quantized inference's element-wise ends, shared by every backend: the argument checks of
//! [`Fused::quantize_i8`] and [`Fused::requantize`] and the composites a backend gets when it
//! has no fused kernel for them.
//!
//! An integer layer turns its float input into 8-bit codes (one pass: scale, clamp, round,
//! offset, narrow to `i8`), sums integer products in `i32`, and turns the accumulators back into
//! floats with one multiplier and one offset per output channel (plus, for a padded convolution
//! of unsigned codes, an integer correction per output position). Done with the separate
//! element-wise ops that is five passes and four temporaries on the way in and three on the way
//! out; the fused kernels do each end in one.

use crate::channel::ChannelGeom;
use crate::ops::{BinaryOp, UnaryOp};
use crate::{Backend, DType, Error, Fused, Layout, Result};

/// Checks [`Fused::quantize_i8`]'s scalars: finite, a nonzero divisor, `lo ≤ hi`, and the
/// offset codes `lo − zero ..= hi − zero` inside `i8`.
pub fn check_quantize_args(mul: f64, div: f64, (lo, hi): (f64, f64), zero: i32) -> Result<()> {
    let op = "quantize_i8";
    if !(mul.is_finite() && div.is_finite() && mul != 0.0 && div != 0.0 && lo.is_finite() && hi.is_finite()) {
        return Err(Error::invalid(
            op,
            format!("mul {mul}, div {div}, range [{lo}, {hi}]: need finite values and nonzero mul and div"),
        ));
    }
    let z = f64::from(zero);
    if lo > hi || lo - z < -128.0 || hi - z > 127.0 {
        return Err(Error::invalid(
            op,
            format!(
                "range [{lo}, {hi}] with zero {zero} gives codes [{}, {}]; they must lie in [-128, 127]",
                lo - z,
                hi - z
            ),
        ));
    }
    Ok(())
}

/// [`Fused::quantize_i8`] from `binary_scalar`, `unary`, `where_cond` and `cast`.
pub fn quantize_i8_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    mul: f64,
    div: f64,
    range: (f64, f64),
    zero: i32,
) -> Result<B::Storage> {
    check_quantize_args(mul, div, range, zero)?;
    let dtype = b.dtype(x);
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op: "quantize_i8", dtype });
    }
    let full = Layout::contiguous(lx.shape());
    let scaled = if mul == 1.0 { b.contiguous(x, lx)? } else { b.binary_scalar(BinaryOp::Mul, x, lx, mul, false)? };
    let v = b.binary_scalar(BinaryOp::Div, &scaled, &full, div, false)?;
    let v = b.unary(UnaryOp::Clamp { min: range.0, max: range.1 }, &v, &full)?;
    let v = b.unary(UnaryOp::Round, &v, &full)?;
    let v = b.binary_scalar(BinaryOp::Add, &v, &full, -f64::from(zero), false)?;
    // A NaN input becomes 0 before the cast, whatever the device's clamp and float-to-integer
    // conversion do with it.
    let nan = b.compare(crate::ops::CmpOp::Ne, x, lx, x, lx)?;
    let zeros = b.full(dtype, full.numel(), 0.0)?;
    let v = b.where_cond(&nan, &full, &zeros, &full, &v, &full)?;
    b.cast(&v, &full, DType::I8)
}

/// Checks [`Fused::requantize`]'s operands and returns `acc`'s `[N, C, S]` geometry: `acc`
/// (and `terms`) `i32`, `scale` and `shift` f32; `lens` the element counts of `terms` (if
/// any), `scale` and `shift` where the caller knows them.
pub fn check_requantize(
    lacc: &Layout,
    dtypes: (DType, Option<DType>, DType, DType),
    lens: Option<(Option<usize>, usize, usize)>,
) -> Result<ChannelGeom> {
    let op = "requantize";
    let geom = ChannelGeom::of(op, lacc)?;
    let (acc, terms, scale, shift) = dtypes;
    for (what, got, want) in [
        ("acc", Some(acc), DType::I32),
        ("terms", terms, DType::I32),
        ("scale", Some(scale), DType::F32),
        ("shift", Some(shift), DType::F32),
    ] {
        if let Some(got) = got {
            if got != want {
                return Err(Error::invalid(op, format!("{what} is {got:?}; expected {want:?}")));
            }
        }
    }
    if let Some((terms, scale, shift)) = lens {
        let per_image = geom.c * geom.s;
        if terms.is_some_and(|t| t != per_image) || scale != geom.c || shift != geom.c {
            return Err(Error::invalid(
                op,
                format!(
                    "accumulators {:?} need {per_image} terms (got {terms:?}) and {} scales and shifts (got {scale}, {shift})",
                    lacc.shape(),
                    geom.c
                ),
            ));
        }
    }
    Ok(geom)
}

/// [`Fused::requantize`] from `binary`, `cast`, `channel_fma` and `unary`.
pub fn requantize_composite<B: Fused + ?Sized>(
    b: &B,
    acc: &B::Storage,
    lacc: &Layout,
    terms: Option<&B::Storage>,
    scale: &B::Storage,
    shift: &B::Storage,
    clamp: Option<(f64, f64)>,
) -> Result<B::Storage> {
    let dtypes = (b.dtype(acc), terms.map(|t| b.dtype(t)), b.dtype(scale), b.dtype(shift));
    let geom = check_requantize(lacc, dtypes, None)?;
    let full = geom.layout();
    let own = crate::channel::as_ncs(b, acc, lacc, &geom)?;
    let (a, la) = own.get(acc);
    let summed = match terms {
        Some(t) => {
            // One image's terms broadcast over the batch.
            let per_image = Layout::new(vec![geom.n, geom.c, geom.s], vec![0, geom.s, 1], 0)?;
            Some(b.binary(BinaryOp::Add, a, la, t, &per_image)?)
        }
        None => None,
    };
    let floats = match &summed {
        Some(s) => b.cast(s, &full, DType::F32)?,
        None => b.cast(a, la, DType::F32)?,
    };
    let y = b.channel_fma(&floats, &full, scale, shift, None)?;
    match clamp {
        Some((min, max)) => b.unary(UnaryOp::Clamp { min, max }, &y, &full),
        None => Ok(y),
    }
}

/// The layout of a one-element `step` buffer broadcast over `shape`.
fn broadcast_scalar(shape: &[usize]) -> Result<Layout> {
    Layout::new(shape.to_vec(), vec![0; shape.len()], 0)
}

/// Checks [`Fused::lsq_quantize`]'s range.
pub fn check_lsq_range(op: &'static str, (lo, hi): (f64, f64)) -> Result<()> {
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return Err(Error::invalid(op, format!("range [{lo}, {hi}]: need finite bounds with lo <= hi")));
    }
    Ok(())
}

/// [`Fused::lsq_quantize`] from `binary` and `unary`.
pub fn lsq_quantize_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    step: &B::Storage,
    range: (f64, f64),
) -> Result<B::Storage> {
    check_lsq_range("lsq_quantize", range)?;
    let ls = broadcast_scalar(lx.shape())?;
    let full = Layout::contiguous(lx.shape());
    let v = b.binary(BinaryOp::Div, x, lx, step, &ls)?;
    let v = b.unary(UnaryOp::Clamp { min: range.0, max: range.1 }, &v, &full)?;
    let v = b.unary(UnaryOp::Round, &v, &full)?;
    b.binary(BinaryOp::Mul, &v, &full, step, &ls)
}

/// [`Fused::lsq_quantize_backward`] from `binary`, `compare`, `where_cond` and `reduce`.
pub fn lsq_quantize_backward_composite<B: Backend + ?Sized>(
    b: &B,
    g: &B::Storage,
    lg: &Layout,
    x: &B::Storage,
    lx: &Layout,
    step: &B::Storage,
    range: (f64, f64),
) -> Result<(B::Storage, B::Storage)> {
    use crate::ops::{CmpOp, ReduceOp};
    let op = "lsq_quantize_backward";
    check_lsq_range(op, range)?;
    if lg.shape() != lx.shape() {
        return Err(Error::ShapeMismatch { op, lhs: lg.shape().to_vec(), rhs: lx.shape().to_vec() });
    }
    let (lo, hi) = range;
    let ls = broadcast_scalar(lx.shape())?;
    let full = Layout::contiguous(lx.shape());
    let n = full.numel();
    let dtype = b.dtype(x);
    let v = b.binary(BinaryOp::Div, x, lx, step, &ls)?;
    let (below, above) = (b.compare_scalar(CmpOp::Lt, &v, &full, lo)?, b.compare_scalar(CmpOp::Gt, &v, &full, hi)?);
    let (ge, le) = (b.compare_scalar(CmpOp::Ge, &v, &full, lo)?, b.compare_scalar(CmpOp::Le, &v, &full, hi)?);
    let zeros = b.full(dtype, n, 0.0)?;
    let gx = b.where_cond(&ge, &full, g, lg, &zeros, &full)?;
    let gx = b.where_cond(&le, &full, &gx, &full, &zeros, &full)?;
    // round(v) − v inside (NaN stays NaN), lo below, hi above.
    let inside = b.binary(BinaryOp::Sub, &b.unary(UnaryOp::Round, &v, &full)?, &full, &v, &full)?;
    let term = b.where_cond(&above, &full, &b.full(dtype, n, hi)?, &full, &inside, &full)?;
    let term = b.where_cond(&below, &full, &b.full(dtype, n, lo)?, &full, &term, &full)?;
    let prod = b.binary(BinaryOp::Mul, g, lg, &term, &full)?;
    let axes: Vec<usize> = (0..full.ndim()).collect();
    let gs = b.reduce(ReduceOp::Sum, &prod, &full, &axes, false)?;
    Ok((gx, gs))
}
