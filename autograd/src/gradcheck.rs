//! Finite-difference gradient checking: the gradient-correctness harness.
//!
//! [`gradcheck`] compares the gradients the tape computes for a function of f64 tensors with
//! central differences, using PyTorch's defaults (eps 1e-6, atol 1e-5, rtol 1e-3). Small problems
//! are checked on the full Jacobian; larger ones on random projections `uᵀ J v`. Inputs keep
//! their layouts, so strided and broadcast views are checked as given.
//!
//! ```
//! use autograd::{gradcheck, GradcheckOptions, Tensor};
//! let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0], &[3]).unwrap();
//! gradcheck(|t| t[0].tanh()?.mul(&t[0])?.sum_all(), &[x], &GradcheckOptions::default()).unwrap();
//! ```

use crate::{BackwardOptions, Error, Result, Tensor};
use backends::{CpuStorage, DType, Layout, Storage};
use std::fmt;

/// Tolerances and modes of [`gradcheck`].
#[derive(Clone, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Largest `inputs x outputs` element count checked on the full Jacobian; above it, random
    /// projections are used.
    pub full_jacobian_limit: usize,
    /// Number of random projections in projection mode.
    pub projections: usize,
    /// Seed of the projection vectors.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions { eps: 1e-6, atol: 1e-5, rtol: 1e-3, full_jacobian_limit: 4096, projections: 3, seed: 0 }
    }
}

/// A gradient that disagrees with its finite-difference estimate.
#[derive(Clone, Debug)]
pub struct GradcheckFailure {
    /// Which input (position in the input list).
    pub input: usize,
    /// The input element (row-major index) or, in projection mode, the projection number.
    pub element: usize,
    /// The output element (full mode) or `None` (projection mode).
    pub output: Option<usize>,
    /// The gradient from the tape.
    pub analytical: f64,
    /// The finite-difference estimate.
    pub numerical: f64,
}

impl fmt::Display for GradcheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.output {
            Some(o) => write!(
                f,
                "gradcheck: d output[{o}] / d input {}[{}]: analytical {} vs numerical {} (worst element)",
                self.input, self.element, self.analytical, self.numerical
            ),
            None => write!(
                f,
                "gradcheck: projection {} of input {}: analytical {} vs numerical {}",
                self.element, self.input, self.analytical, self.numerical
            ),
        }
    }
}

/// Why a gradient check did not pass.
#[derive(Clone, Debug)]
pub enum GradcheckError {
    /// A gradient is wrong.
    Mismatch(GradcheckFailure),
    /// The function or the backward pass failed.
    Op(Error),
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradcheckError::Mismatch(m) => m.fmt(f),
            GradcheckError::Op(e) => write!(f, "gradcheck: the function failed: {e}"),
        }
    }
}

impl std::error::Error for GradcheckError {}

impl From<Error> for GradcheckError {
    fn from(e: Error) -> Self {
        GradcheckError::Op(e)
    }
}

/// The whole storage buffer of a tensor on the host (all elements, not only the view's).
fn raw_storage(t: &Tensor) -> Result<Vec<f64>> {
    let s = t.storage();
    let n = s.len();
    Ok(s.to_host(&Layout::contiguous(&[n]))?.to_f64_vec())
}

