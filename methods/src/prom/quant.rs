//! Fake quantizers with straight-through estimators, as compositions of differentiable ops:
//! each returns the quantized values in the forward pass and the gradient the quantizer's paper
//! defines in the backward pass.
//!
//! - Weights: ternary by per-channel absmean ([`ternary_absmean`], the default), TWN
//!   ([`ternary_twn`]), TTQ with two learned scales ([`ternary_ttq`]); symmetric per-channel int8
//!   ([`int8_weight`]). The latent float weight gets the quantized weight's gradient unchanged
//!   (TTQ: scaled by its learned scale in each sign region).
//! - Activations: LSQ with a learned step ([`lsq`], the default; [`lsq_init`] its initial step),
//!   PACT with a learned clip ([`pact`]), a fixed range ([`fixed_range`]).
//!
//! The straight-through trick is written so the forward value is exactly the quantized value:
//! `q.detach() + (x − x.detach())` adds an exact zero that carries `x`'s gradient.
//! "Per channel" is per output channel: dimension 0 of a weight.

use autograd::{Error, Result, Tensor};

/// The value of `q` with the gradient of `x` (same shape): `q.detach() + (x − x.detach())`.
pub fn straight_through(q: &Tensor, x: &Tensor) -> Result<Tensor> {
    q.detach().add(&x.sub(&x.detach())?)
}

/// The axes of one output channel's weights (all but dimension 0).
fn channel_axes(w: &Tensor, op: &'static str) -> Result<Vec<usize>> {
    if w.ndim() < 2 {
        return Err(Error::invalid(
            op,
            format!("a weight of shape {:?}: expected [out, ...] with 2 or more dimensions", w.shape()),
        ));
    }
    Ok((1..w.ndim()).collect())
}

/// A `u8` mask as `like`'s dtype (1 where set, 0 elsewhere).
fn as_float(mask: &Tensor, like: &Tensor) -> Result<Tensor> {
    mask.to_dtype(like.dtype())
}

/// The per-channel absmean ternary quantizer (BitNet b1.58): `γ_o = mean_i |W_{o,i}|`,
/// `Ŵ = γ_o · clamp(round(W / (γ_o + ε)), −1, 1)`, gradient passed straight through.
///
/// ```
/// use autograd::Tensor;
/// let w = Tensor::from_vec(vec![0.9f32, -0.1, -0.8, 0.4, 0.0, 0.2], &[2, 3]).unwrap();
/// let q = methods::prom::ternary_absmean(&w).unwrap().to_vec::<f32>().unwrap();
/// // Row 0: γ = 0.6, so 0.9 -> γ, -0.1 -> 0, -0.8 -> -γ; row 1: γ = 0.2.
/// assert_eq!(q, vec![0.6, 0.0, -0.6, 0.2, 0.0, 0.2]);
/// ```
pub fn ternary_absmean(w: &Tensor) -> Result<Tensor> {
    let axes = channel_axes(w, "ternary_absmean")?;
    let wd = w.detach();
    let gamma = wd.abs()?.mean(&axes, true)?;
    let t = wd.div(&gamma.add_scalar(1e-8)?)?.round()?.clamp(-1.0, 1.0)?;
    straight_through(&t.mul(&gamma)?, w)
}

/// TWN (Li et al. 2016), per output channel: `Δ = 0.7 · mean|W|`, `T = sign(W) · [|W| > Δ]`,
/// `α = mean of |W| where |W| > Δ`, `Ŵ = α · T`; gradient passed straight through.
pub fn ternary_twn(w: &Tensor) -> Result<Tensor> {
    let axes = channel_axes(w, "ternary_twn")?;
    let wd = w.detach();
    let a = wd.abs()?;
    let delta = a.mean(&axes, true)?.mul_scalar(0.7)?;
    let keep = as_float(&a.gt(&delta)?, &wd)?;
    let count = keep.sum(&axes, true)?.clamp(1.0, f64::INFINITY)?;
    let alpha = a.mul(&keep)?.sum(&axes, true)?.div(&count)?;
    straight_through(&wd.sign()?.mul(&keep)?.mul(&alpha)?, w)
}

/// TTQ (Zhu et al. 2017), per layer: threshold `Δ = t · max|W|`, quantized weight `w_p` where
/// `W > Δ`, `0` in between, `−w_n` where `W < −Δ`, with `w_p` and `w_n` learned (one-element
/// tensors, positive). Gradients: `∂L/∂w_p = Σ_{W>Δ} ∂L/∂Ŵ`, `∂L/∂w_n = −Σ_{W<−Δ} ∂L/∂Ŵ`, and the
/// latent weight's gradient scaled by `w_p`, 1 and `w_n` in the three regions.
pub fn ternary_ttq(w: &Tensor, wp: &Tensor, wn: &Tensor, t: f64) -> Result<Tensor> {
    let op = "ternary_ttq";
    if wp.numel() != 1 || wn.numel() != 1 {
        return Err(Error::invalid(
            op,
            format!("scales of shapes {:?} and {:?}: expected one element each", wp.shape(), wn.shape()),
        ));
    }
    if !(0.0..1.0).contains(&t) {
        return Err(Error::invalid(op, format!("threshold factor t = {t}; expected 0 <= t < 1")));
    }
    let wd = w.detach();
    let delta = wd.abs()?.max(&(0..w.ndim()).collect::<Vec<_>>(), false)?.mul_scalar(t)?;
    let pos = as_float(&wd.gt(&delta)?, &wd)?;
    let neg = as_float(&wd.lt(&delta.neg()?)?, &wd)?;
    let (wp1, wn1) = (wp.reshape(&[])?, wn.reshape(&[])?);
    let value = pos.mul(&wp1)?.sub(&neg.mul(&wn1)?)?;
    let mid = Tensor::ones_like(&wd)?.sub(&pos)?.sub(&neg)?;
    let scale = pos.mul(&wp1.detach())?.add(&mid)?.add(&neg.mul(&wn1.detach())?)?;
    let latent = w.mul(&scale)?;
    value.add(&latent.sub(&latent.detach())?)
}

