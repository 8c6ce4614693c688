//! Device-neutral planning: the shape checks and work plans that every backend computes the
//! same way, so the CPU and CUDA backends agree on what they accept and on the error messages.
//!
//! - [`conv`]: the checked geometry of a convolution ([`conv::Geom`]) for each pass.

pub(crate) mod conv;