/// Storage offsets of a view's elements in row-major order.
fn offsets(l: &Layout) -> Vec<usize> {
    let mut out = Vec::with_capacity(l.numel());
    let mut idx = vec![0; l.ndim()];
    for _ in 0..l.numel() {
        out.push(l.offset() + idx.iter().zip(l.strides()).map(|(i, s)| i * s).sum::<usize>());
        for d in (0..l.ndim()).rev() {
            idx[d] += 1;
            if idx[d] < l.shape()[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// A tensor with `t`'s layout over a modified copy of its storage.
fn with_storage(t: &Tensor, data: Vec<f64>) -> Result<Tensor> {
    let s = Storage::from_host(&CpuStorage::F64(data), t.device())?;
    Ok(Tensor::from_storage(s, t.layout().clone()))
}

struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Checks the tape's gradients of `f` at `inputs` against central differences.
///
/// Inputs of dtype f64 are differentiated (their layouts are kept: pass strided views to check
/// strided paths); inputs of other dtypes (indices, masks) are passed through unchanged. The
/// output may have any shape.
///
/// The finite-difference evaluations run under [`no_grad`](crate::no_grad): a function that
/// needs the tape inside (to check a gradient of a gradient, say) must turn recording back on
/// itself with [`enable_grad`](crate::enable_grad). `f` must be deterministic (fix the seed of
/// any dropout in it).
///
/// ```
/// use autograd::{gradcheck, GradcheckOptions, Tensor};
/// let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0], &[3]).unwrap();
/// // d/dx sum(x · sin x) checked against central differences
/// gradcheck(|xs| xs[0].mul(&xs[0].sin()?)?.sum_all(), &[x], &GradcheckOptions::default()).unwrap();
/// ```
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    opts: &GradcheckOptions,
) -> std::result::Result<(), GradcheckError> {
    let leaves: Vec<Tensor> =
        inputs.iter().map(|t| if t.dtype() == DType::F64 { t.detach().requires_grad_() } else { t.detach() }).collect();
    let out = f(&leaves)?;
    if out.dtype() != DType::F64 {
        return Err(Error::invalid("gradcheck", format!("the function must return f64, got {}", out.dtype())).into());
    }
    let m = out.numel();
    let n_in: usize = leaves.iter().filter(|t| t.dtype() == DType::F64).map(|t| t.numel()).sum();
    let full = m * n_in <= opts.full_jacobian_limit;
    let eval = |xs: &[Tensor]| -> Result<Vec<f64>> { crate::no_grad(|| f(xs)?.to_f64_vec()) };

    let close = |a: f64, n: f64| (a - n).abs() <= opts.atol + opts.rtol * n.abs();
    if full {
        // Analytical Jacobian rows, one backward per output element.
        let mut jac: Vec<Vec<Vec<f64>>> = vec![]; // [output][input] -> grad (row-major)
        for o in 0..m {
            let mut seed = vec![0.0; m];
            seed[o] = 1.0;
            let seed = Tensor::from_host(&CpuStorage::F64(seed), out.shape(), out.device())?;
            let out_o = f(&leaves)?;
            let g = out_o.backward_with(BackwardOptions { seed: Some(seed), ..Default::default() })?;
            jac.push(
                leaves
                    .iter()
                    .map(|t| match g.get(t) {
                        Some(g) => g.to_f64_vec(),
                        None => Ok(vec![0.0; t.numel()]),
                    })
                    .collect::<Result<_>>()?,
            );
        }
        for (i, t) in leaves.iter().enumerate() {
            if t.dtype() != DType::F64 {
                continue;
            }
            let base = raw_storage(t)?;
            let mut worst: Option<(f64, GradcheckFailure)> = None;
            for (e, &off) in offsets(t.layout()).iter().enumerate() {
                let mut plus = base.clone();
                plus[off] += opts.eps;
                let mut minus = base.clone();
                minus[off] -= opts.eps;
                let mut xs = leaves.iter().map(|t| t.detach()).collect::<Vec<_>>();
                xs[i] = with_storage(t, plus)?;
                let fp = eval(&xs)?;
                xs[i] = with_storage(t, minus)?;
                let fm = eval(&xs)?;
                for o in 0..m {
                    let num = (fp[o] - fm[o]) / (2.0 * opts.eps);
                    let ana = jac[o][i][e];
                    if !close(ana, num) {
                        let excess = (ana - num).abs() - (opts.atol + opts.rtol * num.abs());
                        let excess = if excess.is_nan() { f64::INFINITY } else { excess };
                        if worst.as_ref().is_none_or(|(w, _)| excess > *w) {
                            worst = Some((
                                excess,
                                GradcheckFailure {
                                    input: i,
                                    element: e,
                                    output: Some(o),
                                    analytical: ana,
                                    numerical: num,
                                },
                            ));
                        }
                    }
                }
            }
            if let Some((_, w)) = worst {
                return Err(GradcheckError::Mismatch(w));
            }
        }
        return Ok(());
    }
    // Projection mode: compare uᵀ J v for random u, v, one input at a time.
    let mut rng = SplitMix(opts.seed ^ 0x5EED);
    for p in 0..opts.projections {
        let u: Vec<f64> = (0..m).map(|_| rng.next()).collect();
        let seed = Tensor::from_host(&CpuStorage::F64(u.clone()), out.shape(), out.device())?;
        let out_p = f(&leaves)?;
        let g = out_p.backward_with(BackwardOptions { seed: Some(seed), ..Default::default() })?;
        for (i, t) in leaves.iter().enumerate() {
            if t.dtype() != DType::F64 {
                continue;
            }
            let v: Vec<f64> = (0..t.numel()).map(|_| rng.next()).collect();
            let ana: f64 = match g.get(t) {
                Some(g) => g.to_f64_vec()?.iter().zip(&v).map(|(a, b)| a * b).sum(),
                None => 0.0,
            };
            let base = raw_storage(t)?;
            let offs = offsets(t.layout());
            let (mut plus, mut minus) = (base.clone(), base.clone());
            for (k, &off) in offs.iter().enumerate() {
                plus[off] += opts.eps * v[k];
                minus[off] -= opts.eps * v[k];
            }
            let mut xs = leaves.iter().map(|t| t.detach()).collect::<Vec<_>>();
            xs[i] = with_storage(t, plus)?;
            let fp = eval(&xs)?;
            xs[i] = with_storage(t, minus)?;
            let fm = eval(&xs)?;
            let num: f64 = fp.iter().zip(&fm).zip(&u).map(|((a, b), w)| (a - b) / (2.0 * opts.eps) * w).sum();
            if !close(ana, num) {
                return Err(GradcheckError::Mismatch(GradcheckFailure {
                    input: i,
                    element: p,
                    output: None,
                    analytical: ana,
                    numerical: num,
                }));
            }
        }
    }
    Ok(())
}
