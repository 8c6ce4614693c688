//! Lamina's `methods`: one module per paper, each exposing its layers and the recipe that turns a
//! model and a training run into that paper's method.

#![warn(missing_docs)]

pub mod swd;
