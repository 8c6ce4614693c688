//! Multi-level 1-D discrete wavelet transform along the last axis and its inverse, in
//! PyWavelets' zero-padding mode (`pywt.wavedec(x, w, mode='zero', level=L)` / `pywt.waverec`).
//!
//! Both directions are fixed linear maps built from framework ops, so they are differentiable
//! (to any order) for f32 and f64 on every device the ops run on:
//!
//! - [`DwtAlgorithm::Matrix`]: all levels composed into one `[N, T]` analysis matrix `W`
//!   (`T` = total number of coefficients); the forward pass is one GEMM `x W`, the inverse one
//!   GEMM `c Wᵀ`. Fastest for short signals (`N` up to a few hundred: feature maps).
//! - [`DwtAlgorithm::Conv`]: one strided two-channel `conv2d` per level (signals as `[R, 1, 1, N]`
//!   images), inverted with `conv2d_backward_data`, its adjoint. `O(N·L)` per signal.
//!
//! For an orthogonal wavelet the synthesis is the adjoint of the analysis cropped to the signal
//! length, which is why one matrix (or one convolution) serves both directions.

use super::matrix::{apply_last, cached, MatrixKind};
use super::Wavelet;
use crate::{Conv2dParams, DType, Device, Error, Result, Tensor};

/// Signals up to this length use [`DwtAlgorithm::Matrix`] under [`DwtAlgorithm::Auto`].
pub const MATRIX_MAX_LEN: usize = 448;

/// Levels above this are rejected (band lengths stop shrinking long before).
pub const MAX_LEVEL: usize = 32;

/// How a [`Dwt`] computes its transforms (the results agree to rounding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DwtAlgorithm {
    /// [`DwtAlgorithm::Matrix`] for signals up to [`MATRIX_MAX_LEN`] samples, else
    /// [`DwtAlgorithm::Conv`].
    #[default]
    Auto,
    /// One dense GEMM with the composite analysis matrix (cached per size, dtype and device).
    Matrix,
    /// One strided convolution per level.
    Conv,
}

/// The coefficients of a multi-level 1-D DWT: the approximation band of the coarsest level and
/// the detail bands, **finest first** (`details[0]` is level 1, the first high-pass split).
///
/// Every band has the signal's leading dimensions and its own length on the last axis.
#[derive(Clone, Debug)]
pub struct DwtCoeffs {
    /// The approximation (low-pass) band of the last level, `cA_L`.
    pub approx: Tensor,
    /// The detail (high-pass) bands `cD_1` (finest) .. `cD_L` (coarsest).
    pub details: Vec<Tensor>,
}

impl DwtCoeffs {
    /// The bands in PyWavelets' `wavedec` order: `[cA_L, cD_L, ..., cD_1]`.
    pub fn to_pywt_order(&self) -> Vec<Tensor> {
        std::iter::once(self.approx.clone()).chain(self.details.iter().rev().cloned()).collect()
    }

    /// The number of levels (detail bands).
    pub fn level(&self) -> usize {
        self.details.len()
    }
}

/// A planned multi-level DWT of signals of one length: the band lengths, and the transforms.
///
/// ```
/// use autograd::signal::{Dwt, Wavelet};
/// use autograd::Tensor;
/// let plan = Dwt::new(Wavelet::Db3, 196, 3).unwrap();
/// assert_eq!(plan.band_lens(), &[28, 28, 52, 100]); // pywt order: cA3, cD3, cD2, cD1
/// let x = Tensor::randn(&[2, 4, 196], 0).unwrap();
/// let c = plan.forward_packed(&x).unwrap(); // [2, 4, 208]: the bands side by side
/// let y = plan.inverse_packed(&c).unwrap();
/// let err = y.sub(&x).unwrap().abs().unwrap().max(&[0, 1, 2], false).unwrap().item().unwrap();
/// assert!(err < 1e-5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dwt {
    wavelet: Wavelet,
    len: usize,
    /// Input length of each level: `level_lens[0] = len`, `level_lens[j]` = band length of level j.
    level_lens: Vec<usize>,
    band_lens: Vec<usize>,
    algorithm: DwtAlgorithm,
}

