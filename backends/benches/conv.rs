//! conv2d benchmark: forward and forward + backward (data and weight) for a ResNet-style layer,
//! x `[64, 64, 32, 32]`, w `[64, 64, 3, 3]`, padding 1, f32. Prints the median time over several
//! runs, the achieved GFLOP/s and the machine's theoretical FMA peak.
//!
//! `cargo bench -p backends --bench conv` (threads: `RAYON_NUM_THREADS`, default all cores).
//! `benches/torch_conv.py` times the same shapes in PyTorch.

use backends::ops::Conv2dParams;
use backends::{Backend, CpuBackend, CpuStorage, Layout};
use std::time::Instant;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Median and minimum wall time in ms (the minimum is the steadier figure on a shared machine).
fn time_ms(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm-up
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[runs / 2], t[0])
}

/// Cores, GHz (if known) and FMA lanes of this machine, and its f32 FMA peak in GFLOP/s.
fn peak() -> (usize, Option<f64>, usize) {
    let cores = rayon::current_num_threads();
    let ghz = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("cpu MHz"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|mhz| mhz / 1e3)
    });
    #[cfg(target_arch = "x86_64")]
    let lanes = if is_x86_feature_detected!("avx512f") {
        16
    } else if is_x86_feature_detected!("avx2") {
        8
    } else {
        4
    };
    #[cfg(not(target_arch = "x86_64"))]
    let lanes = 4;
    (cores, ghz, lanes)
}

fn main() {
    let cpu = CpuBackend;
    let (n, c, hw, o, k) = (64, 64, 32, 64, 3);
    let p = Conv2dParams { padding: (1, 1), ..Default::default() };
    let (xs, ws, ys) = ([n, c, hw, hw], [o, c, k, k], [n, o, hw, hw]);
    let x = CpuStorage::from_vec(random(xs.iter().product(), 1));
    let w = CpuStorage::from_vec(random(ws.iter().product(), 2));
    let gy = CpuStorage::from_vec(random(ys.iter().product(), 3));
    let (lx, lw, ly) = (Layout::contiguous(&xs), Layout::contiguous(&ws), Layout::contiguous(&ys));

    let (cores, ghz, lanes) = peak();
    match ghz {
        Some(ghz) => {
            let peak = cores as f64 * ghz * 2.0 * lanes as f64 * 2.0;
            println!("machine: {cores} threads, {ghz:.2} GHz, {lanes} f32 lanes: FMA peak {peak:.0} GFLOP/s");
        }
        None => println!("machine: {cores} threads, clock unknown, {lanes} f32 lanes: FMA peak unknown"),
    }

    // The GEMM ceiling as this backend reaches it on this machine (square 1024, f32).
    let m = 1024;
    let a = CpuStorage::from_vec(random(m * m, 4));
    let la = Layout::contiguous(&[m, m]);
    let (mm, _) = time_ms(5, || {
        std::hint::black_box(cpu.matmul(&a, &la, &a, &la).unwrap());
    });
    println!("matmul {m}x{m}x{m}: {mm:.2} ms, {:.1} GFLOP/s", 2.0 * (m * m * m) as f64 / mm / 1e6);

    let flop = 2.0 * (n * o * hw * hw * c * k * k) as f64;
    let runs = 11;
    let fwd = time_ms(runs, || {
        std::hint::black_box(cpu.conv2d(&x, &lx, &w, &lw, &p).unwrap());
    });
    let bwd_data = time_ms(runs, || {
        std::hint::black_box(cpu.conv2d_backward_data(&gy, &ly, &w, &lw, &p, (hw, hw)).unwrap());
    });
    let bwd_weight = time_ms(runs, || {
        std::hint::black_box(cpu.conv2d_backward_weight(&x, &lx, &gy, &ly, &p, (k, k)).unwrap());
    });
    let all = time_ms(runs, || {
        std::hint::black_box(cpu.conv2d(&x, &lx, &w, &lw, &p).unwrap());
        std::hint::black_box(cpu.conv2d_backward_data(&gy, &ly, &w, &lw, &p, (hw, hw)).unwrap());
        std::hint::black_box(cpu.conv2d_backward_weight(&x, &lx, &gy, &ly, &p, (k, k)).unwrap());
    });
    println!("conv2d x {xs:?} w {ws:?} pad 1, f32, {runs} runs: median (min)");
    let show = |name: &str, (med, min): (f64, f64), f: f64| {
        println!("  {name:<17}{med:8.2} ms ({min:7.2})  {:6.1} GFLOP/s ({:6.1})", f / med / 1e6, f / min / 1e6);
    };
    show("forward", fwd, flop);
    show("backward data", bwd_data, flop);
    show("backward weight", bwd_weight, flop);
    show("forward+backward", all, 3.0 * flop);
}
