//! Run-time compilation of the embedded CUDA C kernel sources with NVRTC, and the on-disk PTX
//! cache.
//!
//! Every kernel family's `.cu` file is compiled on first use for the compute capability of the GPU
//! present (`compute_XY`), with [`PRELUDE`] and the op codes (`op_codes.rs`) prepended. The PTX text is cached on disk under a key
//! that hashes the source, the compiler options, the architecture and the NVRTC version, so a
//! second process skips NVRTC entirely. The cache folder is `$LAMINA_CUDA_CACHE`, else
//! `$XDG_CACHE_HOME/lamina/ptx`, else `$HOME/.cache/lamina/ptx`, else a folder in the system's
//! temporary directory; failures to read or write it only cost a recompile.

use crate::{Error, Result};
use std::path::PathBuf;

/// Definitions shared by every kernel source (types, the strided [`Walk`](super::launch::Walk),
/// saturating casts, error reporting).
pub const PRELUDE: &str = include_str!("prelude.cuh");

/// One kernel family's CUDA C source.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// The family's name (also the module's key in the per-device cache).
    pub name: &'static str,
    /// The CUDA C source, without the prelude.
    pub src: &'static str,
}

/// Every embedded kernel source (the PTX test compiles each of them).
pub const KERNEL_SOURCES: &[KernelSource] = &[
    super::copy::SRC,
    super::elementwise::SRC,
    super::reduce::SRC,
    super::conv::SRC,
    super::pool::SRC,
    super::indexing::SRC,
    super::sort::SRC,
    super::random::SRC,
    super::fft::SRC,
    super::int8::SRC,
];

/// The NVRTC options every source is compiled with (besides the architecture).
const OPTIONS: &[&str] = &["--std=c++17"];

/// Whether the NVRTC library can be loaded (it is looked up on the library path at run time).
pub fn nvrtc_is_available() -> bool {
    // SAFETY: only probes whether the shared library can be opened.
    std::panic::catch_unwind(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
}

/// The NVRTC version as `(major, minor)`.
fn nvrtc_version() -> (i32, i32) {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is loaded (checked by the caller) and both pointers are valid.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (major, minor)
}

/// FNV-1a, 64 bits: a stable hash for cache keys (independent of the Rust version).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xffu8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The folder compiled PTX is cached in.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = env("LAMINA_CUDA_CACHE") {
        return d;
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return d.join("lamina").join("ptx");
    }
    if let Some(d) = env("HOME") {
        return d.join(".cache").join("lamina").join("ptx");
    }
    std::env::temp_dir().join("lamina-ptx")
}

/// Compiles one source (with the prelude) to PTX for `arch` (`"sm_90"`, `"sm_80"`, ...), through
/// the disk cache unless `use_cache` is false.
pub fn compile(k: &KernelSource, arch: &str, use_cache: bool) -> Result<String> {
    if !nvrtc_is_available() {
        return Err(Error::DeviceUnavailable("the NVRTC library (libnvrtc) cannot be loaded".into()));
    }
    let cc = arch.strip_prefix("sm_").filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_alphanumeric()));
    let Some(cc) = cc else {
        return Err(Error::invalid("cuda::compile", format!("`{arch}` is not an architecture like sm_90")));
    };
    let mut options: Vec<String> = OPTIONS.iter().map(|s| s.to_string()).collect();
    options.push(format!("--gpu-architecture=compute_{cc}"));
    let (major, minor) = nvrtc_version();
    let version = format!("nvrtc {major}.{minor}");
    let codes = super::op_codes::header();
    let parts = [PRELUDE, &codes, k.src, &options.join(" "), &version];
    let key = fnv1a(&parts.map(str::as_bytes));
    let path = cache_dir().join(format!("{}-{arch}-{key:016x}.ptx", k.name));
    if use_cache {
        if let Ok(ptx) = std::fs::read_to_string(&path) {
            if ptx.contains(".entry") {
                return Ok(ptx);
            }
        }
    }
    let src = format!("{PRELUDE}\n{codes}\n// ----- {} -----\n{}", k.name, k.src);
    let opts = cudarc::nvrtc::CompileOptions { options, name: Some(format!("{}.cu", k.name)), ..Default::default() };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => {
            Error::Backend(format!("NVRTC failed to compile {}.cu for {arch}:\n{}", k.name, log.to_string_lossy()))
        }
        other => Error::Backend(format!("NVRTC failed on {}.cu for {arch}: {other}", k.name)),
    })?;
    let ptx = ptx.to_src();
    if use_cache {
        store(&path, &ptx);
    }
    Ok(ptx)
}

/// Writes a cache file atomically (a temporary file renamed into place); errors are ignored.
fn store(path: &std::path::Path, ptx: &str) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    if std::fs::write(&tmp, ptx).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_are_stable_and_distinct() {
        assert_eq!(fnv1a(&[b"abc"]), fnv1a(&[b"abc"]));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_ne!(fnv1a(&[b"src", b"sm_80"]), fnv1a(&[b"src", b"sm_90"]));
    }

    /// Every `.cu` file of `src/cuda/` is in [`KERNEL_SOURCES`], so the PTX test compiles it.
    #[test]
    fn every_cu_file_is_a_listed_source() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cuda");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".cu").map(str::to_owned))
            .collect();
        let mut listed: Vec<String> = KERNEL_SOURCES.iter().map(|k| k.name.to_owned()).collect();
        files.sort();
        listed.sort();
        assert_eq!(files, listed, "the .cu files of {} and KERNEL_SOURCES differ", dir.display());
    }

    #[test]
    fn bad_architectures_are_errors() {
        if !nvrtc_is_available() {
            println!("skipped: NVRTC is not available");
            return;
        }
        assert!(compile(&KERNEL_SOURCES[0], "compute", false).is_err());
        assert!(compile(&KERNEL_SOURCES[0], "sm_", false).is_err());
    }
}