/// Symmetric per-channel int8: `s_o = max_i |W_{o,i}| / 127` (1 for an all-zero channel),
/// `Ŵ = s_o · clamp(round(W / s_o), −127, 127)`: at most 255 levels per channel; gradient passed
/// straight through (the range holds every weight, so nothing is clipped).
pub fn int8_weight(w: &Tensor) -> Result<Tensor> {
    let axes = channel_axes(w, "int8_weight")?;
    let wd = w.detach();
    let max = wd.abs()?.max(&axes, true)?;
    let zero = as_float(&max.compare_scalar(0.0, autograd::backends::ops::CmpOp::Eq)?, &wd)?;
    let s = max.add(&zero)?.div_scalar(127.0)?;
    let q = wd.div(&s)?.round()?.clamp(-127.0, 127.0)?.mul(&s)?;
    straight_through(&q, w)
}

/// `s` in the forward pass, its gradient multiplied by `g` in the backward pass.
pub fn grad_scale(s: &Tensor, g: f64) -> Result<Tensor> {
    let sg = s.mul_scalar(g)?;
    s.detach().sub(&sg.detach())?.add(&sg)
}

/// LSQ (Esser et al. 2020): `x̂ = round(clamp(x / s, −Q_N, Q_P)) · s` with a learned step `s`
/// (a one-element tensor) whose gradient is scaled by `g` (LSQ: `1 / √(N · Q_P)`, `N` the number
/// of values one step serves). Gradients: `∂x̂/∂x = 1` inside the range and 0 outside;
/// `∂x̂/∂s = round(x/s) − x/s` inside, `−Q_N` below and `Q_P` above (times `g`). 8-bit: `Q_N = 128,
/// Q_P = 127` signed, `Q_N = 0, Q_P = 255` unsigned.
///
/// ```
/// use autograd::Tensor;
/// let x = Tensor::from_vec(vec![0.26f64, -1.0, 3.0], &[3]).unwrap().requires_grad_();
/// let s = Tensor::from_vec(vec![0.1f64], &[1]).unwrap().requires_grad_();
/// let y = methods::prom::lsq(&x, &s, 0.0, 25.0, 1.0).unwrap();
/// let v = y.to_vec::<f64>().unwrap();
/// assert!((v[0] - 0.3).abs() < 1e-12 && v[1] == 0.0 && (v[2] - 2.5).abs() < 1e-12);
/// y.sum_all().unwrap().backward().unwrap();
/// // ds: (round(2.6) - 2.6) + (-Q_N = 0) + (Q_P = 25).
/// assert!((s.grad().unwrap().to_vec::<f64>().unwrap()[0] - 25.4).abs() < 1e-9);
/// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0]);
/// ```
pub fn lsq(x: &Tensor, s: &Tensor, qn: f64, qp: f64, g: f64) -> Result<Tensor> {
    if s.numel() != 1 {
        return Err(Error::invalid("lsq", format!("a step of shape {:?}: expected one element", s.shape())));
    }
    // One fused pass each way (`Tensor::lsq_quantize`); the gradient scale applies to the step
    // before it.
    x.lsq_quantize(&grad_scale(&s.reshape(&[])?, g)?, -qn, qp)
}

/// LSQ's initial step for values `x` and range top `Q_P`: `2 · mean|x| / √Q_P`.
pub fn lsq_init(x: &Tensor, qp: f64) -> Result<f64> {
    Ok(2.0 * x.abs()?.mean_all()?.item()? / qp.sqrt())
}

/// PACT (Choi et al. 2018) with `bits` bits: `y = clamp(x, 0, α)`, `x̂ = round(y · (2^b − 1) / α)
/// · α / (2^b − 1)` with a learned clip `α` (one element); `∂x̂/∂α = 1` where `x ≥ α`, else 0
/// (the rounding passed straight through).
pub fn pact(x: &Tensor, alpha: &Tensor, bits: u32) -> Result<Tensor> {
    if alpha.numel() != 1 || !(1..=16).contains(&bits) {
        return Err(Error::invalid(
            "pact",
            format!("clip of shape {:?} and {bits} bits: expected one element and 1-16 bits", alpha.shape()),
        ));
    }
    let a = alpha.reshape(&[])?;
    let y = x.relu()?.sub(&x.sub(&a)?.relu()?)?;
    let levels = f64::from((1u32 << bits) - 1);
    let ad = a.detach();
    let q = y.detach().mul_scalar(levels)?.div(&ad)?.round()?.mul(&ad)?.div_scalar(levels)?;
    straight_through(&q, &y)
}

/// A fixed range `[lo, hi]` in `bits` bits: `x̂ = lo + round((clamp(x, lo, hi) − lo) / Δ) · Δ`,
/// `Δ = (hi − lo) / (2^b − 1)`; the gradient passes inside the range.
pub fn fixed_range(x: &Tensor, lo: f64, hi: f64, bits: u32) -> Result<Tensor> {
    if lo >= hi || !(1..=16).contains(&bits) {
        return Err(Error::invalid(
            "fixed_range",
            format!("range [{lo}, {hi}] in {bits} bits: expected lo < hi and 1-16 bits"),
        ));
    }
    let y = x.clamp(lo, hi)?;
    let step = (hi - lo) / f64::from((1u32 << bits) - 1);
    let q = y.detach().add_scalar(-lo)?.div_scalar(step)?.round()?.mul_scalar(step)?.add_scalar(lo)?;
    straight_through(&q, &y)
}
