//! [`SqueezeExcitation`] (Hu, Shen & Sun, CVPR 2018): channel gates from globally pooled
//! features, `s = σ(W2 ReLU(W1 GAP(x)))`, output `s ⊙ x`.
//!
//! Choices: the two fully connected layers carry biases (the reference implementation's
//! `nn.Linear`); the hidden width is `max(1, C / r)` with integer division (`r = 16` in the
//! paper), so narrow layers keep at least one hidden unit; PyTorch's default initialization.

use autograd::{Error, Result, Tensor};

use crate::{children, Linear, Mode, Module};

/// The hidden width `max(1, channels / reduction)` of an attention MLP (SE, CBAM).
pub(crate) fn hidden_width(op: &'static str, channels: usize, reduction: usize) -> Result<usize> {
    if channels == 0 || reduction == 0 {
        return Err(Error::invalid(
            op,
            format!("needs channels ≥ 1 and reduction ≥ 1, got {channels} and {reduction}"),
        ));
    }
    Ok((channels / reduction).max(1))
}

/// Checks that `x` is `[N, channels, H, W]`.
pub(crate) fn check_input(op: &'static str, x: &Tensor, channels: usize) -> Result<()> {
    if x.ndim() != 4 || x.shape()[1] != channels {
        return Err(Error::invalid(op, format!("expects [N, {channels}, H, W] inputs, got {:?}", x.shape())));
    }
    Ok(())
}

/// Squeeze-and-excitation for `[N, C, H, W]` maps: `fc1` (`C → max(1, C/r)`), ReLU, `fc2`
/// (back to `C`), sigmoid, and the channels of the input scaled by the result.
///
/// ```
/// use layers::{Mode, Module, ModuleExt, SqueezeExcitation};
/// use autograd::Tensor;
/// let se = SqueezeExcitation::new(32, 16).unwrap();
/// assert_eq!(se.num_parameters(), 32 * 2 + 2 + 2 * 32 + 32);
/// let y = se.forward(&Tensor::ones(&[4, 32, 5, 5]), Mode::Train).unwrap();
/// assert_eq!(y.shape(), &[4, 32, 5, 5]);
/// ```
pub struct SqueezeExcitation {
    /// `Linear(C, max(1, C / r))`.
    pub fc1: Box<dyn Module>,
    /// `Linear(max(1, C / r), C)`.
    pub fc2: Box<dyn Module>,
    channels: usize,
}

impl SqueezeExcitation {
    /// SE for `channels` channels with reduction ratio `reduction`.
    pub fn new(channels: usize, reduction: usize) -> Result<SqueezeExcitation> {
        let hidden = hidden_width("SqueezeExcitation", channels, reduction)?;
        Ok(SqueezeExcitation {
            fc1: Box::new(Linear::new(channels, hidden, true)),
            fc2: Box::new(Linear::new(hidden, channels, true)),
            channels,
        })
    }

    /// The channel gates `σ(fc2(ReLU(fc1(GAP(x)))))`, `[N, C]`.
    pub fn gates(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        check_input("SqueezeExcitation", x, self.channels)?;
        let pooled = x.mean(&[2, 3], false)?;
        self.fc2.forward(&self.fc1.forward(&pooled, mode)?.relu()?, mode)?.sigmoid()
    }
}

impl Module for SqueezeExcitation {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let s = self.gates(x, mode)?;
        x.mul(&s.reshape_to(&[x.shape()[0], self.channels, 1, 1])?)
    }

    children!(fc1, fc2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleExt;
    use autograd::DType;

    fn values(m: &dyn Module, name: &str) -> Vec<f64> {
        let p = m.named_parameters().into_iter().find(|(n, _)| n == name).unwrap().1;
        p.leaf().to_f64_vec().unwrap()
    }

    #[test]
    fn forward_matches_naive_loops() {
        let (n, c, h, w) = (2, 5, 3, 4);
        let se = SqueezeExcitation::new(c, 2).unwrap();
        se.convert(DType::F64, autograd::Device::Cpu).unwrap();
        let x = Tensor::randn(&[n, c, h, w], 3).unwrap().to_dtype(DType::F64).unwrap();
        let y = se.forward(&x, Mode::Eval).unwrap().to_vec::<f64>().unwrap();
        let xv = x.to_vec::<f64>().unwrap();
        let (w1, b1, w2, b2) =
            (values(&se, "fc1.weight"), values(&se, "fc1.bias"), values(&se, "fc2.weight"), values(&se, "fc2.bias"));
        let hid = 2;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        for i in 0..n {
            let gap: Vec<f64> = (0..c)
                .map(|ch| xv[(i * c + ch) * h * w..(i * c + ch + 1) * h * w].iter().sum::<f64>() / (h * w) as f64)
                .collect();
            let z: Vec<f64> =
                (0..hid).map(|k| (b1[k] + (0..c).map(|ch| w1[k * c + ch] * gap[ch]).sum::<f64>()).max(0.0)).collect();
            for ch in 0..c {
                let s = sig(b2[ch] + (0..hid).map(|k| w2[ch * hid + k] * z[k]).sum::<f64>());
                for j in 0..h * w {
                    let at = (i * c + ch) * h * w + j;
                    assert!((y[at] - s * xv[at]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn narrow_layers_keep_one_hidden_unit_and_shapes_are_checked() {
        let se = SqueezeExcitation::new(8, 16).unwrap();
        assert_eq!(values(&se, "fc1.weight").len(), 8);
        assert!(SqueezeExcitation::new(0, 16).is_err());
        let e = se.forward(&Tensor::ones(&[1, 4, 2, 2]), Mode::Eval).unwrap_err().to_string();
        assert!(e.contains("[N, 8, H, W]"), "{e}");
    }
}
