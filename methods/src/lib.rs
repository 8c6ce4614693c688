//! Lamina `methods` crate (not started yet).
