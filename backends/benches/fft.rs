//! Real 2-D FFT throughput: `rfft2` and `irfft2` on a `[128, 64, 32, 32]` f32 batch.
//!
//! `cargo bench -p backends --bench fft` (set `RAYON_NUM_THREADS` to pin the thread count).
//! Prints the median wall time of each direction in milliseconds.

use backends::{Backend, CpuBackend, CpuStorage, Layout};

mod common;
use common::time;

fn main() {
    let cpu = CpuBackend;
    let shape = [128usize, 64, 32, 32];
    let n: usize = shape.iter().product();
    let x = CpuStorage::F32((0..n).map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 500.0 - 1.0).collect());
    let lx = Layout::contiguous(&shape);
    let (re, im) = cpu.rfft2(&x, &lx).unwrap();
    let lh = Layout::contiguous(&[128, 64, 32, 17]);
    let reps = 10;
    let fwd = time(reps, || {
        std::hint::black_box(cpu.rfft2(&x, &lx).unwrap());
    });
    let inv = time(reps, || {
        std::hint::black_box(cpu.irfft2(&re, &lh, &im, &lh, (32, 32)).unwrap());
    });
    let threads = rayon::current_num_threads();
    println!("rfft2  f32 {shape:?}: {:8.2} ms ({threads} threads)", fwd * 1e3);
    println!("irfft2 f32 {shape:?}: {:8.2} ms ({threads} threads)", inv * 1e3);
    println!("round trip            : {:8.2} ms", (fwd + inv) * 1e3);
}
