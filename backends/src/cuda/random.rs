//! Seeded random fills on the GPU (`random.cu`): the CPU backend's Philox4x32-10 stream and
//! distribution formulas, so a fill with the same `(seed, offset)` gives the same numbers on
//! either device (bit for bit for uniform and Bernoulli, to a few ulps for normal).

use super::compile::KernelSource;
use super::device::DeviceState;
use super::launch::{grid_for, kname, launch, Args};
use super::storage::CudaStorage;
use crate::ops::Distribution;
use crate::planning::random::check_dist;
use crate::{DType, Error, Result};
use std::sync::Arc;

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "random", src: include_str!("random.cu") };

/// `n` samples of `dist` for elements `offset..offset + n` of the stream keyed by `seed`.
pub(crate) fn random(
    dev: &Arc<DeviceState>,
    dtype: DType,
    n: usize,
    dist: Distribution,
    seed: u64,
    offset: u64,
) -> Result<CudaStorage> {
    check_dist(&dist)?;
    let base = Args::new();
    let (name, tail): (&str, Box<dyn FnOnce(Args) -> Args>) = match (dist, dtype) {
        (Distribution::Uniform { low, high }, DType::F32) => {
            let (lo, hi) = (low as f32, high as f32);
            ("uniform", Box::new(move |a: Args| a.push(lo).push(hi).push(hi - lo)))
        }
        (Distribution::Uniform { low, high }, DType::F64) => {
            ("uniform", Box::new(move |a: Args| a.push(low).push(high).push(high - low)))
        }
        (Distribution::Normal { mean, std }, DType::F32) => {
            ("normal", Box::new(move |a: Args| a.push(mean as f32).push(std as f32)))
        }
        (Distribution::Normal { mean, std }, DType::F64) => ("normal", Box::new(move |a: Args| a.push(mean).push(std))),
        (Distribution::Bernoulli { p }, DType::F32 | DType::F64 | DType::U8) => {
            ("bernoulli", Box::new(move |a: Args| a.push(p)))
        }
        _ => return Err(Error::UnsupportedDType { op: "random", dtype }),
    };
    let out = CudaStorage::alloc(dev, dtype, n)?;
    if n > 0 {
        let args = tail(base.buf(&out).int(n).push(seed).push(offset));
        launch(dev, &SRC, &kname(name, dtype), grid_for(n), args)?;
    }
    Ok(out)
}
