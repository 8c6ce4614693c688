"""PyTorch reference for benches/conv.rs: conv2d forward and forward+backward (data and
weight) for x [64, 64, 32, 32], w [64, 64, 3, 3], padding 1, f32, on 2 threads.

    python3 backends/benches/torch_conv.py
"""
import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.set_num_interop_threads(1)


def median_ms(f, runs=15, warmup=3):
    for _ in range(warmup):
        f()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        f()
        t.append((time.perf_counter() - s) * 1e3)
    return statistics.median(t), min(t)


n, c, hw, o, k = 64, 64, 32, 64, 3
x = torch.randn(n, c, hw, hw)
w = torch.randn(o, c, k, k)
gy = torch.randn(n, o, hw, hw)
flop = 2.0 * n * o * hw * hw * c * k * k


def fwd():
    with torch.no_grad():
        F.conv2d(x, w, padding=1)


def fwd_bwd():
    xr = x.detach().requires_grad_()
    wr = w.detach().requires_grad_()
    y = F.conv2d(xr, wr, padding=1)
    y.backward(gy)


print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
print(f"conv2d x [{n}, {c}, {hw}, {hw}] w [{o}, {c}, {k}, {k}] pad 1, f32: median (min)")
for name, fn, fl in [("forward", fwd, flop), ("forward+backward", fwd_bwd, 3 * flop)]:
    med, mn = median_ms(fn)
    print(f"  {name:<17}{med:8.2f} ms ({mn:7.2f})  {fl / med / 1e6:6.1f} GFLOP/s ({fl / mn / 1e6:6.1f})")
