//! The spec's tests (§3.4) and the method's placements and lifecycle.

mod block;
mod method;
mod placement;
