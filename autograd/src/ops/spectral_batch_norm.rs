//! Spectral batch normalization (Cakaj, Mehnert and Yang, IJCNN 2023, Algorithm 1) as one fused
//! op: [`Tensor::spectral_batch_norm_train`] (batch statistics) and
//! [`Tensor::spectral_batch_norm_eval`] (fixed statistics).
//!
//! # The algorithm
//!
//! For `x` of shape `[B, C, H, W]`, with `X̂ = rfft2(x)` (unnormalized forward transform, the half
//! spectrum of `H × Wr` bins, `Wr = W/2 + 1`) and `n = B·H·Wr` complex samples per channel:
//! the complex mean `μ_c = mean(X̂)` and one real variance `σ²_c = mean(|X̂ − μ|²)` over batch and
//! bins, then `y = irfft2(γ_c (X̂ − μ_c) / sqrt(σ²_c + eps) + β_c, s = (H, W))` with real `γ`,
//! `β` and PyTorch's `irfft2` (complex inverse along `H`, then `c2r` along `W`, which ignores the
//! imaginary parts of the DC and Nyquist columns).
//!
//! # The closed form it is computed in
//!
//! Nothing here runs an FFT: the transform pair cancels exactly. `irfft2` is real-linear and
//! `irfft2(rfft2(x)) = x`, so with `α = γ / sqrt(σ² + eps)`
//!
//! `y = α·x + irfft2(β − α·μ)` where the last term is the inverse of a *constant* half spectrum.
//! The inverse of the constant `1` is the impulse `δ(0, 0)` (the `c2r` weights 1, 2, …, 2, 1
//! sum the full cosine series), and the inverse of the constant `i` is `q_w` on row 0 only, with
//! `q_w = −(2/W) Σ_{l=1}^{(W−1)/2} sin(2πwl/W)` (the imaginary parts of the DC and Nyquist
//! columns are dropped). So per channel
//!
//! `y = α·x + (β − α·Re μ)·δ(0,0) − α·Im μ·q(row 0)`.
//!
//! The statistics are linear and quadratic functionals of `x`:
//!
//! - `Σ_{k, l<Wr} X̂_{kl} = H Σ_w x_{0,w} G_w` with `G_w = Σ_{l<Wr} e^{−2πiwl/W}`, so `μ` is a
//!   weighted sum of each map's first row;
//! - by Parseval over the half spectrum, `Σ |X̂|² = (HW Σ x² + H Σ_h r_h² + [W even] H Σ_h a_h²)/2`
//!   with the row sums `r_h = Σ_w x_{h,w}` (the DC column) and the alternating row sums
//!   `a_h = Σ_w (−1)^w x_{h,w}` (the Nyquist column), so `σ² = Σ|X̂|²/n − |μ|²`.
//!
//! The forward pass is one pass of the backend's per-channel statistics kernel (`Σ x²`), one
//! `[B·C·H, W] × [W, 4]` product (row sums, alternating sums and the two `G` weightings), the
//! backend's per-channel multiply-add for `α·x`, and an add of the row-0 correction. The backward
//! pass (derived from the same closed form) is one per-channel reduction of `g·x`, a reduction of
//! `g`'s first rows, one fused `α·g + c·x` pass and one `[B·C·H, 4] × [4, W]` product. The
//! float64 tests check it against a literal `rfft2`/`irfft2` implementation of Algorithm 1 and
//! against NumPy (`methods/src/sbn/tests/`).
//!
//! A backward pass recorded for higher-order gradients (`create_graph`) recomputes the statistics
//! from `x` with differentiable ops, so second derivatives stay exact.

use backends::{DType, Device, Layout};

use super::batch_norm::{check, exact};
use crate::graph::record_fn;
use crate::{is_grad_enabled, no_grad, Error, Result, Tensor};

/// The sizes of an `[B, C, H, W]` input and the constants of its half spectrum.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    /// Complex samples per channel: `B·H·(W/2 + 1)`.
    n: f64,
    /// Whether `W` is even (the half spectrum then has a Nyquist column).
    even: bool,
}

impl Geometry {
    fn of(op: &'static str, x: &Tensor) -> Result<Geometry> {
        if x.ndim() != 4 || x.numel() == 0 {
            return Err(Error::invalid(op, format!("expected a non-empty input [B, C, H, W], got {:?}", x.shape())));
        }
        if !x.dtype().is_float() {
            return Err(Error::UnsupportedDType { op, dtype: x.dtype() });
        }
        let s = x.shape();
        let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
        Ok(Geometry { b, c, h, w, n: (b * h * (w / 2 + 1)) as f64, even: w % 2 == 0 })
    }

