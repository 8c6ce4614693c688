//! The shape checks of the real 2-D FFT and its inverse.

use crate::{Error, Layout, Result};

/// Checks an `rfft2` input and returns its plane size `(H, W)`.
pub(crate) fn rfft2_dims(l: &Layout) -> Result<(usize, usize)> {
    let (h, w) = plane_dims("rfft2", l)?;
    if h == 0 || w == 0 {
        return Err(Error::invalid("rfft2", format!("cannot transform an empty plane (shape {:?})", l.shape())));
    }
    Ok((h, w))
}

/// Checks an `irfft2` half spectrum (`re` and `im` views) against the output size `(H, W)`.
pub(crate) fn irfft2_check(lre: &Layout, lim: &Layout, (h, w): (usize, usize)) -> Result<()> {
    const OP: &str = "irfft2";
    if lre.shape() != lim.shape() {
        return Err(Error::shape(OP, lre.shape(), lim.shape()));
    }
    let (sh, swh) = plane_dims(OP, lre)?;
    if h == 0 || w == 0 {
        return Err(Error::invalid(OP, format!("cannot produce an empty plane (out_hw ({h}, {w}))")));
    }
    let wh = w / 2 + 1;
    if (sh, swh) != (h, wh) {
        let mut want = lre.shape().to_vec();
        let nd = want.len();
        want[nd - 2] = h;
        want[nd - 1] = wh;
        return Err(Error::shape(OP, lre.shape(), &want));
    }
    Ok(())
}

/// The plane size `(H, W)` of a `[..., H, W]` view, checked.
fn plane_dims(op: &'static str, l: &Layout) -> Result<(usize, usize)> {
    if l.ndim() < 2 {
        return Err(Error::invalid(op, format!("needs at least 2 dimensions, got shape {:?}", l.shape())));
    }
    Ok((l.shape()[l.ndim() - 2], l.shape()[l.ndim() - 1]))
}
