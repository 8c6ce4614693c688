//! One-level separable 2-D DWT over the last two axes and its inverse, as `pywt.dwt2(x, w,
//! mode='zero')` / `pywt.idwt2`: the 1-D transform ([`Dwt`]) along the last axis (columns of
//! an image, `W`), then along the second-to-last axis (rows, `H`).

use super::dwt::{analysis_matrix, scaled_gram};
use super::matrix::{apply_last_two, cached, kron, MatrixKind};
use super::{Dwt, DwtAlgorithm, Wavelet};
use crate::{DType, Device, Error, Result, Tensor};

/// Under [`DwtAlgorithm::Auto`], maps whose 2-D analysis matrix (`H·W × 4·nH·nW`, the Kronecker
/// product of the two 1-D matrices) has at most this many entries are transformed with it in one
/// GEMM (up to 14x14 for db3); larger maps take two separable 1-D passes.
pub const KRON_MAX_ENTRIES: usize = 1 << 16;

/// The four bands of a one-level 2-D DWT, each `[..., nH, nW]` with `n = ⌊(size + L − 1)/2⌋`,
/// in PyWavelets' naming (`cA, (cH, cV, cD)`; the paper's LL, LH, HL, HH in that order).
#[derive(Clone, Debug)]
pub struct Dwt2Coeffs {
    /// `cA`: low-pass along both axes (LL).
    pub approx: Tensor,
    /// `cH`: high-pass along the rows axis (`H`, second to last), low-pass along `W` (LH).
    pub horizontal: Tensor,
    /// `cV`: low-pass along `H`, high-pass along the last axis `W` (HL).
    pub vertical: Tensor,
    /// `cD`: high-pass along both axes (HH).
    pub diagonal: Tensor,
}

impl Dwt2Coeffs {
    /// The bands in PyWavelets' order `[cA, cH, cV, cD]`.
    pub fn bands(&self) -> [&Tensor; 4] {
        [&self.approx, &self.horizontal, &self.vertical, &self.diagonal]
    }
}

/// A planned one-level 2-D DWT of `[..., H, W]` maps.
///
/// The packed form is one `[..., 2nH, 2nW]` tensor with the bands as quadrants:
/// `cA` top-left, `cV` top-right, `cH` bottom-left, `cD` bottom-right.
///
/// ```
/// use autograd::signal::{Dwt2, Wavelet};
/// use autograd::Tensor;
/// let plan = Dwt2::new(Wavelet::Db3, (14, 14)).unwrap();
/// assert_eq!(plan.band_hw(), (9, 9));
/// let x = Tensor::randn(&[2, 3, 14, 14], 0).unwrap();
/// let c = plan.forward_packed(&x).unwrap();
/// assert_eq!(c.shape(), &[2, 3, 18, 18]);
/// let y = plan.inverse_packed(&c).unwrap();
/// assert!(y.sub(&x).unwrap().abs().unwrap().max(&[0, 1, 2, 3], false).unwrap().item().unwrap() < 1e-5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dwt2 {
    rows: Dwt,
    cols: Dwt,
    algorithm: DwtAlgorithm,
}

impl Dwt2 {
    fn plan(op: &'static str, wavelet: Wavelet, hw: (usize, usize)) -> Result<Dwt2> {
        if hw.0 == 0 || hw.1 == 0 {
            return Err(Error::invalid(op, format!("cannot transform an empty map of size {hw:?}")));
        }
        Ok(Dwt2 { rows: Dwt::new(wavelet, hw.0, 1)?, cols: Dwt::new(wavelet, hw.1, 1)?, algorithm: DwtAlgorithm::Auto })
    }

    /// Plans the transform of `[..., H, W]` maps with `(H, W) = hw` (both at least 1).
    pub fn new(wavelet: Wavelet, hw: (usize, usize)) -> Result<Dwt2> {
        Self::plan("dwt2", wavelet, hw)
    }

    /// The same plan computed with `algorithm`: [`DwtAlgorithm::Matrix`] and
    /// [`DwtAlgorithm::Conv`] run two separable 1-D passes of that kind; [`DwtAlgorithm::Auto`]
    /// uses the 2-D matrix for small maps (see [`KRON_MAX_ENTRIES`]) and separable passes
    /// otherwise.
    pub fn with_algorithm(self, algorithm: DwtAlgorithm) -> Dwt2 {
        Dwt2 { rows: self.rows.with_algorithm(algorithm), cols: self.cols.with_algorithm(algorithm), algorithm }
    }

