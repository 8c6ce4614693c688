//! Interspace pruning against standard pruning at the same sparsity: the training step and the
//! inference form's time, from one run.
//!
//! Per network and sparsity (90/95/98 %, the same uniformly random masks on SP's weights and
//! IP's coefficients), timed in interleaved rounds (every round runs every variant back to
//! back; medians reported, and the median of the per-round paired ratios IP/SP):
//!
//! - training step at batch 128 (forward, cross-entropy, backward, SGD with momentum and
//!   weight decay: `common::Variant`): SP, and IP (the filters reconstructed from coefficients and basis every
//!   step, the basis trained);
//! - inference at batch 128 and 1: SP's inference form and IP's (each masked layer timed
//!   both ways on its own input shape at batch 32 and the faster kept, `sparse_exec=auto`:
//!   SP's choice is dense or the sparse kernel, IP's dense folded filters or the basis path),
//!   and IP with every 3x3 layer on the basis path.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench ip_cost` (`IP_BENCH_ROUNDS`, default 5;
//! figures: `methods/results/ip-cost/`).

// The shared step timing; this benchmark prints its own table, not the helpers' one.
#[allow(dead_code)]
mod common;

use std::time::Instant;

use autograd::{no_grad, Tensor};
use common::{batch, interleaved, median, rounds, Variant};
use layers::mac::count_macs;
use layers::models::{self, ModelOptions};
use layers::{Mode, Module};
use methods::ip::{BasisInit, Granularity, IpConfig};
use methods::sparse::allocation::{masks_from_scores, Allocation};
use methods::sparse::engine::{apply_masks, masked_layers, wrap_each, Prunable};
use methods::sparse::exec::{convert_masked, measure};
use methods::sparse::score::random_scores;
use methods::sparse::{Fixed, MaskedLayer};

/// Wall time of one inference pass of `m` on `x`, in milliseconds.
fn infer_ms(m: &dyn Module, x: &Tensor) -> f64 {
    let t = Instant::now();
    no_grad(|| m.forward(x, Mode::Eval).unwrap().to_host().unwrap());
    t.elapsed().as_secs_f64() * 1e3
}

/// `model` at `width`, its convolutions and classifier masked (IP's basis on the KxK ones when
/// `ip`), uniformly random masks at `sparsity` drawn from the same seed for SP and IP.
fn build(model: &str, width: f64, sparsity: f64, ip: bool) -> Box<dyn Module> {
    let mut m = models::build_with(model, &ModelOptions::new(10, 3, 0).width(width)).unwrap();
    let cfg = IpConfig { init: BasisInit::Dct, granularity: Granularity::Layer, train_basis: true, seed: 0 };
    wrap_each(m.as_mut(), &Prunable::All, &mut |i, _, old| {
        if ip {
            cfg.masked_layer(i, old, Fixed::Zero)
        } else {
            MaskedLayer::wrap(old, Fixed::Zero)
        }
    })
    .unwrap();
    let geoms: Vec<_> = masked_layers(m.as_ref()).iter().map(|(_, l)| l.geometry()).collect();
    let scores = random_scores(m.as_ref(), 5).unwrap();
    let masks = masks_from_scores(Allocation::Uniform, &scores, &geoms, 1.0 - sparsity).unwrap();
    apply_masks(m.as_ref(), &masks, None).unwrap();
    m
}

/// The inference form of `copy`: each masked layer timed both ways (`auto`), or every layer
/// with a basis on the basis path.
fn form(mut copy: Box<dyn Module>, always: bool) -> (Box<dyn Module>, usize, usize) {
    let trace = count_macs(copy.as_ref(), &Tensor::zeros(&[1, 3, 32, 32])).unwrap();
    let (mut chosen, mut total) = (0, 0);
    convert_masked(copy.as_mut(), &mut |path, layer, d, s| {
        let input = trace.rows.iter().find(|r| r.name == path).map(|r| r.input.clone()).unwrap_or_default();
        let basis = layer.parametrization().name() != "identity";
        let sparse = if always { basis } else { measure(d, s, &input, path)?.sparse };
        total += 1;
        chosen += usize::from(sparse);
        Ok(sparse)
    })
    .unwrap();
    (copy, chosen, total)
}

