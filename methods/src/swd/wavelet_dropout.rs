//! The two Spectral Wavelet Dropout layers: [`SpectralWaveletDropout1d`] (Algorithm 1: each
//! channel map flattened row-major into one signal, three-level 1-D DWT, the three detail bands
//! dropped) and [`SpectralWaveletDropout2d`] (Algorithm 2: one-level 2-D DWT, the LH, HL, HH
//! bands dropped). The approximation band is never dropped or scaled.
//!
//! Both are fixed linear maps once the mask is drawn, `Y = IDWT(D_m · DWT(X))`, built from the
//! differentiable transforms of [`autograd::signal`], so the backward pass
//! `DWTᵀ(D_m · IDWTᵀ(∂L/∂Y))` reuses the forward's mask by construction. With the paper's
//! per-call mask and short maps the whole round trip is one GEMM with the symmetric band
//! operator `W diag(s) Wᵀ` ([`Dwt::band_operator`]), cached per mask pattern; other granularities
//! transform, scale each coefficient by its map's band scale, and invert.

use std::collections::HashMap;
use std::sync::Mutex;

use autograd::signal::{Dwt, Dwt2, Wavelet};
use autograd::{DType, Device, Error, Result, Tensor};
use layers::{rng, Mode, Module};

use super::mask::{band_scale, check_probability, draw_keep, MaskGranularity};

/// Maps of at most this many pixels (`H·W`) take the one-GEMM band-operator path under a
/// per-call mask (an `N × N` matrix per mask pattern); longer ones transform and invert.
pub const OPERATOR_MAX_LEN: usize = 448;

/// The transform of one layer call: a 1-D multi-level DWT of flattened maps or a one-level 2-D
/// DWT of the maps.
enum Plan {
    Flat(Dwt),
    Grid(Dwt2),
}

impl Plan {
    /// The number of pixels of one map.
    fn map_len(&self) -> usize {
        match self {
            Plan::Flat(d) => d.len(),
            Plan::Grid(d) => d.hw().0 * d.hw().1,
        }
    }

    /// The number of detail bands (the length of one mask).
    fn detail_bands(&self) -> usize {
        match self {
            Plan::Flat(d) => d.level(),
            Plan::Grid(_) => 3,
        }
    }

    /// The shape of the packed coefficients of one map, and for each coefficient (row-major) its
    /// band: `0` for the approximation, `1 + j` for the detail band of mask entry `j`.
    fn packed_bands(&self) -> (Vec<usize>, Vec<usize>) {
        match self {
            Plan::Flat(d) => {
                // PyWavelets order [cA_L, cD_L, ..., cD_1]; mask entry j is cD_{j+1}.
                let level = d.level();
                let bands =
                    d.band_lens().iter().enumerate().flat_map(|(b, &n)| std::iter::repeat_n(b_to_band(b, level), n));
                (vec![d.coeffs_len()], bands.collect())
            }
            Plan::Grid(d) => {
                // Quadrants: cA top-left, cV top-right, cH bottom-left, cD bottom-right;
                // mask entries 0, 1, 2 are cH (LH), cV (HL), cD (HH).
                let (nh, nw) = d.band_hw();
                let bands = (0..4 * nh * nw).map(|i| match (i / (2 * nw) >= nh, i % (2 * nw) >= nw) {
                    (false, false) => 0,
                    (true, false) => 1,
                    (false, true) => 2,
                    (true, true) => 3,
                });
                (vec![2 * nh, 2 * nw], bands.collect())
            }
        }
    }

    /// The `[N, N]` matrix of "transform, scale the bands, invert" on flattened maps.
    fn operator(&self, scales: &[f64], dtype: DType, device: Device) -> Result<Tensor> {
        match self {
            Plan::Flat(d) => {
                let pywt: Vec<f64> =
                    std::iter::once(1.0).chain((0..d.level()).map(|b| scales[d.level() - 1 - b])).collect();
                d.band_operator(&pywt, dtype, device)
            }
            Plan::Grid(d) => d.band_operator(&[1.0, scales[0], scales[1], scales[2]], dtype, device),
        }
    }