    /// `[W, 4]`: the row functionals `1`, `(−1)^w` (zero for odd `W`), `Re G_w`, `Im G_w`.
    fn functionals(&self, dtype: DType, device: Device) -> Result<Tensor> {
        let (w, wr) = (self.w, self.w / 2 + 1);
        let mut v = Vec::with_capacity(4 * w);
        for i in 0..w {
            let theta = |l: usize| -2.0 * std::f64::consts::PI * ((i * l) % w) as f64 / w as f64;
            let alt = if !self.even {
                0.0
            } else if i % 2 == 0 {
                1.0
            } else {
                -1.0
            };
            let re: f64 = (0..wr).map(|l| theta(l).cos()).sum();
            let im: f64 = (0..wr).map(|l| theta(l).sin()).sum();
            v.extend([1.0, alt, re, im]);
        }
        Tensor::from_vec(v, &[w, 4])?.to_dtype(dtype)?.to_device(device)
    }

    /// `[1, W]` rows: the inverse of the constant half spectrum `1` on row 0 (the impulse
    /// `e_0`) and of the constant `i` (`q`), stacked as `[2, W]`.
    fn row_patterns(&self, dtype: DType, device: Device) -> Result<Tensor> {
        let w = self.w;
        let mut v = vec![0.0; 2 * w];
        v[0] = 1.0;
        for i in 0..w {
            let s: f64 =
                (1..=(w - 1) / 2).map(|l| (2.0 * std::f64::consts::PI * ((i * l) % w) as f64 / w as f64).sin()).sum();
            v[w + i] = -2.0 / w as f64 * s;
        }
        Tensor::from_vec(v, &[2, w])?.to_dtype(dtype)?.to_device(device)
    }
}

/// The batch statistics and the row functionals they came from.
#[derive(Clone)]
struct Stats {
    /// `[B, C, H, 4]`: row sums, alternating row sums, `Re/Im Σ_w x_{h,w} G_w`.
    z: Tensor,
    /// `[C]` each.
    mean_re: Tensor,
    mean_im: Tensor,
    var: Tensor,
}

/// Computes the statistics of `x` (differentiable ops unless `fused`; `fused` takes `Σ x²`
/// from the backend's per-channel statistics kernel).
fn statistics(x: &Tensor, g: &Geometry, m: &Tensor, fused: bool) -> Result<Stats> {
    let (b, c, h, w) = (g.b, g.c, g.h, g.w);
    let sumsq = if fused {
        let (ms, vs) = x.storage().channel_stats(x.layout())?;
        let vec = |s| Tensor::from_storage(s, Layout::contiguous(&[c]));
        let (mean, var) = (vec(ms), vec(vs));
        var.add(&mean.square()?)?.mul_scalar((b * h * w) as f64)?
    } else {
        x.square()?.sum(&[0, 2, 3], false)?
    };
    let z = x.reshape_to(&[b * c * h, w])?.matmul(m)?.reshape_to(&[b, c, h, 4])?;
    let rows = z.narrow(3, 0, 2)?.square()?.sum(&[0, 2], false)?; // [C, 2]
    let mean = z.narrow(2, 0, 1)?.narrow(3, 2, 2)?.sum(&[0, 2], false)?.mul_scalar(h as f64 / g.n)?; // [C, 2]
    let (mean_re, mean_im) = (mean.select(1, 0)?, mean.select(1, 1)?);
    let half_h = h as f64 / 2.0;
    let mut energy = sumsq.mul_scalar(half_h * w as f64)?.add(&rows.select(1, 0)?.mul_scalar(half_h)?)?;
    if g.even {
        energy = energy.add(&rows.select(1, 1)?.mul_scalar(half_h)?)?;
    }
    let var = energy.div_scalar(g.n)?.sub(&mean_re.square()?)?.sub(&mean_im.square()?)?;
    Ok(Stats { z, mean_re, mean_im, var })
}

/// `[1, C, H, W]`, zero but on row 0: `u_c·δ(0, 0) + t_c·q_w`.
fn row0_correction(u: &Tensor, t: &Tensor, g: &Geometry, patterns: &Tensor) -> Result<Tensor> {
    let c = g.c;
    let ut = Tensor::stack(&[u, t], 1)?; // [C, 2]
    let row = ut.matmul(patterns)?; // [C, W]
    row.reshape_to(&[1, c, 1, g.w])?.pad(&[(0, 0), (0, 0), (0, g.h - 1), (0, 0)], 0.0)
}

/// `α = weight / sqrt(var + eps)` (or without the weight) and `1 / sqrt(var + eps)`.
fn scales(var: &Tensor, weight: Option<&Tensor>, eps: f64) -> Result<(Tensor, Tensor)> {
    let inv = var.add_scalar(eps)?.rsqrt()?;
    let alpha = match weight {
        Some(w) => inv.mul(w)?,
        None => inv.clone(),
    };
    Ok((alpha, inv))
}

