//! Every embedded CUDA kernel source compiles to PTX for sm_80 (A100) and sm_90 (H100) with
//! NVRTC; no GPU is needed. Skipped (with a printed line) when NVRTC cannot be loaded; CI puts
//! `libnvrtc.so.13` from the `nvidia-cuda-nvrtc` wheel on `LD_LIBRARY_PATH` and sets
//! `LAMINA_REQUIRE_NVRTC=1`, which turns the skip into a failure.
#![cfg(feature = "cuda")]

use backends::cuda::{compile, KERNEL_SOURCES};

/// Whether NVRTC loads; when it does not, prints the skip (or panics under `LAMINA_REQUIRE_NVRTC`).
fn nvrtc_is_available(test: &str) -> bool {
    if backends::cuda::nvrtc_is_available() {
        return true;
    }
    assert!(std::env::var_os("LAMINA_REQUIRE_NVRTC").is_none(), "{test}: NVRTC is required but cannot be loaded");
    println!("skipped {test}: NVRTC (libnvrtc) cannot be loaded");
    false
}

#[test]
fn every_kernel_source_compiles_for_sm80_and_sm90() {
    if !nvrtc_is_available("every_kernel_source_compiles_for_sm80_and_sm90") {
        return;
    }
    let mut failures = vec![];
    for arch in ["sm_80", "sm_90"] {
        for k in KERNEL_SOURCES {
            match compile(k, arch, false) {
                Ok(ptx) => {
                    assert!(ptx.contains(".entry"), "{}.cu for {arch}: the PTX has no kernel", k.name);
                    let target = format!(".target {}", arch);
                    assert!(ptx.contains(&target), "{}.cu for {arch}: PTX lacks `{target}`", k.name);
                    println!("{}.cu -> {arch}: {} bytes of PTX", k.name, ptx.len());
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    assert!(failures.is_empty(), "kernel sources that do not compile:\n{}", failures.join("\n\n"));
}

/// A source with an error fails with NVRTC's log, naming the file.
#[test]
fn compile_errors_carry_the_log() {
    if !nvrtc_is_available("compile_errors_carry_the_log") {
        return;
    }
    let bad =
        backends::cuda::KernelSource { name: "broken", src: "extern \"C\" __global__ void k() { undefined_thing(); }" };
    let e = compile(&bad, "sm_90", false).unwrap_err().to_string();
    assert!(e.contains("broken.cu") && e.contains("undefined_thing"), "{e}");
}
