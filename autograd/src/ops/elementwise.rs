//! Elementwise ops: activations and math functions, arithmetic with broadcasting, scalar
//! arithmetic, comparisons, `where_` and `clamp`, with their derivatives.

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::ops::{BinaryOp, CmpOp, UnaryOp};
use backends::{broadcast_shapes, DType};

impl Tensor {
    fn check_float(&self, op: &'static str) -> Result<()> {
        if !self.dtype().is_float() && self.requires_grad() {
            return Err(Error::UnsupportedDType { op, dtype: self.dtype() });
        }
        Ok(())
    }

    /// Applies a unary primitive without recording.
    pub(crate) fn unary_raw(&self, op: UnaryOp) -> Result<Tensor> {
        let s = crate::profile::forward(op.name(), self.device(), || self.storage().unary(op, self.layout()))?;
        Ok(Tensor::from_storage(s, backends::Layout::contiguous(self.shape())))
    }

    /// Applies a unary op and records its derivative `g * dfdx(x, y)`.
    fn unary_op(&self, op: UnaryOp) -> Result<Tensor> {
        self.check_float(op.name())?;
        let y = self.unary_raw(op)?;
        let uses_output = matches!(
            op,
            UnaryOp::Exp | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Recip | UnaryOp::Tanh | UnaryOp::Sigmoid
        );
        let x = self.clone();
        let saved_y = uses_output.then(|| y.clone());
        Ok(record_fn(y, op.name(), &[self], move || {
            move |g: &Tensor| {
                // Activations have a fused backward kernel; under create_graph the derivative
                // is built from differentiable ops below instead.
                if let (Some(bop), false) = (op.backward_op(), crate::is_grad_enabled()) {
                    return Ok(vec![Some(g.binary_raw(&x, bop)?)]);
                }
                // Under create_graph the output is recomputed from x so that it carries a graph.
                let y = match &saved_y {
                    Some(y) if !crate::is_grad_enabled() => y.clone(),
                    Some(_) => x.unary_op(op)?,
                    None => x.clone(),
                };
                let d = unary_derivative(op, &x, &y)?;
                Ok(vec![Some(match d {
                    Some(d) => g.mul(&d)?,
                    None => g.neg()?,
                })])
            }
        }))
    }

