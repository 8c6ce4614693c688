"""The speed-up table of README.md from the two outputs in this folder:

    python3 methods/results/mod-speed/side_by_side.py methods/results/mod-speed/lamina.txt methods/results/mod-speed/torch.txt
"""

import re
import sys


def parse(path):
    """{(configuration, model): (median ms, speed-up)} of a mod_speed-style output."""
    out, title = {}, None
    for line in open(path):
        m = re.match(r"^(inference|training step), (.*): median", line)
        if m:
            title = f"{m.group(1)}, {m.group(2)}"
            continue
        m = re.match(r"^\| ([\w./-]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| x([\d.]+) \|", line)
        if m and title:
            model = "resnet50" if m.group(1) == "resnet50-cifar" else m.group(1)
            out[(title, model)] = (float(m.group(2)), float(m.group(3)))
    return out


ours, torch = parse(sys.argv[1]), parse(sys.argv[2])
print("| configuration | ResNet50 ms (Lamina / PyTorch) | ResNet50-MoD speed-up (Lamina / PyTorch) | ResNet75-MoD speed-up (Lamina / PyTorch) |")
print("|---|---:|---:|---:|")
for title in dict.fromkeys(t for t, _ in ours):
    if (title, "resnet50") not in torch:
        continue
    r = [ours[(title, "resnet50")][0], torch[(title, "resnet50")][0]]
    cells = [f"{r[0]:.0f} / {r[1]:.0f}"]
    for m in ["resnet50-mod", "resnet75-mod"]:
        cells.append(f"x{ours[(title, m)][1]:.2f} / x{torch[(title, m)][1]:.2f}")
    print(f"| {title} | " + " | ".join(cells) + " |")
