//! The depthwise family (`groups == C_in == C_out`): plane loops for any kernel ([`loops`]) and
//! the AVX-512 3x3 kernels of MobileNet's layers ([`avx512`]).

#[cfg(target_arch = "x86_64")]
pub(super) mod avx512;
pub(super) mod loops;
