//! Per-element arithmetic for every dtype: the scalar functions the elementwise kernels map.

use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{Element, FloatElement};

/// Arithmetic every numeric element type supports.
pub(crate) trait Arith: Element {
    /// `op(a, b)`, or `None` when undefined for this type (integer division by zero, pow on ints).
    fn binary(op: BinaryOp, a: Self, b: Self) -> Option<Self>;
    /// `op(x)`, or `None` when the op is not defined for this type.
    fn unary(op: UnaryOp, x: Self) -> Option<Self>;
    /// Whether the value is NaN.
    fn is_nan_(self) -> bool;
    /// Adds each `acc.len()`-long row of a block to `acc` in f64, the inner loop of a sum over
    /// leading axes ([`add_rows_of`]); f32 runs an AVX-512 build of it.
    const ADD_ROWS: fn(&mut [f64], &[Self]) = add_rows_of::<Self>;
}

/// Adds each `acc.len()`-long row of `rows` to `acc`, converting to f64: the inner loop of the
/// sums over leading axes of `reduce`. A plain `for` loop, so that it vectorizes inside
/// [`add_rows_f32`].
#[inline(always)]
fn add_rows_of<T: Element>(acc: &mut [f64], rows: &[T]) {
    for row in rows.chunks_exact(acc.len()) {
        for (a, &x) in acc.iter_mut().zip(row) {
            *a += x.to_f64();
        }
    }
}

f32_avx512!(
    /// [`add_rows_of`] for f32 (8 f64 accumulators per instruction in the AVX-512 build).
    fn add_rows_f32(acc: &mut [f64], rows: &[f32]) => add_rows_of
);

#[inline(always)]
pub(crate) fn compare<T: PartialOrd>(op: CmpOp, a: T, b: T) -> u8 {
    (match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }) as u8
}

#[inline(always)]
fn float_unary<T: FloatElement>(op: UnaryOp, x: T, erf: impl Fn(T) -> T) -> T {
    let zero = T::zero();
    let one = T::one();
    let half = T::from_f32(0.5);
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => one / x.sqrt(),
        UnaryOp::Recip => one / x,
        UnaryOp::Square => x * x,
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Relu => {
            if x < zero {
                zero
            } else {
                x
            }
        }
        UnaryOp::Relu6 => {
            let six = T::from_f32(6.0);
            if x < zero {
                zero
            } else if x > six {
                six
            } else {
                x
            }
        }
        UnaryOp::Erf => erf(x),
        UnaryOp::GeluErf => half * x * (one + erf(x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2))),
        UnaryOp::GeluTanh => {
            let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
            half * x * (one + (c * (x + T::from_f64(0.044715) * x * x * x)).tanh())
        }
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::Sign => {
            if x > zero {
                one
            } else if x < zero {
                -one
            } else {
                x * zero
            }
        }
        UnaryOp::Round => round_half_even(x),
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        }
        UnaryOp::Powf(p) => {
            if p == 2.0 {
                x * x
            } else {
                x.powf(T::from_f64(p))
            }
        }
        UnaryOp::Atan => x.atan(),
        UnaryOp::Asinh => x.asinh(),
    }
}

#[inline(always)]
fn sigmoid<T: FloatElement>(x: T) -> T {
    let one = T::one();
    if x >= T::zero() {
        one / (one + (-x).exp())
    } else {
        let e = x.exp();
        e / (one + e)
    }
}

#[inline(always)]
pub(crate) fn round_half_even<T: FloatElement>(x: T) -> T {
    // For a magnitude `a` below 2^p (p the mantissa bits), `a + 2^p` lies in [2^p, 2^(p+1)),
    // where floats are the integers: the addition itself rounds `a`, to nearest with ties to
    // even (the default rounding mode), and taking 2^p off again is exact. From 2^p on every
    // float is an integer. The sign is put back afterwards (-0.3 -> -0).
    let limit = T::one() / T::epsilon();
    let a = x.abs();
    if a < limit {
        ((a + limit) - limit).copysign(x)
    } else {
        x
    }
}