    /// `[B, C, ...]` as the maps the transform takes: `[B, C, N]` or `[B, C, H, W]`.
    fn maps(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Plan::Flat(d) => x.reshape_to(&[x.shape()[0], x.shape()[1], d.len()]),
            Plan::Grid(_) => Ok(x.clone()),
        }
    }

    fn forward_packed(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Plan::Flat(d) => d.forward_packed(x),
            Plan::Grid(d) => d.forward_packed(x),
        }
    }

    fn inverse_packed(&self, c: &Tensor) -> Result<Tensor> {
        match self {
            Plan::Flat(d) => d.inverse_packed(c),
            Plan::Grid(d) => d.inverse_packed(c),
        }
    }
}

/// The band number of PyWavelets' band `b` (`0` = `cA_L`, `b >= 1` = `cD_{L+1−b}`): `0` for the
/// approximation, `1 + j` for the detail band `cD_{j+1}`.
fn b_to_band(b: usize, level: usize) -> usize {
    if b == 0 {
        0
    } else {
        level + 1 - b
    }
}

/// `(map height or length, map width or 0, wavelet, dtype, device, keep pattern)`.
type OperatorKey = (usize, usize, Wavelet, DType, Device, Vec<bool>);

/// Band operators per map size, wavelet, dtype, device and keep pattern (at most `2^bands` per
/// size and wavelet).
#[derive(Default)]
struct OperatorCache(Mutex<HashMap<OperatorKey, Tensor>>);

impl OperatorCache {
    const LIMIT: usize = 128;

    fn get(&self, key: OperatorKey, build: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        if let Some(t) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(t.clone());
        }
        let t = build()?;
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::LIMIT {
            map.clear();
        }
        map.insert(key, t.clone());
        Ok(t)
    }
}

/// What the two layers share: the drop probability, the mask granularity, the wavelet and the
/// operator cache.
struct Core {
    op: &'static str,
    p: f64,
    granularity: MaskGranularity,
    wavelet: Wavelet,
    /// Which detail bands may be dropped (`None`: all); the others are never touched.
    droppable: Option<Vec<bool>>,
    operators: OperatorCache,
}

impl Core {
    fn new(op: &'static str, p: f64) -> Result<Core> {
        Ok(Core {
            op,
            p: check_probability(op, "drop probability", p)?,
            granularity: MaskGranularity::PerCall,
            wavelet: Wavelet::Db3,
            droppable: None,
            operators: OperatorCache::default(),
        })
    }

    /// The scale of detail band `j` with keep flag `keep`: `1/(1 − p)` or `0` for a droppable
    /// band, `1` for one the layer never touches.
    fn scale(&self, j: usize, keep: bool) -> f64 {
        match &self.droppable {
            Some(d) if !d.get(j).copied().unwrap_or(false) => 1.0,
            _ => band_scale(keep, self.p),
        }
    }

    /// The number of keep decisions a call on `x` (`[B, C, ...]`) needs.
    fn keep_len(&self, x: &Tensor, plan: &Plan) -> usize {
        let (gb, gc) = self.granularity.groups(x.shape()[0], x.shape()[1]);
        gb * gc * plan.detail_bands()
    }

    fn forward(&self, x: &Tensor, mode: Mode, plan: impl FnOnce(&Tensor) -> Result<Plan>) -> Result<Tensor> {
        if !mode.is_train() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let plan = plan(x)?;
        let mut keep = draw_keep(self.keep_len(x, &plan), self.p, rng::next_seed())?;
        if let Some(d) = &self.droppable {
            // Bands the layer never touches count as kept, so they share one cached operator.
            let bands = plan.detail_bands();
            keep.iter_mut().enumerate().filter(|(i, _)| !d[i % bands]).for_each(|(_, k)| *k = true);
        }
        self.apply(x, &plan, &keep)
    }

