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
//!   initializations this is rare: with the table's `a ≥ 0.5` (bound `0.785` at `a = 0.5`) the
//!   small protocol's `wc-learned` runs clamped one weight in two of three seeds, none with
//!   `a = 1.0`.
//! - The learned `a` and `b` are unconstrained after their start (the paper reports negative
//!   `a` values) and train at the run's learning rate with SGD; with Adam the adaptive step is
//!   computed from `∂L/∂v` (the paper's Powerpropagation-style Adam variant is not implemented:
//!   it used SGD everywhere).
//! - The inference form is the registered architecture rebuilt by name with the folded state
//!   loaded; [`fold`] does the same in place for any model.
//!
//! # Cost
//!
//! `RAYON_NUM_THREADS=2 SBN_WC_ROUNDS=7 cargo bench -p methods --bench sbn_wc_step` (ResNet-18 with the
//! CIFAR stem at full width, batch 128, forward + loss + backward + SGD step through each registry
//! entry's hooks, variants interleaved per round), two runs back to back (7 and 11 rounds) on the
//! 2-core AMD EPYC (Zen 4) development machine with nothing else running (load average under 2).
//! Multipliers over the plain step of the same round set; "own ops" is the time of the ops the
//! method adds in one profiled step:
//!
//! | variant | median step, run 1 / run 2 | multiplier (median) | multiplier (minimum) | own ops |
//! |---|---:|---:|---:|---:|
//! | plain | 1970.6 / 1967.0 ms | | | |
//! | `wc` (fixed a, b) | 2159.3 / 1945.8 ms | x1.096 / x0.989 | x1.042 / x0.957 | 86 / 57 ms (3-4 %) |
//! | `wc-learned` | 2153.3 / 1922.3 ms | x1.093 / x0.977 | x1.008 / x1.011 | 92 / 79 ms (4-5 %) |
//!
//! Step-to-step variation is about ±5 % on this machine, so the two runs' medians disagree by
//! 10 points; what the compander itself runs (arctan and its derivative per weight tensor, the
//! decay term, the extra gradient accumulation) takes 3-5 % of a step, under the paper's 7-14 %.
//! The inference form is the folded plain network: no overhead.
//!
//! # The small protocol on CIFAR-10 (3 seeds)
//!
//! ResNet-18 (CIFAR stem) at width 0.25 on 4,000 CIFAR-10 training images, 40 epochs
//! (`--preset small`, see `methods/REPRODUCING.md`; weight decay 5e-4); `wc` with ResNet-18's
//! CIFAR-10 values `a = 1.0, b = 0.6` and decay on `w`, `wc-learned` from `a = 0.5, b = 1.0`
//! with decay on `v`; results in `methods/results/wc-small/`:
//!
//! ```sh
//! cargo run --release --bin compare -- --methods baseline,wc,wc-learned --seeds 3 --preset small \
//!     --data-dir ../shared/data/cifar-10 --out methods/results/wc-small
//! ```
//!
//! | entry | seed 0 | seed 1 | seed 2 | test accuracy % (mean ± sd) | Δ | final train acc. % |
//! |---|---:|---:|---:|---:|---:|---:|
//! | baseline | 68.87 | 69.43 | 70.06 | 69.45 ± 0.60 | | 90.2 |
//! | `wc` (fixed a, b) | 70.85 | 71.53 | 70.93 | 71.10 ± 0.37 | +1.65 | 90.0 |
//! | `wc-learned` | 63.41 | 65.05 | 63.24 | 63.90 ± 1.00 | −5.55 | 81.6 |
//!
//! The fixed compander shows the paper's direction, and more clearly than the paper's own
//! margin (+0.40 for ResNet-18 on CIFAR-10): every seed is above every baseline seed, and +1.65
//! is over three standard errors of the difference of two 3-seed means (about 0.5 points on this
//! protocol), at the same training accuracy. The learned variant goes the other way, −5.55
//! points, and it underfits (81.6 % final training accuracy against 90.2 %). What its runs hold
//! (`last.safetensors`): every convolution's `a` stays at 0.5 (batch norm makes the loss
//! invariant to a convolution weight's scale, so `a` gets almost no gradient), the `b` end
//! between 0.70 and 1.80, and only the classifier's `a` grows (to 1.62-1.69). A plausible
//! reading: near zero an SGD step on `v` moves `w` by `ψ'(0)² = (a/b)²` times a plain step, a
//! quarter of it at `(0.5, 1.0)` (and 2.8 times at the fixed `(1.0, 0.6)`), while the decay on
//! `v` keeps its strength, so in 40 epochs the learned variant is a slower, more strongly
//! decayed network; the paper trains it
//! for 200 epochs with weight decay 1e-4 and reports it level with the baseline (94.16 vs 94.04).
//! The table's step-time and images/s columns come from sweeps run one thread per run beside
//! builds and say nothing about cost: see above.
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
