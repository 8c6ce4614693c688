//! [`SpectralBatchNorm2d`]: batch normalization of each channel's `rfft2` spectrum, with running
//! statistics for evaluation.

use autograd::{no_grad, Error, Result, Tensor};
use layers::{Buffer, Mode, Module, Param};

use super::literal;

/// The sample count `n` of the unbiased factor `n / (n − 1)` in the running variance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// `n = B·H·(W/2 + 1)`: the number of complex samples each channel's variance is taken over
    /// (the spec's recommendation; the default).
    Samples,
    /// `n = C·H·W/2`, as the paper prints it (likely a slip; the unofficial code follows it).
    Paper,
}

impl Correction {
    /// `"samples"` or `"paper"`.
    pub fn name(self) -> &'static str {
        match self {
            Correction::Samples => "samples",
            Correction::Paper => "paper",
        }
    }

    /// Parses `"samples"` or `"paper"`.
    pub fn parse(s: &str) -> Result<Correction> {
        match s {
            "samples" => Ok(Correction::Samples),
            "paper" => Ok(Correction::Paper),
            _ => Err(Error::invalid("Correction::parse", format!("expected samples or paper, got {s:?}"))),
        }
    }

    /// `n` for an input of shape `[B, C, H, W]`.
    pub fn count(self, shape: &[usize]) -> f64 {
        let (b, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        match self {
            Correction::Samples => (b * h * (w / 2 + 1)) as f64,
            Correction::Paper => (c * h * w) as f64 / 2.0,
        }
    }
}

/// How the layer computes Algorithm 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// The fused closed form ([`autograd::Tensor::spectral_batch_norm_train`]): one op, no FFT
    /// (the default).
    Fused,
    /// Literally, from `rfft2`, tensor statistics and `irfft2` ([`super::literal`]): the
    /// reference, about twenty ops per call.
    Fft,
}

/// Spectral Batch Normalization (Cakaj, Mehnert and Yang, IJCNN 2023) over `[B, C, H, W]`:
/// per channel, the `rfft2` spectrum (unnormalized forward transform, PyTorch's `norm="backward"`)
/// is normalized by its complex mean and one real variance over batch and half-spectrum bins,
/// scaled by a real `weight` (γ), shifted by a real `bias` (β, added to the real part of every
/// bin) and transformed back with `irfft2(·, s = (H, W))`. Running statistics (momentum `λ`,
/// from mean 0 and variance 1; the variance with the unbiased factor `n/(n − 1)`, see
/// [`Correction`]) replace the batch's in [`Mode::Eval`].
///
/// Parameters `weight`, `bias` (`[C]`); buffers `running_mean_real`, `running_mean_imag`,
/// `running_var` (`[C]`) and `num_batches_tracked` (i64), PyTorch's batch-norm names with the
/// complex mean split into its two parts.
///
/// ```
/// use methods::sbn::SpectralBatchNorm2d;
/// use layers::{Mode, Module};
/// use autograd::Tensor;
/// let sbn = SpectralBatchNorm2d::new(3);
/// let x = Tensor::randn(&[8, 3, 4, 4], 0).unwrap();
/// let y = sbn.forward(&x, Mode::Train).unwrap();
/// assert_eq!(y.shape(), &[8, 3, 4, 4]);
/// // Per channel, the output is roughly the input scaled by 1/sqrt(HW·E[x²]) (Parseval).
/// let ratio = y.square().unwrap().sum_all().unwrap().item().unwrap() / x.square().unwrap().sum_all().unwrap().item().unwrap();
/// assert!((ratio * 16.0 - 1.0).abs() < 0.2, "{ratio}");
/// ```
pub struct SpectralBatchNorm2d {
    /// γ `[C]` (real).
    pub weight: Param,
    /// β `[C]` (real).
    pub bias: Param,
    /// Real part of the running mean `[C]`.
    pub running_mean_real: Buffer,
    /// Imaginary part of the running mean `[C]`.
    pub running_mean_imag: Buffer,
    /// Running variance `[C]` (with the unbiased factor).
    pub running_var: Buffer,
    /// Training batches seen (i64 scalar).
    pub num_batches_tracked: Buffer,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Weight `λ` of the newest batch in the running statistics (default 0.1).
    pub momentum: f64,
    /// The `n` of the running variance's unbiased factor.
    pub correction: Correction,
    /// How the forward pass is computed.
    pub implementation: Implementation,
    channels: usize,
}

