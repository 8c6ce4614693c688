//! Spectral Fourier Dropout, the baselines of the SWD paper: [`SpectralFourierDropout2d`]
//! (Khan, Hayat, Porikli 2019, as re-implemented by Cakaj et al.: per-map 2-D DCT-II) and
//! [`SpectralFourierDropout1d`] (new in the SWD paper: each map flattened row-major, 1-D DCT-II).
//!
//! Per `(sample, channel)` map: orthonormal DCT-II, **prune** (zero) the coefficients whose
//! magnitude is below the `η`-quantile of that map's `|coef|` (linear interpolation between order
//! statistics, as `torch.quantile`/`numpy.quantile`), drop each remaining coefficient with
//! probability `p`, rescale the survivors by `1/(1 − p)` (inverted dropout; configurable), and
//! invert the DCT. The mask is a constant of the forward pass (like ReLU's), so the backward pass
//! is `DCTᵀ(mask · DCT⁻ᵀ(∂L/∂Y))` with the forward's mask. The identity in [`Mode::Eval`].

use autograd::backends::ops::Distribution;
use autograd::signal::{dct, dct2, idct, idct2};
use autograd::{no_grad, Error, Result, Tensor};
use layers::{rng, Mode, Module};

use super::mask::check_probability;

/// What the two layers share: `p`, `η` and the rescaling switch.
struct Core {
    op: &'static str,
    p: f64,
    eta: f64,
    rescale: bool,
}

impl Core {
    fn new(op: &'static str, p: f64, eta: f64) -> Result<Core> {
        Ok(Core {
            op,
            p: check_probability(op, "drop probability", p)?,
            eta: check_probability(op, "eta", eta)?,
            rescale: true,
        })
    }

    fn is_identity(&self) -> bool {
        self.p == 0.0 && self.eta == 0.0
    }

    fn check(&self, x: &Tensor, min_ndim: usize) -> Result<()> {
        if x.ndim() < min_ndim || x.shape().contains(&0) {
            return Err(Error::invalid(
                self.op,
                format!("needs a non-empty input with at least {min_ndim} axes ([B, C, ...]), got {:?}", x.shape()),
            ));
        }
        if !x.dtype().is_float() {
            return Err(Error::UnsupportedDType { op: self.op, dtype: x.dtype() });
        }
        Ok(())
    }

    /// `c` (`[R, N]`: one row of coefficients per map) with the pruning and dropout mask drawn
    /// from `seed` applied; the mask carries no gradient.
    fn mask(&self, c: &Tensor, seed: u64) -> Result<Tensor> {
        let mask = no_grad(|| {
            let mut mask = Tensor::full_on(c.shape(), 1.0, c.dtype(), c.device())?;
            if self.eta > 0.0 {
                let a = c.abs()?;
                let keep = a.ge(&row_quantile(&a, self.eta)?)?.to_dtype(c.dtype())?;
                mask = mask.mul(&keep)?;
            }
            if self.p > 0.0 {
                let drop = Tensor::random(
                    c.shape(),
                    Distribution::Bernoulli { p: 1.0 - self.p },
                    seed,
                    c.dtype(),
                    c.device(),
                )?;
                let scale = if self.rescale && self.p < 1.0 { 1.0 / (1.0 - self.p) } else { 1.0 };
                mask = mask.mul(&drop)?.mul_scalar(scale)?;
            }
            Ok(mask)
        })?;
        c.mul(&mask)
    }
}

/// The `q`-quantile of each row of `a` (`[R, N]`) as `[R, 1]`: linear interpolation between the
/// order statistics at `q (N − 1)` (`numpy.quantile`'s default).
pub(crate) fn row_quantile(a: &Tensor, q: f64) -> Result<Tensor> {
    let n = a.shape()[1];
    let sorted = a.sort(1, false)?.0;
    let pos = q * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    let (vlo, vhi) = (sorted.narrow(1, lo, 1)?, sorted.narrow(1, hi, 1)?);
    vlo.add(&vhi.sub(&vlo)?.mul_scalar(frac)?)
}

