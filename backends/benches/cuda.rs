//! GPU benchmark (feature `cuda`): SGEMM 4096 (TFLOP/s) and conv2d forward and forward+backward
//! for x [128, 64, 32, 32], w [64, 64, 3, 3], padding 1, f32. `benches/torch_cuda.py` times the
//! same problems in PyTorch on the same GPU. Prints a skip line without a GPU.
//!
//! ```sh
//! cargo bench -p backends --features cuda --bench cuda
//! python3 backends/benches/torch_cuda.py
//! ```

#[cfg(feature = "cuda")]
mod common;

#[cfg(feature = "cuda")]
fn main() {
    use backends::ops::Conv2dParams;
    use backends::ops::Distribution;
    use backends::{Backend, CpuBackend, CudaBackend, DType, Layout};

    if !backends::cuda_is_available() {
        println!("skipped the CUDA benchmark: no CUDA driver or GPU");
        return;
    }
    let gpu = CudaBackend::new(0).expect("GPU 0");
    let normal = Distribution::Normal { mean: 0.0, std: 1.0 };
    let upload = |n: usize, seed: u64| {
        let host = CpuBackend.random(DType::F32, n, normal, seed, 0).expect("random");
        gpu.from_host(&host).expect("upload")
    };
    println!("CUDA benchmark on {} (median of the timed runs, each synchronized)", gpu.arch());

    let n = 4096;
    let (a, b) = (upload(n * n, 1), upload(n * n, 2));
    let l = Layout::contiguous(&[n, n]);
    let t = common::time(20, || {
        gpu.matmul(&a, &l, &b, &l).expect("matmul");
        gpu.synchronize().expect("sync");
    });
    let flop = 2.0 * (n as f64).powi(3);
    println!("  sgemm {n}x{n}x{n}: {:8.3} ms  {:6.2} TFLOP/s", t * 1e3, flop / t / 1e12);

    let (bn, c, hw, o, k) = (128, 64, 32, 64, 3);
    let x = upload(bn * c * hw * hw, 3);
    let w = upload(o * c * k * k, 4);
    let gy = upload(bn * o * hw * hw, 5);
    let (lx, lw, ly) =
        (Layout::contiguous(&[bn, c, hw, hw]), Layout::contiguous(&[o, c, k, k]), Layout::contiguous(&[bn, o, hw, hw]));
    let p = Conv2dParams { padding: (1, 1), ..Default::default() };
    let conv_flop = 2.0 * (bn * o * hw * hw * c * k * k) as f64;
    let fwd = common::time(20, || {
        gpu.conv2d(&x, &lx, &w, &lw, &p).expect("conv2d");
        gpu.synchronize().expect("sync");
    });
    let fwd_bwd = common::time(20, || {
        gpu.conv2d(&x, &lx, &w, &lw, &p).expect("conv2d");
        gpu.conv2d_backward_data(&gy, &ly, &w, &lw, &p, (hw, hw)).expect("backward data");
        gpu.conv2d_backward_weight(&x, &lx, &gy, &ly, &p, (k, k)).expect("backward weight");
        gpu.synchronize().expect("sync");
    });
    println!("  conv2d x [{bn}, {c}, {hw}, {hw}] w [{o}, {c}, {k}, {k}] pad 1, f32:");
    println!("    forward          {:8.3} ms  {:6.2} TFLOP/s", fwd * 1e3, conv_flop / fwd / 1e12);
    println!("    forward+backward {:8.3} ms  {:6.2} TFLOP/s", fwd_bwd * 1e3, 3.0 * conv_flop / fwd_bwd / 1e12);
}

#[cfg(not(feature = "cuda"))]
fn main() {
    println!("skipped the CUDA benchmark: built without the `cuda` feature");
}