    fn uses_kron(&self) -> bool {
        let (nh, nw) = self.band_hw();
        self.algorithm == DwtAlgorithm::Auto && self.rows.len() * self.cols.len() * 4 * nh * nw <= KRON_MAX_ENTRIES
    }

    /// The 2-D analysis matrix `[H·W, 4·nH·nW]` (packed quadrant layout) on `dtype`/`device`.
    fn kron_on(&self, dtype: DType, device: Device) -> Result<Tensor> {
        let ((h, w), (nh, nw)) = (self.hw(), self.band_hw());
        let kind = MatrixKind::Dwt2 { wavelet: self.rows.wavelet(), h, w };
        cached(kind, dtype, device, || {
            let k = kron(&analysis_matrix(&self.rows), (h, 2 * nh), &analysis_matrix(&self.cols), (w, 2 * nw));
            (k, vec![h * w, 4 * nh * nw])
        })
    }

    /// The `[H·W, H·W]` matrix `M` of "transform, multiply the bands `cA, cH, cV, cD` by
    /// `band_scales`, invert", acting on row-major flattened maps: `x.reshape([-1, H·W]).matmul(&M)`
    /// is that whole round trip in one GEMM (cheapest for layers that scale whole bands).
    /// Symmetric; the identity when every scale is 1.
    ///
    /// ```
    /// use autograd::signal::{Dwt2, Wavelet};
    /// use autograd::{DType, Device, Tensor};
    /// let plan = Dwt2::new(Wavelet::Db3, (4, 4)).unwrap();
    /// let m = plan.band_operator(&[1.0; 4], DType::F64, Device::Cpu).unwrap();
    /// let x = Tensor::randn(&[3, 16], 0).unwrap().to_dtype(DType::F64).unwrap();
    /// assert!(x.matmul(&m).unwrap().sub(&x).unwrap().abs().unwrap().max(&[0, 1], false).unwrap().item().unwrap() < 1e-12);
    /// ```
    pub fn band_operator(&self, band_scales: &[f64; 4], dtype: DType, device: Device) -> Result<Tensor> {
        let (nh, nw) = self.band_hw();
        // Packed layout [2nH, 2nW]: cA top-left, cV top-right, cH bottom-left, cD bottom-right.
        let per_coeff: Vec<f64> = (0..4 * nh * nw)
            .map(|i| {
                let (r, c) = (i / (2 * nw) >= nh, i % (2 * nw) >= nw);
                band_scales[match (r, c) {
                    (false, false) => 0,
                    (true, false) => 1,
                    (false, true) => 2,
                    (true, true) => 3,
                }]
            })
            .collect();
        scaled_gram(&self.kron_on(dtype, device)?, per_coeff)
    }

    /// The map size `(H, W)`.
    pub fn hw(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }

    /// The size `(nH, nW)` of each band.
    pub fn band_hw(&self) -> (usize, usize) {
        (self.rows.band_lens()[0], self.cols.band_lens()[0])
    }

    fn check(&self, op: &'static str, x: &Tensor, want: (usize, usize), what: &str) -> Result<()> {
        let nd = x.ndim();
        if nd < 2 || (x.shape()[nd - 2], x.shape()[nd - 1]) != want {
            return Err(Error::invalid(
                op,
                format!(
                    "expected {what} [..., {}, {}] ({} on {:?} maps), got shape {:?}",
                    want.0,
                    want.1,
                    self.rows.wavelet(),
                    self.hw(),
                    x.shape()
                ),
            ));
        }
        Ok(())
    }

    /// The packed transform `[..., 2nH, 2nW]` of `x` (`[..., H, W]`).
    pub fn forward_packed(&self, x: &Tensor) -> Result<Tensor> {
        self.check("dwt2", x, self.hw(), "maps")?;
        if self.uses_kron() {
            if !x.dtype().is_float() {
                return Err(Error::UnsupportedDType { op: "dwt2", dtype: x.dtype() });
            }
            let (nh, nw) = self.band_hw();
            return apply_last_two(x, &self.kron_on(x.dtype(), x.device())?, (2 * nh, 2 * nw));
        }
        let nd = x.ndim();
        let y = self.cols.forward_packed(x)?.transpose(nd - 2, nd - 1)?;
        self.rows.forward_packed(&y)?.transpose(nd - 2, nd - 1)
    }

