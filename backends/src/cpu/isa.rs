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

/// The CPU family whose measured crossovers the kernel planners use where the two kinds this
/// project runs on differ (the convolution planner's table, `cpu::conv::plan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CpuKind {
    /// AMD Zen 4 (and any CPU not made by Intel): 512-bit FMAs as two 256-bit halves, 1 MiB
    /// L2 per core, a fast shared L3. The tables were first measured here.
    Zen,
    /// Intel Sapphire Rapids and its successors: two full-width 512-bit FMA ports, 2 MiB L2 per
    /// core, a slower mesh L3.
    Intel,
}

/// The CPU kind of this machine (from the CPUID vendor string, read once). `LAMINA_CPU_KIND`
/// (`zen` or `intel`, read once) overrides it, to compare the two tables on one machine.
pub(crate) fn cpu_kind() -> CpuKind {
    static KIND: std::sync::OnceLock<CpuKind> = std::sync::OnceLock::new();
    *KIND.get_or_init(|| {
        let detected = if vendor_is_intel() { CpuKind::Intel } else { CpuKind::Zen };
        match std::env::var("LAMINA_CPU_KIND") {
            Err(_) => detected,
            Ok(v) if v == "zen" => CpuKind::Zen,
            Ok(v) if v == "intel" => CpuKind::Intel,
            Ok(v) => {
                eprintln!(
                    "lamina: LAMINA_CPU_KIND={v:?} is neither `zen` nor `intel`; using the detected {detected:?}"
                );
                detected
            }
        }
    })
}

/// Whether CPUID's vendor string is `GenuineIntel`.
fn vendor_is_intel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: CPUID leaf 0 exists on every x86-64 CPU.
        #[allow(unused_unsafe)]
        let r = unsafe { std::arch::x86_64::__cpuid(0) };
        let mut vendor = [0u8; 12];
        vendor[..4].copy_from_slice(&r.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&r.edx.to_le_bytes());
        vendor[8..].copy_from_slice(&r.ecx.to_le_bytes());
        &vendor == b"GenuineIntel"
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}
