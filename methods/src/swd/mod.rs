//! Spectral Wavelet Dropout (Cakaj, Mehnert, Yang, ICMLA 2024, arXiv 2409.18951) and its
//! Spectral Fourier Dropout baselines.
//!
//! - [`SpectralWaveletDropout1d`] / [`SpectralWaveletDropout2d`]: drop whole detail bands of a
//!   three-level 1-D (flattened maps) or one-level 2-D db3 wavelet transform of each feature map,
//!   with inverted `1/(1 − p)` scaling; the approximation band is never touched.
//! - [`SpectralFourierDropout1d`] / [`SpectralFourierDropout2d`]: prune DCT coefficients below a
//!   per-map magnitude quantile `η`, then drop the rest coefficient-wise.
//! - [`wrap_convs`]: the paper's placement, a dropout layer before or after every convolution of
//!   the chosen stages (main and shortcut branch).
//!
//! All four layers are the identity in [`layers::Mode::Eval`], draw their masks from
//! [`layers::rng::next_seed`] and keep the input's shape.

mod fourier_dropout;
mod mask;
mod method;
mod placement;
mod recipe;
mod wavelet_dropout;

pub use fourier_dropout::{SpectralFourierDropout1d, SpectralFourierDropout2d};
pub use mask::MaskGranularity;
pub use method::{recipe_from, SpectralDropoutMethod, DROPOUT2D, SFD, SFD2D, SPECS, SWD, SWD2D};
pub use placement::{convs_under, stage_scopes, wrap_convs, AroundConv, Position};
pub use recipe::{SpectralKind, SpectralRecipe, DROPOUT2D_P, FALLBACK_P_ETA};
pub use wavelet_dropout::{SpectralWaveletDropout1d, SpectralWaveletDropout2d, OPERATOR_MAX_LEN};

#[cfg(test)]
mod tests;
