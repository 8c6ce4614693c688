//! Pooling layers: `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`.

use autograd::{Pool2dParams, Result, Tensor};

use crate::{Mode, Module};

/// Max pooling (`torch.nn.MaxPool2d`).
///
/// ```
/// use layers::{MaxPool2d, Mode, Module};
/// use autograd::{Pool2dParams, Tensor};
/// let pool = MaxPool2d(Pool2dParams { stride: (2, 2), padding: (1, 1), ..Pool2dParams::square(3) });
/// assert_eq!(pool.forward(&Tensor::ones(&[1, 2, 8, 8]), Mode::Eval).unwrap().shape(), &[1, 2, 4, 4]);
/// ```
pub struct MaxPool2d(pub Pool2dParams);

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        x.max_pool2d(self.0)
    }
}

/// Average pooling (`torch.nn.AvgPool2d`).
pub struct AvgPool2d(pub Pool2dParams);

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        x.avg_pool2d(self.0)
    }
}

/// Adaptive average pooling to a fixed `(H, W)` (`torch.nn.AdaptiveAvgPool2d`); `(1, 1)` is global
/// average pooling.
pub struct AdaptiveAvgPool2d(pub (usize, usize));

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        x.adaptive_avg_pool2d(self.0)
    }
}