impl Dwt {
    /// Plans a `level`-level transform of signals of length `len` (errors name `op`).
    fn plan(op: &'static str, wavelet: Wavelet, len: usize, level: usize) -> Result<Dwt> {
        if len == 0 {
            return Err(Error::invalid(op, "cannot transform an empty signal (length 0)"));
        }
        if level == 0 || level > MAX_LEVEL {
            return Err(Error::invalid(
                op,
                format!("level must be in 1..={MAX_LEVEL}, got {level} (signal length {len}, {wavelet})"),
            ));
        }
        let mut level_lens = vec![len];
        for j in 0..level {
            level_lens.push(wavelet.coeff_len(level_lens[j]));
        }
        let mut band_lens = vec![level_lens[level]];
        band_lens.extend(level_lens[1..].iter().rev());
        Ok(Dwt { wavelet, len, level_lens, band_lens, algorithm: DwtAlgorithm::Auto })
    }

    /// Plans a `level`-level (`1..=`[`MAX_LEVEL`]) transform of signals of length `len >= 1`.
    /// Levels beyond PyWavelets' `dwt_max_level` are allowed (PyWavelets only warns for them).
    pub fn new(wavelet: Wavelet, len: usize, level: usize) -> Result<Dwt> {
        Self::plan("dwt", wavelet, len, level)
    }

    /// The same plan computed with `algorithm`.
    pub fn with_algorithm(mut self, algorithm: DwtAlgorithm) -> Dwt {
        self.algorithm = algorithm;
        self
    }

    /// The wavelet.
    pub fn wavelet(&self) -> Wavelet {
        self.wavelet
    }

    /// The signal length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a plan is for signals of at least one sample.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The number of levels.
    pub fn level(&self) -> usize {
        self.level_lens.len() - 1
    }

    /// Band lengths in PyWavelets' order `[cA_L, cD_L, ..., cD_1]`.
    pub fn band_lens(&self) -> &[usize] {
        &self.band_lens
    }

    /// The total number of coefficients (the last axis of the packed form).
    pub fn coeffs_len(&self) -> usize {
        self.band_lens.iter().sum()
    }

    fn uses_matrix(&self) -> bool {
        match self.algorithm {
            DwtAlgorithm::Auto => self.len <= MATRIX_MAX_LEN,
            DwtAlgorithm::Matrix => true,
            DwtAlgorithm::Conv => false,
        }
    }

    fn check_signal(&self, op: &'static str, x: &Tensor, axis_name: &str) -> Result<()> {
        if !x.dtype().is_float() {
            return Err(Error::UnsupportedDType { op, dtype: x.dtype() });
        }
        let want = if axis_name == "signal" { self.len } else { self.coeffs_len() };
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != want {
            return Err(Error::invalid(
                op,
                format!(
                    "expected a {axis_name} of length {want} on the last axis ({} level {} of length {}), got shape {:?}",
                    self.wavelet,
                    self.level(),
                    self.len,
                    x.shape()
                ),
            ));
        }
        Ok(())
    }

    /// The transform of `x` (`[..., len]`): the bands as views of [`Dwt::forward_packed`].
    pub fn forward(&self, x: &Tensor) -> Result<DwtCoeffs> {
        let packed = self.forward_packed(x)?;
        let nd = packed.ndim();
        let mut start = 0;
        let mut bands = vec![];
        for &n in &self.band_lens {
            bands.push(packed.narrow(nd - 1, start, n)?);
            start += n;
        }
        let approx = bands.remove(0);
        bands.reverse();
        Ok(DwtCoeffs { approx, details: bands })
    }

    /// The transform of `x` (`[..., len]`) as one tensor `[..., coeffs_len]` holding the bands
    /// side by side in PyWavelets' order `[cA_L, cD_L, ..., cD_1]` (lengths [`Dwt::band_lens`]).
    pub fn forward_packed(&self, x: &Tensor) -> Result<Tensor> {
        self.check_signal("dwt", x, "signal")?;
        if self.uses_matrix() {
            return apply_last(x, &self.matrix(x)?);
        }
        let (lead, r) = split_rows(x);
        let mut approx = x.reshape(&[r as isize, self.len as isize])?;
        let mut details = vec![];
        for j in 0..self.level() {
            let (lo, hi) = analysis_step(&approx, self.wavelet)?;
            debug_assert_eq!(lo.shape()[1], self.level_lens[j + 1]);
            details.push(hi);
            approx = lo;
        }
        details.push(approx);
        details.reverse();
        let refs: Vec<&Tensor> = details.iter().collect();
        Tensor::cat(&refs, 1)?.reshape_to(&with_last(&lead, self.coeffs_len()))
    }

