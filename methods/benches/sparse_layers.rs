//! The sparse execution path against the dense one: the convolutions of ResNet-20 (batch 64)
//! and ResNet-18 with the CIFAR stem (batch 32) at densities 1.0 down to 0.02 (80/90/95/98 %
//! sparsity and more points for the crossover), inference (forward) and a training step
//! (forward, then the input gradient and the weight gradient: the dense path through the mask
//! product `w·m` as the masked layers train, the sparse path through the stored values only);
//! then both whole networks at 90/95/98 % sparsity, dense against their sparse inference form.
//!
//! Every configuration's variants are timed in interleaved rounds and the median is reported;
//! the crossover density of a layer is where the sparse/dense time ratio crosses 1
//! (interpolated in log density between the measured points).
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench sparse_layers`
//! (`SPARSE_BENCH_ROUNDS`, default 5).

use std::sync::Arc;
use std::time::Instant;

use autograd::backends::sparse_conv::SparsePattern;
use autograd::{no_grad, BackwardOptions, Conv2dParams, Tensor};
use layers::{models, Mode, Module};
use methods::sparse::allocation::{masks_from_scores, Allocation};
use methods::sparse::engine::{apply_masks, masked_layers, wrap, Prunable};
use methods::sparse::exec::convert_masked;
use methods::sparse::score::random_scores;
use methods::sparse::Fixed;

const DENSITIES: [f64; 7] = [1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02];

struct Layer {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    stride: usize,
}

fn layers() -> Vec<Layer> {
    let l = |name, x, w, stride| Layer { name, x, w, stride };
    vec![
        l("R20 conv 16-16 32x32", [64, 16, 32, 32], [16, 16, 3, 3], 1),
        l("R20 conv 16-32 s2 32x32", [64, 16, 32, 32], [32, 16, 3, 3], 2),
        l("R20 conv 32-32 16x16", [64, 32, 16, 16], [32, 32, 3, 3], 1),
        l("R20 conv 64-64 8x8", [64, 64, 8, 8], [64, 64, 3, 3], 1),
        l("R18 conv 64-64 32x32", [32, 64, 32, 32], [64, 64, 3, 3], 1),
        l("R18 conv 64-128 s2 32x32", [32, 64, 32, 32], [128, 64, 3, 3], 2),
        l("R18 conv 128-128 16x16", [32, 128, 16, 16], [128, 128, 3, 3], 1),
        l("R18 conv 256-256 8x8", [32, 256, 8, 8], [256, 256, 3, 3], 1),
        l("R18 conv 512-512 4x4", [32, 512, 4, 4], [512, 512, 3, 3], 1),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

/// A mask keeping `density` of `n` entries, uniformly at random.
fn mask(n: usize, density: f64, seed: u64) -> Vec<f32> {
    let r = Tensor::rand(&[n], seed).unwrap().to_vec::<f32>().unwrap();
    r.into_iter().map(|v| f32::from(f64::from(v) < density)).collect()
}

/// Median forward and training-step times (ms) of the dense and the sparse path of one layer.
fn bench_layer(l: &Layer, density: f64, rounds: usize) -> [f64; 4] {
    let p = Conv2dParams { stride: (l.stride, l.stride), padding: (1, 1), ..Default::default() };
    let n: usize = l.w.iter().product();
    let m = mask(n, density, 7);
    let pattern = Arc::new(SparsePattern::from_mask(l.w, &m).unwrap());
    let x = Tensor::randn(&l.x, 1).unwrap();
    let phi = Tensor::randn(&l.w, 2).unwrap();
    let mt = Tensor::from_vec(m.clone(), &l.w).unwrap();
    let idx: Vec<i64> = pattern.flat_indices().into_iter().map(|i| i as i64).collect();
    let values =
        phi.reshape(&[-1]).unwrap().index_select(0, &Tensor::from_vec(idx.clone(), &[idx.len()]).unwrap()).unwrap();
    let w_dense = phi.mul(&mt).unwrap();
    let y_shape = p.output_shape(&l.x, &l.w).unwrap();
    let g = Tensor::randn(&y_shape, 3).unwrap();
    let mut times = [vec![], vec![], vec![], vec![]];
    let run = |times: &mut [Vec<f64>; 4], record: bool| {
        let t0 = ms(&mut || {
            no_grad(|| x.conv2d(&w_dense, None, p).unwrap().to_host().unwrap());
        });
        let t1 = ms(&mut || {
            no_grad(|| x.sparse_conv2d(&values, &pattern, None, p).unwrap().to_host().unwrap());
        });
        let t2 = ms(&mut || {
            let (xl, wl) = (x.detach().requires_grad_(), phi.detach().requires_grad_());
            let y = xl.conv2d(&wl.mul(&mt).unwrap(), None, p).unwrap();
            y.backward_with(BackwardOptions { seed: Some(g.clone()), ..Default::default() }).unwrap();
        });
        let t3 = ms(&mut || {
            let (xl, vl) = (x.detach().requires_grad_(), values.detach().requires_grad_());
            let y = xl.sparse_conv2d(&vl, &pattern, None, p).unwrap();
            y.backward_with(BackwardOptions { seed: Some(g.clone()), ..Default::default() }).unwrap();
        });
        if record {
            for (v, t) in times.iter_mut().zip([t0, t1, t2, t3]) {
                v.push(t);
            }
        }
    };
    run(&mut times, false);
    for _ in 0..rounds {
        run(&mut times, true);
    }
    times.map(median)
}

/// The density where the ratio sparse/dense crosses 1, interpolated in log density between
/// neighbouring measured points (`None` if it never does).
fn crossover(points: &[(f64, f64)]) -> Option<f64> {
    points.windows(2).find_map(|w| {
        let ((d0, r0), (d1, r1)) = (w[0], w[1]);
        ((r0 - 1.0) * (r1 - 1.0) <= 0.0 && r0 != r1).then(|| {
            let f = (1.0 - r0) / (r1 - r0);
            (d0.ln() + f * (d1.ln() - d0.ln())).exp()
        })
    })
}

fn network(name: &str, model: &str, batch: usize, sparsity: f64, rounds: usize) {
    let build = || {
        let mut m = models::build(model, 10, 3, 0).unwrap();
        wrap(m.as_mut(), &Prunable::All, &|_, _| Fixed::Zero).unwrap();
        let geoms: Vec<_> = masked_layers(m.as_ref()).iter().map(|(_, l)| l.geometry()).collect();
        let scores = random_scores(m.as_ref(), 5).unwrap();
        let masks = masks_from_scores(Allocation::Uniform, &scores, &geoms, 1.0 - sparsity).unwrap();
        apply_masks(m.as_ref(), &masks, None).unwrap();
        m
    };
    let (mut dense, mut sparse) = (build(), build());
    convert_masked(dense.as_mut(), &mut |_, _, _, _| Ok(false)).unwrap();
    convert_masked(sparse.as_mut(), &mut |_, _, _, _| Ok(true)).unwrap();
    let x = Tensor::randn(&[batch, 3, 32, 32], 9).unwrap();
    let fwd = |m: &dyn Module| {
        ms(&mut || {
            no_grad(|| m.forward(&x, Mode::Eval).unwrap().to_host().unwrap());
        })
    };
    fwd(dense.as_ref());
    fwd(sparse.as_ref());
    let (mut td, mut ts) = (vec![], vec![]);
    for _ in 0..rounds {
        td.push(fwd(dense.as_ref()));
        ts.push(fwd(sparse.as_ref()));
    }
    let (d, s) = (median(td), median(ts));
    println!("| {name} | {:.0} % | {batch} | {d:.1} | {s:.1} | {:.2}x |", 100.0 * sparsity, d / s);
}

fn main() {
    let rounds: usize = std::env::var("SPARSE_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    println!("threads: {}, rounds: {rounds} (median reported)\n", rayon::current_num_threads());
    println!("| layer | density | dense fwd ms | sparse fwd ms | fwd speed-up | dense step ms | sparse step ms | step speed-up |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut crossovers = Vec::new();
    for l in layers() {
        let mut fwd_ratio = Vec::new();
        let mut step_ratio = Vec::new();
        for d in DENSITIES {
            let [df, sf, ds, ss] = bench_layer(&l, d, rounds);
            println!(
                "| {} | {d} | {df:.2} | {sf:.2} | {:.2}x | {ds:.2} | {ss:.2} | {:.2}x |",
                l.name,
                df / sf,
                ds / ss
            );
            fwd_ratio.push((d, sf / df));
            step_ratio.push((d, ss / ds));
        }
        crossovers.push((l.name, crossover(&fwd_ratio), crossover(&step_ratio)));
    }
    let show = |c: Option<f64>| c.map_or("none in 0.02-1".to_string(), |d| format!("{d:.2}"));
    println!("\n| layer | crossover density, inference | crossover density, training step |");
    println!("|---|---:|---:|");
    for (name, f, s) in crossovers {
        println!("| {name} | {} | {} |", show(f), show(s));
    }
    println!("\n| network | sparsity | batch | dense ms | sparse form ms | speed-up |");
    println!("|---|---:|---:|---:|---:|---:|");
    for s in [0.9, 0.95, 0.98] {
        network("ResNet-20", "resnet20", 64, s, rounds);
    }
    for s in [0.9, 0.95, 0.98] {
        network("ResNet-18 (CIFAR stem)", "resnet18-cifar", 32, s, rounds);
    }
}
