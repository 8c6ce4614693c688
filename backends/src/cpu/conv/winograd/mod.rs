//! The Winograd family, 3x3 stride-1 kernels: F(2x2, 3x3) as 16 GEMMs for f32 and f64
//! ([`gemm`]), and in f32 under AVX-512 with tiles across the vector lanes, F(2x2, 3x3)
//! ([`f2`]) and F(4x4, 3x3) ([`f4`]) over one pass engine ([`lanes`]). The F(2x2) filter
//! transforms are shared by both F(2x2) forms ([`f2_filters`]).

#[cfg(target_arch = "x86_64")]
pub(super) mod f2;
pub(super) mod f2_filters;
#[cfg(target_arch = "x86_64")]
pub(super) mod f4;
pub(super) mod gemm;
#[cfg(target_arch = "x86_64")]
pub(super) mod lanes;
