//! The backend conformance suite run against the CUDA backend on GPU 0 (feature `cuda`).
//!
//! Every check is the one the CPU backend passes (`tests/cpu_conformance.rs`), comparing GPU
//! results with the same naive references and tolerances. Without a GPU each test prints that it
//! was skipped and returns.
#![cfg(feature = "cuda")]

use backends::conformance as c;
use backends::CudaBackend;

/// GPU 0's backend, or `None` (with a printed reason) when no GPU can be used.
fn gpu(test: &str) -> Option<CudaBackend> {
    if !backends::cuda_is_available() {
        println!("skipped {test}: no CUDA driver or GPU");
        return None;
    }
    Some(CudaBackend::new(0).expect("cuda_is_available() but GPU 0 does not open"))
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(b) = gpu(stringify!($name)) {
                    c::$name(&b);
                }
            }
        )*
    };
}

backends::conformance_checks!(conformance);

/// Without a GPU, opening one is an error (never a panic); with one, it opens and reports itself.
#[test]
fn device_opens_or_reports_unavailable() {
    use backends::{Backend, Device};
    match CudaBackend::new(0) {
        Ok(b) => {
            assert!(backends::cuda_is_available());
            assert_eq!(b.device(), Device::Cuda(0));
            assert!(b.arch().starts_with("sm_"), "{}", b.arch());
        }
        Err(e) => {
            assert!(!backends::cuda_is_available());
            assert!(matches!(e, backends::Error::DeviceUnavailable(_)), "{e}");
            println!("skipped device_opens_or_reports_unavailable: {e}");
        }
    }
    // An ordinal past the last GPU is an error either way.
    assert!(CudaBackend::new(10_000).is_err());
}
