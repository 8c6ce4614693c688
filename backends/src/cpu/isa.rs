//! Which vector instruction sets the CPU kernels may use, detected once.

/// Whether the CPU runs the AVX-512 kernels (the AVX-512 SGEMM micro-kernel and the builds of
/// the Winograd transforms and slice kernels compiled with AVX-512 enabled).
pub(crate) fn use_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::cpu::sgemm::Isa::detect() == Some(crate::cpu::sgemm::Isa::Avx512);
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU runs the AVX-512 convolution kernels (`direct3x3`, `depthwise3x3`, ...):
/// AVX-512F and VL (with VL the 256-bit steps of their lane sums may use all 32 vector
/// registers, so the accumulators are not confined to zmm0-15).
pub(crate) fn use_avx512_vl() -> bool {
    #[cfg(target_arch = "x86_64")]
    return use_avx512() && is_x86_feature_detected!("avx512vl");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
