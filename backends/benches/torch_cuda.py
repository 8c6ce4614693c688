"""PyTorch reference for benches/cuda.rs on the same GPU: SGEMM 4096 (TF32 off, as cuBLAS in
Lamina) and conv2d forward and forward+backward for x [128, 64, 32, 32], w [64, 64, 3, 3],
padding 1, f32 (cuDNN, TF32 off).

    python3 backends/benches/torch_cuda.py
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

if not torch.cuda.is_available():
    print("skipped: PyTorch sees no CUDA GPU")
    sys.exit(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = torch.device("cuda:0")


def median_s(f, runs=20, warmup=3):
    for _ in range(warmup):
        f()
    torch.cuda.synchronize()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        f()
        torch.cuda.synchronize()
        t.append(time.perf_counter() - s)
    return statistics.median(t)


print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)} (median of the timed runs)")
n = 4096
a = torch.randn(n, n, device=dev)
b = torch.randn(n, n, device=dev)
t = median_s(lambda: a @ b)
print(f"  sgemm {n}x{n}x{n}: {t * 1e3:8.3f} ms  {2 * n**3 / t / 1e12:6.2f} TFLOP/s")

bn, c, hw, o, k = 128, 64, 32, 64, 3
x = torch.randn(bn, c, hw, hw, device=dev)
w = torch.randn(o, c, k, k, device=dev)
gy = torch.randn(bn, o, hw, hw, device=dev)
flop = 2.0 * bn * o * hw * hw * c * k * k


def fwd():
    with torch.no_grad():
        F.conv2d(x, w, padding=1)


def fwd_bwd():
    xr = x.detach().requires_grad_()
    wr = w.detach().requires_grad_()
    F.conv2d(xr, wr, padding=1).backward(gy)


print(f"  conv2d x [{bn}, {c}, {hw}, {hw}] w [{o}, {c}, {k}, {k}] pad 1, f32:")
for name, fn, fl in [("forward", fwd, flop), ("forward+backward", fwd_bwd, 3 * flop)]:
    t = median_s(fn)
    print(f"    {name:<17}{t * 1e3:8.3f} ms  {fl / t / 1e12:6.2f} TFLOP/s")
