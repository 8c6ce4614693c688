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

/// Whether the CPU runs the int8 GEMM's VNNI kernel: AVX-512F, BW and VNNI (`vpdpbusd`, four
/// byte products summed into each 32-bit lane).
/// `LAMINA_NO_VNNI` (set to anything, read once) keeps the portable kernel, for comparisons.
pub(crate) fn use_avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        unless_turned_off(&VNNI, "LAMINA_NO_VNNI", || {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU runs the byte kernels on AVX-512BW with VL (the ternary 1x1 convolution's
/// add/subtract kernel): AVX-512F, BW and VL. `LAMINA_NO_AVX512_BYTES` (set to anything, read
/// once) keeps the portable kernels, for comparisons.
pub(crate) fn use_avx512_bw() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static BW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        unless_turned_off(&BW, "LAMINA_NO_AVX512_BYTES", || {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `detect()`, unless the environment variable `off` is set; decided once into `cell`.
#[cfg(target_arch = "x86_64")]
fn unless_turned_off(cell: &std::sync::OnceLock<bool>, off: &str, detect: impl FnOnce() -> bool) -> bool {
    *cell.get_or_init(|| std::env::var_os(off).is_none() && detect())
}

/// The CPU family whose measured crossovers the kernel planners use where this project's CPU
/// kinds differ (the convolution planner's table, `cpu::conv::plan`; the bf16 warning,
/// `cpu::bf16_slower_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CpuKind {
    /// AMD Zen 4 (and any CPU made by neither Intel nor AMD): 512-bit FMAs as two 256-bit
    /// halves, 1 MiB L2 per core, a fast shared L3. The tables were first measured here.
    Zen4,
    /// AMD Zen 5 (CPUID family 26) and later: full-width 512-bit FMAs (twice Zen 4's f32 rate:
    /// SGEMM 2048 at 455 GFLOP/s on 2 threads) and bf16 dot products at twice that; 1 MiB L2
    /// per core.
    Zen5,
    /// Intel Sapphire Rapids and its successors: two full-width 512-bit FMA ports, 2 MiB L2 per
    /// core, a slower mesh L3; bf16 dot products no faster than f32 FMAs (no AMX kernels).
    Intel,
}

impl CpuKind {
    /// Whether 512-bit FMAs run at full width (two per cycle), where compute-bound kernels gain
    /// twice what memory-bound ones do.
    pub(crate) fn full_width_512(self) -> bool {
        self != CpuKind::Zen4
    }
}

/// The CPU kind of this machine (from the CPUID vendor string and family, read once).
/// `LAMINA_CPU_KIND` (`zen4`, `zen5` or `intel`, read once) overrides it, to compare the
/// tables on one machine.
pub(crate) fn cpu_kind() -> CpuKind {
    static KIND: std::sync::OnceLock<CpuKind> = std::sync::OnceLock::new();
    *KIND.get_or_init(|| {
        let detected = detect_kind();
        match std::env::var("LAMINA_CPU_KIND") {
            Err(_) => detected,
            Ok(v) => kind_named(&v).unwrap_or_else(|| {
                eprintln!(
                    "lamina: LAMINA_CPU_KIND={v:?} is none of `zen4`, `zen5`, `intel`; using the detected {detected:?}"
                );
                detected
            }),
        }
    })
}

/// The kind `LAMINA_CPU_KIND` names, if it names one.
fn kind_named(v: &str) -> Option<CpuKind> {
    match v {
        "zen4" => Some(CpuKind::Zen4),
        "zen5" => Some(CpuKind::Zen5),
        "intel" => Some(CpuKind::Intel),
        _ => None,
    }
}

/// The kind of a CPU from its CPUID vendor string and display family (base family, plus the
/// extended family when the base is 15).
fn kind_of(vendor: &[u8; 12], family: u32) -> CpuKind {
    match vendor {
        b"GenuineIntel" => CpuKind::Intel,
        b"AuthenticAMD" if family >= 26 => CpuKind::Zen5,
        _ => CpuKind::Zen4,
    }
}

/// This CPU's kind ([`kind_of`] its CPUID leaves 0 and 1).
fn detect_kind() -> CpuKind {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: CPUID leaves 0 and 1 exist on every x86-64 CPU.
        #[allow(unused_unsafe)]
        let (r0, r1) = unsafe { (std::arch::x86_64::__cpuid(0), std::arch::x86_64::__cpuid(1)) };
        let mut vendor = [0u8; 12];
        vendor[..4].copy_from_slice(&r0.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&r0.edx.to_le_bytes());
        vendor[8..].copy_from_slice(&r0.ecx.to_le_bytes());
        let base = (r1.eax >> 8) & 0xf;
        let family = if base == 0xf { base + ((r1.eax >> 20) & 0xff) } else { base };
        kind_of(&vendor, family)
    }
    #[cfg(not(target_arch = "x86_64"))]
    CpuKind::Zen4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_vendor_and_the_amd_family() {
        assert_eq!(kind_of(b"GenuineIntel", 6), CpuKind::Intel);
        assert_eq!(kind_of(b"AuthenticAMD", 25), CpuKind::Zen4);
        assert_eq!(kind_of(b"AuthenticAMD", 26), CpuKind::Zen5);
        assert_eq!(kind_of(b"HygonGenuine", 24), CpuKind::Zen4);
        assert!(!CpuKind::Zen4.full_width_512() && CpuKind::Zen5.full_width_512() && CpuKind::Intel.full_width_512());
        assert_eq!(kind_named("zen5"), Some(CpuKind::Zen5));
        assert_eq!(kind_named("zen"), None);
    }
}
