//! Lamina's compute backends: the [`Backend`] contract every device keeps, and its CPU
//! implementation ([`CpuBackend`]).
//!
//! Tensors are views ([`Layout`]: shape, strides, offset) over flat storage of a runtime
//! [`DType`]. Every primitive takes `(storage, layout)` pairs, so transposes, slices and
//! broadcasts reach kernels without copies, and returns a new contiguous buffer.
//!
//! ```
//! use backends::{Backend, CpuBackend, CpuStorage, Layout, ops::BinaryOp};
//! let cpu = CpuBackend;
//! let a = CpuStorage::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
//! let la = Layout::contiguous(&[2, 3]);
//! let b = CpuStorage::from_vec(vec![10.0f32, 20.0, 30.0]);
//! // Broadcast the row vector over both rows of `a`.
//! let lb = Layout::contiguous(&[3]).broadcast_to(&[2, 3]).unwrap();
//! let c = cpu.binary(BinaryOp::Add, &a, &la, &b, &lb).unwrap();
//! assert_eq!(c.as_slice::<f32>().unwrap(), &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
//! ```

#![warn(missing_docs)]

mod backend;
pub mod channel;
pub mod conformance;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod device;
mod dispatch;
mod dtype;
mod error;
mod layout;
pub mod matmul_bias;
pub mod ops;
pub mod packed_attention;
mod planning;
pub mod quantize;
pub mod row_norm;
pub mod softmax_grad;
pub mod sparse_conv;
mod storage;

pub use backend::{Backend, Fused};
pub use cpu::CpuBackend;
pub use device::{cuda_is_available, Device};
pub use dtype::{DType, Element, FloatElement};
pub use error::{Error, Result};
pub use layout::{broadcast_shapes, contiguous_strides, Layout};
pub use storage::{CpuStorage, Storage};

#[cfg(feature = "cuda")]
pub use cuda::{CudaBackend, CudaStorage};