    /// `x` with its detail bands scaled by the masks `keep` (`[gb, gc, bands]` row-major).
    fn apply(&self, x: &Tensor, plan: &Plan, keep: &[bool]) -> Result<Tensor> {
        if !x.dtype().is_float() {
            return Err(Error::UnsupportedDType { op: self.op, dtype: x.dtype() });
        }
        let (b, c) = (x.shape()[0], x.shape()[1]);
        let (gb, gc) = self.granularity.groups(b, c);
        let bands = plan.detail_bands();
        if keep.len() != gb * gc * bands {
            return Err(Error::invalid(
                self.op,
                format!(
                    "{} keep flags given for input {:?}: {:?} masks need {gb}x{gc}x{bands}",
                    keep.len(),
                    x.shape(),
                    self.granularity
                ),
            ));
        }
        if let Some(j) = (0..keep.len()).find(|&i| self.scale(i % bands, keep[i]).is_infinite()) {
            return Err(Error::invalid(
                self.op,
                format!(
                    "drop probability {} keeps no band; keeping detail band {} would scale it by 1/(1 - p) = inf",
                    self.p,
                    j % bands + 1
                ),
            ));
        }
        let n = plan.map_len();
        if gb * gc == 1 && n <= OPERATOR_MAX_LEN {
            let (h, w) = match plan {
                Plan::Flat(d) => (d.len(), 0),
                Plan::Grid(d) => d.hw(),
            };
            let key = (h, w, self.wavelet, x.dtype(), x.device(), keep.to_vec());
            let scales: Vec<f64> = keep.iter().enumerate().map(|(j, &k)| self.scale(j, k)).collect();
            let m = self.operators.get(key, || plan.operator(&scales, x.dtype(), x.device()))?;
            return x.reshape(&[-1, n as isize])?.matmul(&m)?.reshape_to(x.shape());
        }
        let (tail, band_of) = plan.packed_bands();
        let mut s = Vec::with_capacity(gb * gc * band_of.len());
        for g in 0..gb * gc {
            let mask = &keep[g * bands..(g + 1) * bands];
            s.extend(band_of.iter().map(|&bd| if bd == 0 { 1.0 } else { self.scale(bd - 1, mask[bd - 1]) }));
        }
        let shape: Vec<usize> = [gb, gc].into_iter().chain(tail).collect();
        let s = Tensor::from_vec(s, &shape)?.to_dtype(x.dtype())?.to_device(x.device())?;
        let coeffs = plan.forward_packed(&plan.maps(x)?)?;
        plan.inverse_packed(&coeffs.mul(&s)?)?.reshape_to(x.shape())
    }
}

macro_rules! shared_options {
    ($t:ident) => {
        impl $t {
            /// The same layer drawing masks at `granularity` (default: the paper's per-call mask).
            pub fn with_granularity(mut self, granularity: MaskGranularity) -> $t {
                self.core.granularity = granularity;
                self
            }

            /// The same layer with another Daubechies wavelet (default: db3).
            pub fn with_wavelet(mut self, wavelet: Wavelet) -> $t {
                self.core.wavelet = wavelet;
                self
            }

            /// The drop probability of each detail band.
            pub fn p(&self) -> f64 {
                self.core.p
            }

            /// The mask granularity.
            pub fn granularity(&self) -> MaskGranularity {
                self.core.granularity
            }

            /// The wavelet.
            pub fn wavelet(&self) -> Wavelet {
                self.core.wavelet
            }
        }

        impl Module for $t {
            fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
                self.core.forward(x, mode, |x| self.plan(x))
            }
        }
    };
}

