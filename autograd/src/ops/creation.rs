//! Constructors: constant fills, ranges and seeded random tensors.

use crate::{Result, Tensor};
use backends::ops::Distribution;
use backends::{DType, Device, Layout, Storage};

impl Tensor {
    /// A tensor of `shape` filled with `value`, of `dtype`, on `device`.
    pub fn full_on(shape: &[usize], value: f64, dtype: DType, device: Device) -> Result<Tensor> {
        let n = shape.iter().product();
        Ok(Tensor::from_storage(
            crate::profile::forward("full", device, || Storage::full(device, dtype, n, value))?,
            Layout::contiguous(shape),
        ))
    }

    /// An f32 CPU tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f64) -> Tensor {
        Self::full_on(shape, value, DType::F32, Device::Cpu).expect("a CPU fill cannot fail")
    }

    /// An f32 CPU tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Self::full(shape, 0.0)
    }

    /// An f32 CPU tensor of ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        Self::full(shape, 1.0)
    }

    /// Zeros with the shape, dtype and device of `t`.
    pub fn zeros_like(t: &Tensor) -> Result<Tensor> {
        Self::full_on(t.shape(), 0.0, t.dtype(), t.device())
    }

    /// Ones with the shape, dtype and device of `t`.
    pub fn ones_like(t: &Tensor) -> Result<Tensor> {
        Self::full_on(t.shape(), 1.0, t.dtype(), t.device())
    }

    /// `value` with the shape, dtype and device of `t`.
    pub fn full_like(t: &Tensor, value: f64) -> Result<Tensor> {
        Self::full_on(t.shape(), value, t.dtype(), t.device())
    }

    /// `[start, start + step, ...)` below `end`, as `dtype` on the CPU (as `torch.arange`).
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(crate::Error::invalid("arange", format!("invalid range {start}..{end} step {step}")));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        let host = backends::CpuStorage::F64(v);
        let t = Tensor::from_storage(Storage::from_cpu(host), Layout::contiguous(&[n]));
        t.to_dtype(dtype)
    }

    /// Seeded samples of `dist`: element `i` depends only on `(seed, i)`, on every device and
    /// thread count.
    pub fn random(shape: &[usize], dist: Distribution, seed: u64, dtype: DType, device: Device) -> Result<Tensor> {
        let n = shape.iter().product();
        Ok(Tensor::from_storage(
            crate::profile::forward("random", device, || Storage::random(device, dtype, n, dist, seed, 0))?,
            Layout::contiguous(shape),
        ))
    }

    /// Uniform `[0, 1)` f32 samples on the CPU from `seed`.
    pub fn rand(shape: &[usize], seed: u64) -> Result<Tensor> {
        Self::random(shape, Distribution::Uniform { low: 0.0, high: 1.0 }, seed, DType::F32, Device::Cpu)
    }

    /// Standard normal f32 samples on the CPU from `seed`.
    pub fn randn(shape: &[usize], seed: u64) -> Result<Tensor> {
        Self::random(shape, Distribution::Normal { mean: 0.0, std: 1.0 }, seed, DType::F32, Device::Cpu)
    }

    /// Bernoulli(`p`) 0/1 samples shaped, typed and placed like `like`, from `seed`.
    pub fn bernoulli_like(like: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
        Self::random(like.shape(), Distribution::Bernoulli { p }, seed, like.dtype(), like.device())
    }
}
