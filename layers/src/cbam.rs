//! CBAM, the Convolutional Block Attention Module (Woo, Park, Lee & Kweon, ECCV 2018): a
//! [`ChannelAttention`] gate then a [`SpatialAttention`] gate, both multiplicative, in sequence
//! ([`Cbam`]).
//!
//! - Channel: `σ(MLP(AvgPool(x)) + MLP(MaxPool(x)))` over the global average and maximum of each
//!   channel, one MLP (`C → max(1, C/r) → C` with ReLU, `r = 16`) shared by both.
//! - Spatial: `σ(conv7x7([mean_c(x); max_c(x)]))`, the channel-wise mean and maximum stacked as
//!   two channels, zero padding 3 (the map keeps its size).
//!
//! Choices: the MLP layers carry biases (the reference code's `nn.Linear`); the spatial
//! convolution has a bias and no BatchNorm, as the formula of the paper (and of the SR spec)
//! writes it — the authors' code puts a BatchNorm after a bias-free convolution; PyTorch's
//! default initialization throughout.

use autograd::{Result, Tensor};

use crate::se::{check_input, hidden_width};
use crate::{children, Conv2d, Conv2dOptions, Linear, Mode, Module};

/// CBAM's channel gate: `x ⊙ σ(MLP(avg) + MLP(max))` with one shared MLP.
///
/// ```
/// use layers::{ChannelAttention, Mode, Module};
/// use autograd::Tensor;
/// let ca = ChannelAttention::new(16, 16).unwrap();
/// assert_eq!(ca.forward(&Tensor::ones(&[2, 16, 3, 3]), Mode::Eval).unwrap().shape(), &[2, 16, 3, 3]);
/// ```
pub struct ChannelAttention {
    /// `Linear(C, max(1, C / r))`.
    pub fc1: Box<dyn Module>,
    /// `Linear(max(1, C / r), C)`.
    pub fc2: Box<dyn Module>,
    channels: usize,
}

impl ChannelAttention {
    /// The gate for `channels` channels with reduction ratio `reduction`.
    pub fn new(channels: usize, reduction: usize) -> Result<ChannelAttention> {
        let hidden = hidden_width("ChannelAttention", channels, reduction)?;
        Ok(ChannelAttention {
            fc1: Box::new(Linear::new(channels, hidden, true)),
            fc2: Box::new(Linear::new(hidden, channels, true)),
            channels,
        })
    }

    fn mlp(&self, v: &Tensor, mode: Mode) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(v, mode)?.relu()?, mode)
    }

    /// The gates `[N, C]`.
    pub fn gates(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        check_input("ChannelAttention", x, self.channels)?;
        let avg = self.mlp(&x.mean(&[2, 3], false)?, mode)?;
        let max = self.mlp(&x.max(&[2, 3], false)?, mode)?;
        avg.add(&max)?.sigmoid()
    }
}

impl Module for ChannelAttention {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let s = self.gates(x, mode)?;
        x.mul(&s.reshape_to(&[x.shape()[0], self.channels, 1, 1])?)
    }

    children!(fc1, fc2);
}

/// CBAM's spatial gate: `x ⊙ σ(conv7x7([mean_c(x); max_c(x)]))`.
///
/// ```
/// use layers::{Mode, Module, ModuleExt, SpatialAttention};
/// use autograd::Tensor;
/// let sa = SpatialAttention::new(7).unwrap();
/// assert_eq!(sa.num_parameters(), 2 * 49 + 1);
/// assert_eq!(sa.forward(&Tensor::ones(&[2, 5, 4, 4]), Mode::Eval).unwrap().shape(), &[2, 5, 4, 4]);
/// ```
pub struct SpatialAttention {
    /// `Conv2d(2, 1, k, padding (k − 1) / 2)` with bias.
    pub conv: Box<dyn Module>,
}

impl SpatialAttention {
    /// The gate with an odd `kernel` (7 in the paper).
    pub fn new(kernel: usize) -> Result<SpatialAttention> {
        if kernel.is_multiple_of(2) {
            return Err(autograd::Error::invalid("SpatialAttention", format!("the kernel {kernel} must be odd")));
        }
        let conv = Conv2d::new(2, 1, kernel, Conv2dOptions::default().padding(kernel / 2))?;
        Ok(SpatialAttention { conv: Box::new(conv) })
    }

    /// The gates `[N, 1, H, W]`.
    pub fn gates(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if x.ndim() != 4 {
            return Err(autograd::Error::invalid(
                "SpatialAttention",
                format!("expects [N, C, H, W], got {:?}", x.shape()),
            ));
        }
        let pooled = Tensor::cat(&[&x.mean(&[1], true)?, &x.max(&[1], true)?], 1)?;
        self.conv.forward(&pooled, mode)?.sigmoid()
    }
}

impl Module for SpatialAttention {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        x.mul(&self.gates(x, mode)?)
    }

    children!(conv);
}

/// CBAM: [`ChannelAttention`] then [`SpatialAttention`] (parameters `channel.fc1.*`,
/// `channel.fc2.*`, `spatial.conv.*`).
///
/// ```
/// use layers::{Cbam, Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let cbam = Cbam::new(64, 16).unwrap();
/// assert_eq!(cbam.num_parameters(), (64 * 4 + 4) + (4 * 64 + 64) + (2 * 49 + 1));
/// let y = cbam.forward(&Tensor::ones(&[2, 64, 8, 8]), Mode::Train).unwrap();
/// assert_eq!(y.shape(), &[2, 64, 8, 8]);
/// ```
pub struct Cbam {
    /// The channel gate.
    pub channel: Box<dyn Module>,
    /// The spatial gate.
    pub spatial: Box<dyn Module>,
}

