//! The checks of a random distribution's parameters.

use crate::ops::Distribution;
use crate::{Error, Result};

/// Rejects distribution parameters no generator can sample (non-finite bounds, a negative
/// standard deviation, a probability outside `[0, 1]`).
pub(crate) fn check_dist(dist: &Distribution) -> Result<()> {
    const OP: &str = "random";
    match *dist {
        Distribution::Uniform { low, high } if !(low.is_finite() && high.is_finite() && low <= high) => {
            Err(Error::invalid(OP, format!("uniform bounds [{low}, {high}) must be finite with low <= high")))
        }
        Distribution::Normal { mean, std } if !(mean.is_finite() && std.is_finite() && std >= 0.0) => {
            Err(Error::invalid(OP, format!("normal needs a finite mean and std >= 0, got mean {mean}, std {std}")))
        }
        Distribution::Bernoulli { p } if !(0.0..=1.0).contains(&p) => {
            Err(Error::invalid(OP, format!("bernoulli probability {p} is outside [0, 1]")))
        }
        _ => Ok(()),
    }
}