/// 1-D Spectral Wavelet Dropout (Algorithm 1 of Cakaj et al., 2024): every `(sample, channel)`
/// map of `X` (`[B, C, ...]`, usually `[B, C, H, W]`) is flattened row-major into a signal of
/// length `N`, transformed by a `level`-level 1-D DWT (default 3, db3, zero padding), each detail
/// band `d_j` is multiplied by `m_j / (1 − p)` with `m_j ~ Bernoulli(1 − p)`, the approximation
/// is left alone, and the signal is reconstructed. The identity in [`Mode::Eval`] and for `p = 0`.
///
/// Masks come from one [`layers::rng::next_seed`] per call. `E[Y] = X` because the transform is
/// linear and perfectly reconstructing.
///
/// ```
/// use methods::swd::{MaskGranularity, SpectralWaveletDropout1d};
/// use layers::{Mode, Module};
/// use autograd::Tensor;
/// let swd = SpectralWaveletDropout1d::new(0.1).unwrap().with_granularity(MaskGranularity::PerSample);
/// let x = Tensor::randn(&[2, 3, 8, 8], 0).unwrap();
/// assert_eq!(swd.forward(&x, Mode::Train).unwrap().shape(), &[2, 3, 8, 8]);
/// assert_eq!(swd.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
/// ```
pub struct SpectralWaveletDropout1d {
    core: Core,
    level: usize,
}

impl SpectralWaveletDropout1d {
    /// The layer with drop probability `p` in `[0, 1]`, db3, three levels, a per-call mask (with
    /// `p = 1` every droppable band is dropped; keeping one is an error, its scale would be
    /// infinite).
    pub fn new(p: f64) -> Result<SpectralWaveletDropout1d> {
        Ok(SpectralWaveletDropout1d { core: Core::new("SpectralWaveletDropout1d", p)?, level: 3 })
    }

    /// The same layer with a `level`-level transform (`level` detail bands, at least 1); it
    /// resets a restriction of the droppable levels.
    pub fn with_level(mut self, level: usize) -> Result<SpectralWaveletDropout1d> {
        if level == 0 || level > autograd::signal::MAX_LEVEL {
            return Err(Error::invalid(self.core.op, format!("level {level} is outside 1..=32")));
        }
        self.level = level;
        self.core.droppable = None;
        Ok(self)
    }

    /// The number of levels (detail bands in one mask).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The same layer dropping only the detail bands of `levels` (1-based, 1 the finest): the
    /// others are never dropped nor scaled. The paper's band-restricted ablation ("1D-SWD3")
    /// drops only the coarsest band of a three-level transform, `levels = [3]`.
    ///
    /// ```
    /// use methods::swd::SpectralWaveletDropout1d;
    /// use autograd::Tensor;
    /// let swd = SpectralWaveletDropout1d::new(0.5).unwrap().with_droppable_levels(&[3]).unwrap();
    /// let x = Tensor::randn(&[1, 2, 8, 8], 0).unwrap();
    /// // Dropping the finest two bands is a no-op: they are not droppable.
    /// let y = swd.forward_with_keep(&x, &[false, false, true]).unwrap();
    /// let z = swd.forward_with_keep(&x, &[true, true, true]).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), z.to_vec::<f32>().unwrap());
    /// assert!(SpectralWaveletDropout1d::new(0.5).unwrap().with_droppable_levels(&[4]).is_err());
    /// ```
    pub fn with_droppable_levels(mut self, levels: &[usize]) -> Result<SpectralWaveletDropout1d> {
        if levels.is_empty() || levels.iter().any(|&l| l == 0 || l > self.level) {
            return Err(Error::invalid(
                self.core.op,
                format!("droppable levels {levels:?}: each must be in 1..={} (1 the finest)", self.level),
            ));
        }
        self.core.droppable = Some((1..=self.level).map(|l| levels.contains(&l)).collect());
        Ok(self)
    }

    /// The droppable levels (1-based), all of them unless restricted.
    pub fn droppable_levels(&self) -> Vec<usize> {
        match &self.core.droppable {
            Some(d) => (1..=self.level).filter(|l| d[l - 1]).collect(),
            None => (1..=self.level).collect(),
        }
    }

