//! [`Compander`]: the bounded (or not) function `ψ(v) = a·f(v/b)` a weight is reparameterized
//! through, its inverse for the initialization and its derivative.

use autograd::{Error, Result, Tensor};

/// The function `f` of `ψ(v) = a·f(v/b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compander {
    /// `f = arctan`: bounded, `|ψ| < a·π/2` (the paper's choice).
    Arctan,
    /// `f = arsinh`: unbounded (a tested alternative).
    Arsinh,
    /// `f = erf`: bounded, `|ψ| < a` (a tested alternative).
    Erf,
}

impl Compander {
    /// `"arctan"`, `"arsinh"` or `"erf"`.
    pub fn name(self) -> &'static str {
        match self {
            Compander::Arctan => "arctan",
            Compander::Arsinh => "arsinh",
            Compander::Erf => "erf",
        }
    }

    /// Parses a [`Compander::name`].
    pub fn parse(s: &str) -> Result<Compander> {
        match s {
            "arctan" => Ok(Compander::Arctan),
            "arsinh" => Ok(Compander::Arsinh),
            "erf" => Ok(Compander::Erf),
            _ => Err(Error::invalid("compander", format!("expected arctan, arsinh or erf, got {s:?}"))),
        }
    }

    /// `sup |f|`: `π/2`, `∞` or 1 (so `|ψ(v)| < |a|·sup`).
    pub fn sup(self) -> f64 {
        match self {
            Compander::Arctan => std::f64::consts::FRAC_PI_2,
            Compander::Arsinh => f64::INFINITY,
            Compander::Erf => 1.0,
        }
    }

    /// `f(u)` elementwise, differentiable.
    pub fn apply_unit(self, u: &Tensor) -> Result<Tensor> {
        match self {
            Compander::Arctan => u.atan(),
            Compander::Arsinh => u.asinh(),
            Compander::Erf => u.erf(),
        }
    }

    /// `f(u)` of one number.
    pub fn unit(self, u: f64) -> f64 {
        match self {
            Compander::Arctan => u.atan(),
            Compander::Arsinh => u.asinh(),
            Compander::Erf => libm::erf(u),
        }
    }

    /// `f'(u)`: `1/(1 + u²)`, `1/sqrt(1 + u²)`, `2/√π·e^{−u²}`.
    pub fn unit_derivative(self, u: f64) -> f64 {
        match self {
            Compander::Arctan => 1.0 / (1.0 + u * u),
            Compander::Arsinh => 1.0 / (1.0 + u * u).sqrt(),
            Compander::Erf => 2.0 / std::f64::consts::PI.sqrt() * (-u * u).exp(),
        }
    }

    /// `f⁻¹(y)` for `|y| < sup`: `tan`, `sinh`, `erfinv` (Newton's method on `erf` from a
    /// closed-form start, to full f64 precision).
    pub fn inverse_unit(self, y: f64) -> f64 {
        match self {
            Compander::Arctan => y.tan(),
            Compander::Arsinh => y.sinh(),
            Compander::Erf => erfinv(y),
        }
    }
}

/// The inverse error function on `(−1, 1)`: Winitzki's closed-form approximation refined by
/// Newton steps on [`libm::erf`].
fn erfinv(y: f64) -> f64 {
    if y == 0.0 {
        return 0.0;
    }
    let a = 0.147;
    let l = (1.0 - y * y).ln();
    let t = 2.0 / (std::f64::consts::PI * a) + l / 2.0;
    let mut x = y.signum() * ((t * t - l / a).sqrt() - t).sqrt();
    for _ in 0..8 {
        let err = libm::erf(x) - y;
        let d = 2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp();
        if d == 0.0 {
            break;
        }
        let step = err / d;
        x -= step;
        if step.abs() <= 1e-16 * x.abs().max(1e-300) {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_round_trips_and_derivatives_match_differences() {
        for c in [Compander::Arctan, Compander::Arsinh, Compander::Erf] {
            for y in [-0.999, -0.7, -0.2, -1e-4, 0.0, 3e-3, 0.5, 0.9, 0.9999] {
                let y = if c == Compander::Arctan { y * c.sup() } else { y };
                let back = c.unit(c.inverse_unit(y));
                assert!((back - y).abs() <= 1e-13 * (1.0 + y.abs()), "{c:?} {y}: {back}");
            }
            for u in [-3.0, -0.4, 0.0, 0.8, 2.5] {
                let h = 1e-6;
                let fd = (c.unit(u + h) - c.unit(u - h)) / (2.0 * h);
                assert!((fd - c.unit_derivative(u)).abs() < 1e-8, "{c:?} f'({u})");
            }
            assert_eq!(Compander::parse(c.name()).unwrap(), c);
        }
        assert!(Compander::parse("tanh").is_err());
    }
}
