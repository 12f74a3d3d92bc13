"""Where libda3's GPU time goes: the forward (`da3_infer_preprocessed`) under torch.profiler.

libda3 is loaded into this Python process with ctypes after `import torch`, so both use the
same libtorch and CUPTI sees every kernel the library launches (also those replayed from its
CUDA graphs). Kernels are grouped by name into matrix products, attention, convolutions,
normalisations and the rest; the table gives GPU milliseconds per forward and the share of
each group, and the FLOP count is set against the measured time.

    python3 bench/profile_libda3.py --lib DIR/libda3.so --model CKPT [--views 1,16,64] [--out FILE]
"""
import argparse
import ctypes
import re
import time
from collections import defaultdict

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

GROUPS = [
    ("attention", re.compile(r"flash|fmha|sdpa|attention|attn", re.I)),
    ("convolution", re.compile(r"conv|fprop|dgrad|winograd|implicit|nhwc.*(kernel|xmma)", re.I)),
    ("matrix product", re.compile(r"gemm|nvjet|xmma|cutlass|cublas|sm90_|sm80_", re.I)),
    ("normalisation", re.compile(r"layer_norm|layernorm|norm", re.I)),
    ("resampling", re.compile(r"upsample|interpolate|bicubic|bilinear", re.I)),
    ("copy / cast / layout", re.compile(r"copy|cast|contiguous|cat|index|gather|transpose|permute", re.I)),
]


def group_of(name: str) -> str:
    for group, pattern in GROUPS:
        if pattern.search(name):
            return group
    return "other element-wise"


class Lib:
    def __init__(self, path: str):
        self.lib = ctypes.CDLL(path)
        self.lib.da3_create.argtypes = [ctypes.c_char_p, ctypes.c_bool, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
        self.lib.da3_infer_preprocessed.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                                                    ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p,
                                                    ctypes.POINTER(ctypes.c_void_p)]
        self.lib.da3_result_free.argtypes = [ctypes.c_void_p]
        self.lib.da3_free.argtypes = [ctypes.c_void_p]
        self.lib.da3_last_error_message.restype = ctypes.c_char_p

    def check(self, status: int, what: str):
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: {self.lib.da3_last_error_message().decode()}")

    def create(self, model: str, accelerate: bool, precision: int):
        handle = ctypes.c_void_p()
        self.check(self.lib.da3_create(model.encode(), accelerate, precision, ctypes.byref(handle)), "da3_create")
        return handle

    def forward(self, handle, x: np.ndarray):
        n, _, h, w = x.shape
        result = ctypes.c_void_p()
        ptr = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self.check(self.lib.da3_infer_preprocessed(handle, ptr, n, h, w, None, ctypes.byref(result)), "da3_infer_preprocessed")
        self.lib.da3_result_free(result)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--views", default="1,16,64")
    ap.add_argument("--hw", default="336x504")
    ap.add_argument("--accelerate", default="off,on")
    ap.add_argument("--profiled-calls", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.cuda.init()
    lib = Lib(a.lib)
    h, w = map(int, a.hw.split("x"))
    lines = [f"# libda3 forward profile: {torch.cuda.get_device_name()}, torch {torch.__version__}",
             f"model {a.model}, input {h}x{w}, bf16; GPU ms per forward from torch.profiler (CUPTI) kernel times", ""]
    for accel in a.accelerate.split(","):
        handle = lib.create(a.model, accel == "on", 3)  # DA3_PRECISION_BF16
        for n in map(int, a.views.split(",")):
            x = np.random.default_rng(0).standard_normal((n, 3, h, w), dtype=np.float32)
            for _ in range(3):
                lib.forward(handle, x)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(a.profiled_calls):
                    lib.forward(handle, x)
                torch.cuda.synchronize()
            wall = (time.perf_counter() - t0) * 1e3 / a.profiled_calls
            per_group = defaultdict(float)
            per_kernel = defaultdict(float)
            for e in prof.key_averages():
                us = e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
                if us <= 0 or e.key.startswith("ProfilerStep"):
                    continue
                per_group[group_of(e.key)] += us / 1e3 / a.profiled_calls
                per_kernel[e.key] += us / 1e3 / a.profiled_calls
            total = sum(per_group.values())
            lines.append(f"## accelerate {accel}, {n} view(s): wall {wall:.1f} ms per forward (profiled), "
                         f"GPU kernels {total:.1f} ms")
            lines.append("")
            lines.append("| group | GPU ms | share |")
            lines.append("|---|---:|---:|")
            for group, ms in sorted(per_group.items(), key=lambda kv: -kv[1]):
                lines.append(f"| {group} | {ms:.2f} | {100 * ms / max(total, 1e-9):.0f} % |")
            lines.append("")
            lines.append("top kernels:")
            for name, ms in sorted(per_kernel.items(), key=lambda kv: -kv[1])[:12]:
                lines.append(f"- {ms:8.2f} ms  {group_of(name):<22} {name[:150]}")
            lines.append("")
            print("\n".join(lines[-(len(per_group) + 18):]), flush=True)
        lib.lib.da3_free(handle)
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
