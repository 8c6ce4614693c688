#!/usr/bin/env python3
"""Runs Lamina's benchmarks and their PyTorch references in one go, with the same thread counts,
and prints the ratio tables (Lamina / PyTorch time: lower is better) as Markdown:

* kernel level: backends/benches/gemm.rs and conv.rs vs backends/benches/torch_kernels.py;
* training steps: layers/benches/train_step.rs vs layers/benches/torch_train_step.py (whole
  models: forward, cross-entropy, backward, SGD step; and one ViT-Tiny block forward + backward).

    python3 backends/benches/run_vs_torch.py [--threads 2 1] [--filter NAME] [--no-gemm]
        [--no-conv] [--no-steps] [--rounds N] [--out FILE]

Lamina and PyTorch alternate row by row (one process each per conv shape and per model; the
SGEMM sizes form one row group) within each thread count, so a burst of load from other
processes hits both sides of a row. With `--rounds N` each row group runs N times, alternating
sides (Lamina, PyTorch, Lamina, ...), and each side's time is the median of its N medians: on a
machine whose load swings within minutes the ratio then moves much less between runs. The
training-step rows also check that both sides' models have the same number of parameters.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TORCH_KERNELS = [sys.executable, os.path.join(HERE, "torch_kernels.py")]
TORCH_STEPS = [sys.executable, os.path.join(ROOT, "layers", "benches", "torch_train_step.py")]
# Rows of layers/benches/train_step.rs: (name, batch).
STEP_ROWS = [("resnet20", 128), ("resnet18-cifar", 64), ("mobilenetv2-cifar", 64), ("vit-tiny-4", 64),
             ("resnet50", 16), ("vit-tiny-block", 128)]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_binaries():
    """Builds the three benchmarks once and returns {name: executable}."""
    out = subprocess.run(
        ["cargo", "bench", "-p", "backends", "-p", "layers", "--bench", "gemm", "--bench", "conv",
         "--bench", "train_step", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    exes = {}
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            exes[msg["target"]["name"]] = msg["executable"]
    return exes


LINE = re.compile(r"^(sgemm|conv|step) (\S+)(?: (fwd|fwdbwd|train))? ([\d.]+) ([\d.]+)$")
PARAMS = re.compile(r"^params (\S+) (\d+)$")


def parse(text):
    """({(kind, name, pass): (median, min)}, {name: parameter count}) from benchmark output."""
    res, params = {}, {}
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if m:
            kind, name, ps, med, mn = m.groups()
            res[(kind, name, ps or "")] = (float(med), float(mn))
        m = PARAMS.match(line.strip())
        if m:
            params[m.group(1)] = int(m.group(2))
    return res, params


def run(cmd, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def median_of_runs(acc):
    """{key: (median, min)} over rounds from {key: [(median, min) per round]}: the median of the
    rounds' medians and the least minimum."""
    out = {}
    for key, runs in acc.items():
        meds = sorted(m for m, _ in runs)
        out[key] = (meds[len(meds) // 2], min(mn for _, mn in runs))
    return out


def conv_names():
    with open(os.path.join(HERE, "kernel_shapes.txt")) as fh:
        return [line.split()[0] for line in fh if line.strip() and not line.startswith("#")]


def row_groups(args, exes):
    """(table, names kept, Lamina command, PyTorch command without `--threads`) per row group, in
    run order."""
    groups = []
    if not args.no_gemm:
        groups.append(("kernels", None, [exes["gemm"]], TORCH_KERNELS + ["--no-conv"]))
    if not args.no_conv:
        for name in conv_names():
            if args.filter in name:
                groups.append(("kernels", name, [exes["conv"], name],
                               TORCH_KERNELS + ["--no-gemm", "--filter", name]))
    if not args.no_steps:
        for name, _ in STEP_ROWS:
            if args.filter in name:
                groups.append(("steps", name, [exes["train_step"], name], TORCH_STEPS + ["--filter", name]))
    return groups


def kernel_table(rows):
    out = ["| benchmark | pass | Lamina ms | PyTorch ms | ratio |", "|---|---|---:|---:|---:|"]
    for (kind, name, ps), ours, theirs, _ in rows:
        label = f"sgemm {name}" if kind == "sgemm" else name
        out.append(f"| {label} | {ps or 'mm'} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")
    return out


def step_table(rows):
    batch = dict(STEP_ROWS)
    out = ["| model | batch | step | parameters | Lamina ms | PyTorch ms | ratio |", "|---|---:|---|---:|---:|---:|---:|"]
    for (_, name, ps), ours, theirs, params in rows:
        what = "fwd+loss+bwd+SGD" if ps == "train" else "fwd+bwd"
        out.append(f"| {name} | {batch[name]} | {what} | {params:,} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--filter", default="", help="only conv shapes and models whose name contains this")
    ap.add_argument("--no-gemm", action="store_true")
    ap.add_argument("--no-conv", action="store_true")
    ap.add_argument("--no-steps", action="store_true")
    ap.add_argument("--rounds", type=int, default=1, help="alternating runs per row group (median taken)")
    ap.add_argument("--out", help="also write the Markdown here")
    args = ap.parse_args()

    exes = bench_binaries()
    version = run(TORCH_KERNELS + ["--no-gemm", "--no-conv", "--threads", "1"], 1).split()[1]
    groups = row_groups(args, exes)
    lines = [f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); PyTorch {version}; load average before: "
             f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; times in ms (median of runs"
             f"{f', median over {args.rounds} alternating rounds' if args.rounds > 1 else ''}; "
             f"ratio = Lamina / PyTorch, lower is better)", ""]
    for threads in args.threads:
        rows = {"kernels": [], "steps": []}
        for table, keep, lamina_cmd, torch_cmd in groups:
            ours, our_params = {}, {}
            theirs, their_params = {}, {}
            for _ in range(max(1, args.rounds)):
                o, our_params = parse(run(lamina_cmd, threads))
                t, their_params = parse(run(torch_cmd + ["--threads", str(threads)], threads))
                for acc, res in ((ours, o), (theirs, t)):
                    for key, times in res.items():
                        acc.setdefault(key, []).append(times)
            ours, theirs = median_of_runs(ours), median_of_runs(theirs)
            for name, n in our_params.items():
                if their_params.get(name) != n:
                    sys.exit(f"{name}: Lamina has {n} parameters, PyTorch {their_params.get(name)}")
            for key, (med, _) in ours.items():
                if key in theirs and (keep is None or key[1] == keep):
                    rows[table].append((key, med, theirs[key][0], our_params.get(key[1])))
        plural = "s" if threads > 1 else ""
        new = []
        if rows["kernels"]:
            new += [f"### Kernels, {threads} thread{plural}", ""] + kernel_table(rows["kernels"]) + [""]
        if rows["steps"]:
            new += [f"### Training steps, {threads} thread{plural}", ""] + step_table(rows["steps"]) + [""]
        lines += new
        print("\n".join(new), flush=True)
    lines.append(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
