"""Tables and plot of the moee sweep: results.md, results.json, results.svg in this folder.

    python3 methods/results/moee/make_results.py SWEEP_DIR [BENCH_OUTPUT]

SWEEP_DIR is a `compare --out` folder; each run's numbers come from its summary.json (test
accuracy after fine-tuning) and from the method state in its best.safetensors (dense accuracy,
accuracy before fine-tuning, MACs per image averaged over 512 test images, parameters). Needs
`pip install safetensors numpy` (only to read the checkpoints' metadata)."""

import glob
import json
import os
import sys

from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
sweep = sys.argv[1]
bench = open(sys.argv[2]).read() if len(sys.argv) > 2 else None

runs = []
for d in sorted(glob.glob(os.path.join(sweep, "runs", "*"))):
    summ = os.path.join(d, "summary.json")
    if not os.path.exists(summ):
        continue
    s = json.load(open(summ))
    with safe_open(os.path.join(d, "best.safetensors"), "np") as f:
        user = json.loads(f.metadata()["user"])
    cfg = user["config"]
    rep = user["method"]["report"]
    blocks = user["method"]["blocks"]
    h = cfg["hparams"]
    label = f"{cfg['method']}[p={h['p']}" + (",fold_bias=true" if h.get("fold_bias") == "true" else "") + "]"
    runs.append({
        "label": label,
        "method": cfg["method"],
        "hparams": cfg["hparams"],
        "seed": cfg["seed"],
        "dense_acc": 100 * rep["dense_test_acc"],
        "before_acc": 100 * rep["extracted_test_acc"],
        "after_acc": 100 * s["test_acc"],
        "dense_macs": rep["dense_macs"],
        "macs": rep["extracted_macs"],
        "dense_params": rep["dense_params"],
        "params": rep["extracted_params"],
        "moe_blocks": sum(1 for b in blocks if b["routing"]),
        "blocks": [{k: b[k] for k in ("path", "clusters", "noise", "sampled", "union", "mean_active", "top_k", "sizes")} for b in blocks],
        "finetune_epochs": cfg["epochs"],
        "wall_seconds": s["wall_seconds"],
    })

for r in runs:
    r["mac_reduction"] = 100 * (1 - r["macs"] / r["dense_macs"])
    r["param_reduction"] = 100 * (1 - r["params"] / r["dense_params"])
    r["retained_before"] = 100 * r["before_acc"] / r["dense_acc"]
    r["retained_after"] = 100 * r["after_acc"] / r["dense_acc"]

with open(os.path.join(HERE, "results.json"), "w") as f:
    json.dump({"runs": runs, "bench": bench}, f, indent=1)

cmd = ""
if os.path.exists(os.path.join(sweep, "results.md")):
    # The fenced command of compare's results.md, without its language tag.
    cmd = open(os.path.join(sweep, "results.md")).read().split("```")[1].strip().removeprefix("sh").strip()
lines = ["# MoEE on the shipped ViT-Mini/4 (CIFAR-10)", ""]
lines += ["Written by `methods/results/moee/make_results.py` from the sweep below; see README.md for the setup.", ""]
lines += ["```sh", cmd, "```", ""]
lines += ["| run | MoE blocks | dense acc | extracted, before FT | after FT | retained (after) | MACs/img | MACs | params | params |",
          "|---|---|---|---|---|---|---|---|---|---|"]
for r in runs:
    lines.append(
        f"| {r['label']} | {r['moe_blocks']}/{len(r['blocks'])} | {r['dense_acc']:.2f} | {r['before_acc']:.2f} | {r['after_acc']:.2f} | "
        f"{r['retained_after']:.1f}% | {r['macs'] / 1e6:.2f}M | {-r['mac_reduction']:+.1f}% | {r['params']:,} | {-r['param_reduction']:+.1f}% |")
lines += ["", "Accuracies in % on the 10,000 CIFAR-10 test images; MACs per image averaged over 512 test images "
          "(routing makes them data-dependent; the dense model has "
          f"{runs[0]['dense_macs'] / 1e6:.2f}M and {runs[0]['dense_params']:,} parameters)." if runs else ""]
