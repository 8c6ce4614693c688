//! Conformance checks for elementwise ops, comparisons and select (filled in below).
