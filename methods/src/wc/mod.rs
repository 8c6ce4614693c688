//! Weight Compander (Cakaj, Mehnert and Yang, IJCNN 2023, arXiv 2306.16993): every convolution
//! and linear weight reparameterized as `w = ψ(v) = a·arctan(v/b)`.
//!
//! - [`WeightCompander`]: a `Conv2d` or `Linear` whose weight is `ψ(v)`, `v` initialized through
//!   the inverse (`v₀ = b·tan(w₀/a)`) so the network is unchanged at step 0; fixed `(a, b)` or
//!   one learned `(a, b)` per layer; arctan, arsinh or erf as `f` ([`Compander`]).
//! - [`compand`]: wraps every `Conv2d` and `Linear` of any model through `layers::surgery`
//!   (optionally narrowed by a `Select`); [`fold`] / [`folded_state_dict`]: the plain network
//!   with `weight = ψ(v)`, the inference form (zero inference overhead).
//! - Registry entries `wc` and `wc-learned` ([`SPECS`]), presets `small` and `paper`.
//!
//! Parameter names: a companded layer at `P` holds `P.weight_v` (the weight's shape), with the
//! learned variant also `P.weight_a` and `P.weight_b` (`[1]`), and `P.bias` unchanged; folding
//! gives back `P.weight`.
//!
//! # Weight decay
//!
//! - Fixed `(a, b)`: on `w`, as the loss term `(λ/2)·Σ_layers ‖ψ(v)‖²` with `λ` the run's
//!   `--weight-decay` (the spec's "use the loss-term form"): its gradient is `λw` with respect to
//!   `w` (what SGD's decay does to a plain weight) and `λ·ψ(v)·ψ'(v) = 2·(λ/2)·ψ(v)·ψ'(v)` with
//!   respect to `v`. [`WeightCompanderMethod`] moves every `v` out of the trainer's decayed
//!   group in `configure_optimizer` and adds the term in `loss`, reusing the weights of the
//!   step's forward pass (no second `ψ(v)`).
//! - Learned `(a, b)`: on `v` only, by the optimizer (the trainer's default groups decay tensors
//!   of two or more dimensions: `v`, not the `[1]`-shaped `a` and `b`).
//!
//! # Choices where the paper is silent
//!
//! - Every `Conv2d` and `Linear` is reparameterized, the first convolution and the classifier
//!   included ("every weight of conv and linear layers"); biases and normalization parameters
//!   are not.
//! - `(a, b)` for models the paper did not tune (`--set a=auto`): ResNet-18's CIFAR-10 values
//!   `(1.0, 0.6)`; the table is picked by model family and class count (10: CIFAR-10, 100:
//!   CIFAR-100, 200: TinyImageNet, 1000: ImageNet) in [`paper_ab`].
//! - An initial weight with `|w₀/a|` beyond `(1 − 10⁻³)·sup|f|` is clamped there before inverting,
//!   counted and reported (the spec's "clamp and warn"); with the registered models' default
//!   initializations and the table's `a ≥ 0.5` this never happens.
//! - The learned `a` and `b` are unconstrained after their start (the paper reports negative
//!   `a` values) and train at the run's learning rate with SGD; with Adam the adaptive step is
//!   computed from `∂L/∂v` (the paper's Powerpropagation-style Adam variant is not implemented:
//!   it used SGD everywhere).
//! - The inference form is the registered architecture rebuilt by name with the folded state
//!   loaded; [`fold`] does the same in place for any model.
//!
//! # Cost
//!
//! Not measured yet (the benchmark `methods/benches/sbn_wc_step.rs` comes with the next commits).
//!
//! # A small reproduction
//!
//! Pending: `compare` on the small protocol (`methods/results/`).
mod compander;
mod layer;
mod method;
mod wrap;

pub use compander::Compander;
pub use layer::{Scale, WeightCompander, CLAMP_MARGIN};
pub use method::{paper_ab, weight_energy, WeightCompanderMethod, SPECS, WC, WC_LEARNED};
pub use wrap::{compand, companders, fold, folded_state_dict, WcSettings};

#[cfg(test)]
mod tests;
