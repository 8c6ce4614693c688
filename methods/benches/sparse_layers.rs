//! The sparse execution path against the dense one: the convolutions of ResNet-20 (batch 64)
//! and ResNet-18 with the CIFAR stem (batch 32) at densities 1.0 down to 0.02 (80/90/95/98 %
//! sparsity and more points for the crossover), inference (forward) and a training step
//! (forward, then the input gradient and the weight gradient: the dense path through the mask
//! product `w·m` as the masked layers train, the sparse path through the stored values only);
//! then both whole networks at 90/95/98 % sparsity: dense, every masked layer sparse, and the
//! inference form's automatic per-layer choice.
//!
//! Each layer's densities are timed in interleaved rounds (every round visits every density,
//! dense and sparse back to back); the tables give the median times and, as the speed-up, the
//! median of the per-round paired ratios dense/sparse, which drifting load affects least. The
//! crossover density of a layer is where the sparse/dense ratio first crosses 1 coming down
//! from density 1 (interpolated in log density between the measured points).
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p methods --bench sparse_layers [-- layers|networks]`
//! (`SPARSE_BENCH_ROUNDS`, default 5; figures: `methods/results/sparse-execution/`).

use std::sync::Arc;
use std::time::Instant;

use autograd::backends::ops::SparsePattern;
use autograd::{no_grad, BackwardOptions, Conv2dParams, Tensor};
use layers::mac::count_macs;
use layers::{models, Mode, Module};
use methods::sparse::allocation::{masks_from_scores, Allocation};
use methods::sparse::engine::{apply_masks, masked_layers, wrap, Prunable};
use methods::sparse::exec::{convert_masked, measure};
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

/// One layer at one density: its operands and the four timed variants.
struct Config {
    p: Conv2dParams,
    x: Tensor,
    phi: Tensor,
    mask: Tensor,
    w_dense: Tensor,
    pattern: Arc<SparsePattern>,
    values: Tensor,
    g: Tensor,
}

impl Config {
    fn new(l: &Layer, density: f64) -> Config {
        let p = Conv2dParams { stride: (l.stride, l.stride), padding: (1, 1), ..Default::default() };
        let m = mask(l.w.iter().product(), density, 7);
        let pattern = Arc::new(SparsePattern::from_mask(l.w, &m).unwrap());
        let phi = Tensor::randn(&l.w, 2).unwrap();
        let mask = Tensor::from_vec(m, &l.w).unwrap();
        let idx: Vec<i64> = pattern.flat_indices().into_iter().map(|i| i as i64).collect();
        let idx = Tensor::from_vec(idx.clone(), &[idx.len()]).unwrap();
        let values = phi.reshape(&[-1]).unwrap().index_select(0, &idx).unwrap();
        let g = Tensor::randn(&p.output_shape(&l.x, &l.w).unwrap(), 3).unwrap();
        Config {
            p,
            x: Tensor::randn(&l.x, 1).unwrap(),
            w_dense: phi.mul(&mask).unwrap(),
            phi,
            mask,
            pattern,
            values,
            g,
        }
    }

    /// Dense forward, sparse forward, dense training step, sparse training step (ms).
    fn time(&self) -> [f64; 4] {
        let (x, p, g) = (&self.x, self.p, &self.g);
        let seed = || BackwardOptions { seed: Some(g.clone()), ..Default::default() };
        let dense_fwd = ms(&mut || {
            no_grad(|| x.conv2d(&self.w_dense, None, p).unwrap().to_host().unwrap());
        });
        let sparse_fwd = ms(&mut || {
            no_grad(|| x.sparse_conv2d(&self.values, &self.pattern, None, p).unwrap().to_host().unwrap());
        });
        let dense_step = ms(&mut || {
            let (xl, wl) = (x.detach().requires_grad_(), self.phi.detach().requires_grad_());
            let y = xl.conv2d(&wl.mul(&self.mask).unwrap(), None, p).unwrap();
            y.backward_with(seed()).unwrap();
        });
        let sparse_step = ms(&mut || {
            let (xl, vl) = (x.detach().requires_grad_(), self.values.detach().requires_grad_());
            let y = xl.sparse_conv2d(&vl, &self.pattern, None, p).unwrap();
            y.backward_with(seed()).unwrap();
        });
        [dense_fwd, sparse_fwd, dense_step, sparse_step]
    }
}

/// Per density: the median times (dense fwd, sparse fwd, dense step, sparse step, ms) and the
/// medians of the paired ratios sparse/dense (forward, step). Every round visits all densities
/// (in a rotated order) and times the dense and the sparse variant of a density back to back,
/// so load that drifts during the run hits both sides of a ratio alike.
fn bench_layer(l: &Layer, rounds: usize) -> Vec<([f64; 4], [f64; 2])> {
    let configs: Vec<Config> = DENSITIES.iter().map(|&d| Config::new(l, d)).collect();
    for c in &configs {
        c.time();
    }
    let k = configs.len();
    let mut times = vec![[vec![], vec![], vec![], vec![]]; k];
    for r in 0..rounds {
        for j in 0..k {
            let i = (j + r) % k;
            let t = configs[i].time();
            for (v, t) in times[i].iter_mut().zip(t) {
                v.push(t);
            }
        }
    }
    times
        .into_iter()
        .map(|[df, sf, ds, ss]| {
            let ratio = |s: &[f64], d: &[f64]| median(s.iter().zip(d).map(|(s, d)| s / d).collect());
            let r = [ratio(&sf, &df), ratio(&ss, &ds)];
            ([median(df), median(sf), median(ds), median(ss)], r)
        })
        .collect()
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

/// One network at one sparsity (uniform random masks): dense, every masked layer on the sparse
/// kernels, and the inference form's automatic choice (each layer timed both ways at its own
/// input shape, `exec::measure`), timed in interleaved rounds.
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
    let (mut dense, mut sparse, mut auto) = (build(), build(), build());
    convert_masked(dense.as_mut(), &mut |_, _, _, _| Ok(false)).unwrap();
    convert_masked(sparse.as_mut(), &mut |_, _, _, _| Ok(true)).unwrap();
    let trace = count_macs(auto.as_ref(), &Tensor::zeros(&[1, 3, 32, 32])).unwrap();
    let (mut chosen, mut total) = (0, 0);
    convert_masked(auto.as_mut(), &mut |path, _, d, s| {
        let input = trace.rows.iter().find(|r| r.name == path).map(|r| r.input.clone()).unwrap_or_default();
        let sparse = measure(d, s, &input, path)?.sparse;
        total += 1;
        chosen += usize::from(sparse);
        Ok(sparse)
    })
    .unwrap();
    let x = Tensor::randn(&[batch, 3, 32, 32], 9).unwrap();
    let fwd = |m: &dyn Module| {
        ms(&mut || {
            no_grad(|| m.forward(&x, Mode::Eval).unwrap().to_host().unwrap());
        })
    };
    let forms = [dense.as_ref(), sparse.as_ref(), auto.as_ref()];
    for m in forms {
        fwd(m);
    }
    let mut t = [vec![], vec![], vec![]];
    for _ in 0..rounds {
        for (v, m) in t.iter_mut().zip(forms) {
            v.push(fwd(m));
        }
    }
    let speedup = |v: &[f64]| median(t[0].iter().zip(v).map(|(d, s)| d / s).collect());
    let (rs, ra) = (speedup(&t[1]), speedup(&t[2]));
    let [d, s, a] = t.map(median);
    println!(
        "| {name} | {:.0} % | {batch} | {d:.1} | {s:.1} | {rs:.2}x | {a:.1} ({chosen} of {total} sparse) | {ra:.2}x |",
        100.0 * sparsity
    );
}

fn main() {
    let rounds: usize = std::env::var("SPARSE_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    // `cargo bench` passes `--bench`; any other argument names the part to run.
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let run = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    println!("threads: {}, rounds: {rounds} (median reported)\n", rayon::current_num_threads());
    if run("layers") {
        println!("| layer | density | dense fwd ms | sparse fwd ms | fwd speed-up | dense step ms | sparse step ms | step speed-up |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut crossovers = Vec::new();
        for l in layers() {
            let mut fwd_ratio = Vec::new();
            let mut step_ratio = Vec::new();
            for (d, ([df, sf, ds, ss], [rf, rs])) in DENSITIES.iter().zip(bench_layer(&l, rounds)) {
                println!(
                    "| {} | {d} | {df:.2} | {sf:.2} | {:.2}x | {ds:.2} | {ss:.2} | {:.2}x |",
                    l.name,
                    1.0 / rf,
                    1.0 / rs
                );
                fwd_ratio.push((*d, rf));
                step_ratio.push((*d, rs));
            }
            crossovers.push((l.name, crossover(&fwd_ratio), crossover(&step_ratio)));
        }
        let show = |c: Option<f64>| c.map_or("none in 0.02-1".to_string(), |d| format!("{d:.2}"));
        println!("\n| layer | crossover density, inference | crossover density, training step |");
        println!("|---|---:|---:|");
        for (name, f, s) in crossovers {
            println!("| {name} | {} | {} |", show(f), show(s));
        }
    }
    if run("networks") {
        println!(
            "\n| network | sparsity | batch | dense ms | all-sparse ms | speed-up | auto form ms (layers on sparse kernels) | speed-up |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for s in [0.9, 0.95, 0.98] {
            network("ResNet-20", "resnet20", 64, s, rounds);
        }
        for s in [0.9, 0.95, 0.98] {
            network("ResNet-18 (CIFAR stem)", "resnet18-cifar", 32, s, rounds);
        }
    }
}