/// The activation backward ops: `g · f'(x)`, `g` the output gradient, `x` the input.
#[inline(always)]
pub(crate) fn activation_backward<T: FloatElement>(op: BinaryOp, g: T, x: T, erf: impl Fn(T) -> T) -> T {
    let (zero, one, half) = (T::zero(), T::one(), T::from_f32(0.5));
    match op {
        BinaryOp::ReluBackward => {
            if x > zero {
                g
            } else {
                zero
            }
        }
        BinaryOp::Relu6Backward => {
            if x > zero && x < T::from_f32(6.0) {
                g
            } else {
                zero
            }
        }
        BinaryOp::GeluBackward => {
            let cdf = half * (one + erf(x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)));
            let pdf = (-half * x * x).exp()
                * T::from_f64(0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2);
            g * (cdf + x * pdf)
        }
        BinaryOp::GeluTanhBackward => {
            let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
            let k = T::from_f64(0.044715);
            let x2 = x * x;
            let t = (c * x * (one + k * x2)).tanh();
            let du = c * (one + T::from_f64(3.0) * k * x2);
            g * (half * (one + t) + half * x * (one - t * t) * du)
        }
        BinaryOp::SiluBackward => {
            let s = sigmoid(x);
            g * s * (one + x * (one - s))
        }
        BinaryOp::AtanBackward => g / (one + x * x),
        _ => g,
    }
}

#[inline(always)]
fn float_binary<T: FloatElement>(op: BinaryOp, a: T, b: T, erf: impl Fn(T) -> T) -> T {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => {
            if a.is_nan() || b.is_nan() {
                T::nan()
            } else if a >= b {
                a
            } else {
                b
            }
        }
        BinaryOp::Min => {
            if a.is_nan() || b.is_nan() {
                T::nan()
            } else if a <= b {
                a
            } else {
                b
            }
        }
        BinaryOp::Pow => a.powf(b),
        BinaryOp::ReluBackward
        | BinaryOp::Relu6Backward
        | BinaryOp::GeluBackward
        | BinaryOp::GeluTanhBackward
        | BinaryOp::SiluBackward
        | BinaryOp::AtanBackward => activation_backward(op, a, b, erf),
    }
}

impl Arith for f32 {
    const ADD_ROWS: fn(&mut [f64], &[f32]) = add_rows_f32;
    #[inline(always)]
    fn binary(op: BinaryOp, a: Self, b: Self) -> Option<Self> {
        Some(float_binary(op, a, b, libm::erff))
    }
    #[inline(always)]
    fn unary(op: UnaryOp, x: Self) -> Option<Self> {
        Some(float_unary(op, x, libm::erff))
    }
    #[inline(always)]
    fn is_nan_(self) -> bool {
        self.is_nan()
    }
}

impl Arith for f64 {
    #[inline(always)]
    fn binary(op: BinaryOp, a: Self, b: Self) -> Option<Self> {
        Some(float_binary(op, a, b, libm::erf))
    }
    #[inline(always)]
    fn unary(op: UnaryOp, x: Self) -> Option<Self> {
        Some(float_unary(op, x, libm::erf))
    }
    #[inline(always)]
    fn is_nan_(self) -> bool {
        self.is_nan()
    }
}

