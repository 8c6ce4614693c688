//! Band masks of spectral wavelet dropout: how many are drawn per call ([`MaskGranularity`]) and
//! how they are drawn (one seed from [`layers::rng::next_seed`] per call, Bernoulli samples from
//! the framework's counter-based generator, so a run is reproducible and resumable).

use autograd::backends::ops::Distribution;
use autograd::{DType, Device, Error, Result, Tensor};

/// How many independent band masks one forward pass draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MaskGranularity {
    /// One mask for the whole batch and every channel (Algorithms 1 and 2 of the paper).
    #[default]
    PerCall,
    /// One mask per sample, shared by its channels.
    PerSample,
    /// One mask per `(sample, channel)` map, as ordinary dropout would draw.
    PerChannel,
}

impl MaskGranularity {
    /// The broadcast shape `(gb, gc)` of the masks for a batch of `b` samples with `c` channels:
    /// `(1, 1)`, `(b, 1)` or `(b, c)`.
    pub fn groups(self, b: usize, c: usize) -> (usize, usize) {
        match self {
            MaskGranularity::PerCall => (1, 1),
            MaskGranularity::PerSample => (b, 1),
            MaskGranularity::PerChannel => (b, c),
        }
    }
}

/// `p` if it is a probability, else an error naming `op`.
pub(crate) fn check_probability(op: &'static str, what: &str, p: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::invalid(op, format!("{what} {p} is outside [0, 1]")))
    }
}

/// `count` keep decisions, each true with probability `1 − p`, from `seed`.
pub(crate) fn draw_keep(count: usize, p: f64, seed: u64) -> Result<Vec<bool>> {
    let t = Tensor::random(&[count], Distribution::Bernoulli { p: 1.0 - p }, seed, DType::F64, Device::Cpu)?;
    Ok(t.to_vec::<f64>()?.into_iter().map(|v| v > 0.5).collect())
}

/// The inverted-dropout scale of a band: `1/(1 − p)` if kept, `0` if dropped.
pub(crate) fn band_scale(keep: bool, p: f64) -> f64 {
    if keep {
        1.0 / (1.0 - p)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_rate_is_one_minus_p_and_seeded() {
        let k = draw_keep(20_000, 0.3, 9).unwrap();
        let rate = k.iter().filter(|&&b| b).count() as f64 / k.len() as f64;
        assert!((rate - 0.7).abs() < 0.015, "keep rate {rate}");
        assert_eq!(k, draw_keep(20_000, 0.3, 9).unwrap());
        assert_ne!(k, draw_keep(20_000, 0.3, 10).unwrap());
        assert!(draw_keep(50, 0.0, 1).unwrap().iter().all(|&b| b));
        assert!(draw_keep(50, 1.0, 1).unwrap().iter().all(|&b| !b));
    }

    #[test]
    fn groups_follow_the_granularity() {
        assert_eq!(MaskGranularity::PerCall.groups(4, 3), (1, 1));
        assert_eq!(MaskGranularity::PerSample.groups(4, 3), (4, 1));
        assert_eq!(MaskGranularity::PerChannel.groups(4, 3), (4, 3));
        assert!(check_probability("x", "p", 1.5).is_err());
        assert!(check_probability("x", "p", -0.1).is_err());
    }
}
