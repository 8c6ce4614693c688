//! The tape's own overhead: a chain of 10,000 tiny elementwise ops, forward + backward.
//!
//! `RAYON_NUM_THREADS=1 cargo bench -p autograd --bench tape` prints the time per op
//! (target: under 2 microseconds on one core).

use autograd::Tensor;
use std::time::Instant;

fn main() {
    const OPS: usize = 10_000;
    let x = Tensor::from_vec(vec![0.5f32; 4], &[4]).unwrap().requires_grad_();
    let mut times = vec![];
    for _ in 0..7 {
        let t = Instant::now();
        let mut y = x.clone();
        for i in 0..OPS {
            y = if i % 2 == 0 { y.mul_scalar(1.0001).unwrap() } else { y.add_scalar(-0.0001).unwrap() };
        }
        let loss = y.sum_all().unwrap();
        loss.backward().unwrap();
        times.push(t.elapsed().as_secs_f64());
        x.zero_grad();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!("tape: {OPS} ops forward+backward in {:.2} ms: {:.3} us per op", median * 1e3, median * 1e6 / OPS as f64);
}
