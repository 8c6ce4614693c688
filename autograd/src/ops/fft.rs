//! Real 2-D FFT over the last two axes and its inverse, with their derivatives.
//!
//! **Layout of complex values.** Lamina has no complex dtype: a half spectrum is one real tensor
//! `[..., H, W/2 + 1, 2]` whose trailing axis holds the real part (index 0) and the imaginary
//! part (index 1). [`Tensor::rfft2`] returns that layout and [`Tensor::irfft2`] takes it.
//!
//! **Derivatives.** Write `θ = 2π(km/H + ln/W)` and let `c_l = 2` for the "interior" columns of
//! the half spectrum (those whose conjugate partner `W − l` is not stored: `1 <= l` and
//! `2l != W`) and `c_l = 1` for the edge columns (DC, and Nyquist when `W` is even). Then
//!
//! - `rfft2`: `Y[k,l] = Σ x[m,n] e^{−iθ}`, so `dL/dx = Re Σ G[k,l] e^{iθ} = HW · irfft2(G / c_l)`;
//! - `irfft2`: `x[m,n] = (1/HW) Re Σ c_l Z[k,l] e^{iθ}` (the inverse ignores the imaginary parts
//!   of self-conjugate bins), so `dL/dZ = (c_l / HW) · rfft2(dL/dx)`.
//!
//! Both rules are written with `rfft2`/`irfft2` themselves, so they are differentiable again.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::{DType, Device, Layout};

/// `c_l` for the `w / 2 + 1` columns of a half spectrum of width `w`, as a `[w/2+1, 1]` tensor
/// raised to the power `sign` (+1 or −1), of `dtype` on `device`.
fn column_weights(w: usize, sign: i32, dtype: DType, device: Device) -> Result<Tensor> {
    let wh = w / 2 + 1;
    let v: Vec<f64> = (0..wh)
        .map(|l| {
            let interior = l >= 1 && 2 * l != w;
            let c: f64 = if interior { 2.0 } else { 1.0 };
            c.powi(sign)
        })
        .collect();
    Tensor::from_vec(v, &[wh, 1])?.to_dtype(dtype)?.to_device(device)
}

impl Tensor {
    /// The 2-D real FFT over the last two axes (unnormalized, as `torch.fft.rfft2`): `[..., H, W]`
    /// real -> `[..., H, W/2 + 1, 2]`, real and imaginary parts on the trailing axis (see the
    /// module docs). Any sizes, not only powers of two.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let y = x.rfft2().unwrap();
    /// assert_eq!(y.shape(), &[2, 2, 2]);
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![10.0, 0.0, -2.0, 0.0, -4.0, 0.0, 0.0, 0.0]);
    /// ```
    pub fn rfft2(&self) -> Result<Tensor> {
        let op = "rfft2";
        if self.ndim() < 2 {
            return Err(Error::invalid(op, format!("needs at least 2 dimensions, got {:?}", self.shape())));
        }
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType { op, dtype: self.dtype() });
        }
        let nd = self.ndim();
        let (h, w) = (self.shape()[nd - 2], self.shape()[nd - 1]);
        let (re, im) = crate::profile::forward(op, self.device(), || self.storage().rfft2(self.layout()))?;
        let mut half = self.shape().to_vec();
        half[nd - 1] = w / 2 + 1;
        let re = Tensor::from_storage(re, Layout::contiguous(&half));
        let im = Tensor::from_storage(im, Layout::contiguous(&half));
        let y = crate::no_grad(|| Tensor::stack(&[&re, &im], nd))?;
        drop((re, im));
        let (dtype, device) = (self.dtype(), self.device());
        Ok(record_fn(y, op, &[self], move || {
            move |g: &Tensor| {
                let inv = column_weights(w, -1, dtype, device)?;
                let gx = g.mul(&inv)?.irfft2((h, w))?.mul_scalar((h * w) as f64)?;
                Ok(vec![Some(gx)])
            }
        }))
    }

    /// The inverse of [`Tensor::rfft2`] (as `torch.fft.irfft2` with `s = out_hw`, scaled by
    /// `1/(HW)`): `[..., H, W/2 + 1, 2]` (real and imaginary parts on the trailing axis) -> real
    /// `[..., H, W]` with `(H, W) = out_hw`. The imaginary parts of the self-conjugate bins (DC,
    /// and Nyquist when `W` is even, in the column direction) do not affect the result.
    pub fn irfft2(&self, out_hw: (usize, usize)) -> Result<Tensor> {
        let op = "irfft2";
        let (h, w) = out_hw;
        let nd = self.ndim();
        if nd < 3 || self.shape()[nd - 1] != 2 || self.shape()[nd - 3] != h || self.shape()[nd - 2] != w / 2 + 1 {
            return Err(Error::invalid(
                op,
                format!(
                    "expected a half spectrum [..., {h}, {}, 2] for output size {out_hw:?}, got {:?}",
                    w / 2 + 1,
                    self.shape()
                ),
            ));
        }
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType { op, dtype: self.dtype() });
        }
        let (re, im) =
            crate::no_grad(|| -> Result<(Tensor, Tensor)> { Ok((self.select(nd - 1, 0)?, self.select(nd - 1, 1)?)) })?;
        let s = crate::profile::forward(op, re.device(), || {
            re.storage().irfft2(re.layout(), &im.storage(), im.layout(), out_hw)
        })?;
        let mut shape = self.shape()[..nd - 1].to_vec();
        shape[nd - 2] = w;
        let y = Tensor::from_storage(s, Layout::contiguous(&shape));
        let (dtype, device) = (self.dtype(), self.device());
        Ok(record_fn(y, op, &[self], move || {
            move |g: &Tensor| {
                let c = column_weights(w, 1, dtype, device)?;
                let gz = g.rfft2()?.mul(&c)?.div_scalar((h * w) as f64)?;
                Ok(vec![Some(gz)])
            }
        }))
    }
}
