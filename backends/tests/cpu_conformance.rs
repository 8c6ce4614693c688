//! The backend conformance suite run against the CPU backend.

use backends::conformance as c;
use backends::CpuBackend;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                c::$name(&CpuBackend);
            }
        )*
    };
}

backends::conformance_checks!(conformance);
