//! Lamina's autograd: the user-facing [`Tensor`], the tape, differentiable ops and the
//! gradient-correctness harness ([`gradcheck`]).
//!
//! Ops record themselves on the tape when an input requires a gradient and recording is on
//! (see [`no_grad`]); [`Tensor::backward`] walks the recorded nodes in reverse and returns the
//! gradients of the leaves. Backward rules are written with tensor ops, so a backward pass run
//! with [`BackwardOptions::create_graph`] is itself differentiable (Hessian-vector products).
//!
//! ```
//! use autograd::Tensor;
//! let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3]).unwrap().requires_grad_();
//! let y = x.square().unwrap().sum_all().unwrap(); // y = Σ x²
//! let grads = y.backward().unwrap();
//! assert_eq!(grads.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![2.0, -4.0, 6.0]);
//! ```
//!
//! # Test coverage
//!
//! Every differentiable op is gradchecked ([`gradcheck`], f64, central differences) under
//! `proptest` over random shapes and values, on non-contiguous inputs (permuted, narrowed and
//! stepped views from [`strategies::make_view`]) and, for binary ops, broadcast operand pairs; and
//! its f32 forward is compared with the f64 one. Non-differentiable points are kept out of the
//! random inputs (tie-free values for max/min/topk/sort/max-pool from
//! [`strategies::f64_tensor_distinct`], kinks avoided for abs/relu/clamp/round) and their chosen
//! subgradients are fixed by dedicated tests (`relu` at 0 has gradient 0; tied `maximum` splits it).
//!
//! | ops | test file (`autograd/tests/`) |
//! |---|---|
//! | `neg abs exp log sqrt rsqrt recip square sin cos tanh sigmoid relu relu6 erf atan asinh gelu gelu_tanh silu sign round floor ceil clamp powf` and the scalar forms `add/sub/rsub/mul/div/rdiv_scalar scalar_pow maximum_scalar` | `grad_elementwise` (gradcheck + f32 agreement) |
//! | `add sub mul div maximum minimum pow` with broadcasting, `where_` | `grad_elementwise` |
//! | `sum sum_all mean mean_all max min var sum_to` | `grad_reduce_shape` |
//! | `reshape view flatten permute transpose narrow slice select unsqueeze squeeze expand broadcast_to contiguous pad repeat cat stack to_device`, `to_dtype` (exact check) | `grad_reduce_shape` |
//! | `matmul` (batched, broadcast batch, vector forms), `softmax log_softmax` | `grad_reduce_shape` (+ `f32_forward_agrees_with_f64`) |
//! | second order: Hessian-vector product vs finite differences of gradients | `grad_reduce_shape` |
//! | `conv2d` (stride, padding, dilation, groups, bias) and its two backward ops, second order | `grad_conv` |
//! | `max_pool2d avg_pool2d adaptive_avg_pool2d` and their backward ops, second order | `grad_pool` |
//! | `index_select gather scatter_add topk sort` | `grad_indexing` |
//! | `rfft2 irfft2`, round trip, second order | `grad_fft` |
//! | `batch_norm_train channel_affine` (fused batch norm), naive forward, second order, f32 agreement | `grad_batch_norm` |
//! | `spectral_batch_norm_train spectral_batch_norm_eval` (fused SBN) against literal `rfft2`/`irfft2` Algorithm 1, second order, f32 agreement | `grad_spectral_batch_norm` |
//! | `dropout dropout2d` (fixed seed = fixed mask) | `grad_dropout` |
//! | tape memory over 200 conv-net training steps | `memory` |
//! | custom ops ([`Tensor::from_op`]), accumulation, `retain_grad`, `no_grad`, backward errors | doc tests, `grad_reduce_shape`, `scalars` |
//!
//! Not differentiable (integer outputs, no gradient): `argmax argmin argsort compare eq gt lt ge le`.

#![warn(missing_docs)]

mod backward;
mod graph;
mod ops;
mod tensor;

pub use backends;
pub use backends::ops::{Conv2dParams, Pool2dParams};
pub use backends::{DType, Device, Error, Layout, Result};
pub use backward::{BackwardOptions, Gradients};
pub use graph::{enable_grad, is_grad_enabled, no_grad, BackwardOp, GradModeGuard};
pub use tensor::{live_buffers, Tensor, TensorId};

mod gradcheck;
pub mod profile;
pub mod signal;
pub mod strategies;
pub use gradcheck::{gradcheck, GradcheckError, GradcheckFailure, GradcheckOptions};
