//! Lamina `autograd` crate (not started yet).