    /// `-x`.
    pub fn neg(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Neg)
    }
    /// `|x|` (derivative `sign(x)`, 0 at 0).
    pub fn abs(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Abs)
    }
    /// `e^x`.
    pub fn exp(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Log)
    }
    /// Square root.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Sqrt)
    }
    /// `1/sqrt(x)`.
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Rsqrt)
    }
    /// `1/x`.
    pub fn recip(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Recip)
    }
    /// `x*x`.
    pub fn square(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Square)
    }
    /// Sine.
    pub fn sin(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Sin)
    }
    /// Cosine.
    pub fn cos(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Cos)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Tanh)
    }
    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Sigmoid)
    }
    /// `max(x, 0)` (derivative 0 at 0, as PyTorch).
    pub fn relu(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Relu)
    }
    /// `min(max(x, 0), 6)`.
    pub fn relu6(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Relu6)
    }
    /// The Gauss error function.
    pub fn erf(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Erf)
    }
    /// Arctangent (derivative `1 / (1 + x²)`).
    pub fn atan(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Atan)
    }
    /// Inverse hyperbolic sine (derivative `1 / sqrt(1 + x²)`).
    pub fn asinh(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Asinh)
    }
    /// GELU, exact (erf) form.
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::GeluErf)
    }
    /// GELU, tanh approximation.
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::GeluTanh)
    }
    /// SiLU / swish `x * sigmoid(x)`.
    pub fn silu(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Silu)
    }
    /// Sign (−1, 0, 1); zero derivative.
    pub fn sign(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Sign)
    }
    /// Round half to even; zero derivative.
    pub fn round(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Round)
    }
    /// Floor; zero derivative.
    pub fn floor(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Floor)
    }
    /// Ceiling; zero derivative.
    pub fn ceil(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Ceil)
    }
    /// `x^p` for a scalar exponent.
    pub fn powf(&self, p: f64) -> Result<Tensor> {
        self.unary_op(UnaryOp::Powf(p))
    }
    /// `min(max(x, min), max)`; the gradient passes where `min <= x <= max`.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max {
            return Err(Error::invalid("clamp", format!("min {min} is greater than max {max}")));
        }
        self.unary_op(UnaryOp::Clamp { min, max })
    }

    // ----- binary -----

    /// Broadcasts two tensors' layouts to their common shape.
    pub(crate) fn broadcast_layouts(
        &self,
        other: &Tensor,
        op: &'static str,
    ) -> Result<(backends::Layout, backends::Layout, Vec<usize>)> {
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch { op, lhs: self.device(), rhs: other.device() });
        }
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch { op, lhs: self.dtype(), rhs: other.dtype() });
        }
        let shape = broadcast_shapes(op, self.shape(), other.shape())?;
        Ok((self.layout().broadcast_to(&shape)?, other.layout().broadcast_to(&shape)?, shape))
    }

    pub(crate) fn binary_raw(&self, other: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let (la, lb, shape) = self.broadcast_layouts(other, op.name())?;
        let s = crate::profile::forward(op.name(), self.device(), || {
            self.storage().binary(op, &la, &other.storage(), &lb)
        })?;
        Ok(Tensor::from_storage(s, backends::Layout::contiguous(&shape)))
    }

    fn binary_op(&self, other: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.check_float(op.name())?;
        other.check_float(op.name())?;
        let y = self.binary_raw(other, op)?;
        // Add and sub need only the shapes; the others keep their operands.
        let saved = (!matches!(op, BinaryOp::Add | BinaryOp::Sub)).then(|| (self.clone(), other.clone()));
        let (shape_a, shape_b) = (self.shape().to_vec(), other.shape().to_vec());
        let (need_a, need_b) = (self.requires_grad(), other.requires_grad());
        Ok(record_fn(y, op.name(), &[self, other], move || {
            move |g: &Tensor| {
                let (ga, gb) = match &saved {
                    Some((a, b)) => binary_derivative(op, g, a, b, need_a, need_b)?,
                    None => (
                        need_a.then(|| g.clone()),
                        if need_b { Some(if op == BinaryOp::Sub { g.neg()? } else { g.clone() }) } else { None },
                    ),
                };
                let ga = match ga {
                    Some(t) => Some(t.sum_to(&shape_a)?),
                    None => None,
                };
                let gb = match gb {
                    Some(t) => Some(t.sum_to(&shape_b)?),
                    None => None,
                };
                Ok(vec![ga, gb])
            }
        }))
    }

    /// `self + other` with broadcasting.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary_op(other, BinaryOp::Add)
    }
    /// `self - other` with broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.binary_op(other, BinaryOp::Sub)
    }
    /// `self * other` with broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary_op(other, BinaryOp::Mul)
    }
    /// `self / other` with broadcasting (integer division truncates).
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.binary_op(other, BinaryOp::Div)
    }
    /// Elementwise maximum (ties split the gradient equally, as PyTorch).
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary_op(other, BinaryOp::Max)
    }
    /// Elementwise minimum (ties split the gradient equally).
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary_op(other, BinaryOp::Min)
    }
    /// `self ^ other` with broadcasting.
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        self.binary_op(other, BinaryOp::Pow)
    }

    // ----- scalar arithmetic -----

    fn scalar_raw(&self, name: &'static str, op: BinaryOp, s: f64, scalar_first: bool) -> Result<Tensor> {
        let st = crate::profile::forward(name, self.device(), || {
            self.storage().binary_scalar(op, self.layout(), s, scalar_first)
        })?;
        Ok(Tensor::from_storage(st, backends::Layout::contiguous(self.shape())))
    }

    /// `self + s`.
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        let y = self.scalar_raw("add_scalar", BinaryOp::Add, s, false)?;
        Ok(record_fn(y, "add_scalar", &[self], || |g: &Tensor| Ok(vec![Some(g.clone())])))
    }
    /// `self - s`.
    pub fn sub_scalar(&self, s: f64) -> Result<Tensor> {
        self.add_scalar(-s)
    }
    /// `s - self`.
    pub fn rsub_scalar(&self, s: f64) -> Result<Tensor> {
        let y = self.scalar_raw("rsub_scalar", BinaryOp::Sub, s, true)?;
        Ok(record_fn(y, "rsub_scalar", &[self], || |g: &Tensor| Ok(vec![Some(g.neg()?)])))
    }
    /// `self * s`.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        let y = self.scalar_raw("mul_scalar", BinaryOp::Mul, s, false)?;
        Ok(record_fn(y, "mul_scalar", &[self], move || move |g: &Tensor| Ok(vec![Some(g.mul_scalar(s)?)])))
    }
    /// `self / s`.
    pub fn div_scalar(&self, s: f64) -> Result<Tensor> {
        let y = self.scalar_raw("div_scalar", BinaryOp::Div, s, false)?;
        Ok(record_fn(y, "div_scalar", &[self], move || move |g: &Tensor| Ok(vec![Some(g.div_scalar(s)?)])))
    }
    /// `s / self`.
    pub fn rdiv_scalar(&self, s: f64) -> Result<Tensor> {
        self.check_float("rdiv_scalar")?;
        let y = self.scalar_raw("rdiv_scalar", BinaryOp::Div, s, true)?;
        let x = self.clone();
        Ok(record_fn(y, "rdiv_scalar", &[self], move || {
            move |g: &Tensor| Ok(vec![Some(g.mul(&x.square()?.recip()?)?.mul_scalar(-s)?)])
        }))
    }
    /// `s ^ self`.
    pub fn scalar_pow(&self, s: f64) -> Result<Tensor> {
        self.check_float("scalar_pow")?;
        let y = self.scalar_raw("scalar_pow", BinaryOp::Pow, s, true)?;
        let x = self.clone();
        Ok(record_fn(y, "scalar_pow", &[self], move || {
            move |g: &Tensor| Ok(vec![Some(g.mul(&x.scalar_pow(s)?)?.mul_scalar(s.ln())?)])
        }))
    }
    /// `max(self, s)` elementwise.
    pub fn maximum_scalar(&self, s: f64) -> Result<Tensor> {
        let other = Tensor::full_on(&[], s, self.dtype(), self.device())?;
        self.maximum(&other)
    }

    // ----- comparisons and selection (not differentiable) -----

    /// Elementwise comparison with broadcasting: a `u8` mask of 0/1.
    pub fn compare(&self, other: &Tensor, op: CmpOp) -> Result<Tensor> {
        let (la, lb, shape) = self.broadcast_layouts(other, "compare")?;
        let s = crate::profile::forward("compare", self.device(), || {
            self.storage().compare(op, &la, &other.storage(), &lb)
        })?;
        Ok(Tensor::from_storage(s, backends::Layout::contiguous(&shape)))
    }

    /// Elementwise comparison with a scalar: a `u8` mask.
    pub fn compare_scalar(&self, s: f64, op: CmpOp) -> Result<Tensor> {
        let st = crate::profile::forward("compare_scalar", self.device(), || {
            self.storage().compare_scalar(op, self.layout(), s)
        })?;
        Ok(Tensor::from_storage(st, backends::Layout::contiguous(self.shape())))
    }

    /// `self == other` as a `u8` mask.
    pub fn eq(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(other, CmpOp::Eq)
    }
    /// `self > other` as a `u8` mask.
    pub fn gt(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(other, CmpOp::Gt)
    }
    /// `self < other` as a `u8` mask.
    pub fn lt(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(other, CmpOp::Lt)
    }
    /// `self >= other` as a `u8` mask.
    pub fn ge(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(other, CmpOp::Ge)
    }
    /// `self <= other` as a `u8` mask.
    pub fn le(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(other, CmpOp::Le)
    }

    /// `cond ? a : b` elementwise with broadcasting of all three (`cond` is a `u8` mask), as
    /// `torch.where`. Differentiable in `a` and `b`.
    pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if cond.dtype() != DType::U8 {
            return Err(Error::DTypeMismatch { op: "where", lhs: cond.dtype(), rhs: DType::U8 });
        }
        let shape = broadcast_shapes("where", &broadcast_shapes("where", cond.shape(), a.shape())?, b.shape())?;
        let (_, _, _) = a.broadcast_layouts(b, "where")?;
        let lc = cond.layout().broadcast_to(&shape)?;
        let la = a.layout().broadcast_to(&shape)?;
        let lb = b.layout().broadcast_to(&shape)?;
        let s = crate::profile::forward("where", cond.device(), || {
            cond.storage().where_cond(&lc, &a.storage(), &la, &b.storage(), &lb)
        })?;
        let y = Tensor::from_storage(s, backends::Layout::contiguous(&shape));
        let (c, sa, sb) = (cond.clone(), a.shape().to_vec(), b.shape().to_vec());
        Ok(record_fn(y, "where", &[a, b], move || {
            move |g: &Tensor| {
                let zero = Tensor::zeros_like(g)?;
                Ok(vec![
                    Some(Tensor::where_(&c, g, &zero)?.sum_to(&sa)?),
                    Some(Tensor::where_(&c, &zero, g)?.sum_to(&sb)?),
                ])
            }
        }))
    }

    /// The mask (0/1 in this tensor's dtype) of `self op s`.
    pub(crate) fn mask_scalar(&self, s: f64, op: CmpOp) -> Result<Tensor> {
        self.compare_scalar(s, op)?.to_dtype(self.dtype())
    }
}

