"""PyTorch reference for benches/train_step.rs: the same training steps (forward, cross-entropy,
backward, SGD with momentum 0.9 and weight decay 5e-4 on every parameter) on the same models and
batch shapes, f32, with `torch.set_num_threads(THREADS)` and one interop thread. The models are the
reference modules of layers/tests/fixtures/make_fixtures.py, which carry Lamina's parameter names
(CIFAR ResNet with option-A shortcuts, torchvision ResNet-18 with the CIFAR stem, torchvision
MobileNetV2 with the CIFAR strides, timm ViT). Prints the same `params ...` / `step ...` lines as
the Rust benchmark (median and min ms), so run_vs_torch.py can pair them and compare the counts.

    python3 layers/benches/torch_train_step.py --threads 2 [--filter NAME_SUBSTRING]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "backends", "benches"))
import make_fixtures as ref  # noqa: E402  (sets one thread on import; main() sets the count after)
import torch_kernels  # noqa: E402  (the shared timing helper)

CLASSES = 10
RUNS = 7


def models():
    """(name, batch, input size, classes, constructor) of the whole-model rows (3 channels)."""
    return [
        ("resnet20", 128, 32, CLASSES, lambda: ref.CifarResNet(20, CLASSES)),
        ("resnet18-cifar", 64, 32, CLASSES, lambda: ref.ResNet(*ref.RESNETS[18], num_classes=CLASSES, cifar_stem=True)),
        ("mobilenetv2-cifar", 64, 32, CLASSES, lambda: ref.MobileNetV2(CLASSES, cifar=True)),
        ("vit-tiny-4", 64, 32, CLASSES, lambda: ref.VisionTransformer(32, 4, 192, 12, 3, CLASSES)),
        ("resnet50", 16, 224, 1000, lambda: ref.ResNet(*ref.RESNETS[50], num_classes=1000)),
    ]


# The encoder-block row: name, batch, tokens, dim, heads, MLP ratio.
BLOCK = ("vit-tiny-block", 128, 65, 192, 3, 4.0)


def time_ms(f):
    """Median and min ms of RUNS calls after three warm-up calls (as the Rust side: one checked
    step, then common::time_ms's two warm-up calls)."""
    return torch_kernels.time_ms(f, runs=RUNS, warmup=3)


def count(m):
    return sum(p.numel() for p in m.parameters())


def model_step(make, batch, size, classes):
    model = make().train()
    x = torch.rand(batch, 3, size, size) * 2 - 1
    y = torch.randint(0, classes, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return count(model), time_ms(step)


def block_step():
    _, batch, tokens, dim, heads, ratio = BLOCK
    block = ref.Block(dim, heads, ratio).train()
    x = torch.rand(batch, tokens, dim) * 2 - 1
    gy = torch.rand(batch, tokens, dim) * 2 - 1

    def step():
        block.zero_grad()
        xr = x.detach().requires_grad_()
        block(xr).backward(gy)

    return count(block), time_ms(step)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
    for name, batch, size, classes, make in models():
        if args.filter in name:
            params, (med, mn) = model_step(make, batch, size, classes)
            print(f"params {name} {params}")
            print(f"step {name} train {med:.3f} {mn:.3f}", flush=True)
    if args.filter in BLOCK[0]:
        params, (med, mn) = block_step()
        print(f"params {BLOCK[0]} {params}")
        print(f"step {BLOCK[0]} fwdbwd {med:.3f} {mn:.3f}", flush=True)


if __name__ == "__main__":
    main()