/// `α·x` plus the row-0 correction for the mean `(mean_re, mean_im)` and the shift `bias`.
fn normalized(
    x: &Tensor,
    g: &Geometry,
    alpha: &Tensor,
    mean_re: &Tensor,
    mean_im: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let patterns = g.row_patterns(x.dtype(), x.device())?;
    let mut u = alpha.mul(mean_re)?.neg()?;
    if let Some(b) = bias {
        u = u.add(b)?;
    }
    let t = alpha.mul(mean_im)?.neg()?;
    let zeros = Tensor::zeros_like(alpha)?;
    x.channel_affine(alpha, &zeros)?.add(&row0_correction(&u, &t, g, &patterns)?)
}

impl Tensor {
    /// Spectral batch normalization with batch statistics (training mode) over an
    /// `[B, C, H, W]` input: Algorithm 1 of the SBN paper (see the [module docs](self) for the
    /// closed form it is computed in). Returns `(y, mean_re, mean_im, var)`: the output and the
    /// detached `[C]` statistics (real and imaginary parts of the complex mean, the real
    /// variance over batch and half-spectrum bins, biased). `weight` (γ) and `bias` (β) are
    /// optional real `[C]` tensors. Differentiable in `x`, `weight` and `bias`, to any order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::randn(&[4, 2, 3, 4], 0).unwrap().to_dtype(autograd::DType::F64).unwrap();
    /// let (y, mean_re, mean_im, var) = x.spectral_batch_norm_train(None, None, 0.0).unwrap();
    /// assert_eq!((y.shape(), var.shape(), mean_im.shape()), (x.shape(), &[2][..], &[2][..]));
    /// // Like batch norm, invariant to the input's scale (exactly so with eps = 0).
    /// let (y3, ..) = x.mul_scalar(3.0).unwrap().spectral_batch_norm_train(None, None, 0.0).unwrap();
    /// let d = y3.sub(&y).unwrap().abs().unwrap().max(&[0, 1, 2, 3], false).unwrap().item().unwrap();
    /// assert!(d < 1e-12);
    /// # let _ = mean_re;
    /// ```
    pub fn spectral_batch_norm_train(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        const OP: &str = "spectral_batch_norm";
        let geo = Geometry::of(OP, self)?;
        check(OP, self, &[("weight", weight), ("bias", bias)])?;
        let x = self.contiguous()?;
        let m = geo.functionals(x.dtype(), x.device())?;
        let (y, stats) = crate::profile::forward(OP, x.device(), || {
            no_grad(|| -> Result<(Tensor, Stats)> {
                let st = statistics(&x, &geo, &m, true)?;
                let (alpha, _) = scales(&st.var, weight.map(Tensor::detach).as_ref(), eps)?;
                let bias = bias.map(Tensor::detach);
                let y = normalized(&x, &geo, &alpha, &st.mean_re, &st.mean_im, bias.as_ref())?;
                Ok((y, st))
            })
        })?;
        let (mean_re, mean_im, var) = (stats.mean_re.clone(), stats.mean_im.clone(), stats.var.clone());
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let (w, has_b) = (weight.cloned(), bias.is_some());
        let y = record_fn(y, OP, &inputs, move || {
            move |g: &Tensor| {
                let grads = sbn_backward(&x, w.as_ref(), g, &geo, &m, &stats, eps)?;
                let mut out = vec![Some(grads.0)];
                if w.is_some() {
                    out.push(Some(grads.1));
                }
                if has_b {
                    out.push(Some(grads.2));
                }
                Ok(out)
            }
        });
        Ok((y, mean_re, mean_im, var))
    }

    /// Spectral batch normalization with fixed statistics (evaluation mode): Algorithm 1's
    /// steps 4-6 with the running mean `(mean_re, mean_im)` and variance `var` (`[C]` each), as
    /// `α·x` plus a correction on each map's first row (see the [module docs](self)). The output
    /// of each sample depends on that sample only. Differentiable in `x`, the statistics,
    /// `weight` and `bias`, to any order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::randn(&[2, 3, 4, 4], 0).unwrap();
    /// let (zeros, ones) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
    /// // Zero mean, unit variance, γ = 1, β = 0, eps = 0: the identity.
    /// let y = x.spectral_batch_norm_eval(&zeros, &zeros, &ones, None, None, 0.0).unwrap();
    /// let d = y.sub(&x).unwrap().abs().unwrap().max(&[0, 1, 2, 3], false).unwrap().item().unwrap();
    /// assert!(d < 1e-6);
    /// ```
    pub fn spectral_batch_norm_eval(
        &self,
        mean_re: &Tensor,
        mean_im: &Tensor,
        var: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        const OP: &str = "spectral_batch_norm_eval";
        let geo = Geometry::of(OP, self)?;
        check(
            OP,
            self,
            &[
                ("mean_re", Some(mean_re)),
                ("mean_im", Some(mean_im)),
                ("var", Some(var)),
                ("weight", weight),
                ("bias", bias),
            ],
        )?;
        let (alpha, _) = scales(var, weight, eps)?;
        normalized(self, &geo, &alpha, mean_re, mean_im, bias)
    }
}

