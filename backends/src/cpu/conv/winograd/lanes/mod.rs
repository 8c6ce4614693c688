//! The pass engine shared by the lane-tiled Winograd algorithms, F(2x2, 3x3) ([`super::f2`])
//! and F(4x4, 3x3) ([`super::f4`]): the split of the work over images, tile rows and threads,
//! the scratch buffers and the weight-gradient products ([`engine`]), over the pass shapes and
//! the per-tile-size kernel table ([`pass`]).

pub(in crate::cpu::conv) mod engine;
pub(in crate::cpu::conv) mod pass;
pub(in crate::cpu::conv) mod transpose;
