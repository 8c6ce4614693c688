//! The precision of the CPU backend's f32 matrix products: exact f32 (the default), or bf16
//! operands with f32 accumulation on CPUs with AVX512_BF16 (Zen 4, Sapphire Rapids), as
//! PyTorch's `torch.set_float32_matmul_precision("medium")`. One switch for the process: every
//! f32 GEMM the backend runs (matrix products, linear layers, im2col convolutions and their
//! gradients) follows it; tensors, weights and every other op stay f32.
//!
//! ```
//! use backends::cpu::{matmul_precision, set_matmul_precision, MatmulPrecision};
//! assert_eq!(matmul_precision(), MatmulPrecision::F32);
//! if set_matmul_precision(MatmulPrecision::Bf16).is_ok() {
//!     assert_eq!(matmul_precision(), MatmulPrecision::Bf16);
//!     set_matmul_precision(MatmulPrecision::F32).unwrap();
//! }
//! ```

use std::sync::atomic::{AtomicU8, Ordering};

use crate::{Error, Result};

/// How f32 matrix products multiply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulPrecision {
    /// f32 operands and accumulation (the default and the reference).
    F32,
    /// Operands rounded to bf16 (to nearest, ties to even), products accumulated in f32.
    Bf16,
}

static PRECISION: AtomicU8 = AtomicU8::new(0);

/// Whether this CPU multiplies bf16 operands natively (AVX512_BF16).
pub fn has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::sgemm::bf16::supported();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Why `Bf16` would be slower than `F32` on this CPU, where that is known: on Intel CPUs the
/// bf16 products run as AVX512_BF16 dot products (no AMX kernels yet), which do not beat two
/// 512-bit f32 FMA ports (`BENCHMARKS.md`, run M: a ResNet-18 CIFAR step 1.5x slower, SGEMM
/// 0.56x the f32 rate). `None` on Zen 4 and Zen 5, where they run 1.6-2x faster, and on CPUs
/// without AVX512_BF16 (where `Bf16` is refused).
pub fn bf16_slower_reason() -> Option<&'static str> {
    (has_bf16() && super::isa::cpu_kind() == super::isa::CpuKind::Intel).then_some(
        "bf16 matrix products on this Intel CPU use AVX512_BF16 dot products (no AMX kernels), which run slower than f32 ones: expect --precision bf16 to be slower than f32 here",
    )
}

/// Sets the precision of every f32 matrix product from now on (all threads). `Bf16` on a CPU
/// without AVX512_BF16 is an error, and the precision stays as it was.
pub fn set_matmul_precision(p: MatmulPrecision) -> Result<()> {
    if p == MatmulPrecision::Bf16 && !has_bf16() {
        return Err(Error::invalid(
            "set_matmul_precision",
            "bf16 products need a CPU with AVX512_BF16 (AMD Zen 4 or later, Intel Cooper Lake, Sapphire Rapids or later); this one has none",
        ));
    }
    PRECISION.store(p as u8, Ordering::Relaxed);
    Ok(())
}

/// The precision f32 matrix products use now.
pub fn matmul_precision() -> MatmulPrecision {
    match PRECISION.load(Ordering::Relaxed) {
        0 => MatmulPrecision::F32,
        _ => MatmulPrecision::Bf16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bf16_warning_comes_only_with_bf16_and_names_the_flag() {
        match bf16_slower_reason() {
            Some(why) => assert!(has_bf16() && why.contains("--precision bf16"), "{why}"),
            None => assert!(!has_bf16() || super::super::isa::cpu_kind() != super::super::isa::CpuKind::Intel),
        }
    }
}