/// d y / d x for unary ops, as a tensor to multiply the incoming gradient by (`None` means the
/// derivative is −1, i.e. negate).
fn unary_derivative(op: UnaryOp, x: &Tensor, y: &Tensor) -> Result<Option<Tensor>> {
    use std::f64::consts::PI;
    Ok(Some(match op {
        UnaryOp::Neg => return Ok(None),
        UnaryOp::Abs => x.sign()?,
        UnaryOp::Exp => y.clone(),
        UnaryOp::Log => x.recip()?,
        UnaryOp::Sqrt => y.recip()?.mul_scalar(0.5)?,
        UnaryOp::Rsqrt => y.mul(&y.square()?)?.mul_scalar(-0.5)?,
        UnaryOp::Recip => y.square()?.neg()?,
        UnaryOp::Square => x.mul_scalar(2.0)?,
        UnaryOp::Sin => x.cos()?,
        UnaryOp::Cos => x.sin()?.neg()?,
        UnaryOp::Tanh => y.square()?.rsub_scalar(1.0)?,
        UnaryOp::Sigmoid => y.mul(&y.rsub_scalar(1.0)?)?,
        UnaryOp::Relu => x.mask_scalar(0.0, CmpOp::Gt)?,
        UnaryOp::Relu6 => x.mask_scalar(0.0, CmpOp::Gt)?.mul(&x.mask_scalar(6.0, CmpOp::Lt)?)?,
        UnaryOp::Erf => x.square()?.neg()?.exp()?.mul_scalar(2.0 / PI.sqrt())?,
        UnaryOp::GeluErf => {
            // Φ(x) + x φ(x)
            let cdf = x.mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?.erf()?.add_scalar(1.0)?.mul_scalar(0.5)?;
            let pdf = x.square()?.mul_scalar(-0.5)?.exp()?.mul_scalar(1.0 / (2.0 * PI).sqrt())?;
            cdf.add(&x.mul(&pdf)?)?
        }
        UnaryOp::GeluTanh => {
            let c = (2.0 / PI).sqrt();
            let x2 = x.square()?;
            let u = x.mul(&x2.mul_scalar(0.044715)?.add_scalar(1.0)?)?.mul_scalar(c)?;
            let t = u.tanh()?;
            let du = x2.mul_scalar(3.0 * 0.044715)?.add_scalar(1.0)?.mul_scalar(c)?;
            let left = t.add_scalar(1.0)?.mul_scalar(0.5)?;
            let right = x.mul(&t.square()?.rsub_scalar(1.0)?)?.mul(&du)?.mul_scalar(0.5)?;
            left.add(&right)?
        }
        UnaryOp::Silu => {
            let s = x.sigmoid()?;
            s.mul(&x.mul(&s.rsub_scalar(1.0)?)?.add_scalar(1.0)?)?
        }
        UnaryOp::Sign | UnaryOp::Round | UnaryOp::Floor | UnaryOp::Ceil => Tensor::zeros_like(x)?,
        UnaryOp::Clamp { min, max } => x.mask_scalar(min, CmpOp::Ge)?.mul(&x.mask_scalar(max, CmpOp::Le)?)?,
        UnaryOp::Powf(p) => x.powf(p - 1.0)?.mul_scalar(p)?,
        UnaryOp::Atan => x.square()?.add_scalar(1.0)?.recip()?,
        UnaryOp::Asinh => x.square()?.add_scalar(1.0)?.rsqrt()?,
    }))
}