impl Cbam {
    /// CBAM for `channels` channels, channel reduction `reduction` and a 7x7 spatial kernel.
    pub fn new(channels: usize, reduction: usize) -> Result<Cbam> {
        Ok(Cbam {
            channel: Box::new(ChannelAttention::new(channels, reduction)?),
            spatial: Box::new(SpatialAttention::new(7)?),
        })
    }
}

impl Module for Cbam {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.spatial.forward(&self.channel.forward(x, mode)?, mode)
    }

    children!(channel, spatial);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModuleExt;
    use autograd::{DType, Device};

    fn values(m: &dyn Module, name: &str) -> Vec<f64> {
        let p = m.named_parameters().into_iter().find(|(n, _)| n == name).unwrap().1;
        p.leaf().to_f64_vec().unwrap()
    }

    fn sig(v: f64) -> f64 {
        1.0 / (1.0 + (-v).exp())
    }

    /// CBAM by naive loops over `x` `[n, c, h, w]` with the module's parameters.
    fn naive(m: &Cbam, x: &[f64], [n, c, h, w]: [usize; 4]) -> Vec<f64> {
        let (w1, b1) = (values(m, "channel.fc1.weight"), values(m, "channel.fc1.bias"));
        let (w2, b2) = (values(m, "channel.fc2.weight"), values(m, "channel.fc2.bias"));
        let (k, kb) = (values(m, "spatial.conv.weight"), values(m, "spatial.conv.bias")[0]);
        let hid = b1.len();
        let hw = h * w;
        let mlp = |v: &[f64]| -> Vec<f64> {
            let z: Vec<f64> =
                (0..hid).map(|j| (b1[j] + (0..c).map(|ch| w1[j * c + ch] * v[ch]).sum::<f64>()).max(0.0)).collect();
            (0..c).map(|ch| b2[ch] + (0..hid).map(|j| w2[ch * hid + j] * z[j]).sum::<f64>()).collect()
        };
        let mut out = x.to_vec();
        for i in 0..n {
            let map = |ch: usize| &x[(i * c + ch) * hw..(i * c + ch + 1) * hw];
            let avg: Vec<f64> = (0..c).map(|ch| map(ch).iter().sum::<f64>() / hw as f64).collect();
            let max: Vec<f64> = (0..c).map(|ch| map(ch).iter().cloned().fold(f64::MIN, f64::max)).collect();
            let (ma, mm) = (mlp(&avg), mlp(&max));
            for ch in 0..c {
                let g = sig(ma[ch] + mm[ch]);
                for j in 0..hw {
                    out[(i * c + ch) * hw + j] *= g;
                }
            }
            let at = |ch: usize, y: usize, xx: usize| out[(i * c + ch) * hw + y * w + xx];
            let mean: Vec<f64> =
                (0..hw).map(|p| (0..c).map(|ch| at(ch, p / w, p % w)).sum::<f64>() / c as f64).collect();
            let mx: Vec<f64> =
                (0..hw).map(|p| (0..c).map(|ch| at(ch, p / w, p % w)).fold(f64::MIN, f64::max)).collect();
            let mut gate = vec![0.0; hw];
            for y in 0..h {
                for xx in 0..w {
                    let mut s = kb;
                    for (src, plane) in [&mean, &mx].into_iter().enumerate() {
                        for dy in 0..7 {
                            for dx in 0..7 {
                                let (sy, sx) = (y as isize + dy as isize - 3, xx as isize + dx as isize - 3);
                                if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                                    s += k[src * 49 + dy * 7 + dx] * plane[sy as usize * w + sx as usize];
                                }
                            }
                        }
                    }
                    gate[y * w + xx] = sig(s);
                }
            }
            for ch in 0..c {
                for p in 0..hw {
                    out[(i * c + ch) * hw + p] *= gate[p];
                }
            }
        }
        out
    }

    #[test]
    fn forward_matches_naive_loops() {
        for (shape, r) in [([2, 6, 5, 4], 2), ([1, 3, 8, 9], 16), ([3, 4, 2, 2], 4)] {
            let m = Cbam::new(shape[1], r).unwrap();
            m.convert(DType::F64, Device::Cpu).unwrap();
            let x = Tensor::randn(&shape, 5).unwrap().to_dtype(DType::F64).unwrap();
            let y = m.forward(&x, Mode::Train).unwrap().to_vec::<f64>().unwrap();
            let want = naive(&m, &x.to_vec::<f64>().unwrap(), shape);
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{shape:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn names_and_errors() {
        let m = Cbam::new(32, 16).unwrap();
        let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "channel.fc1.weight",
                "channel.fc1.bias",
                "channel.fc2.weight",
                "channel.fc2.bias",
                "spatial.conv.weight",
                "spatial.conv.bias"
            ]
        );
        assert!(SpatialAttention::new(4).is_err());
        assert!(m.forward(&Tensor::ones(&[1, 31, 2, 2]), Mode::Eval).is_err());
    }
}
