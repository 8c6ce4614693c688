//! Differentiable ops, one family per file: forward, derivative rule and docs together.

mod attention;
mod axpby;
mod batch_norm;
mod conv;
mod creation;
mod dropout;
mod elementwise;
mod fake_quant;
mod fft;
mod indexing;
mod layer_norm;
mod linear;
mod matmul;
mod pool;
mod reduce;
mod shape;
mod softmax;
mod sparse_conv;
mod spectral_batch_norm;
