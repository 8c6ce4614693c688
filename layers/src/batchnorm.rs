//! Batch normalization over `[N, C, ...]` inputs (`BatchNorm1d` for `[N, C]` / `[N, C, L]`,
//! `BatchNorm2d` for `[N, C, H, W]`), with running statistics, momentum and eval mode.

use autograd::{no_grad, Error, Result, Tensor};

use crate::{Buffer, Mode, Module, Param};

/// Batch normalization (`torch.nn.BatchNorm1d/2d`): normalizes each channel by the batch mean and
/// biased variance in training, by the running estimates in evaluation, then scales by `weight`
/// and shifts by `bias`. Running statistics follow PyTorch: `running = (1 − m)·running + m·batch`
/// with the unbiased batch variance; `momentum = None` is a cumulative average.
///
/// ```
/// use layers::{BatchNorm2d, Mode, Module};
/// use autograd::Tensor;
/// let bn = BatchNorm2d::new(3);
/// let x = Tensor::randn(&[4, 3, 5, 5], 0).unwrap();
/// let y = bn.forward(&x, Mode::Train).unwrap();
/// let m = y.mean(&[0, 2, 3], false).unwrap().to_vec::<f32>().unwrap();
/// assert!(m.iter().all(|v| v.abs() < 1e-5));
/// ```
pub struct BatchNorm {
    /// Scale `[C]` (γ), if affine.
    pub weight: Option<Param>,
    /// Shift `[C]` (β), if affine.
    pub bias: Option<Param>,
    /// Running mean `[C]`, if tracked.
    pub running_mean: Option<Buffer>,
    /// Running (unbiased) variance `[C]`, if tracked.
    pub running_var: Option<Buffer>,
    /// Number of training batches seen (i64 scalar), if tracked.
    pub num_batches_tracked: Option<Buffer>,
    /// Added to the variance.
    pub eps: f64,
    /// Weight of the newest batch in the running statistics; `None` for a cumulative average.
    pub momentum: Option<f64>,
    channels: usize,
    min_rank: usize,
    max_rank: usize,
}

/// Batch normalization over `[N, C, H, W]`.
pub type BatchNorm2d = BatchNorm;
/// Batch normalization over `[N, C]` or `[N, C, L]`.
pub type BatchNorm1d = BatchNorm;

impl BatchNorm {
    /// `BatchNorm2d(channels)` with PyTorch's defaults (eps 1e-5, momentum 0.1, affine, tracked).
    pub fn new(channels: usize) -> BatchNorm {
        Self::with_options(channels, 1e-5, Some(0.1), true, true, 4, 4)
    }

    /// `BatchNorm1d(channels)` with PyTorch's defaults, for `[N, C]` or `[N, C, L]`.
    pub fn new_1d(channels: usize) -> BatchNorm {
        Self::with_options(channels, 1e-5, Some(0.1), true, true, 2, 3)
    }

    /// Full control; `min_rank..=max_rank` are the accepted input ranks (4..=4 for 2-D).
    pub fn with_options(
        channels: usize,
        eps: f64,
        momentum: Option<f64>,
        affine: bool,
        track_running_stats: bool,
        min_rank: usize,
        max_rank: usize,
    ) -> BatchNorm {
        let buf = |v: Tensor| track_running_stats.then(|| Buffer::new(v));
        BatchNorm {
            weight: affine.then(|| Param::new(Tensor::ones(&[channels]))),
            bias: affine.then(|| Param::new(Tensor::zeros(&[channels]))),
            running_mean: buf(Tensor::zeros(&[channels])),
            running_var: buf(Tensor::ones(&[channels])),
            num_batches_tracked: buf(Tensor::scalar(0i64)),
            eps,
            momentum,
            channels,
            min_rank,
            max_rank,
        }
    }

