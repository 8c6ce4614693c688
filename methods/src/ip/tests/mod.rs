//! The spec's test list (`../shared/papers/interspace-pruning.md`, "How to test it is right"),
//! on the sparse engine's tiny conv net:
//!
//! - [`equivalence`]: the fixed standard basis reproduces standard pruning exactly (outputs,
//!   gradients, masks) for every scoring rule and schedule; the DCT (and random orthogonal)
//!   start equals the dense network; the DCT basis against its closed form;
//! - [`paths`]: the basis path equals the reconstructed filters for any geometry, f64
//!   gradchecks of the coefficients and the basis, the basis path's MACs;
//! - [`training`]: sparsity invariants through optimizer steps, IP filters becoming spatially
//!   dense while SP filters stay sparse, the registry entries through the trainer (inference
//!   form, checkpoints).

mod equivalence;
mod paths;
mod training;

use layers::Module;

use super::basis::{BasisInit, Granularity, IpConfig};
use crate::sparse::engine::{wrap_each, Prunable};
use crate::sparse::tests::conv_net;
use crate::sparse::Fixed;

/// [`conv_net`] with its two 3x3 convolutions in a filter basis (`init`, `granularity`,
/// trained or not) and the linear layer masked as in standard pruning.
pub(crate) fn ip_net(seed: u64, init: BasisInit, granularity: Granularity, train_basis: bool) -> Box<dyn Module> {
    let mut m = conv_net(seed);
    let ip = IpConfig { init, granularity, train_basis, seed: 5 };
    wrap_each(m.as_mut(), &Prunable::All, &mut |i, _, old| ip.masked_layer(i, old, Fixed::Zero)).unwrap();
    m
}
