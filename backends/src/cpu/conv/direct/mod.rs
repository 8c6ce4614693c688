//! Direct 3x3 kernels in f32 under AVX-512, for the layers too narrow for a GEMM to run near
//! the FMA peak: stride 1 ([`stride1`]: all three passes) and stride 2 over deinterleaved tap
//! planes ([`stride2`]: forward and weight gradient).

pub(super) mod stride1;
pub(super) mod stride2;
