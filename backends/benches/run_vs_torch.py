#!/usr/bin/env python3
"""Runs Lamina's kernel benchmarks (benches/gemm.rs, benches/conv.rs) and the PyTorch reference
(benches/torch_kernels.py) in one go, with the same thread counts, and prints the ratio tables
(Lamina / PyTorch time: lower is better) as Markdown.

    python3 backends/benches/run_vs_torch.py [--threads 1 2] [--filter NAME] [--no-gemm] [--out FILE]

Lamina and PyTorch alternate shape group by shape group within each thread count, so a burst of
load from other processes hits both sides; run it twice and distrust ratios that move a lot.
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
    """Builds the two benchmarks once and returns {name: executable}."""
    out = subprocess.run(
        ["cargo", "bench", "-p", "backends", "--bench", "gemm", "--bench", "conv", "--no-run",
         "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    exes = {}
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            exes[msg["target"]["name"]] = msg["executable"]
    return exes


LINE = re.compile(r"^(sgemm|conv) (\S+)(?: (fwd|fwdbwd))? ([\d.]+) ([\d.]+)$")


def parse(text):
    """{(kind, name, pass): (median, min)} from benchmark output."""
    res = {}
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if m:
            kind, name, ps, med, mn = m.groups()
            res[(kind, name, ps or "")] = (float(med), float(mn))
    return res


def run(cmd, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--filter", default="", help="only conv shapes whose name contains this")
    ap.add_argument("--no-gemm", action="store_true")
    ap.add_argument("--no-conv", action="store_true")
    ap.add_argument("--out", help="also write the Markdown here")
    args = ap.parse_args()

    exes = bench_binaries()
    torch_py = [sys.executable, os.path.join(HERE, "torch_kernels.py")]
    version = run(torch_py + ["--no-gemm", "--no-conv"], 1).split()[1]
    groups = []
    if not args.no_gemm:
        groups.append(("gemm", [exes["gemm"]], ["--no-conv"]))
    if not args.no_conv:
        groups.append(("conv", [exes["conv"], args.filter] if args.filter else [exes["conv"]],
                       ["--no-gemm", "--filter", args.filter]))

    lines = [f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); PyTorch {version}; "
             f"times in ms (median of runs; ratio = Lamina / PyTorch, lower is better)", ""]
    for threads in args.threads:
        rows = []
        for _, lamina_cmd, torch_args in groups:
            ours = parse(run(lamina_cmd, threads))
            theirs = parse(run(torch_py + ["--threads", str(threads)] + torch_args, threads))
            for key, (med, _) in ours.items():
                if key in theirs:
                    rows.append((key, med, theirs[key][0]))
        lines += [f"### {threads} thread{'s' if threads > 1 else ''}", "",
                  "| benchmark | pass | Lamina ms | PyTorch ms | ratio |", "|---|---|---:|---:|---:|"]
        for (kind, name, ps), ours_ms, theirs_ms in rows:
            label = f"sgemm {name}" if kind == "sgemm" else name
            lines.append(f"| {label} | {ps or 'mm'} | {ours_ms:.2f} | {theirs_ms:.2f} | {ours_ms / theirs_ms:.2f} |")
        lines.append("")
        print("\n".join(lines[-len(rows) - 5:]), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
