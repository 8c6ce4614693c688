//! The row-wise and elementwise ops of a ViT-Tiny/4 training step at batch 64 (4160 token rows
//! of width 192, MLP width 768, attention scores `[64, 3, 65, 65]`): layer norm forward and
//! backward, softmax over the scores and its backward, GELU forward and backward, the bias add and its
//! gradient (a sum over rows). Then ResNet-50's stem max pooling (3x3, stride 2, padding 1 over
//! `[16, 64, 112, 112]`, the 224x224 batch-16 step's) and its backward.
//!
//! `cargo bench -p backends --bench rows` (set `RAYON_NUM_THREADS`). Prints
//! `rows <name> <median ms> <min ms>` per op.

use backends::ops::{BinaryOp, Pool2dParams, ReduceOp, UnaryOp};
use backends::{Backend, CpuBackend, CpuStorage, Fused, Layout};

mod common;
use common::time_ms;

const ROWS: usize = 64 * 65;
const WIDTH: usize = 192;
const MLP: usize = 768;

fn fill(len: usize, s: usize) -> CpuStorage {
    CpuStorage::F32((0..len).map(|i| ((i * s + 3) % 17) as f32 * 0.15 - 1.2).collect())
}

fn report(name: &str, f: impl FnMut()) {
    let (med, min) = time_ms(21, f);
    println!("rows {name} {med:.3} {min:.3}");
}

fn main() {
    let cpu = CpuBackend;
    // As the tensor ops do before their first CPU op: freed buffers stay for reuse.
    backends::cpu::memory::retain_freed_memory();
    println!("threads {}", rayon::current_num_threads());
    fn bb<T>(v: T) {
        std::hint::black_box(v);
    }

    let lx = Layout::contiguous(&[ROWS, WIDTH]);
    let (x, g) = (fill(ROWS * WIDTH, 7), fill(ROWS * WIDTH, 5));
    let (w, b) = (fill(WIDTH, 3), fill(WIDTH, 11));
    let (_, mean, rstd) = cpu.layer_norm(&x, &lx, WIDTH, Some(&w), Some(&b), 1e-6).unwrap();
    report("layer_norm_fwd", || {
        bb(cpu.layer_norm(&x, &lx, WIDTH, Some(&w), Some(&b), 1e-6).unwrap());
    });
    report("layer_norm_bwd", || {
        bb(cpu.layer_norm_backward(&g, &lx, &x, &lx, WIDTH, &mean, &rstd, Some(&w)).unwrap());
    });

    let ls = Layout::contiguous(&[64, 3, 65, 65]);
    let s = fill(64 * 3 * 65 * 65, 13);
    report("softmax_fwd", || {
        bb(cpu.softmax(&s, &ls, 3, false).unwrap());
    });
    let (p, gp) = (cpu.softmax(&s, &ls, 3, false).unwrap(), fill(64 * 3 * 65 * 65, 5));
    report("softmax_bwd", || {
        bb(cpu.softmax_backward(&p, &ls, &gp, &ls, 3, false).unwrap());
    });

    let lh = Layout::contiguous(&[ROWS, MLP]);
    let (h, gh) = (fill(ROWS * MLP, 7), fill(ROWS * MLP, 5));
    report("gelu_fwd", || {
        bb(cpu.unary(UnaryOp::GeluErf, &h, &lh).unwrap());
    });
    report("gelu_bwd", || {
        bb(cpu.binary(BinaryOp::GeluBackward, &gh, &lh, &h, &lh).unwrap());
    });

    let bias = fill(MLP, 3);
    let lbias = Layout::contiguous(&[MLP]).broadcast_to(&[ROWS, MLP]).unwrap();
    report("bias_add", || {
        bb(cpu.binary(BinaryOp::Add, &h, &lh, &bias, &lbias).unwrap());
    });
    report("bias_grad", || {
        bb(cpu.reduce(ReduceOp::Sum, &gh, &lh, &[0], false).unwrap());
    });

    let (ps, p) = ([16, 64, 112, 112], Pool2dParams { stride: (2, 2), padding: (1, 1), ..Pool2dParams::square(3) });
    let (lp, xp) = (Layout::contiguous(&ps), fill(ps.iter().product(), 7));
    report("max_pool_fwd", || {
        bb(cpu.max_pool2d(&xp, &lp, &p).unwrap());
    });
    let (_, ip) = cpu.max_pool2d(&xp, &lp, &p).unwrap();
    let lo = Layout::contiguous(&[16, 64, 56, 56]);
    let go = fill(16 * 64 * 56 * 56, 5);
    report("max_pool_bwd", || {
        bb(cpu.max_pool2d_backward(&go, &lo, &ip, &lo, &ps).unwrap());
    });
}
