"""PyTorch reference for benches/gemm.rs and benches/conv.rs: SGEMM n = 256..2048 and conv2d
forward / forward+backward (data and weight) over the shapes in kernel_shapes.txt, f32, with
`torch.set_num_threads(THREADS)`. Prints the same `sgemm ...` / `conv ...` lines as the Rust
benchmarks (median and min ms), so run_vs_torch.py can pair them.

    python3 backends/benches/torch_kernels.py --threads 2 [--filter NAME_SUBSTRING] [--no-gemm]
"""
import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def time_ms(f, runs=7, warmup=2):
    for _ in range(warmup):
        f()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        f()
        t.append((time.perf_counter() - s) * 1e3)
    return statistics.median(t), min(t)


def shapes():
    with open(os.path.join(HERE, "kernel_shapes.txt")) as fh:
        for line in fh:
            if line.strip() and not line.startswith("#"):
                name, *v = line.split()
                yield (name, *map(int, v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filter", default="")
    ap.add_argument("--no-gemm", action="store_true")
    ap.add_argument("--no-conv", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}")
    if not args.no_gemm:
        for n in [256, 512, 1024, 2048]:
            a, b = torch.randn(n, n), torch.randn(n, n)
            med, mn = time_ms(lambda: torch.mm(a, b), runs=5 if n >= 2048 else 15, warmup=1)
            print(f"sgemm {n} {med:.3f} {mn:.3f}", flush=True)
    if args.no_conv:
        return
    for name, n, c, hw, o, k, stride, pad, groups in shapes():
        if args.filter not in name:
            continue
        x = torch.randn(n, c, hw, hw)
        w = torch.randn(o, c // groups, k, k)
        with torch.no_grad():
            y = F.conv2d(x, w, stride=stride, padding=pad, groups=groups)
        gy = torch.randn_like(y)

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, stride=stride, padding=pad, groups=groups)

        def fwd_bwd():
            xr = x.detach().requires_grad_()
            wr = w.detach().requires_grad_()
            F.conv2d(xr, wr, stride=stride, padding=pad, groups=groups).backward(gy)

        med, mn = time_ms(fwd)
        print(f"conv {name} fwd {med:.3f} {mn:.3f}", flush=True)
        med, mn = time_ms(fwd_bwd)
        print(f"conv {name} fwdbwd {med:.3f} {mn:.3f}", flush=True)


if __name__ == "__main__":
    main()