    /// The inverse of [`Dwt2::forward_packed`]: `[..., 2nH, 2nW]` -> `[..., H, W]`.
    pub fn inverse_packed(&self, c: &Tensor) -> Result<Tensor> {
        let (nh, nw) = self.band_hw();
        self.check("idwt2", c, (2 * nh, 2 * nw), "packed bands")?;
        if self.uses_kron() {
            if !c.dtype().is_float() {
                return Err(Error::UnsupportedDType { op: "idwt2", dtype: c.dtype() });
            }
            return apply_last_two(c, &self.kron_on(c.dtype(), c.device())?.t()?, self.hw());
        }
        let nd = c.ndim();
        let y = self.rows.inverse_packed(&c.transpose(nd - 2, nd - 1)?)?.transpose(nd - 2, nd - 1)?;
        self.cols.inverse_packed(&y)
    }

    /// The four bands of `x` (`[..., H, W]`), as views of [`Dwt2::forward_packed`].
    pub fn forward(&self, x: &Tensor) -> Result<Dwt2Coeffs> {
        let c = self.forward_packed(x)?;
        let (nh, nw) = self.band_hw();
        let nd = c.ndim();
        let quad = |r: usize, k: usize| c.narrow(nd - 2, r * nh, nh)?.narrow(nd - 1, k * nw, nw);
        Ok(Dwt2Coeffs { approx: quad(0, 0)?, horizontal: quad(1, 0)?, vertical: quad(0, 1)?, diagonal: quad(1, 1)? })
    }

    /// The maps (`[..., H, W]`) whose transform is `c`.
    pub fn inverse(&self, c: &Dwt2Coeffs) -> Result<Tensor> {
        let op = "idwt2";
        let bands = c.bands();
        let lead = &c.approx.shape()[..c.approx.ndim().saturating_sub(2)];
        for b in bands {
            if b.ndim() < 2 || &b.shape()[..b.ndim() - 2] != lead {
                let shapes: Vec<&[usize]> = bands.iter().map(|b| b.shape()).collect();
                return Err(Error::invalid(
                    op,
                    format!("bands of shapes {shapes:?} need one set of leading dims and 2 band axes"),
                ));
            }
            self.check(op, b, self.band_hw(), "bands")?;
        }
        let nd = lead.len() + 2;
        let top = Tensor::cat(&[&c.approx, &c.vertical], nd - 1)?;
        let bottom = Tensor::cat(&[&c.horizontal, &c.diagonal], nd - 1)?;
        self.inverse_packed(&Tensor::cat(&[&top, &bottom], nd - 2)?)
    }
}

/// The one-level 2-D DWT of the last two axes of `x` (as `pywt.dwt2(x, wavelet, mode='zero')`),
/// differentiable.
///
/// ```
/// use autograd::signal::{dwt2, idwt2, Wavelet};
/// use autograd::Tensor;
/// let x = Tensor::randn(&[4, 5, 7], 3).unwrap();
/// let c = dwt2(&x, Wavelet::Db3).unwrap();
/// assert_eq!(c.approx.shape(), &[4, 5, 6]);
/// let y = idwt2(&c, Wavelet::Db3, (5, 7)).unwrap();
/// assert!(y.sub(&x).unwrap().abs().unwrap().max(&[0, 1, 2], false).unwrap().item().unwrap() < 1e-5);
/// ```
pub fn dwt2(x: &Tensor, wavelet: Wavelet) -> Result<Dwt2Coeffs> {
    let nd = x.ndim();
    if nd < 2 {
        return Err(Error::invalid("dwt2", format!("needs at least 2 dimensions, got shape {:?}", x.shape())));
    }
    Dwt2::new(wavelet, (x.shape()[nd - 2], x.shape()[nd - 1]))?.forward(x)
}

/// The inverse of [`dwt2`]: maps of size `hw` (the size given to [`dwt2`]) from their bands.
///
/// ```
/// use autograd::signal::{dwt2, idwt2, Wavelet};
/// use autograd::Tensor;
/// let x = Tensor::randn(&[1, 3], 5).unwrap();
/// let y = idwt2(&dwt2(&x, Wavelet::Db1).unwrap(), Wavelet::Db1, (1, 3)).unwrap();
/// assert_eq!(y.shape(), &[1, 3]);
/// ```
pub fn idwt2(coeffs: &Dwt2Coeffs, wavelet: Wavelet, hw: (usize, usize)) -> Result<Tensor> {
    Dwt2::plan("idwt2", wavelet, hw)?.inverse(coeffs)
}