fn network(name: &str, model: &str, width: f64, sparsity: f64, rounds: usize) {
    // Training steps (masked coordinates get exact zero gradients from the mask product, and
    // SGD's momentum and weight decay leave a zero value at zero).
    let (x, y) = batch(128);
    let mut variants = [
        Variant::new("SP", build(model, width, sparsity, false)),
        Variant::new("IP", build(model, width, sparsity, true)),
    ];
    let steps: Vec<Vec<f64>> = interleaved(&mut variants, &x, &y, rounds)
        .into_iter()
        .map(|v| v.into_iter().map(|s| s * 1e3).collect())
        .collect();
    let x1 = x.narrow(0, 0, 1).unwrap().contiguous().unwrap();
    let (sp_form, sp_sparse, n) = form(build(model, width, sparsity, false), false);
    let (ip_form, ip_sparse, _) = form(build(model, width, sparsity, true), false);
    let (ip_basis, ip_all, _) = form(build(model, width, sparsity, true), true);
    let forms = [sp_form.as_ref(), ip_form.as_ref(), ip_basis.as_ref()];
    for f in forms {
        infer_ms(f, &x);
        infer_ms(f, &x1);
    }
    let mut big = [vec![], vec![], vec![]];
    let mut one = [vec![], vec![], vec![]];
    for _ in 0..rounds {
        for ((b, s), f) in big.iter_mut().zip(one.iter_mut()).zip(forms) {
            b.push(infer_ms(f, &x));
            for _ in 0..5 {
                s.push(infer_ms(f, &x1));
            }
        }
    }
    let ratio = |a: &[f64], b: &[f64]| median(b.iter().zip(a).map(|(b, a)| b / a).collect());
    let macs = |m: &dyn Module| count_macs(m, &x1).unwrap().total_macs as f64 / 1e6;
    let s = 100.0 * sparsity;
    println!(
        "| {name} | {s:.0} % | {:.1} | {:.1} | {:.2}x | {:.1} ({sp_sparse}/{n}) | {:.1} ({ip_sparse}/{n}) | {:.2}x | {:.1} ({ip_all}/{n}) | {:.2} | {:.2} | {:.2}x | {:.2} | {:.1} / {:.1} / {:.1} |",
        median(steps[0].clone()),
        median(steps[1].clone()),
        ratio(&steps[0], &steps[1]),
        median(big[0].clone()),
        median(big[1].clone()),
        ratio(&big[0], &big[1]),
        median(big[2].clone()),
        median(one[0].clone()),
        median(one[1].clone()),
        ratio(&one[0], &one[1]),
        median(one[2].clone()),
        macs(sp_form.as_ref()),
        macs(ip_form.as_ref()),
        macs(ip_basis.as_ref()),
    );
}

fn main() {
    let rounds = rounds("IP_BENCH_ROUNDS", 5);
    println!("threads: {}, rounds: {rounds} (median reported)\n", rayon::current_num_threads());
    println!(
        "| network | sparsity | SP step ms | IP step ms | IP/SP | SP inference b128 ms (sparse layers) | IP inference b128 ms (basis-path layers) | IP/SP | IP all basis path b128 ms | SP b1 ms | IP b1 ms | IP/SP | IP all basis path b1 ms | MMACs SP / IP / IP all basis |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in [0.9, 0.95, 0.98] {
        network("ResNet-18/0.25 (small protocol)", "resnet18-cifar", 0.25, s, rounds);
    }
    for s in [0.9, 0.95, 0.98] {
        network("ResNet-20", "resnet20", 1.0, s, rounds);
    }
}
