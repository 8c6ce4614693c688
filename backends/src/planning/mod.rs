//! Device-neutral planning: the shape checks and work plans that every backend computes the
//! same way, so the CPU and CUDA backends accept the same operands, reject the rest with the
//! same messages, and split the work alike. Nothing here touches a buffer.
//!
//! - [`conv`]: the checked geometry of a convolution ([`conv::Geom`]) for each pass;
//! - [`sort`]: the rows of a sort or top-k ([`sort::SortPlan`]);
//! - [`matmul`]: the dimensions of a batched matrix product;
//! - [`pool`], [`fft`], [`concat`], [`indexing`], [`reduce`], [`random`]: the checks and
//!   output shapes of those ops;
//! - [`strides`]: the merging of dimensions that strided walks over several views share.

pub(crate) mod concat;
pub(crate) mod conv;
pub(crate) mod fft;
pub(crate) mod indexing;
pub(crate) mod matmul;
pub(crate) mod pool;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod sort;
pub(crate) mod strides;
