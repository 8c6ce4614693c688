//! The elementwise ops, each declared once: its variant, doc and short name (in `op_enum!`
//! lists), whether integers support it, and its definition in f64 with the inputs it is checked
//! on. An op's [`code`](UnaryOp::code) is its position in its list; the CUDA kernels switch on
//! names generated from the same list (`cuda/op_codes.rs`), so nothing is numbered by hand.
//!
//! Adding an elementwise op: its entry and reference here, its CPU form in `cpu/scalar.rs`, its
//! `case` in `cuda/elementwise.cu` (see `backends/README.md`).

/// Declares an op enum from one list of `Variant [fields] => "name",` entries, with:
/// `NAMES` (every name in declaration order), `name()`, and `code()` (the index in `NAMES`);
/// for a list of plain variants also `ALL` (every op).
macro_rules! op_enum {
    (
        $(#[$em:meta])*
        pub enum $E:ident { $( $(#[$vm:meta])* $V:ident => $name:literal, )* }
    ) => {
        op_enum! { @general $(#[$em])* pub enum $E { $( $(#[$vm])* $V => $name, )* } }

        impl $E {
            /// Every op, in declaration order.
            pub const ALL: &'static [$E] = &[$($E::$V),*];
        }
    };
    (
        $(#[$em:meta])*
        pub enum $E:ident {
            $(
                $(#[$vm:meta])*
                $V:ident $({ $($(#[$fm:meta])* $f:ident: $ft:ty),* $(,)? })? $(($t:ty))? => $name:literal,
            )*
        }
    ) => {
        op_enum! { @general $(#[$em])* pub enum $E {
            $( $(#[$vm])* $V $({ $($(#[$fm])* $f: $ft),* })? $(($t))? => $name, )*
        } }
    };
    (
        @general $(#[$em:meta])*
        pub enum $E:ident {
            $(
                $(#[$vm:meta])*
                $V:ident $({ $($(#[$fm:meta])* $f:ident: $ft:ty),* })? $(($t:ty))? => $name:literal,
            )*
        }
    ) => {
        $(#[$em])*
        pub enum $E {
            $( $(#[$vm])* $V $({ $($(#[$fm])* $f: $ft),* })? $(($t))?, )*
        }

        impl $E {
            /// Every op's short name, in declaration order: an op's [`code`](Self::code) is its
            /// index here.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// A short name for messages and profiles.
            pub fn name(&self) -> &'static str {
                match self {
                    $( $E::$V { .. } => $name, )*
                }
            }

            /// The op's position in its declaration: the number kernels switch on.
            pub fn code(&self) -> usize {
                let is = [$( matches!(self, $E::$V { .. }) ),*];
                is.iter().position(|&m| m).expect("every variant is in the list")
            }
        }
    };
}

op_enum! {
    /// An elementwise function of one argument.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum UnaryOp {
        /// `-x` (every numeric dtype).
        Neg => "neg",
        /// `|x|` (every numeric dtype).
        Abs => "abs",
        /// `e^x`.
        Exp => "exp",
        /// Natural logarithm.
        Log => "log",
        /// Square root.
        Sqrt => "sqrt",
        /// `1 / sqrt(x)`.
        Rsqrt => "rsqrt",
        /// `1 / x`.
        Recip => "recip",
        /// `x * x` (every numeric dtype).
        Square => "square",
        /// Sine.
        Sin => "sin",
        /// Cosine.
        Cos => "cos",
        /// Hyperbolic tangent.
        Tanh => "tanh",
        /// Logistic sigmoid `1 / (1 + e^-x)`.
        Sigmoid => "sigmoid",
        /// `max(x, 0)` (every numeric dtype).
        Relu => "relu",
        /// `min(max(x, 0), 6)`.
        Relu6 => "relu6",
        /// The Gauss error function.
        Erf => "erf",
        /// GELU, exact form `x * Φ(x) = x/2 * (1 + erf(x/√2))`.
        GeluErf => "gelu",
        /// GELU, tanh approximation `x/2 * (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
        GeluTanh => "gelu_tanh",
        /// SiLU (swish) `x * sigmoid(x)`.
        Silu => "silu",
        /// `-1`, `0` or `1` by the sign of x; NaN stays NaN (every numeric dtype).
        Sign => "sign",
        /// Round half to even, as PyTorch's `round`.
        Round => "round",
        /// Round toward −∞.
        Floor => "floor",
        /// Round toward +∞.
        Ceil => "ceil",
        /// `min(max(x, min), max)` (every numeric dtype).
        Clamp {
            /// Lower bound.
            min: f64,
            /// Upper bound.
            max: f64,
        } => "clamp",
        /// `x^p` for a scalar exponent.
        Powf(f64) => "pow_scalar",
        /// Arctangent (principal value, in `(−π/2, π/2)`).
        Atan => "atan",
        /// Inverse hyperbolic sine `ln(x + sqrt(x² + 1))`.
        Asinh => "asinh",
    }
}

impl UnaryOp {
    /// The fused backward op `g · f'(x)` of an activation, when there is one.
    pub fn backward_op(&self) -> Option<BinaryOp> {
        BinaryOp::ACTIVATION_BACKWARD.iter().find(|(_, u)| u == self).map(|(b, _)| *b)
    }

    /// Whether the op is defined for integer dtypes too.
    pub fn supports_integers(&self) -> bool {
        matches!(
            self,
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Square | UnaryOp::Relu | UnaryOp::Sign | UnaryOp::Clamp { .. }
        )
    }

    /// The op's definition in f64, written independently of every kernel: the conformance suite
    /// checks each backend against it (on [`UnaryOp::CHECKED`]).
    pub fn reference(&self, x: f64) -> f64 {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        match *self {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Recip => 1.0 / x,
            UnaryOp::Square => x * x,
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => sig(x),
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::Relu6 => x.clamp(0.0, 6.0),
            UnaryOp::Erf => erf_series(x),
            UnaryOp::GeluErf => 0.5 * x * (1.0 + erf_series(x / 2f64.sqrt())),
            UnaryOp::GeluTanh => {
                0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
            }
            UnaryOp::Silu => x * sig(x),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            UnaryOp::Round => x.round_ties_even(),
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Clamp { min, max } => x.max(min).min(max),
            UnaryOp::Powf(p) => x.powf(p),
            UnaryOp::Atan => x.atan(),
            UnaryOp::Asinh => x.signum() * (x.abs() + (x * x + 1.0).sqrt()).ln(),
        }
    }

    /// Every op (the parametrized ones with a few parameters) with the input range the
    /// conformance suite checks it on against [`UnaryOp::reference`].
    pub const CHECKED: &'static [(UnaryOp, f64, f64)] = &[
        (UnaryOp::Neg, -5.0, 5.0),
        (UnaryOp::Abs, -5.0, 5.0),
        (UnaryOp::Exp, -5.0, 5.0),
        (UnaryOp::Log, 0.01, 10.0),
        (UnaryOp::Sqrt, 0.0, 10.0),
        (UnaryOp::Rsqrt, 0.01, 10.0),
        (UnaryOp::Recip, 0.1, 10.0),
        (UnaryOp::Square, -5.0, 5.0),
        (UnaryOp::Sin, -5.0, 5.0),
        (UnaryOp::Cos, -5.0, 5.0),
        (UnaryOp::Tanh, -5.0, 5.0),
        (UnaryOp::Sigmoid, -30.0, 30.0),
        (UnaryOp::Relu, -5.0, 5.0),
        (UnaryOp::Relu6, -3.0, 9.0),
        (UnaryOp::Erf, -3.0, 3.0),
        (UnaryOp::GeluErf, -4.0, 4.0),
        (UnaryOp::GeluTanh, -4.0, 4.0),
        (UnaryOp::Silu, -8.0, 8.0),
        (UnaryOp::Sign, -2.0, 2.0),
        (UnaryOp::Round, -4.0, 4.0),
        (UnaryOp::Floor, -4.0, 4.0),
        (UnaryOp::Ceil, -4.0, 4.0),
        (UnaryOp::Clamp { min: -1.5, max: 0.5 }, -3.0, 3.0),
        (UnaryOp::Powf(3.0), -3.0, 3.0),
        (UnaryOp::Powf(0.5), 0.0, 4.0),
        (UnaryOp::Powf(-1.5), 0.1, 4.0),
        (UnaryOp::Atan, -20.0, 20.0),
        (UnaryOp::Asinh, -20.0, 20.0),
    ];
}

/// An erf independent of the kernels' (and of `libm`'s): the Maclaurin series, accurate to
/// ~1e-14 on [-3, 3] (the ranges it is checked on stay there).
fn erf_series(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    while term.abs() > 1e-17 * sum.abs().max(1e-300) {
        n += 1.0;
        term *= -x * x / n;
        sum += term / (2.0 * n + 1.0);
        if n > 200.0 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

op_enum! {
    /// An elementwise function of two arguments (NumPy broadcasting happens in the caller's
    /// layouts).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BinaryOp {
        /// `a + b`.
        Add => "add",
        /// `a - b`.
        Sub => "sub",
        /// `a * b`.
        Mul => "mul",
        /// `a / b` (integer division truncates; division by zero is an error for integers).
        Div => "div",
        /// `max(a, b)` (NaN propagates for floats).
        Max => "maximum",
        /// `min(a, b)` (NaN propagates for floats).
        Min => "minimum",
        /// `a ^ b` (floats only).
        Pow => "pow",
        /// ReLU's backward: `a` where `b > 0`, else 0 (`a` the output gradient, `b` the input;
        /// floats only, as are the other `*Backward` ops).
        ReluBackward => "relu_backward",
        /// ReLU6's backward: `a` where `0 < b < 6`, else 0.
        Relu6Backward => "relu6_backward",
        /// GELU's (erf form) backward: `a · (Φ(b) + b φ(b))`.
        GeluBackward => "gelu_backward",
        /// The tanh-approximated GELU's backward: `a · d/db gelu_tanh(b)`.
        GeluTanhBackward => "gelu_tanh_backward",
        /// SiLU's backward: `a · σ(b) (1 + b (1 − σ(b)))`.
        SiluBackward => "silu_backward",
        /// Arctangent's backward: `a / (1 + b²)`.
        AtanBackward => "atan_backward",
    }
}

impl BinaryOp {
    /// Whether the op is defined for float dtypes only.
    pub fn float_only(&self) -> bool {
        !matches!(self, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Max | BinaryOp::Min)
    }

    /// The activation backward ops, each with the activation it differentiates.
    pub const ACTIVATION_BACKWARD: [(BinaryOp, UnaryOp); 6] = [
        (BinaryOp::ReluBackward, UnaryOp::Relu),
        (BinaryOp::Relu6Backward, UnaryOp::Relu6),
        (BinaryOp::GeluBackward, UnaryOp::GeluErf),
        (BinaryOp::GeluTanhBackward, UnaryOp::GeluTanh),
        (BinaryOp::SiluBackward, UnaryOp::Silu),
        (BinaryOp::AtanBackward, UnaryOp::Atan),
    ];

    /// Whether the op is the backward of an activation (in [`BinaryOp::ACTIVATION_BACKWARD`]).
    pub fn is_activation_backward(&self) -> bool {
        Self::ACTIVATION_BACKWARD.iter().any(|(b, _)| b == self)
    }

    /// The op's definition in f64 (`int`: on integer operands), written independently of every
    /// kernel: the conformance suite checks each backend against it. An activation backward
    /// `a · f'(b)` takes the derivative from its closed form (sech² through cosh, the Gaussian
    /// density from its definition).
    pub fn reference(&self, a: f64, b: f64, int: bool) -> f64 {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let step = |c: bool| if c { 1.0 } else { 0.0 };
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div if int => (a / b).trunc(),
            BinaryOp::Div => a / b,
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Pow => a.powf(b),
            BinaryOp::ReluBackward => a * step(b > 0.0),
            BinaryOp::Relu6Backward => a * step(b > 0.0 && b < 6.0),
            BinaryOp::GeluBackward => {
                let density = (-b * b / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
                a * (0.5 * (1.0 + erf_series(b / 2f64.sqrt())) + b * density)
            }
            BinaryOp::GeluTanhBackward => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                let u = c * (b + 0.044715 * b.powi(3));
                a * (0.5 * (1.0 + u.tanh()) + 0.5 * b * c * (1.0 + 3.0 * 0.044715 * b * b) / u.cosh().powi(2))
            }
            BinaryOp::SiluBackward => a * (sig(b) + b * sig(b) * (1.0 - sig(b))),
            BinaryOp::AtanBackward => a / (1.0 + b * b),
        }
    }
}

op_enum! {
    /// An elementwise comparison producing a `u8` mask of 0/1.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum CmpOp {
        /// `a == b`.
        Eq => "eq",
        /// `a != b`.
        Ne => "ne",
        /// `a < b`.
        Lt => "lt",
        /// `a <= b`.
        Le => "le",
        /// `a > b`.
        Gt => "gt",
        /// `a >= b`.
        Ge => "ge",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_positions_and_names_are_distinct() {
        for (i, op) in BinaryOp::ALL.iter().enumerate() {
            assert_eq!((op.code(), op.name()), (i, BinaryOp::NAMES[i]));
        }
        for (i, op) in CmpOp::ALL.iter().enumerate() {
            assert_eq!((op.code(), op.name()), (i, CmpOp::NAMES[i]));
        }
        for (op, _, _) in UnaryOp::CHECKED {
            assert_eq!(op.name(), UnaryOp::NAMES[op.code()]);
        }
        for names in [UnaryOp::NAMES, BinaryOp::NAMES, CmpOp::NAMES] {
            let mut sorted = names.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "{names:?}");
        }
    }

    /// A new unary op cannot go unchecked: every one is in [`UnaryOp::CHECKED`].
    #[test]
    fn every_unary_op_is_checked() {
        for (code, name) in UnaryOp::NAMES.iter().enumerate() {
            assert!(UnaryOp::CHECKED.iter().any(|(op, _, _)| op.code() == code), "{name} is not in UnaryOp::CHECKED");
        }
    }
}
