//! Interspace pruning against standard pruning at the same sparsity: the training step and the
//! inference form's time, from one run.
//!
//! Per network and sparsity (90/95/98 %, the same uniformly random masks on SP's weights and
//! IP's coefficients), timed in interleaved rounds (every round runs every variant back to
//! back; medians reported, and the median of the per-round paired ratios IP/SP):
//!
//! - training step at batch 128 (forward, cross-entropy, backward, mask the gradients, SGD
//!   with momentum): SP, and IP (the filters reconstructed from coefficients and basis every
//!   step, the basis trained);
//! - inference at batch 128 and 1: SP's inference form and IP's (each masked layer timed
//!   both ways on its own input shape at batch 32 and the faster kept, `sparse_exec=auto`:
//!   SP's choice is dense or the sparse kernel, IP's dense folded filters or the basis path),
//!   and IP with every 3x3 layer on the basis path.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench ip_cost` (`IP_BENCH_ROUNDS`, default 5;
//! figures: `methods/results/ip-cost/`).

use std::time::Instant;

use autograd::{no_grad, Tensor};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::mac::count_macs;
use layers::models::{self, ModelOptions};
use layers::optim::{split_weight_decay, Optimizer, Sgd, SgdOptions};
use layers::{Mode, Module, ModuleExt};
use methods::ip::{BasisInit, Granularity, IpConfig};
use methods::sparse::allocation::{masks_from_scores, Allocation};
use methods::sparse::engine::{apply_masks, mask_gradients, masked_layers, wrap_each, Prunable};
use methods::sparse::exec::{convert_masked, measure};
use methods::sparse::score::random_scores;
use methods::sparse::{Fixed, MaskedLayer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
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
    let (sp, ip) = (build(model, width, sparsity, false), build(model, width, sparsity, true));
    let x = Tensor::randn(&[128, 3, 32, 32], 9).unwrap();
    let x1 = x.narrow(0, 0, 1).unwrap().contiguous().unwrap();
    let y = Tensor::from_vec((0..128i64).map(|i| i % 10).collect::<Vec<_>>(), &[128]).unwrap();
    let mut opts: Vec<Sgd> = [&sp, &ip]
        .iter()
        .map(|m| Sgd::new(split_weight_decay(m.named_parameters(), 5e-4), SgdOptions::new(0.01).momentum(0.9)).unwrap())
        .collect();
    let step = |m: &dyn Module, opt: &mut Sgd| {
        ms(&mut || {
            let logits = m.forward(&x, Mode::Train).unwrap();
            cross_entropy(&logits, &y, CrossEntropyOptions::default()).unwrap().backward().unwrap();
            mask_gradients(m).unwrap();
            opt.step().unwrap();
            opt.zero_grad();
        })
    };
    let (sp_form, sp_sparse, n) = form(build(model, width, sparsity, false), false);
    let (ip_form, ip_sparse, _) = form(build(model, width, sparsity, true), false);
    let (ip_basis, ip_all, _) = form(build(model, width, sparsity, true), true);
    let infer = |m: &dyn Module, x: &Tensor| {
        ms(&mut || {
            no_grad(|| m.forward(x, Mode::Eval).unwrap().to_host().unwrap());
        })
    };
    let forms = [sp_form.as_ref(), ip_form.as_ref(), ip_basis.as_ref()];
    // Warm-up.
    for (m, o) in [&sp, &ip].into_iter().zip(opts.iter_mut()) {
        step(m.as_ref(), o);
    }
    for f in forms {
        infer(f, &x);
        infer(f, &x1);
    }
    let mut steps = [vec![], vec![]];
    let mut big = [vec![], vec![], vec![]];
    let mut one = [vec![], vec![], vec![]];
    for _ in 0..rounds {
        for ((v, m), o) in steps.iter_mut().zip([&sp, &ip]).zip(opts.iter_mut()) {
            v.push(step(m.as_ref(), o));
        }
        for ((b, s), f) in big.iter_mut().zip(one.iter_mut()).zip(forms) {
            b.push(infer(f, &x));
            for _ in 0..5 {
                s.push(infer(f, &x1));
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
    let rounds: usize = std::env::var("IP_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
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