/// The gradients `(dx, dweight, dbias)` of the training-mode op for the output gradient `g`.
/// At first order the saved statistics and the backend's fused per-channel kernels are used;
/// with recording on (`create_graph`) everything is recomputed from `x` with differentiable
/// ops, so the result carries its dependence on `x`, `weight` and `bias`.
fn sbn_backward(
    x: &Tensor,
    weight: Option<&Tensor>,
    g: &Tensor,
    geo: &Geometry,
    m: &Tensor,
    saved: &Stats,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let graph = is_grad_enabled();
    let st = if graph { statistics(x, geo, m, false)? } else { saved.clone() };
    let weight = if graph { weight.cloned() } else { weight.map(Tensor::detach) };
    let (alpha, inv) = scales(&st.var, weight.as_ref(), eps)?;
    let (b, c, h, w) = (geo.b, geo.c, geo.h, geo.w);
    let zeros = Tensor::zeros_like(&alpha)?;
    // Σ g·x per channel.
    let sgx = if graph {
        g.mul(x)?.sum(&[0, 2, 3], false)?
    } else {
        let (_, s) = g.storage().channel_sums(g.layout(), &x.storage(), x.layout(), &exact(&zeros)?)?;
        Tensor::from_storage(s, Layout::contiguous(&[c]))
    };
    // The output gradient on the row-0 patterns: gp = Σ_b g[b, c, 0, 0], gq = Σ_b Σ_w g[b, c, 0, w] q_w.
    let patterns = geo.row_patterns(x.dtype(), x.device())?;
    let g_row0 = g.narrow(2, 0, 1)?.sum(&[0, 2], false)?; // [C, W]
    let gpq = g_row0.matmul(&patterns.t()?)?; // [C, 2]
    let (gp, gq) = (gpq.select(1, 0)?, gpq.select(1, 1)?);
    // y = α x + (β − α μr) e0 − α μi q.
    let d_alpha = sgx.sub(&st.mean_re.mul(&gp)?)?.sub(&st.mean_im.mul(&gq)?)?;
    let d_weight = d_alpha.mul(&inv)?;
    // α = γ / sqrt(σ² + eps): dL/dσ² = −½ dα·α/(σ² + eps).
    let d_var = d_alpha.mul(&alpha)?.mul(&inv.square()?)?.mul_scalar(-0.5)?;
    // σ² = E/n − μr² − μi².
    let d_energy = d_var.div_scalar(geo.n)?;
    let d_mean_re = alpha.mul(&gp)?.add(&st.mean_re.mul(&d_var)?.mul_scalar(2.0)?)?.neg()?;
    let d_mean_im = alpha.mul(&gq)?.add(&st.mean_im.mul(&d_var)?.mul_scalar(2.0)?)?.neg()?;
    // dx = α g + dE·HW·x + dE·H·(r_h + [W even] a_h (−1)^w) + δ(h, 0)·(H/n)(dμr Re G_w + dμi Im G_w),
    // the last two terms as one product of per-row coefficients [B, C, H, 4] with the functionals.
    let c_x = d_energy.mul_scalar((h * w) as f64)?;
    let c_rows = d_energy.mul_scalar(h as f64)?;
    let c_alt = if geo.even { c_rows.clone() } else { zeros.clone() };
    let coef = Tensor::stack(&[&c_rows, &c_alt], 1)?.reshape_to(&[1, c, 1, 2])?;
    let rows = st.z.narrow(3, 0, 2)?.mul(&coef)?; // [B, C, H, 2]
    let mean_part = Tensor::stack(&[&d_mean_re, &d_mean_im], 1)?
        .mul_scalar(h as f64 / geo.n)?
        .reshape_to(&[1, c, 1, 2])?
        .pad(&[(0, 0), (0, 0), (0, h - 1), (0, 0)], 0.0)?
        .expand(&[b, c, h, 2])?;
    let r = Tensor::cat(&[&rows, &mean_part], 3)?.reshape_to(&[b * c * h, 4])?.matmul(&m.t()?)?;
    let r = r.reshape_to(&[b, c, h, w])?;
    let main = if graph {
        g.channel_affine(&alpha, &zeros)?.add(&x.channel_affine(&c_x, &zeros)?)?
    } else {
        let s = g.storage().channel_fma(
            g.layout(),
            &exact(&alpha)?,
            &exact(&zeros)?,
            Some((&x.storage(), x.layout(), &exact(&c_x)?)),
        )?;
        Tensor::from_storage(s, Layout::contiguous(g.shape()))
    };
    Ok((main.add(&r)?, d_weight, gp))
}