    /// The inverse transform: the signal (`[..., len]`) whose transform is `c`.
    pub fn inverse(&self, c: &DwtCoeffs) -> Result<Tensor> {
        let op = "idwt";
        let bands = c.to_pywt_order();
        if bands.len() != self.band_lens.len() {
            return Err(Error::invalid(
                op,
                format!("{} detail bands given for a {}-level transform", c.details.len(), self.level()),
            ));
        }
        let lead = &c.approx.shape()[..c.approx.ndim().saturating_sub(1)];
        for (b, &n) in bands.iter().zip(&self.band_lens) {
            if b.ndim() == 0 || &b.shape()[..b.ndim() - 1] != lead || b.shape()[b.ndim() - 1] != n {
                let shapes: Vec<&[usize]> = bands.iter().map(|b| b.shape()).collect();
                return Err(Error::invalid(
                    op,
                    format!(
                        "bands of shapes {shapes:?} (pywt order) do not fit a {} level-{} transform of length {} \
                         (band lengths {:?}, one set of leading dims)",
                        self.wavelet,
                        self.level(),
                        self.len,
                        self.band_lens
                    ),
                ));
            }
        }
        let refs: Vec<&Tensor> = bands.iter().collect();
        let packed = Tensor::cat(&refs, lead.len()).map_err(|e| match e {
            Error::DTypeMismatch { lhs, rhs, .. } => Error::DTypeMismatch { op, lhs, rhs },
            e => e,
        })?;
        self.inverse_packed(&packed)
    }

    /// The inverse of [`Dwt::forward_packed`]: `[..., coeffs_len]` -> `[..., len]`.
    pub fn inverse_packed(&self, c: &Tensor) -> Result<Tensor> {
        self.check_signal("idwt", c, "packed coefficient vector")?;
        if self.uses_matrix() {
            return apply_last(c, &self.matrix(c)?.t()?);
        }
        let (lead, r) = split_rows(c);
        let c = c.reshape(&[r as isize, self.coeffs_len() as isize])?;
        let mut approx = c.narrow(1, 0, self.band_lens[0])?;
        let mut start = self.band_lens[0];
        for j in (0..self.level()).rev() {
            let n = self.level_lens[j + 1];
            let detail = c.narrow(1, start, n)?;
            start += n;
            approx = synthesis_step(&approx, &detail, self.wavelet, self.level_lens[j])?;
        }
        approx.reshape_to(&with_last(&lead, self.len))
    }

    /// The composite analysis matrix `[len, coeffs_len]` of `like`'s dtype and device.
    fn matrix(&self, like: &Tensor) -> Result<Tensor> {
        self.matrix_on(like.dtype(), like.device())
    }

    fn matrix_on(&self, dtype: DType, device: Device) -> Result<Tensor> {
        let kind = MatrixKind::Dwt { wavelet: self.wavelet, len: self.len, level: self.level() };
        cached(kind, dtype, device, || (analysis_matrix(self), vec![self.len, self.coeffs_len()]))
    }

