//! Algorithm 1 of the SBN paper written literally with the FFT ops: `rfft2`, complex mean and
//! one real variance per channel over batch and half-spectrum bins, normalization, real affine,
//! `irfft2` with `s = (H, W)`. [`SpectralBatchNorm2d`](super::SpectralBatchNorm2d) runs it
//! with [`Implementation::Fft`](super::Implementation::Fft): the reference the fused op
//! ([`autograd::Tensor::spectral_batch_norm_train`]) is tested and profiled against. About
//! twenty recorded ops per call, each over the whole spectrum.

use autograd::{Result, Tensor};

/// `[1, C, 1, 1, k]` view of a `[C]` vector (`k = 1`) or of the pair `(re, im)` (`k = 2`).
fn spectral_vector(parts: &[&Tensor]) -> Result<Tensor> {
    let c = parts[0].shape()[0];
    Tensor::stack(parts, 1)?.reshape_to(&[1, c, 1, 1, parts.len()])
}

/// `γ (X̂ − μ) / sqrt(σ² + eps) + β` transformed back, for a spectrum `xh` `[B, C, H, Wr, 2]`.
fn finish(
    xh: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
    hw: (usize, usize),
) -> Result<Tensor> {
    let mut yh = xh.sub(mean)?.div(&var.add_scalar(eps)?.sqrt()?)?;
    if let Some(w) = weight {
        yh = yh.mul(&spectral_vector(&[w])?)?;
    }
    if let Some(b) = bias {
        // Real β: added to the real part of every bin.
        yh = yh.add(&spectral_vector(&[b, &Tensor::zeros_like(b)?])?)?;
    }
    yh.irfft2(hw)
}

/// Training mode: `(y, mean_re, mean_im, var)` with detached `[C]` statistics (the variance
/// biased, over batch and bins).
pub fn train(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let (c, h, w) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let xh = x.rfft2()?;
    let mean = xh.mean(&[0, 2, 3], true)?; // [1, C, 1, 1, 2]: real and imaginary parts apart
    let var = xh.sub(&mean)?.square()?.sum(&[4], true)?.mean(&[0, 2, 3], true)?; // |X̂ − μ|²
    let y = finish(&xh, &mean, &var, weight, bias, eps, (h, w))?;
    let mean = mean.detach().reshape_to(&[c, 2])?;
    Ok((y, mean.select(1, 0)?, mean.select(1, 1)?, var.detach().reshape_to(&[c])?))
}

/// Evaluation mode with fixed statistics `[C]` each.
pub fn eval(
    x: &Tensor,
    mean_re: &Tensor,
    mean_im: &Tensor,
    var: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    finish(&x.rfft2()?, &spectral_vector(&[mean_re, mean_im])?, &spectral_vector(&[var])?, weight, bias, eps, (h, w))
}
