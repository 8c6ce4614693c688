//! SGEMM throughput through the backend (`matmul`, Lamina's own kernels where the CPU has
//! AVX-512 or AVX2) vs. calling `matrixmultiply` directly, square n = 256..2048.
//!
//! `cargo bench -p backends --bench gemm` (set `RAYON_NUM_THREADS=1` or `2`). The direct call is
//! single-threaded (the crate is built without its own threading), so the 1-thread rows compare
//! like with like; with more threads the backend splits the product into panels over rayon.
//! On CPUs with AVX512_BF16 the square sizes also run with bf16 operands (f32 accumulation)
//! beside f32.
//! Also prints one `sgemm <n> <median ms> <min ms>` line per size for `run_vs_torch.py`.

use backends::ops::BinaryOp;
use backends::{Backend, CpuBackend, CpuStorage, Fused, Layout};

mod common;
use common::{time, time_ms};

/// Theoretical FP32 FMA peak in GFLOP/s of the threads in use, from the ISA and /proc/cpuinfo.
fn peak_gflops(threads: usize) -> Option<f64> {
    let mhz: f64 = std::fs::read_to_string("/proc/cpuinfo")
        .ok()?
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    #[cfg(target_arch = "x86_64")]
    let lanes = if is_x86_feature_detected!("avx512f") {
        16.0
    } else if is_x86_feature_detected!("fma") {
        8.0
    } else {
        4.0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let lanes = 4.0;
    // Two FMA units per core, two flops per FMA.
    Some(threads as f64 * mhz / 1000.0 * 2.0 * lanes * 2.0)
}

fn main() {
    // As the tensor ops do before their first CPU op: freed buffers stay for reuse.
    backends::cpu::memory::retain_freed_memory();
    let threads = rayon::current_num_threads();
    match peak_gflops(threads) {
        Some(p) => println!("threads: {threads}; theoretical FP32 FMA peak: {p:.0} GFLOP/s"),
        None => println!("threads: {threads}; theoretical FP32 FMA peak: unknown"),
    }
    println!("{:>6} {:>14} {:>14} {:>8}", "n", "backend GF/s", "direct GF/s", "ratio");
    let cpu = CpuBackend;
    for n in [256usize, 512, 1024, 2048] {
        let a: Vec<f32> = (0..n * n).map(|i| ((i * 7 + 3) % 13) as f32 * 0.1 - 0.6).collect();
        let b: Vec<f32> = (0..n * n).map(|i| ((i * 5 + 1) % 11) as f32 * 0.1 - 0.5).collect();
        let (sa, sb) = (CpuStorage::F32(a.clone()), CpuStorage::F32(b.clone()));
        let l = Layout::contiguous(&[n, n]);
        let reps = if n >= 2048 { 5 } else { 15 };
        let flops = 2.0 * (n * n * n) as f64;
        let (med, min) = time_ms(reps, || {
            std::hint::black_box(cpu.matmul(&sa, &l, &sb, &l).unwrap());
        });
        let t_backend = med / 1e3;
        let mut c = vec![0f32; n * n];
        let t_direct = time(reps, || unsafe {
            matrixmultiply::sgemm(
                n,
                n,
                n,
                1.0,
                a.as_ptr(),
                n as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
            std::hint::black_box(&c);
        });
        println!(
            "{n:>6} {:>14.1} {:>14.1} {:>8.3}",
            flops / t_backend / 1e9,
            flops / t_direct / 1e9,
            t_backend / t_direct
        );
        println!("sgemm {n} {med:.3} {min:.3}");
    }
    vit_linears(&cpu);
    vit_attention(&cpu);
    bf16_rows(&cpu);
}

/// The same square products with bf16 operands and f32 accumulation
/// (`set_matmul_precision(Bf16)`, AVX512_BF16) against f32, alternating the two per size; also
/// prints `sgemm_bf16 <n> <median ms> <min ms>` lines.
fn bf16_rows(cpu: &CpuBackend) {
    use backends::cpu::{has_bf16, set_matmul_precision, MatmulPrecision};
    if !has_bf16() {
        println!("bf16: this CPU has no AVX512_BF16");
        return;
    }
    println!("{:>6} {:>10} {:>10} {:>8}", "n", "f32 GF/s", "bf16 GF/s", "bf16/f32");
    for n in [256usize, 512, 1024, 2048] {
        let a = CpuStorage::F32((0..n * n).map(|i| ((i * 7 + 3) % 13) as f32 * 0.1 - 0.6).collect());
        let b = CpuStorage::F32((0..n * n).map(|i| ((i * 5 + 1) % 11) as f32 * 0.1 - 0.5).collect());
        let l = Layout::contiguous(&[n, n]);
        let reps = if n >= 2048 { 5 } else { 15 };
        let flops = 2.0 * (n * n * n) as f64;
        let run = |p: MatmulPrecision| {
            set_matmul_precision(p).expect("checked above");
            time_ms(reps, || {
                std::hint::black_box(cpu.matmul(&a, &l, &b, &l).unwrap());
            })
        };
        let (f32_ms, _) = run(MatmulPrecision::F32);
        let (med, min) = run(MatmulPrecision::Bf16);
        set_matmul_precision(MatmulPrecision::F32).expect("f32 is always available");
        println!("{n:>6} {:>10.1} {:>10.1} {:>8.3}", flops / f32_ms / 1e6, flops / med / 1e6, med / f32_ms);
        println!("sgemm_bf16 {n} {med:.3} {min:.3}");
    }
}

/// The attention products of one ViT-Tiny/4 layer at batch 64 (192 heads of 65 tokens by 64
/// features): scores `q kᵀ` (`kᵀ` a transposed view) and `p v`, as batched matmuls.
fn vit_attention(cpu: &CpuBackend) {
    const HEADS: usize = 64 * 3;
    const T: usize = 65;
    const D: usize = 64;
    let fill = |len: usize, s: usize| -> CpuStorage {
        CpuStorage::F32((0..len).map(|i| ((i * s + 3) % 13) as f32 * 0.1 - 0.6).collect())
    };
    let (q, k, p) = (fill(HEADS * T * D, 7), fill(HEADS * T * D, 5), fill(HEADS * T * T, 3));
    let ltd = Layout::contiguous(&[HEADS, T, D]);
    let kt = ltd.transpose(1, 2).expect("3-d");
    let ltt = Layout::contiguous(&[HEADS, T, T]);
    let flops = 2.0 * (HEADS * T * T * D) as f64;
    for (name, a, la, b, lb) in [("q kT", &q, &ltd, &k, &kt), ("p v", &p, &ltt, &k, &ltd)] {
        let (med, min) = time_ms(15, || {
            std::hint::black_box(cpu.matmul(a, la, b, lb).unwrap());
        });
        println!("{:>22} {:>10} {:>10.1}", format!("attention {name}"), "fwd", flops / med / 1e6);
        println!("attention {} {med:.3} {min:.3}", name.replace(' ', "_"));
    }
}

/// The products of ViT-Tiny/4's linear layers at batch 64 (4160 token rows, width 192): for
/// each layer `y = x Wᵀ`, the forward, the input gradient `dy W` and the weight gradient
/// `dyᵀ x`, with the transposed operands as strided views, as autograd passes them.
fn vit_linears(cpu: &CpuBackend) {
    const ROWS: usize = 64 * 65;
    println!("{:>22} {:>10} {:>10}", "vit linear (in->out)", "pass", "GF/s");
    for (name, fin, fout) in [("qkv", 192usize, 576usize), ("proj", 192, 192), ("fc1", 192, 768), ("fc2", 768, 192)] {
        let fill = |len: usize, s: usize| -> CpuStorage {
            CpuStorage::F32((0..len).map(|i| ((i * s + 3) % 13) as f32 * 0.1 - 0.6).collect())
        };
        let (x, w, dy) = (fill(ROWS * fin, 7), fill(fout * fin, 5), fill(ROWS * fout, 3));
        let lx = Layout::contiguous(&[ROWS, fin]);
        let lw = Layout::contiguous(&[fout, fin]);
        let ldy = Layout::contiguous(&[ROWS, fout]);
        let wt = lw.transpose(0, 1).expect("2-d");
        let dyt = ldy.transpose(0, 1).expect("2-d");
        let flops = 2.0 * (ROWS * fin * fout) as f64;
        let passes: [(&str, &CpuStorage, &Layout, &CpuStorage, &Layout); 3] =
            [("fwd", &x, &lx, &w, &wt), ("bwd_data", &dy, &ldy, &w, &lw), ("bwd_weight", &dy, &dyt, &x, &lx)];
        for (pass, a, la, b, lb) in passes {
            let (med, _) = time_ms(15, || {
                std::hint::black_box(cpu.matmul(a, la, b, lb).unwrap());
            });
            println!("{:>22} {pass:>10} {:>10.1}", format!("{name} ({fin}->{fout})"), flops / med / 1e6);
        }
        // The forward with its bias: the product then a broadcast add, and the fused product.
        let bias = fill(fout, 11);
        let lbias = Layout::contiguous(&[fout]);
        let lbroad = lbias.broadcast_to(&[ROWS, fout]).expect("bias row");
        let (sep, _) = time_ms(15, || {
            let y = cpu.matmul(&x, &lx, &w, &wt).unwrap();
            std::hint::black_box(cpu.binary(BinaryOp::Add, &y, &ldy, &bias, &lbroad).unwrap());
        });
        let (fused, _) = time_ms(15, || {
            std::hint::black_box(cpu.matmul_bias(&x, &lx, &w, &wt, &bias, &lbias).unwrap());
        });
        println!("{:>22} {:>10} {:>10.1}", format!("{name} ({fin}->{fout})"), "fwd+add", flops / sep / 1e6);
        println!("{:>22} {:>10} {:>10.1}", format!("{name} ({fin}->{fout})"), "fwd_bias", flops / fused / 1e6);
    }
}