    /// The `[len, len]` matrix `M` of "transform, multiply band `b` by `band_scales[b]`,
    /// invert" (bands in PyWavelets' order `[cA_L, cD_L, ..., cD_1]`): `x.matmul(&M)` equals
    /// `inverse_packed(forward_packed(x) · s)` in one GEMM, which is how a layer that scales
    /// whole bands (spectral wavelet dropout) is cheapest. `M = W diag(s) Wᵀ` is symmetric and
    /// is the identity when every scale is 1. Built on `device` with two small ops per call;
    /// `len²` elements, so meant for short signals.
    ///
    /// ```
    /// use autograd::signal::{Dwt, Wavelet};
    /// use autograd::{DType, Device, Tensor};
    /// let plan = Dwt::new(Wavelet::Db3, 16, 3).unwrap();
    /// // Drop the two finest detail bands, keep the rest.
    /// let m = plan.band_operator(&[1.0, 1.0, 0.0, 0.0], DType::F64, Device::Cpu).unwrap();
    /// let x = Tensor::randn(&[5, 16], 0).unwrap().to_dtype(DType::F64).unwrap();
    /// let y = x.matmul(&m).unwrap();
    /// assert_eq!(plan.band_lens(), &[6, 6, 7, 10]);
    /// let scale: Vec<f64> = [1.0; 12].into_iter().chain([0.0; 17]).collect();
    /// let scale = Tensor::from_vec(scale, &[29]).unwrap();
    /// let z = plan.inverse_packed(&plan.forward_packed(&x).unwrap().mul(&scale).unwrap()).unwrap();
    /// assert!(y.sub(&z).unwrap().abs().unwrap().max(&[0, 1], false).unwrap().item().unwrap() < 1e-12);
    /// ```
    pub fn band_operator(&self, band_scales: &[f64], dtype: DType, device: Device) -> Result<Tensor> {
        if band_scales.len() != self.band_lens.len() {
            return Err(Error::invalid(
                "dwt_band_operator",
                format!(
                    "{} band scales given for the {} bands (lengths {:?}) of a level-{} transform",
                    band_scales.len(),
                    self.band_lens.len(),
                    self.band_lens,
                    self.level()
                ),
            ));
        }
        let per_coeff: Vec<f64> =
            self.band_lens.iter().zip(band_scales).flat_map(|(&n, &s)| std::iter::repeat_n(s, n)).collect();
        let w = self.matrix_on(dtype, device)?;
        scaled_gram(&w, per_coeff)
    }
}

/// `W diag(s) Wᵀ` for a constant `W` (`[n, t]`) and `s` (`t` values), on `W`'s device.
pub(super) fn scaled_gram(w: &Tensor, s: Vec<f64>) -> Result<Tensor> {
    let n = s.len();
    let s = Tensor::from_vec(s, &[n])?.to_dtype(w.dtype())?.to_device(w.device())?;
    crate::no_grad(|| w.mul(&s)?.matmul(&w.t()?))
}

/// The leading dims of `x` and their product.
fn split_rows(x: &Tensor) -> (Vec<usize>, usize) {
    let lead = x.shape()[..x.ndim() - 1].to_vec();
    let r = lead.iter().product();
    (lead, r)
}

fn with_last(lead: &[usize], n: usize) -> Vec<usize> {
    let mut s = lead.to_vec();
    s.push(n);
    s
}

/// The row-major `[len, coeffs_len]` matrix `W` with `x W` = the packed coefficients.
///
/// Level `j` maps its input `a` (length `m`) to `lo[i] = Σ_k g[k] a[2i+1−k]` and
/// `hi[i] = Σ_k h[k] a[2i+1−k]` (full convolution, odd samples: PyWavelets' alignment); the
/// columns of the current approximation are carried from level to level.
pub(super) fn analysis_matrix(plan: &Dwt) -> Vec<f64> {
    let (g, h) = (plan.wavelet.dec_lo(), plan.wavelet.dec_hi());
    let len = plan.len;
    // `approx` is [len, m]: the map from the signal to the current approximation.
    let mut approx: Vec<f64> = (0..len * len).map(|i| if i / len == i % len { 1.0 } else { 0.0 }).collect();
    let mut m = len;
    let mut details = vec![];
    for &n in &plan.level_lens[1..] {
        let (mut lo, mut hi) = (vec![0.0; len * n], vec![0.0; len * n]);
        for r in 0..len {
            for i in 0..n {
                for (k, (&gk, &hk)) in g.iter().zip(&h).enumerate() {
                    let Some(t) = (2 * i + 1).checked_sub(k).filter(|&t| t < m) else { continue };
                    let a = approx[r * m + t];
                    lo[r * n + i] += gk * a;
                    hi[r * n + i] += hk * a;
                }
            }
        }
        details.push((hi, n));
        approx = lo;
        m = n;
    }
    details.push((approx, m));
    details.reverse();
    let total = plan.coeffs_len();
    let mut w = vec![0.0; len * total];
    let mut col = 0;
    for (band, n) in &details {
        for r in 0..len {
            w[r * total + col..r * total + col + n].copy_from_slice(&band[r * n..(r + 1) * n]);
        }
        col += n;
    }
    w
}

