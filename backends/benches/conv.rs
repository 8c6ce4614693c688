//! conv2d benchmark over the layer shapes of ResNet-20, ResNet-18 (CIFAR) and MobileNetV2
//! (`kernel_shapes.txt`, shared with `torch_kernels.py`): forward, and forward + backward (data
//! and weight), f32. Prints one `conv <name> fwd|fwdbwd <median ms> <min ms>` line per
//! measurement, which `run_vs_torch.py` pairs with PyTorch's figures.
//!
//! `cargo bench -p backends --bench conv [-- NAME_SUBSTRING] [--passes] [--bf16]` (threads:
//! `RAYON_NUM_THREADS`). `--passes` also times the two backward passes alone
//! (`conv <name> pass bwd_data|bwd_weight <median ms> <min ms>`, lines the comparison script
//! does not pair). `--bf16` runs the matrix products with bf16 operands and f32 accumulation
//! (`set_matmul_precision(Bf16)`, AVX512_BF16 CPUs only).

use backends::ops::Conv2dParams;
use backends::{Backend, CpuBackend, CpuStorage, Layout};

mod common;
use common::{random, time_ms};

/// One line of `kernel_shapes.txt`.
struct Shape {
    name: String,
    n: usize,
    c: usize,
    hw: usize,
    o: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

fn shapes() -> Vec<Shape> {
    include_str!("kernel_shapes.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let v: Vec<usize> = f[1..].iter().map(|s| s.parse().expect("kernel_shapes.txt: number")).collect();
            let [n, c, hw, o, k, stride, pad, groups] = v[..] else { panic!("kernel_shapes.txt: 9 fields per line") };
            Shape { name: f[0].to_string(), n, c, hw, o, k, stride, pad, groups }
        })
        .collect()
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--")).unwrap_or_default();
    let passes = std::env::args().any(|a| a == "--passes");
    let cpu = CpuBackend;
    // As the tensor ops do before their first CPU op: freed buffers stay for reuse.
    backends::cpu::memory::retain_freed_memory();
    println!("threads {}", rayon::current_num_threads());
    if std::env::args().any(|a| a == "--bf16") {
        use backends::cpu::{set_matmul_precision, MatmulPrecision};
        set_matmul_precision(MatmulPrecision::Bf16).expect("--bf16 needs AVX512_BF16");
        println!("matmul precision bf16");
    }
    for s in shapes().into_iter().filter(|s| s.name.contains(&filter)) {
        let p =
            Conv2dParams { stride: (s.stride, s.stride), padding: (s.pad, s.pad), dilation: (1, 1), groups: s.groups };
        let xs = [s.n, s.c, s.hw, s.hw];
        let ws = [s.o, s.c / s.groups, s.k, s.k];
        let ys = p.output_shape(&xs, &ws).expect("valid benchmark shape");
        let x = CpuStorage::from_vec(random(xs.iter().product(), 1));
        let w = CpuStorage::from_vec(random(ws.iter().product(), 2));
        let gy = CpuStorage::from_vec(random(ys.iter().product(), 3));
        let (lx, lw, ly) = (Layout::contiguous(&xs), Layout::contiguous(&ws), Layout::contiguous(&ys));
        let runs = 7;
        let (med, min) = time_ms(runs, || {
            std::hint::black_box(cpu.conv2d(&x, &lx, &w, &lw, &p).unwrap());
        });
        println!("conv {} fwd {med:.3} {min:.3}", s.name);
        let (med, min) = time_ms(runs, || {
            std::hint::black_box(cpu.conv2d(&x, &lx, &w, &lw, &p).unwrap());
            std::hint::black_box(cpu.conv2d_backward_data(&gy, &ly, &w, &lw, &p, (s.hw, s.hw)).unwrap());
            std::hint::black_box(cpu.conv2d_backward_weight(&x, &lx, &gy, &ly, &p, (s.k, s.k)).unwrap());
        });
        println!("conv {} fwdbwd {med:.3} {min:.3}", s.name);
        if passes {
            let (med, min) = time_ms(runs, || {
                std::hint::black_box(cpu.conv2d_backward_data(&gy, &ly, &w, &lw, &p, (s.hw, s.hw)).unwrap());
            });
            println!("conv {} pass bwd_data {med:.3} {min:.3}", s.name);
            let (med, min) = time_ms(runs, || {
                std::hint::black_box(cpu.conv2d_backward_weight(&x, &lx, &gy, &ly, &p, (s.k, s.k)).unwrap());
            });
            println!("conv {} pass bwd_weight {med:.3} {min:.3}", s.name);
        }
    }
}
