//! Lamina `layers` crate (not started yet).
