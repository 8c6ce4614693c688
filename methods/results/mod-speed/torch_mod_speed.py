"""PyTorch reference for `cargo bench -p methods --bench mod_speed`: the same models (ResNet50,
ResNet50-MoD, ResNet75-MoD with c = 64, top-k selection), written here from the paper's
description of the MoD block, timed the same way: inference (eval, no grad) and a training step
(forward, cross-entropy, backward, SGD with momentum 0.9 and weight decay 5e-4), at 224x224
(ImageNet stem, 1000 classes) and 32x32 (CIFAR stem, 10 classes), batch 1 and 32, interleaved
rounds after one warm-up pass each, median per model and speed-up over ResNet50.

    pip install torch
    python3 methods/results/mod-speed/torch_mod_speed.py [--threads 2] [--rounds 5]
        [--sizes 224,32] [--batches 1,32] [--passes infer,train]
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def bn(c):
    return nn.BatchNorm2d(c)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3 convolution)."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        out = planes * 4
        self.branch = nn.Sequential(
            nn.Conv2d(cin, planes, 1, bias=False), bn(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False), bn(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, out, 1, bias=False), bn(out))
        self.down = None
        if stride != 1 or cin != out:
            self.down = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), bn(out))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return F.relu(self.branch(x) + idt)


class ModBottleneck(nn.Module):
    """The paper's MoD block over C channels with a Bottleneck branch of width k -> k/4 -> k:
    bias-free selector C -> C/16 -> C (ReLU, sigmoid), per-sample top-k (descending), the branch
    on the gathered channels, scaled by their scores, added to the first k channels, ReLU."""

    def __init__(self, channels, c, r=16):
        super().__init__()
        self.k = channels // c
        k, m = self.k, max(self.k // 4, 1)
        self.fc1 = nn.Linear(channels, channels // r, bias=False)
        self.fc2 = nn.Linear(channels // r, channels, bias=False)
        self.branch = nn.Sequential(
            nn.Conv2d(k, m, 1, bias=False), bn(m), nn.ReLU(inplace=True),
            nn.Conv2d(m, m, 3, 1, 1, bias=False), bn(m), nn.ReLU(inplace=True),
            nn.Conv2d(m, k, 1, bias=False), bn(k))

    def forward(self, x):
        b, c, h, w = x.shape
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        scores, idx = s.topk(self.k, dim=1, sorted=True)
        sel = torch.gather(x, 1, idx[:, :, None, None].expand(b, self.k, h, w))
        out = self.branch(sel) * scores[:, :, None, None]
        y = torch.cat([x[:, :self.k] + out, x[:, self.k:]], 1)
        return F.relu(y)


def resnet(layout, mod, imagenet, classes, c=64):
    if imagenet:
        stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), bn(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    else:
        stem = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), bn(64), nn.ReLU(inplace=True)]
    layers, cin = list(stem), 64
    for s, (n, planes) in enumerate(zip(layout, [64, 128, 256, 512])):
        for j in range(n):
            stride = 2 if (j == 0 and s > 0) else 1
            if mod and j % 2 == 1:
                layers.append(ModBottleneck(cin, c))
            else:
                layers.append(Bottleneck(cin, planes, stride))
                cin = planes * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def models(size):
    imagenet = size == 224
    classes = 1000 if imagenet else 10
    return [
        ("resnet50" if imagenet else "resnet50-cifar", resnet([3, 4, 6, 3], False, imagenet, classes)),
        ("resnet50-mod", resnet([3, 4, 6, 3], True, imagenet, classes)),
        ("resnet75-mod", resnet([3, 4, 14, 3], True, imagenet, classes)),
    ]


def table(title, rows):
    med = lambda t: sorted(t)[len(t) // 2]
    base = med(rows[0][1])
    print(f"\n{title}: median of {len(rows[0][1])} interleaved rounds")
    print(f"| model | ms | min | max | speed-up vs {rows[0][0]} |")
    print("|---|---:|---:|---:|---:|")
    for name, t in rows:
        m = med(t)
        print(f"| {name} | {m * 1e3:.1f} | {min(t) * 1e3:.1f} | {max(t) * 1e3:.1f} | x{base / m:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="224,32")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--passes", default="infer,train")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    passes = a.passes.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.rounds} rounds")
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in models(224)}
    print("parameters (224, 1000 classes): " + ", ".join(f"{n} {v / 1e6:.2f}M" for n, v in params.items()))
    for size in map(int, a.sizes.split(",")):
        for batch in map(int, a.batches.split(",")):
            classes = 1000 if size == 224 else 10
            x = torch.randn(batch, 3, size, size)
            y = torch.arange(batch) % classes
            if "infer" in passes:
                nets = models(size)
                times = [[] for _ in nets]
                with torch.no_grad():
                    for n in nets:
                        n[1].eval()
                    for r in range(a.rounds + 1):
                        for i, (_, net) in enumerate(nets):
                            t = time.perf_counter()
                            net(x)
                            if r > 0:
                                times[i].append(time.perf_counter() - t)
                table(f"inference, {size}x{size}, batch {batch}", [(n, t) for (n, _), t in zip(nets, times)])
            if "train" in passes:
                nets = models(size)
                opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for _, m in nets]
                times = [[] for _ in nets]
                for r in range(a.rounds + 1):
                    for i, ((_, net), opt) in enumerate(zip(nets, opts)):
                        net.train()
                        t = time.perf_counter()
                        F.cross_entropy(net(x), y).backward()
                        opt.step()
                        opt.zero_grad()
                        if r > 0:
                            times[i].append(time.perf_counter() - t)
                table(f"training step, {size}x{size}, batch {batch}", [(n, t) for (n, _), t in zip(nets, times)])


if __name__ == "__main__":
    main()
