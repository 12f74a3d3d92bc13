"""The largest scene a GPU holds, predicted from measured peaks.

    python bench/capacity_fit.py SIDE_BY_SIDE.json [--memory-mib N]

Reads the forward rows of a `bench/side_by_side.py --json` file (official and libda3, each
model at three or more view counts) and, for each implementation and model:
- fits peak MiB = fixed + per_view x views (least squares), and reports the largest gap
  between a measured peak and the line (the fit is only as good as that gap is small:
  activations are linear in the views with flash attention, the weights are fixed);
- fits the median forward time = a + b x views + c x views^2 (attention is quadratic);
- predicts the largest scene that fits in N MiB (default: this process's free GPU memory,
  read with torch.cuda.mem_get_info, i.e. the whole GPU less this process's CUDA context),
  and the forward time the time fit gives for it.
A prediction, not a run: a forward at thousands of views takes tens of minutes.
"""
import argparse
import json
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--memory-mib", type=float, default=None)
    a = ap.parse_args()
    memory = a.memory_mib
    if memory is None:
        import torch
        free, total = torch.cuda.mem_get_info()
        memory = free / 2**20
        print(f"GPU {torch.cuda.get_device_name()}: {total / 2**20:.0f} MiB, {memory:.0f} MiB free to this process")
    rows = [r for r in json.load(open(a.json))
            if r.get("mode") == "forward" and r.get("peak_mib") and r.get("median_ms") and not r.get("error")]
    groups = {}
    for r in rows:
        key = (r["model"], r["impl"], bool(r.get("accelerate")))
        groups.setdefault(key, []).append(r)
    print(f"\n| model | impl | accelerate | views measured | fixed MiB | MiB per view | largest gap to the line "
          f"| largest scene in {memory:.0f} MiB | forward time there (fit) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for (model, impl, acc), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["views"])
        views = [float(r["views"]) for r in rs]
        if len(set(views)) < 3:
            print(f"| {model} | {impl} | {'on' if acc else 'off'} | {len(set(views))} view counts: too few to fit |")
            continue
        peaks = [float(r["peak_mib"]) for r in rs]
        per_view, fixed = np.polyfit(views, peaks, 1)
        gap = max(abs(p - (fixed + per_view * v)) for v, p in zip(views, peaks))
        largest = int((memory - fixed) // per_view)
        c2, c1, c0 = np.polyfit(views, [float(r["median_ms"]) for r in rs], 2)
        seconds = (c0 + c1 * largest + c2 * largest ** 2) / 1e3
        print(f"| {model} | {impl} | {'on' if acc else 'off'} | {', '.join(str(int(v)) for v in views)} | "
              f"{fixed:.0f} | {per_view:.2f} | {gap:.0f} | {largest} | {seconds:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
