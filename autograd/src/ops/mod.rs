//! Differentiable ops, one family per file: forward, derivative rule and docs together.

mod creation;
mod elementwise;
mod matmul;
mod reduce;
mod shape;
mod softmax;
