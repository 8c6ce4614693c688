//! Lamina `datasets` crate (not started yet).