/// Gradients of a binary op before reduction to the operands' shapes.
fn binary_derivative(
    op: BinaryOp,
    g: &Tensor,
    a: &Tensor,
    b: &Tensor,
    need_a: bool,
    need_b: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let when = |need: bool, f: &dyn Fn() -> Result<Tensor>| if need { f().map(Some) } else { Ok(None) };
    match op {
        BinaryOp::Add => Ok((when(need_a, &|| Ok(g.clone()))?, when(need_b, &|| Ok(g.clone()))?)),
        BinaryOp::Sub => Ok((when(need_a, &|| Ok(g.clone()))?, when(need_b, &|| g.neg())?)),
        BinaryOp::Mul => Ok((when(need_a, &|| g.mul(b))?, when(need_b, &|| g.mul(a))?)),
        BinaryOp::Div => Ok((when(need_a, &|| g.div(b))?, when(need_b, &|| g.mul(a)?.div(&b.square()?)?.neg())?)),
        BinaryOp::Max | BinaryOp::Min => {
            let cmp = if op == BinaryOp::Max { CmpOp::Gt } else { CmpOp::Lt };
            let wins = a.compare(b, cmp)?.to_dtype(g.dtype())?;
            let ties = a.compare(b, CmpOp::Eq)?.to_dtype(g.dtype())?.mul_scalar(0.5)?;
            let share_a = wins.add(&ties)?;
            Ok((when(need_a, &|| g.mul(&share_a))?, when(need_b, &|| g.mul(&share_a.rsub_scalar(1.0)?))?))
        }
        BinaryOp::Pow => Ok((
            when(need_a, &|| g.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?))?,
            when(need_b, &|| g.mul(&a.pow(b)?)?.mul(&a.log()?))?,
        )),
        // Only backward rules run these, on raw tensors (see `unary_op`).
        _ => Err(Error::invalid(op.name(), "is a backward kernel and has no derivative of its own")),
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $tensor_fn:ident, $scalar_fn:ident) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                self.$tensor_fn(rhs)
            }
        }
        impl std::ops::$trait<f64> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: f64) -> Result<Tensor> {
                self.$scalar_fn(rhs)
            }
        }
    };
}
operator!(Add, add, add, add_scalar);
operator!(Sub, sub, sub, sub_scalar);
operator!(Mul, mul, mul, mul_scalar);
operator!(Div, div, div, div_scalar);

impl std::ops::Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}
