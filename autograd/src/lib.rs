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
pub mod signal;
pub mod strategies;
pub use gradcheck::{gradcheck, GradcheckError, GradcheckFailure, GradcheckOptions};