/// The conv2d weight `[2, 1, 1, L+1]` and parameters of one analysis level: with padding
/// `L − 1` on both sides and a leading zero tap, output `i` reads `x[2i+1−(L−1) .. 2i+1]`
/// against the reversed filters, i.e. `Σ_k g[k] x[2i+1−k]`.
fn level_conv(wavelet: Wavelet, like: &Tensor) -> Result<(Tensor, Conv2dParams)> {
    let l = wavelet.filter_len();
    let w = cached(MatrixKind::DwtFilters(wavelet), like.dtype(), like.device(), || {
        let mut v = vec![0.0];
        v.extend(wavelet.rec_lo());
        v.push(0.0);
        v.extend(wavelet.rec_hi());
        (v, vec![2, 1, 1, l + 1])
    })?;
    Ok((w, Conv2dParams { stride: (1, 2), padding: (0, l - 1), ..Default::default() }))
}

/// One analysis level of `[R, m]` signals: `([R, n], [R, n])` approximation and detail.
fn analysis_step(x: &Tensor, wavelet: Wavelet) -> Result<(Tensor, Tensor)> {
    let (r, m) = (x.shape()[0], x.shape()[1]);
    let (w, params) = level_conv(wavelet, x)?;
    let y = x.reshape_to(&[1, 1, r, m])?.conv2d(&w, None, params)?;
    let n = y.shape()[3];
    let y = y.reshape_to(&[2, r, n])?;
    Ok((y.select(0, 0)?, y.select(0, 1)?))
}

/// One synthesis level: `[R, n]` approximation and detail -> `[R, m]` (the adjoint of
/// [`analysis_step`], which for an orthogonal wavelet is its inverse on signals of length `m`).
fn synthesis_step(approx: &Tensor, detail: &Tensor, wavelet: Wavelet, m: usize) -> Result<Tensor> {
    let (r, n) = (approx.shape()[0], approx.shape()[1]);
    let (w, params) = level_conv(wavelet, approx)?;
    let c = Tensor::stack(&[approx, detail], 0)?.reshape_to(&[1, 2, r, n])?;
    c.conv2d_backward_data(&w, params, (r, m))?.reshape_to(&[r, m])
}

/// The `level`-level DWT of `x` along its last axis (as `pywt.wavedec(x, wavelet, mode='zero',
/// level=level, axis=-1)`), differentiable. See [`Dwt`] to reuse a plan or get packed bands.
///
/// ```
/// use autograd::signal::{dwt, idwt, Wavelet};
/// use autograd::Tensor;
/// let x = Tensor::from_vec((0..64).map(|i| (i as f64 * 0.3).sin()).collect(), &[64]).unwrap();
/// let c = dwt(&x, Wavelet::Db3, 3).unwrap();
/// let lens: Vec<usize> = c.to_pywt_order().iter().map(|b| b.shape()[0]).collect();
/// assert_eq!(lens, vec![12, 12, 19, 34]);
/// let y = idwt(&c, Wavelet::Db3, 64).unwrap();
/// let err = y.sub(&x).unwrap().abs().unwrap().max(&[0], false).unwrap().item().unwrap();
/// assert!(err < 1e-12);
/// ```
pub fn dwt(x: &Tensor, wavelet: Wavelet, level: usize) -> Result<DwtCoeffs> {
    if x.ndim() == 0 {
        return Err(Error::invalid("dwt", "needs a signal axis, got a 0-D tensor"));
    }
    Dwt::new(wavelet, x.shape()[x.ndim() - 1], level)?.forward(x)
}

/// The inverse of [`dwt`]: reconstructs signals of length `len` (any length, the one given to
/// [`dwt`]) from their coefficients; the level is `coeffs.details.len()`. Differentiable.
///
/// ```
/// use autograd::signal::{dwt, idwt, Wavelet};
/// use autograd::Tensor;
/// let x = Tensor::randn(&[3, 13], 1).unwrap();
/// let y = idwt(&dwt(&x, Wavelet::Db2, 2).unwrap(), Wavelet::Db2, 13).unwrap();
/// assert_eq!(y.shape(), &[3, 13]);
/// ```
pub fn idwt(coeffs: &DwtCoeffs, wavelet: Wavelet, len: usize) -> Result<Tensor> {
    Dwt::plan("idwt", wavelet, len, coeffs.details.len())?.inverse(coeffs)
}
