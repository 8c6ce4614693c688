//! [`SqueezeRemember`]: the SR block, `Y = X + Σ_i softmax(W_b φ(W_a · squeeze(X)))_i · Q_i`.

use autograd::{Error, Result, Tensor};
use layers::{init, mac, Conv2d, Conv2dOptions, Linear, Mode, Module, Param};

use super::resize::resize_bilinear;

/// The nonlinearity `φ` between the two fully connected layers of the SR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)` (the default: SE-style).
    Relu,
    /// None: the FCN is a rank-`U` linear map (the paper's "linearly transforms").
    Identity,
    /// `tanh`.
    Tanh,
    /// The logistic function.
    Sigmoid,
    /// GELU (erf form).
    Gelu,
}

impl Activation {
    /// Parses `relu`, `none`, `tanh`, `sigmoid` or `gelu`.
    pub fn parse(s: &str) -> Result<Activation> {
        Ok(match s {
            "relu" => Activation::Relu,
            "none" | "identity" => Activation::Identity,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "gelu" => Activation::Gelu,
            _ => {
                return Err(Error::invalid(
                    "sr act",
                    format!("unknown activation {s:?}; expected relu, none, tanh, sigmoid or gelu"),
                ))
            }
        })
    }

    /// The name [`Activation::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Identity => "none",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Gelu => "gelu",
        }
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Identity => Ok(x.clone()),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Gelu => x.gelu(),
        }
    }
}

/// The Squeeze-and-Remember block for `[B, C, H, W]` feature maps (Cakaj et al. 2024):
///
/// 1. squeeze: `X̄ = Conv1x1_{C→1}(X)`, flattened to `x̄ ∈ R^{B×HW}`;
/// 2. remember: `a = W_b φ(W_a x̄) ∈ R^{B×P}` (`fc1`: `HW → U`, `fc2`: `U → P`), `w = softmax(a)`;
/// 3. recall: `Q̂_b = Σ_i w_{b,i} Q_i` with the learned memory `Q ∈ R^{P×C×H×W}`, zero at
///    initialization;
/// 4. add: `Y = X + Q̂`.
///
/// The squeeze convolution and the two layers carry biases with PyTorch's default
/// initialization (uniform in `±1/√fan_in`). Training and evaluation compute the same thing.
/// Inputs of another spatial size than the one the block was built for (`H × W`) are handled as
/// the spec proposes: `X̄` is adaptive-average-pooled to `H × W` before flattening, and the memory
/// is resized bilinearly to the input's size (resizing each `Q_i` and then mixing equals mixing
/// and then resizing; it is cheaper when `P` is below the batch size).
///
/// ```
/// use methods::sr::{Activation, SqueezeRemember};
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let sr = SqueezeRemember::new([64, 8, 8], 4, 8, Activation::Relu).unwrap();
/// // C + HW·U + U·P + P·C·H·W, plus the biases 1 + U + P.
/// assert_eq!(sr.num_parameters(), 64 + 64 * 8 + 8 * 4 + 4 * 64 * 64 + 1 + 8 + 4);
/// let x = Tensor::randn(&[2, 64, 8, 8], 0).unwrap();
/// // The memory starts at zero: the block starts as the identity.
/// let y = sr.forward(&x, Mode::Train).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
/// ```
pub struct SqueezeRemember {
    /// `Conv2d(C, 1, 1)` with bias.
    pub squeeze: Box<dyn Module>,
    /// `Linear(H·W, U)`.
    pub fc1: Box<dyn Module>,
    /// `Linear(U, P)`.
    pub fc2: Box<dyn Module>,
    /// The memory `Q`, `[P, C, H, W]`.
    pub memory: Param,
    /// `φ`.
    pub activation: Activation,
    shape: [usize; 3],
}

