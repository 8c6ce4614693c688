//! Host allocator tuning: freed tensor buffers stay in the process for the next step to reuse.
//!
//! A training step allocates and frees the same buffer sizes again and again (activations,
//! gradients, im2col panels). By default glibc's `malloc` serves blocks above a dynamic threshold
//! (128 KiB at first) with fresh `mmap`s and gives freed heap tops back to the kernel, so every
//! step faults its buffers in again, a zero-filled 4 KiB page at a time: on a ResNet-8 epoch that
//! was 8.5 million page faults and a quarter of the wall time in the kernel. Raising the `mmap`
//! and trim thresholds keeps freed blocks on malloc's free lists, where the next step finds them.
//! glibc caps the `mmap` threshold at 32 MiB, so blocks above it (a ResNet-50 activation at
//! 224x224 and batch 16 is 49 MiB) would still be mapped and faulted in on every allocation:
//! `mmap` is switched off instead (`M_MMAP_MAX = 0`), and the main thread's large blocks come
//! from the heap like the rest (other threads' arenas still map what their heaps cannot hold).
//! A 49 MiB convolution output went from 24.5 to 10.9 ms (`resnet50_l1_expand` forward, bf16).
//! The heap's free top is never trimmed either: a threshold (it was 1 GiB) is crossed as soon as
//! a step frees more than that at once, and a ResNet-50 step at 224x224 and batch 16 (1.7 GB
//! resident) then gave its activations back after every backward pass and faulted 1.3 GB in
//! again during the next forward (3.3 million page faults in 10 steps instead of 0.45 million,
//! most of them the first step's). The process keeps its peak heap, as PyTorch's caching
//! allocators keep theirs.
//!
//! [`retain_freed_memory`] does that once per process; the CPU backend calls it before its first
//! op. Setting `LAMINA_SYSTEM_MALLOC` (to anything) keeps the allocator's defaults. Other
//! allocators and platforms are left alone.

use std::sync::OnceLock;

/// Blocks of at most this many bytes come from the heap, not from their own `mmap`: glibc's
/// largest accepted value on 64-bit targets (half its 64 MiB heap size). With `mmap` switched
/// off it still decides which blocks other threads' arenas map.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Makes the process's allocator keep freed blocks for reuse (glibc on Linux; a no-op
/// elsewhere or when `LAMINA_SYSTEM_MALLOC` is set). Idempotent and cheap after the first call.
///
/// Returns whether the allocator settings were changed by this process.
///
/// ```
/// let tuned = backends::cpu::memory::retain_freed_memory();
/// assert_eq!(tuned, backends::cpu::memory::retain_freed_memory());
/// ```
pub fn retain_freed_memory() -> bool {
    static TUNED: OnceLock<bool> = OnceLock::new();
    *TUNED.get_or_init(|| std::env::var_os("LAMINA_SYSTEM_MALLOC").is_none() && tune())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune() -> bool {
    use std::os::raw::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    const M_MMAP_MAX: c_int = -4;
    // SAFETY: mallopt only changes allocator parameters; it returns 1 on success, 0 on error.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD as c_int) == 1
            // -1: never trim (glibc's documented value).
            && mallopt(M_TRIM_THRESHOLD, -1) == 1
            && mallopt(M_MMAP_MAX, 0) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        if std::env::var_os("LAMINA_SYSTEM_MALLOC").is_none() {
            assert!(retain_freed_memory(), "mallopt refused the thresholds");
        }
    }

    /// A block above the `mmap` threshold, freed, is reused zero-filled as well.
    #[test]
    fn large_blocks_are_reused_zero_filled() {
        retain_freed_memory();
        let len = (MMAP_THRESHOLD + (1 << 20)) / 4;
        let a = vec![3.0f32; len];
        drop(a);
        let b = vec![0.0f32; len];
        assert!(b.iter().all(|&v| v == 0.0), "a reused large block must still be zero-filled");
    }

    #[test]
    fn reuse_after_free_keeps_values_independent() {
        retain_freed_memory();
        let a = vec![1.0f32; 1 << 20];
        drop(a);
        let b = vec![0.0f32; 1 << 20];
        assert!(b.iter().all(|&v| v == 0.0), "a reused block must still be zero-filled");
    }
}
