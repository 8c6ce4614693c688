//! `LayerNorm` (over the trailing axes) and `GroupNorm` (over channel groups of `[N, C, ...]`).

use autograd::{Error, Result, Tensor};

use crate::{Mode, Module, Param};

/// Layer normalization (`torch.nn.LayerNorm`): normalizes over the trailing `normalized_shape`
/// axes with the biased variance, then applies an elementwise affine transform.
///
/// ```
/// use layers::{LayerNorm, Mode, Module};
/// use autograd::Tensor;
/// let ln = LayerNorm::new(&[4], 1e-5);
/// let y = ln.forward(&Tensor::randn(&[2, 3, 4], 1).unwrap(), Mode::Eval).unwrap();
/// let m = y.mean(&[2], false).unwrap().to_vec::<f32>().unwrap();
/// assert!(m.iter().all(|v| v.abs() < 1e-5));
/// ```
pub struct LayerNorm {
    /// Scale, shaped like `normalized_shape`.
    pub weight: Option<Param>,
    /// Shift, shaped like `normalized_shape`.
    pub bias: Option<Param>,
    /// Added to the variance.
    pub eps: f64,
    normalized_shape: Vec<usize>,
}

impl LayerNorm {
    /// With an elementwise affine transform (weight 1, bias 0).
    pub fn new(normalized_shape: &[usize], eps: f64) -> LayerNorm {
        LayerNorm {
            weight: Some(Param::new(Tensor::ones(normalized_shape))),
            bias: Some(Param::new(Tensor::zeros(normalized_shape))),
            eps,
            normalized_shape: normalized_shape.to_vec(),
        }
    }

    /// Without affine parameters.
    pub fn without_affine(normalized_shape: &[usize], eps: f64) -> LayerNorm {
        LayerNorm { weight: None, bias: None, eps, normalized_shape: normalized_shape.to_vec() }
    }
}

fn affine(mut y: Tensor, weight: &Option<Param>, bias: &Option<Param>, shape: &[usize]) -> Result<Tensor> {
    if let Some(w) = weight {
        y = y.mul(&w.tensor().reshape_to(shape)?)?;
    }
    if let Some(b) = bias {
        y = y.add(&b.tensor().reshape_to(shape)?)?;
    }
    Ok(y)
}

fn normalize(x: &Tensor, axes: &[usize], eps: f64) -> Result<Tensor> {
    let mean = x.mean(axes, true)?;
    let var = x.var(axes, 0, true)?;
    x.sub(&mean)?.mul(&var.add_scalar(eps)?.rsqrt()?)
}

fn affine_params(weight: &Option<Param>, bias: &Option<Param>) -> Vec<(String, Param)> {
    [("weight", weight), ("bias", bias)]
        .into_iter()
        .filter_map(|(n, p)| p.as_ref().map(|p| (n.to_string(), p.clone())))
        .collect()
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let k = self.normalized_shape.len();
        if x.ndim() < k || x.shape()[x.ndim() - k..] != self.normalized_shape[..] {
            return Err(Error::shape("LayerNorm", x.shape(), &self.normalized_shape));
        }
        let (w, b) = (self.weight.as_ref().map(Param::tensor), self.bias.as_ref().map(Param::tensor));
        x.layer_norm(&self.normalized_shape, w.as_ref(), b.as_ref(), self.eps)
    }

    fn params(&self) -> Vec<(String, Param)> {
        affine_params(&self.weight, &self.bias)
    }
}

/// Group normalization (`torch.nn.GroupNorm`): splits the channels of `[N, C, ...]` into `groups`
/// groups, normalizes each (sample, group) over its channels and positions, then applies a
/// per-channel affine transform.
///
/// ```
/// use layers::{GroupNorm, Mode, Module};
/// use autograd::Tensor;
/// let gn = GroupNorm::new(2, 4, 1e-5).unwrap();
/// assert_eq!(gn.forward(&Tensor::randn(&[3, 4, 5, 5], 2).unwrap(), Mode::Train).unwrap().shape(), &[3, 4, 5, 5]);
/// ```
pub struct GroupNorm {
    /// Per-channel scale `[C]`.
    pub weight: Option<Param>,
    /// Per-channel shift `[C]`.
    pub bias: Option<Param>,
    /// Added to the variance.
    pub eps: f64,
    groups: usize,
    channels: usize,
}

impl GroupNorm {
    /// `GroupNorm(groups, channels)` with affine parameters; `channels` must divide by `groups`.
    pub fn new(groups: usize, channels: usize, eps: f64) -> Result<GroupNorm> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(Error::invalid(
                "GroupNorm::new",
                format!("{channels} channels do not split into {groups} groups"),
            ));
        }
        Ok(GroupNorm {
            weight: Some(Param::new(Tensor::ones(&[channels]))),
            bias: Some(Param::new(Tensor::zeros(&[channels]))),
            eps,
            groups,
            channels,
        })
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.ndim() < 2 || x.shape()[1] != self.channels {
            return Err(Error::invalid(
                "GroupNorm",
                format!("expected [N, {}, ...], got {:?}", self.channels, x.shape()),
            ));
        }
        let n = x.shape()[0];
        let per_group = x.numel() / (n * self.groups).max(1);
        let grouped = x.reshape_to(&[n, self.groups, per_group])?;
        let y = if per_group > 0 {
            grouped.layer_norm(&[per_group], None, None, self.eps)?
        } else {
            normalize(&grouped, &[2], self.eps)?
        };
        let y = y.reshape_to(x.shape())?;
        let mut bshape = vec![1usize; x.ndim()];
        bshape[1] = self.channels;
        affine(y, &self.weight, &self.bias, &bshape)
    }

    fn params(&self) -> Vec<(String, Param)> {
        affine_params(&self.weight, &self.bias)
    }
}