impl SqueezeRemember {
    /// A block for `[C, H, W]` = `shape` maps with `blocks` (`P`) memory blocks and `hidden`
    /// (`U`) hidden units.
    pub fn new(shape: [usize; 3], blocks: usize, hidden: usize, activation: Activation) -> Result<SqueezeRemember> {
        let [c, h, w] = shape;
        if shape.contains(&0) || blocks == 0 || hidden == 0 {
            return Err(Error::invalid(
                "SqueezeRemember",
                format!("needs a non-empty [C, H, W] and P, U ≥ 1; got {shape:?}, P = {blocks}, U = {hidden}"),
            ));
        }
        Ok(SqueezeRemember {
            squeeze: Box::new(Conv2d::new(c, 1, 1, Conv2dOptions::default())?),
            fc1: Box::new(Linear::new(h * w, hidden, true)),
            fc2: Box::new(Linear::new(hidden, blocks, true)),
            memory: Param::new(init::zeros(&[blocks, c, h, w])),
            activation,
            shape,
        })
    }

    /// `[C, H, W]` of the maps the block was built for.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The number of memory blocks `P`.
    pub fn blocks(&self) -> usize {
        self.memory.leaf().shape()[0]
    }

    /// The paper's parameter overhead `C + HW·U + U·P + P·C·H·W` (biases not counted).
    ///
    /// ```
    /// // ResNet-50 (25,557,032 parameters) at conv4_x's 1024x14x14 output with U = 16.
    /// let r50 = 25_557_032.0;
    /// let p2 = methods::sr::SqueezeRemember::overhead([1024, 14, 14], 2, 16) as f64 / r50;
    /// assert_eq!(format!("{:.2}%", 100.0 * p2), "1.59%");
    /// ```
    pub fn overhead([c, h, w]: [usize; 3], blocks: usize, hidden: usize) -> usize {
        c + h * w * hidden + hidden * blocks + blocks * c * h * w
    }

    fn check(&self, x: &Tensor) -> Result<()> {
        if x.ndim() != 4 || x.shape()[1] != self.shape[0] || x.shape()[2] == 0 || x.shape()[3] == 0 {
            return Err(Error::invalid(
                "SqueezeRemember",
                format!("expects [B, {}, H, W] feature maps, got {:?}", self.shape[0], x.shape()),
            ));
        }
        Ok(())
    }

    /// The mixing weights `w = softmax(W_b φ(W_a x̄))`, `[B, P]`: non-negative, summing to 1.
    pub fn mixing_weights(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.check(x)?;
        let [_, h, w] = self.shape;
        let mut s = self.squeeze.forward(x, mode)?;
        if (s.shape()[2], s.shape()[3]) != (h, w) {
            s = s.adaptive_avg_pool2d((h, w))?;
        }
        let flat = s.flatten(1, 3)?;
        let hidden = self.activation.apply(&self.fc1.forward(&flat, mode)?)?;
        self.fc2.forward(&hidden, mode)?.softmax(1)
    }

    /// The recalled memory `Q̂ = w · Q` for mixing weights `w` `[B, P]`, at the spatial size
    /// `hw`: `[B, C, hw.0, hw.1]`.
    pub fn recall(&self, weights: &Tensor, hw: (usize, usize)) -> Result<Tensor> {
        let c = self.shape[0];
        let q = resize_bilinear(&self.memory.tensor(), hw)?;
        let p = self.blocks();
        let mixed = weights.matmul(&q.reshape_to(&[p, c * hw.0 * hw.1])?)?;
        let b = weights.shape()[0];
        mac::record(Some(&self.memory), "sr-recall", (b * p * c * hw.0 * hw.1) as u64, &[b, p], &[b, c, hw.0, hw.1]);
        mixed.reshape_to(&[b, c, hw.0, hw.1])
    }
}

impl Module for SqueezeRemember {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let weights = self.mixing_weights(x, mode)?;
        x.add(&self.recall(&weights, (x.shape()[2], x.shape()[3]))?)
    }

    fn params(&self) -> Vec<(String, Param)> {
        vec![("memory".into(), self.memory.clone())]
    }

    layers::children!(squeeze, fc1, fc2);
}
