//! The im2col + GEMM family: the general algorithm ([`gemm`]), its form for small output planes
//! with several images per GEMM ([`batched`]), the unfold and fold of input tiles into GEMM
//! columns ([`unfold`]) and their AVX-512 kernels ([`avx512`]).

pub(super) mod avx512;
pub(super) mod batched;
pub(super) mod gemm;
pub(super) mod unfold;
