//! Parameter initializers with PyTorch's formulas (`torch.nn.init`), drawing their seeds from
//! [`crate::rng`] so a model built after `manual_seed(s)` is reproducible.
//!
//! Every function returns a new f32 CPU tensor; convert a model with
//! [`ModuleExt::convert`](crate::ModuleExt::convert) for other dtypes or devices.

use autograd::backends::ops::Distribution;
use autograd::{DType, Device, Error, Result, Tensor};

use crate::rng::next_seed;

/// Which fan a variance-scaling initializer preserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Preserve the variance of activations in the forward pass.
    FanIn,
    /// Preserve the variance of gradients in the backward pass.
    FanOut,
}

/// The nonlinearity a gain is computed for (`torch.nn.init.calculate_gain`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Identity / conv / linear / sigmoid: gain 1.
    Linear,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with the given negative slope: √(2 / (1 + a²)).
    LeakyRelu(f64),
    /// Tanh: gain 5/3.
    Tanh,
}

impl Nonlinearity {
    /// The recommended gain.
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear => 1.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
            Nonlinearity::Tanh => 5.0 / 3.0,
        }
    }
}

/// `(fan_in, fan_out)` of a weight shape as PyTorch computes them: `[out, in, k...]`.
///
/// ```
/// assert_eq!(layers::init::fans(&[16, 3, 3, 3]).unwrap(), (27, 144));
/// ```
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::invalid("init::fans", format!("needs at least 2 dimensions, got {shape:?}")));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

fn draw(shape: &[usize], dist: Distribution) -> Result<Tensor> {
    Tensor::random(shape, dist, next_seed(), DType::F32, Device::Cpu)
}

/// Uniform on `[low, high)`.
pub fn uniform(shape: &[usize], low: f64, high: f64) -> Result<Tensor> {
    draw(shape, Distribution::Uniform { low, high })
}

/// Normal with mean `mean` and standard deviation `std`.
pub fn normal(shape: &[usize], mean: f64, std: f64) -> Result<Tensor> {
    draw(shape, Distribution::Normal { mean, std })
}

/// Normal with mean `mean` and deviation `std`, redrawn until inside `[a, b]` (timm's
/// `trunc_normal_`, e.g. `std = 0.02, a = -2, b = 2` for ViT weights).
pub fn trunc_normal(shape: &[usize], mean: f64, std: f64, a: f64, b: f64) -> Result<Tensor> {
    if a.partial_cmp(&b) != Some(std::cmp::Ordering::Less) || std.is_nan() || std < 0.0 {
        return Err(Error::invalid("init::trunc_normal", format!("empty range [{a}, {b}] or bad std {std}")));
    }
    let n: usize = shape.iter().product();
    let mut values = normal(shape, mean, std)?.to_vec::<f32>()?;
    for _ in 0..1000 {
        let bad: Vec<usize> = (0..n).filter(|&i| !(a..=b).contains(&(values[i] as f64))).collect();
        if bad.is_empty() {
            break;
        }
        let fresh = normal(&[bad.len()], mean, std)?.to_vec::<f32>()?;
        for (i, v) in bad.into_iter().zip(fresh) {
            values[i] = v;
        }
    }
    for v in values.iter_mut() {
        *v = v.clamp(a as f32, b as f32);
    }
    Tensor::from_vec(values, shape)
}

/// Kaiming (He) uniform: `U(-bound, bound)` with `bound = gain · √(3 / fan)`.
/// `Nonlinearity::LeakyRelu(√5)` with `FanIn` is PyTorch's default for Linear and Conv2d weights.
pub fn kaiming_uniform(shape: &[usize], mode: FanMode, nonlinearity: Nonlinearity) -> Result<Tensor> {
    let fan = pick(fans(shape)?, mode);
    let bound = nonlinearity.gain() * (3.0 / fan as f64).sqrt();
    uniform(shape, -bound, bound)
}

