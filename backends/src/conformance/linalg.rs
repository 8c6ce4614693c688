//! Conformance checks for matmul (filled in below).
