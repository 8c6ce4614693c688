//! Tests of spectral batch normalization: the spec's list ("how to test it is right") on the
//! layer, its placement on the registered models, and the registry entries through the trainer.

mod layer;
mod method;
mod placement;

use crate::testing::{max_diff, randn64};