macro_rules! shared_options {
    ($t:ident) => {
        impl $t {
            /// The same layer with (`true`, the default) or without the `1/(1 − p)` rescaling of
            /// the surviving coefficients.
            pub fn with_rescale(mut self, rescale: bool) -> $t {
                self.core.rescale = rescale;
                self
            }

            /// The drop probability of each surviving coefficient.
            pub fn p(&self) -> f64 {
                self.core.p
            }

            /// The pruning quantile `η`.
            pub fn eta(&self) -> f64 {
                self.core.eta
            }

            /// Whether survivors are rescaled by `1/(1 − p)`.
            pub fn rescale(&self) -> bool {
                self.core.rescale
            }
        }

        impl Module for $t {
            fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
                if !mode.is_train() || self.core.is_identity() {
                    return Ok(x.clone());
                }
                self.forward_with_seed(x, rng::next_seed())
            }
        }
    };
}

/// 1-D Spectral Fourier Dropout: each `(sample, channel)` map of `X` (`[B, C, ...]`) flattened
/// row-major to length `N`, orthonormal 1-D DCT-II, coefficients below the map's `η`-quantile of
/// `|coef|` zeroed, the rest dropped with probability `p` and rescaled by `1/(1 − p)`, inverse DCT.
///
/// ```
/// use methods::swd::SpectralFourierDropout1d;
/// use layers::{Mode, Module};
/// use autograd::Tensor;
/// let sfd = SpectralFourierDropout1d::new(0.1, 0.1).unwrap();
/// let x = Tensor::randn(&[2, 3, 4, 4], 0).unwrap();
/// assert_eq!(sfd.forward(&x, Mode::Train).unwrap().shape(), &[2, 3, 4, 4]);
/// ```
pub struct SpectralFourierDropout1d {
    core: Core,
}

impl SpectralFourierDropout1d {
    /// The layer with drop probability `p` and pruning quantile `eta`, both in `[0, 1]`.
    pub fn new(p: f64, eta: f64) -> Result<SpectralFourierDropout1d> {
        Ok(SpectralFourierDropout1d { core: Core::new("SpectralFourierDropout1d", p, eta)? })
    }

    /// The training-mode output with the dropout mask drawn from `seed` (what
    /// [`Module::forward`] does with [`layers::rng::next_seed`]).
    pub fn forward_with_seed(&self, x: &Tensor, seed: u64) -> Result<Tensor> {
        self.core.check(x, 3)?;
        let n: usize = x.shape()[2..].iter().product();
        let rows = x.reshape(&[-1, n as isize])?;
        idct(&self.core.mask(&dct(&rows)?, seed)?)?.reshape_to(x.shape())
    }
}

shared_options!(SpectralFourierDropout1d);

/// 2-D Spectral Fourier Dropout (Khan et al., 2019): orthonormal 2-D DCT-II of each
/// `(sample, channel)` map of `X` (`[B, C, H, W]`), coefficients below the map's `η`-quantile of
/// `|coef|` zeroed, the rest dropped with probability `p` and rescaled by `1/(1 − p)`, inverse
/// 2-D DCT.
///
/// ```
/// use methods::swd::SpectralFourierDropout2d;
/// use layers::{Mode, Module};
/// use autograd::Tensor;
/// let sfd = SpectralFourierDropout2d::new(0.1, 0.2).unwrap();
/// let x = Tensor::randn(&[2, 3, 4, 5], 0).unwrap();
/// assert_eq!(sfd.forward(&x, Mode::Train).unwrap().shape(), &[2, 3, 4, 5]);
/// assert_eq!(sfd.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
/// ```
pub struct SpectralFourierDropout2d {
    core: Core,
}

impl SpectralFourierDropout2d {
    /// The layer with drop probability `p` and pruning quantile `eta`, both in `[0, 1]`.
    pub fn new(p: f64, eta: f64) -> Result<SpectralFourierDropout2d> {
        Ok(SpectralFourierDropout2d { core: Core::new("SpectralFourierDropout2d", p, eta)? })
    }

    /// The training-mode output with the dropout mask drawn from `seed`.
    pub fn forward_with_seed(&self, x: &Tensor, seed: u64) -> Result<Tensor> {
        self.core.check(x, 4)?;
        if x.ndim() != 4 {
            return Err(Error::invalid(self.core.op, format!("needs a [B, C, H, W] input, got {:?}", x.shape())));
        }
        let c = dct2(x)?;
        let rows = c.reshape(&[-1, (x.shape()[2] * x.shape()[3]) as isize])?;
        idct2(&self.core.mask(&rows, seed)?.reshape_to(x.shape())?)
    }
}

shared_options!(SpectralFourierDropout2d);