    /// The number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    fn update_running(&self, mean: &Tensor, var_biased: &Tensor, count: usize) -> Result<()> {
        let (Some(rm), Some(rv), Some(nb)) = (&self.running_mean, &self.running_var, &self.num_batches_tracked) else {
            return Ok(());
        };
        no_grad(|| {
            let n = nb.get().item()? as i64 + 1;
            nb.set(Tensor::scalar(n).to_device(nb.get().device())?);
            let m = self.momentum.unwrap_or(1.0 / n as f64);
            let unbiased = var_biased.mul_scalar(count as f64 / (count.max(2) - 1) as f64)?;
            let blend = |buf: &Buffer, stat: &Tensor| -> Result<()> {
                let old = buf.get();
                let new = old.mul_scalar(1.0 - m)?.add(&stat.to_dtype(old.dtype())?.mul_scalar(m)?)?;
                buf.set(new);
                Ok(())
            };
            blend(rm, mean)?;
            blend(rv, &unbiased)
        })
    }
}

impl BatchNorm {
    /// The forward pass, followed by `tail` (fused into batch norm's pass over the input when
    /// normalizing with batch statistics).
    fn apply(&self, x: &Tensor, mode: Mode, tail: Tail<'_>) -> Result<Tensor> {
        let r = x.ndim();
        if r < self.min_rank || r > self.max_rank || x.shape()[1] != self.channels {
            return Err(Error::invalid(
                "BatchNorm",
                format!(
                    "expected a rank {}..={} input with {} channels, got {:?}",
                    self.min_rank,
                    self.max_rank,
                    self.channels,
                    x.shape()
                ),
            ));
        }
        let weight = self.weight.as_ref().map(|w| w.tensor());
        let bias = self.bias.as_ref().map(|b| b.tensor());
        let use_batch = mode.is_train() || self.running_mean.is_none();
        if use_batch {
            let count = x.numel() / self.channels;
            if mode.is_train() && count < 2 {
                return Err(Error::invalid(
                    "BatchNorm",
                    format!("needs more than one value per channel in training, got {:?}", x.shape()),
                ));
            }
            let (w, b) = (weight.as_ref(), bias.as_ref());
            let (y, mean, var) = match tail {
                Tail::None => x.batch_norm_train(w, b, self.eps)?,
                Tail::Relu => x.batch_norm_relu_train(w, b, self.eps)?,
                Tail::Relu6 => x.batch_norm_relu6_train(w, b, self.eps)?,
                Tail::AddRelu(r) => x.batch_norm_add_relu_train(w, b, self.eps, r)?,
            };
            if mode.is_train() {
                self.update_running(&mean, &var, count)?;
            }
            return Ok(y);
        }
        // Fixed statistics fold into one per-channel scale and shift.
        let rm = self.running_mean.as_ref().expect("tracked").get().to_dtype(x.dtype())?;
        let rv = self.running_var.as_ref().expect("tracked").get().to_dtype(x.dtype())?;
        let mut scale = rv.add_scalar(self.eps)?.rsqrt()?;
        if let Some(w) = &weight {
            scale = scale.mul(w)?;
        }
        let mut shift = rm.mul(&scale)?.neg()?;
        if let Some(b) = &bias {
            shift = shift.add(b)?;
        }
        match tail {
            Tail::None => x.channel_affine(&scale, &shift),
            Tail::Relu => x.channel_affine_relu(&scale, &shift, None),
            Tail::Relu6 => x.channel_affine_relu6(&scale, &shift),
            Tail::AddRelu(r) => x.channel_affine_relu(&scale, &shift, Some(r)),
        }
    }
}

/// What follows the normalization in [`BatchNorm::apply`].
#[derive(Clone, Copy)]
enum Tail<'a> {
    None,
    Relu,
    Relu6,
    /// A residual add, then ReLU.
    AddRelu(&'a Tensor),
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.apply(x, mode, Tail::None)
    }

    fn forward_relu(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.apply(x, mode, Tail::Relu)
    }

    fn forward_relu6(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.apply(x, mode, Tail::Relu6)
    }

    fn forward_add_relu(&self, x: &Tensor, residual: &Tensor, mode: Mode) -> Result<Tensor> {
        self.apply(x, mode, Tail::AddRelu(residual))
    }

    fn params(&self) -> Vec<(String, Param)> {
        [("weight", &self.weight), ("bias", &self.bias)]
            .into_iter()
            .filter_map(|(n, p)| p.as_ref().map(|p| (n.to_string(), p.clone())))
            .collect()
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        [
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
            ("num_batches_tracked", &self.num_batches_tracked),
        ]
        .into_iter()
        .filter_map(|(n, b)| b.as_ref().map(|b| (n.to_string(), b.clone())))
        .collect()
    }
}
