"""PyTorch's figures for the ops of `cargo bench -p backends --bench rows` (the row-wise and
elementwise ops of a ViT-Tiny/4 step at batch 64), same shapes, same output format.

python3 backends/benches/torch_rows.py --threads 2
"""

import argparse

import torch
import torch.nn.functional as F

from torch_kernels import time_ms

ROWS, WIDTH, MLP = 64 * 65, 192, 768


def report(name, f):
    med, low = time_ms(f, runs=21, warmup=3)
    print(f"rows {name} {med:.3f} {low:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {torch.get_num_threads()} torch {torch.__version__}")
    torch.manual_seed(0)
    x, g = torch.randn(ROWS, WIDTH), torch.randn(ROWS, WIDTH)
    w, b = torch.randn(WIDTH), torch.randn(WIDTH)
    xr = x.clone().requires_grad_()
    wr, br = w.clone().requires_grad_(), b.clone().requires_grad_()
    with torch.no_grad():
        report("layer_norm_fwd", lambda: F.layer_norm(x, (WIDTH,), w, b, 1e-6))

    def ln_fwd_bwd():
        y = F.layer_norm(xr, (WIDTH,), wr, br, 1e-6)
        torch.autograd.grad(y, (xr, wr, br), g)

    report("layer_norm_fwd_bwd", ln_fwd_bwd)
    s = torch.randn(64, 3, 65, 65)
    with torch.no_grad():
        report("softmax_fwd", lambda: torch.softmax(s, -1))
    p, gp = torch.softmax(s, -1), torch.randn(64, 3, 65, 65)
    report("softmax_bwd", lambda: torch._softmax_backward_data(gp, p, -1, torch.float32))
    h, gh = torch.randn(ROWS, MLP), torch.randn(ROWS, MLP)
    with torch.no_grad():
        report("gelu_fwd", lambda: F.gelu(h))
    report("gelu_bwd", lambda: torch.ops.aten.gelu_backward(gh, h))
    bias = torch.randn(MLP)
    with torch.no_grad():
        report("bias_add", lambda: h + bias)
        report("bias_grad", lambda: gh.sum(0))


if __name__ == "__main__":
    main()