impl SpectralBatchNorm2d {
    /// `channels` channels with the spec's BN-like defaults: γ = 1, β = 0, λ = 0.1, eps = 1e-5,
    /// [`Correction::Samples`], [`Implementation::Fused`].
    pub fn new(channels: usize) -> SpectralBatchNorm2d {
        SpectralBatchNorm2d {
            weight: Param::new(Tensor::ones(&[channels])),
            bias: Param::new(Tensor::zeros(&[channels])),
            running_mean_real: Buffer::new(Tensor::zeros(&[channels])),
            running_mean_imag: Buffer::new(Tensor::zeros(&[channels])),
            running_var: Buffer::new(Tensor::ones(&[channels])),
            num_batches_tracked: Buffer::new(Tensor::scalar(0i64)),
            eps: 1e-5,
            momentum: 0.1,
            correction: Correction::Samples,
            implementation: Implementation::Fused,
            channels,
        }
    }

    /// With another running-variance correction.
    pub fn with_correction(mut self, correction: Correction) -> Self {
        self.correction = correction;
        self
    }

    /// With another implementation.
    pub fn with_implementation(mut self, implementation: Implementation) -> Self {
        self.implementation = implementation;
        self
    }

    /// The number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// `running ← λ·batch + (1 − λ)·running`, the variance with the factor `n/(n − 1)`.
    fn update_running(&self, mean_re: &Tensor, mean_im: &Tensor, var: &Tensor, shape: &[usize]) -> Result<()> {
        no_grad(|| {
            let nb = &self.num_batches_tracked;
            nb.set(Tensor::scalar(nb.get().item()? as i64 + 1).to_device(nb.get().device())?);
            let n = self.correction.count(shape).max(2.0);
            let lambda = self.momentum;
            let blend = |buf: &Buffer, stat: &Tensor| -> Result<()> {
                let old = buf.get();
                buf.set(old.axpby(1.0 - lambda, &stat.to_dtype(old.dtype())?, lambda)?);
                Ok(())
            };
            blend(&self.running_mean_real, mean_re)?;
            blend(&self.running_mean_imag, mean_im)?;
            blend(&self.running_var, &var.mul_scalar(n / (n - 1.0))?)
        })
    }
}

impl Module for SpectralBatchNorm2d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if x.ndim() != 4 || x.shape()[1] != self.channels {
            return Err(Error::invalid(
                "SpectralBatchNorm2d",
                format!("expected an input [B, {}, H, W], got {:?}", self.channels, x.shape()),
            ));
        }
        let (w, b) = (self.weight.tensor(), self.bias.tensor());
        if mode.is_train() {
            let (y, mr, mi, var) = match self.implementation {
                Implementation::Fused => x.spectral_batch_norm_train(Some(&w), Some(&b), self.eps)?,
                Implementation::Fft => literal::train(x, Some(&w), Some(&b), self.eps)?,
            };
            self.update_running(&mr, &mi, &var, x.shape())?;
            return Ok(y);
        }
        let stat = |buf: &Buffer| buf.get().to_dtype(x.dtype());
        let (mr, mi, var) = (stat(&self.running_mean_real)?, stat(&self.running_mean_imag)?, stat(&self.running_var)?);
        match self.implementation {
            Implementation::Fused => x.spectral_batch_norm_eval(&mr, &mi, &var, Some(&w), Some(&b), self.eps),
            Implementation::Fft => literal::eval(x, &mr, &mi, &var, Some(&w), Some(&b), self.eps),
        }
    }

    fn params(&self) -> Vec<(String, Param)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        vec![
            ("running_mean_real".into(), self.running_mean_real.clone()),
            ("running_mean_imag".into(), self.running_mean_imag.clone()),
            ("running_var".into(), self.running_var.clone()),
            ("num_batches_tracked".into(), self.num_batches_tracked.clone()),
        ]
    }
}