/// Kaiming (He) normal: `N(0, std²)` with `std = gain / √fan` (torchvision's ResNet conv init
/// uses `FanOut` and `Relu`).
pub fn kaiming_normal(shape: &[usize], mode: FanMode, nonlinearity: Nonlinearity) -> Result<Tensor> {
    let fan = pick(fans(shape)?, mode);
    normal(shape, 0.0, nonlinearity.gain() / (fan as f64).sqrt())
}

/// Xavier (Glorot) uniform: `U(-a, a)` with `a = gain · √(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(shape: &[usize], gain: f64) -> Result<Tensor> {
    let (i, o) = fans(shape)?;
    let a = gain * (6.0 / (i + o) as f64).sqrt();
    uniform(shape, -a, a)
}

/// Xavier (Glorot) normal: `N(0, std²)` with `std = gain · √(2 / (fan_in + fan_out))`.
pub fn xavier_normal(shape: &[usize], gain: f64) -> Result<Tensor> {
    let (i, o) = fans(shape)?;
    normal(shape, 0.0, gain * (2.0 / (i + o) as f64).sqrt())
}

/// PyTorch's default bias init for a layer with `fan_in` inputs: `U(-1/√fan_in, 1/√fan_in)`.
pub fn default_bias(len: usize, fan_in: usize) -> Result<Tensor> {
    let bound = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
    uniform(&[len], -bound, bound)
}

/// All zeros (f32).
pub fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape)
}

/// All ones (f32).
pub fn ones(shape: &[usize]) -> Tensor {
    Tensor::ones(shape)
}

fn pick((fan_in, fan_out): (usize, usize), mode: FanMode) -> usize {
    match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{manual_seed, with_seed};

    fn moments(t: &Tensor) -> (f64, f64, f64, f64) {
        let v = t.to_f64_vec().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        (mean, var.sqrt(), lo, hi)
    }

    #[test]
    fn kaiming_uniform_default_matches_pytorch_bound() {
        manual_seed(0);
        // Conv2d(64, 64, 3): fan_in = 576, bound = 1/sqrt(576) = 1/24.
        let w = kaiming_uniform(&[64, 64, 3, 3], FanMode::FanIn, Nonlinearity::LeakyRelu(5f64.sqrt())).unwrap();
        let (mean, std, lo, hi) = moments(&w);
        let bound = 1.0 / 24.0;
        assert!(lo >= -bound && hi < bound, "{lo} {hi}");
        assert!(mean.abs() < 2e-3 && (std - bound / 3f64.sqrt()).abs() < 1e-3, "{mean} {std}");
    }

    #[test]
    fn kaiming_normal_fan_out_std() {
        let w = with_seed(1, || kaiming_normal(&[128, 64, 3, 3], FanMode::FanOut, Nonlinearity::Relu)).unwrap();
        let (_, std, _, _) = moments(&w);
        let expect = (2.0f64 / (128.0 * 9.0)).sqrt();
        assert!((std - expect).abs() / expect < 0.02, "{std} vs {expect}");
    }

    #[test]
    fn xavier_and_trunc_normal_respect_their_ranges() {
        manual_seed(2);
        let w = xavier_uniform(&[30, 50], 1.0).unwrap();
        let a = (6.0f64 / 80.0).sqrt();
        let (_, _, lo, hi) = moments(&w);
        assert!(lo >= -a && hi < a);
        let t = trunc_normal(&[10000], 0.0, 1.0, -0.5, 0.5).unwrap();
        let (mean, _, lo, hi) = moments(&t);
        assert!(lo >= -0.5 && hi <= 0.5 && mean.abs() < 0.02, "{lo} {hi} {mean}");
    }

    #[test]
    fn same_seed_same_tensor() {
        let a = with_seed(9, || normal(&[5], 0.0, 1.0)).unwrap().to_vec::<f32>().unwrap();
        let b = with_seed(9, || normal(&[5], 0.0, 1.0)).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(a, b);
        assert!(fans(&[3]).is_err());
    }
}
