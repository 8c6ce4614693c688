//! Counter-based random numbers (placeholder until the generator lands).

use crate::ops::Distribution;
use crate::{CpuStorage, DType, Error, Result};

pub(crate) fn random(_dtype: DType, _n: usize, _dist: Distribution, _seed: u64, _offset: u64) -> Result<CpuStorage> {
    Err(Error::Backend("random: not implemented yet".into()))
}