for r in runs:
    lines += ["", f"**{r['label']}** per block: " + "; ".join(
        f"{b['path']}: {b['clusters']} clusters ({b['noise']}/{b['sampled']} noise), kept {b['union']}, "
        f"{b['mean_active']:.0f} active" + (f", top-{b['top_k']}" if b['top_k'] else "") for b in r["blocks"])]
if bench:
    lines += ["", "## Inference time", "", "```", bench.strip(), "```"]
open(os.path.join(HERE, "results.md"), "w").write("\n".join(lines) + "\n")

# Accuracy against MACs: before and after fine-tuning, MoEE's threshold sweep and MoEfication.
W, H, L, R, T, B = 640, 420, 70, 20, 30, 50
pts = [(r["macs"] / 1e6, r["before_acc"], r["after_acc"], r) for r in runs]
if pts:
    xs = [p[0] for p in pts] + [runs[0]["dense_macs"] / 1e6]
    ys = [p[1] for p in pts] + [p[2] for p in pts] + [runs[0]["dense_acc"]]
    x0, x1 = min(xs) * 0.97, max(xs) * 1.02
    y0, y1 = min(ys) - 2, max(ys) + 2
    sx = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    sy = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{(W + L) / 2}" y="{H - 12}" text-anchor="middle">MACs per image (M)</text>',
           f'<text x="16" y="{(H + T) / 2}" transform="rotate(-90 16 {(H + T) / 2})" text-anchor="middle">test accuracy (%)</text>',
           f'<text x="{(W + L) / 2}" y="18" text-anchor="middle">MoEE on ViT-Mini/4, CIFAR-10: accuracy against MACs over p</text>']
    for i in range(6):
        xv, yv = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        svg.append(f'<text x="{sx(xv)}" y="{H - B + 16}" text-anchor="middle">{xv:.1f}</text>')
        svg.append(f'<text x="{L - 6}" y="{sy(yv) + 4}" text-anchor="end">{yv:.1f}</text>')
    dx, dy = sx(runs[0]["dense_macs"] / 1e6), sy(runs[0]["dense_acc"])
    svg.append(f'<circle cx="{dx}" cy="{dy}" r="5" fill="black"/><text x="{dx - 8}" y="{dy - 8}" text-anchor="end">dense</text>')
    for key, color, name in [(1, "#d62728", "before fine-tuning"), (2, "#1f77b4", "after fine-tuning")]:
        moee = sorted([p for p in pts if p[3]["method"] == "moee" and p[3]["hparams"].get("fold_bias") != "true"])
        if moee:
            path = " ".join(f"{'M' if i == 0 else 'L'}{sx(p[0]):.1f},{sy(p[key]):.1f}" for i, p in enumerate(moee))
            svg.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for p in pts:
            x, y = sx(p[0]), sy(p[key])
            if p[3]["method"] == "moefication":
                svg.append(f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8" fill="none" stroke="{color}" stroke-width="2"/>')
            elif p[3]["hparams"].get("fold_bias") == "true":
                svg.append(f'<path d="M{x - 5},{y + 4} L{x + 5},{y + 4} L{x},{y - 5} Z" fill="none" stroke="{color}" stroke-width="2"/>')
            else:
                svg.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{color}"/>')
                if key == 2:
                    svg.append(f'<text x="{x + 6}" y="{y - 6}">p={p[3]["hparams"]["p"]}</text>')
    ly = T + 10
    for color, name in [("#d62728", "extracted, before fine-tuning"), ("#1f77b4", "after fine-tuning")]:
        svg.append(f'<circle cx="{W - 230}" cy="{ly}" r="4" fill="{color}"/><text x="{W - 220}" y="{ly + 4}">{name}</text>')
        ly += 16
    svg.append(f'<rect x="{W - 234}" y="{ly - 4}" width="8" height="8" fill="none" stroke="gray" stroke-width="2"/><text x="{W - 220}" y="{ly + 4}">MoEfication (same p, same MACs)</text>')
    ly += 16
    svg.append(f'<path d="M{W - 235},{ly + 4} L{W - 225},{ly + 4} L{W - 230},{ly - 5} Z" fill="none" stroke="gray" stroke-width="2"/><text x="{W - 220}" y="{ly + 4}">MoEE with folded biases</text>')
    svg.append("</svg>")
    open(os.path.join(HERE, "results.svg"), "w").write("\n".join(svg) + "\n")
print(len(runs), "runs")
