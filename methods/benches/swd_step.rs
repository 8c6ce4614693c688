//! Training-step time (forward + backward + SGD step) of ResNet-18 (CIFAR stem, batch 64,
//! 32x32 inputs, 10 classes) without spectral dropout and with 1-D SWD, 2-D SWD, 1-D SFD and
//! 2-D SFD placed as the paper does for ResNet-18 on CIFAR-10 (stage 3; 1-D methods after each
//! convolution, 2-D methods before it; `p`, `η` from its tables), as the multiplier over the
//! plain step — the paper's train-time multiplier (TTM) at the level of one step.
//!
//! The variants are timed in interleaved rounds (one step of each per round, after a warm-up
//! step each) and the median per variant is reported, so load that drifts during the run
//! affects all of them alike.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench swd_step` (`SWD_BENCH_ROUNDS`, default 5).

mod common;

use common::Variant;
use layers::models;
use methods::swd::{SpectralKind, SpectralRecipe};

const BATCH: usize = 64;

fn variant(name: &'static str, kind: Option<SpectralKind>) -> Variant {
    let mut model = models::build("resnet18-cifar", 10, 3, 0).unwrap();
    if let Some(kind) = kind {
        let recipe = SpectralRecipe::paper_default(kind, "resnet18-cifar", 10);
        let wrapped = recipe.apply(model.as_mut()).unwrap();
        println!(
            "{name:<7} p {} eta {} stage {:?} {} {} convs",
            recipe.p,
            recipe.eta,
            recipe.stages,
            recipe.position.name(),
            wrapped.len()
        );
    }
    Variant::new(name, model)
}

fn main() {
    let rounds = common::rounds("SWD_BENCH_ROUNDS", 5);
    let (x, y) = common::batch(BATCH);
    layers::rng::manual_seed(0);
    let mut variants = vec![
        variant("none", None),
        variant("1D-SWD", Some(SpectralKind::Swd1d)),
        variant("2D-SWD", Some(SpectralKind::Swd2d)),
        variant("1D-SFD", Some(SpectralKind::Sfd1d)),
        variant("2D-SFD", Some(SpectralKind::Sfd2d)),
    ];
    common::run(&mut variants, &x, &y, rounds, &format!("ResNet-18 (CIFAR stem), batch {BATCH}, 32x32"));
}