macro_rules! int_arith {
    ($t:ty, signed: $signed:expr) => {
        impl Arith for $t {
            #[inline(always)]
            fn binary(op: BinaryOp, a: Self, b: Self) -> Option<Self> {
                Some(match op {
                    BinaryOp::Add => a.wrapping_add(b),
                    BinaryOp::Sub => a.wrapping_sub(b),
                    BinaryOp::Mul => a.wrapping_mul(b),
                    BinaryOp::Div => return a.checked_div(b),
                    BinaryOp::Max => a.max(b),
                    BinaryOp::Min => a.min(b),
                    _ => return None,
                })
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn unary(op: UnaryOp, x: Self) -> Option<Self> {
                Some(match op {
                    UnaryOp::Neg => (0 as $t).wrapping_sub(x),
                    UnaryOp::Abs => {
                        if x < 0 {
                            (0 as $t).wrapping_sub(x)
                        } else {
                            x
                        }
                    }
                    UnaryOp::Square => x.wrapping_mul(x),
                    UnaryOp::Relu => {
                        if x < 0 {
                            0
                        } else {
                            x
                        }
                    }
                    UnaryOp::Sign => {
                        if x > 0 {
                            1
                        } else if x == 0 || !$signed {
                            0
                        } else {
                            (0 as $t).wrapping_sub(1)
                        }
                    }
                    UnaryOp::Clamp { min, max } => {
                        let v = x as f64;
                        if v < min {
                            min.ceil() as $t
                        } else if v > max {
                            max.floor() as $t
                        } else {
                            x
                        }
                    }
                    _ => return None,
                })
            }
            #[inline(always)]
            fn is_nan_(self) -> bool {
                false
            }
        }
    };
}
int_arith!(i64, signed: true);
int_arith!(i32, signed: true);
int_arith!(u32, signed: false);
int_arith!(u8, signed: false);
int_arith!(i8, signed: true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_is_half_to_even() {
        let xs = [0.5f64, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -3.7];
        let want = [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 2.0, 3.0, -4.0];
        for (x, w) in xs.iter().zip(want) {
            assert_eq!(f64::unary(UnaryOp::Round, *x).unwrap(), w, "round({x})");
            assert_eq!(f32::unary(UnaryOp::Round, *x as f32).unwrap(), w as f32, "round({x})");
        }
    }

    /// The magic-number rounding equals the standard library's ties-to-even rounding bit for
    /// bit (signed zeros included) over ties, fractions, magnitudes up to and past 2^p, and the
    /// non-finite values.
    #[test]
    fn round_matches_round_ties_even_bit_for_bit() {
        let mut xs: Vec<f64> =
            vec![0.0, -0.0, 0.49999999999999994, 4503599627370495.5, 4503599627370497.0, 1e300, -1e300];
        xs.extend([f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, -f64::MIN_POSITIVE]);
        for i in -4000..4000 {
            xs.push(f64::from(i) * 0.25);
            xs.push(f64::from(i) * 0.37 + 1e-9);
            xs.push(f64::from(i) * 4096.5);
        }
        for e in 0..70 {
            for d in [-1.0, -0.5, 0.0, 0.5, 1.0] {
                xs.push(2f64.powi(e) + d);
                xs.push(-(2f64.powi(e) + d));
            }
        }
        for &x in &xs {
            assert_eq!(round_half_even(x).to_bits(), x.round_ties_even().to_bits(), "f64 round({x})");
            let y = x as f32;
            assert_eq!(round_half_even(y).to_bits(), y.round_ties_even().to_bits(), "f32 round({y})");
        }
        assert!(round_half_even(f64::NAN).is_nan() && round_half_even(f32::NAN).is_nan());
    }

    #[test]
    fn integer_rules() {
        assert_eq!(i64::binary(BinaryOp::Div, 7, -2), Some(-3));
        assert_eq!(i64::binary(BinaryOp::Div, 7, 0), None);
        assert_eq!(u8::binary(BinaryOp::Pow, 2, 3), None);
        assert_eq!(i8::unary(UnaryOp::Sign, -5), Some(-1));
        assert_eq!(u32::unary(UnaryOp::Exp, 1), None);
        assert_eq!(i32::unary(UnaryOp::Clamp { min: -2.5, max: 3.5 }, -7), Some(-2));
    }

    #[test]
    fn nan_propagates_through_max_min_relu() {
        assert!(f32::binary(BinaryOp::Max, f32::NAN, 1.0).unwrap().is_nan());
        assert!(f64::binary(BinaryOp::Min, 1.0, f64::NAN).unwrap().is_nan());
        assert!(f64::unary(UnaryOp::Relu, f64::NAN).unwrap().is_nan());
    }
}
