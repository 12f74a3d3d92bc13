"""What is in GPU memory at the peak of a libda3 forward: the caching allocator's history.

libda3 is loaded into this Python process with ctypes after `import torch` (as in
bench/profile_libda3.py), so both use the same libtorch and the same caching allocator, whose
history (`torch.cuda.memory._record_memory_history`) then holds every block libda3 allocates.
The model is loaded first (its weights are the baseline), then the history records the calls
(the first eager one, the CUDA graph capture, the replays). Replaying the trace gives the moment
of the highest allocated total and the blocks alive then: their sizes and the libtorch
operations that allocated them (C++ frames, named by `dladdr`: libtorch's exported symbols).

    TORCH_SYMBOLIZE_MODE=dladdr python3 bench/memory_peak.py --lib DIR/libda3.so --model CKPT \
        [--views 1] [--calls 3] [--top 25]
"""
import argparse
import ctypes
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_libda3 import Lib  # noqa: E402

MIB = 1 << 20
# Frames that say which operation allocated a block (libtorch's exported symbols).
USEFUL = re.compile(r"at::native::|at::_ops::|at::cuda::|2at6native|2at4_ops|cudnn|cublas|da3cs_|da3_", re.I)


def op_of(frames):
    names = [f.get("name", "") for f in frames or []]
    useful = [n for n in names if USEFUL.search(n) and "Allocator" not in n]
    return " <- ".join(n[:90] for n in useful[:3]) or (names[0][:90] if names else "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--views", type=int, default=1)
    ap.add_argument("--hw", default="336x504")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    torch.cuda.init()
    lib = Lib(a.lib)
    handle = lib.create(a.model, True, 3)  # accelerate on, DA3_PRECISION_BF16
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    h, w = map(int, a.hw.split("x"))
    x = np.random.default_rng(0).standard_normal((a.views, 3, h, w), dtype=np.float32)
    torch.cuda.memory._record_memory_history(max_entries=1_000_000, context="alloc", stacks="all")
    for _ in range(a.calls):
        lib.forward(handle, x)
    torch.cuda.synchronize()
    snap = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    peak_stat = torch.cuda.max_memory_allocated()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; {a.model}, {a.views} view(s) {h}x{w}, "
          f"accelerate on, bf16, {a.calls} calls")
    print(f"after loading: {baseline / MIB:.1f} MiB allocated; peak over the calls (allocator stat): "
          f"{peak_stat / MIB:.1f} MiB")
    trace = snap["device_traces"][torch.cuda.current_device()]
    live, total, best, best_at, best_live = {}, 0, 0, -1, {}
    frees = "free_completed" if any(e["action"] == "free_completed" for e in trace) else "free_requested"
    for i, e in enumerate(trace):
        if e["action"] == "alloc":
            live[e["addr"]] = e
            total += e["size"]
            if total > best:
                best, best_at, best_live = total, i, dict(live)
        elif e["action"] == frees and e["addr"] in live:
            total -= live.pop(e["addr"])["size"]
    print(f"trace: {len(trace)} events; peak {best / MIB:.1f} MiB above the baseline at event {best_at} "
          f"(baseline + peak = {(baseline + best) / MIB:.1f} MiB)")
    by_op = {}
    for e in best_live.values():
        op = op_of(e.get("frames"))
        n, s = by_op.get(op, (0, 0))
        by_op[op] = (n + 1, s + e["size"])
    print(f"\nalive at the peak, by allocating operation ({len(best_live)} blocks):")
    for op, (n, s) in sorted(by_op.items(), key=lambda kv: -kv[1][1])[: a.top]:
        print(f"  {s / MIB:8.1f} MiB  {n:4d} block(s)  {op}")
    print(f"\nthe {a.top} largest blocks alive at the peak (event index of their allocation):")
    index = {id(e): i for i, e in enumerate(trace)}
    for e in sorted(best_live.values(), key=lambda e: -e["size"])[: a.top]:
        print(f"  {e['size'] / MIB:8.2f} MiB  at {index[id(e)]:6d}  {op_of(e.get('frames'))}")
    lib.lib.da3_free(handle)


if __name__ == "__main__":
    main()