    fn plan(&self, x: &Tensor) -> Result<Plan> {
        if x.ndim() < 3 || x.shape().contains(&0) {
            return Err(Error::invalid(
                self.core.op,
                format!("needs a non-empty [B, C, ...] input with at least one map axis, got {:?}", x.shape()),
            ));
        }
        let n = x.shape()[2..].iter().product();
        Ok(Plan::Flat(Dwt::new(self.core.wavelet, n, self.level)?))
    }

    /// The layer's output for explicit masks instead of drawn ones: `keep` holds, for each mask
    /// group of the granularity (`1`, `B` or `B·C` groups, row-major), one flag per detail band,
    /// finest first (`keep[j]` is `d_{j+1}`). Kept bands are scaled by `1/(1 − p)`; bands outside
    /// [`with_droppable_levels`](Self::with_droppable_levels) are left alone whatever their
    /// flag. This is the training-mode computation (whatever `p`), used to test and inspect the
    /// layer.
    pub fn forward_with_keep(&self, x: &Tensor, keep: &[bool]) -> Result<Tensor> {
        let plan = self.plan(x)?;
        self.core.apply(x, &plan, keep)
    }
}

shared_options!(SpectralWaveletDropout1d);

/// 2-D Spectral Wavelet Dropout (Algorithm 2 of Cakaj et al., 2024): a one-level separable 2-D
/// DWT (default db3, zero padding) of every `(sample, channel)` map of `X` (`[B, C, H, W]`), the
/// detail bands LH, HL, HH (PyWavelets' `cH`, `cV`, `cD`) each multiplied by `m / (1 − p)`,
/// `m ~ Bernoulli(1 − p)`, LL untouched, then the inverse transform cropped to `H × W`. The
/// identity in [`Mode::Eval`] and for `p = 0`.
///
/// ```
/// use methods::swd::SpectralWaveletDropout2d;
/// use layers::{Mode, Module};
/// use autograd::Tensor;
/// layers::rng::manual_seed(0);
/// let swd = SpectralWaveletDropout2d::new(0.2).unwrap();
/// let x = Tensor::randn(&[2, 3, 7, 9], 0).unwrap();
/// assert_eq!(swd.forward(&x, Mode::Train).unwrap().shape(), &[2, 3, 7, 9]);
/// ```
pub struct SpectralWaveletDropout2d {
    core: Core,
}

impl SpectralWaveletDropout2d {
    /// The layer with drop probability `p` in `[0, 1]`, db3, a per-call mask (with `p = 1`
    /// every band is dropped; keeping one is an error, its scale would be infinite).
    pub fn new(p: f64) -> Result<SpectralWaveletDropout2d> {
        Ok(SpectralWaveletDropout2d { core: Core::new("SpectralWaveletDropout2d", p)? })
    }

    fn plan(&self, x: &Tensor) -> Result<Plan> {
        if x.ndim() != 4 || x.shape().contains(&0) {
            return Err(Error::invalid(
                self.core.op,
                format!("needs a non-empty [B, C, H, W] input, got {:?}", x.shape()),
            ));
        }
        Ok(Plan::Grid(Dwt2::new(self.core.wavelet, (x.shape()[2], x.shape()[3]))?))
    }

    /// The layer's output for explicit masks: `keep` holds, for each mask group of the
    /// granularity (`1`, `B` or `B·C` groups, row-major), the flags of LH, HL, HH (`cH`, `cV`,
    /// `cD`). Kept bands are scaled by `1/(1 − p)`. The training-mode computation, used to test
    /// and inspect the layer.
    pub fn forward_with_keep(&self, x: &Tensor, keep: &[bool]) -> Result<Tensor> {
        let plan = self.plan(x)?;
        self.core.apply(x, &plan, keep)
    }
}

shared_options!(SpectralWaveletDropout2d);
