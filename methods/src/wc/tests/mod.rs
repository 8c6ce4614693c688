//! Tests of the Weight Compander: the spec's list ("how to test it is right") on the layer and on
//! whole models, the weight-decay placement through the method's hooks, and the registry
//! entries through the trainer.

mod layer;
mod method;

use crate::testing::{max_diff, randn64};
