"""FP8 matrix products for DA3's projections: speed and error against bf16, before any library code.

Issue 12's FP8 step names `torch._scaled_mm` (E4M3 inputs with scales, bf16 output) for the
transformer's matrix products. This times, for da3-large's four products of one block (qkv,
proj, fc1, fc2) at a given view count, the bf16 product libda3 runs (`linear`, bias in the
epilogue) against the FP8 one with the quantisation of its input included (the amax, the scale
and the cast: what a forward would add), with per-tensor and with row-wise scales (per token
for the input, per output channel for the weight), and reports the relative error of each
against the fp32 product of the same bf16 operands. The weights are quantised once (as a loader
would). Times are CUDA-event medians; the block total x 24 layers predicts the forward's change.

    python3 bench/fp8_linear.py [--views 16,64] [--device cuda] [--iters 20] [--tokens 870]

On the CPU (`--device cpu --views 1 --tokens 64`) it only checks that it runs.
"""
import argparse
import time

import torch
import torch.nn.functional as F

E4M3_MAX = 448.0
# da3-large: width 1024, MLP ratio 4; (name, in, out).
PRODUCTS = [("qkv", 1024, 3072), ("proj", 1024, 1024), ("fc1", 1024, 4096), ("fc2", 4096, 1024)]


def timed(fn, device, warmup, iters):
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        samples = []
        for _ in range(iters):
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
    else:
        samples = []
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1e3)
    samples.sort()
    return samples[len(samples) // 2]


def quantize_tensorwise(t):
    """E4M3 values and the fp32 scale that multiplies them back (one per tensor)."""
    amax = t.abs().amax().float().clamp_min(1e-12)
    scale = amax / E4M3_MAX
    return (t.float() / scale).to(torch.float8_e4m3fn), scale


def quantize_rowwise(t):
    """E4M3 values and one fp32 scale per row ((rows, 1))."""
    amax = t.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12)
    scale = amax / E4M3_MAX
    return (t.float() / scale).to(torch.float8_e4m3fn), scale


def relative_error(got, want):
    return ((got.float() - want).norm() / want.norm()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--views", default="16,64")
    ap.add_argument("--tokens", type=int, default=870, help="tokens per view (336x504 views: 869 + 1)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--layers", type=int, default=24)
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}")
    gen = torch.Generator(device=device).manual_seed(0)
    for views in map(int, args.views.split(",")):
        rows = views * args.tokens
        print(f"== {views} views: {rows} rows")
        totals = {"bf16": 0.0, "fp8 tensorwise": 0.0, "fp8 rowwise": 0.0}
        for label, k, n in PRODUCTS:
            # Activations like a block's: LayerNorm outputs (unit scale) for qkv and fc1, the
            # attention output and GELU output (heavier tail) for proj and fc2.
            x = torch.randn(rows, k, device=device, generator=gen)
            if label in ("proj", "fc2"):
                x = x * torch.rand(rows, 1, device=device, generator=gen) * 3
            x = x.to(torch.bfloat16)
            w = (torch.randn(n, k, device=device, generator=gen) / k ** 0.5).to(torch.bfloat16)
            b = (torch.randn(n, device=device, generator=gen) * 0.02).to(torch.bfloat16)
            want = F.linear(x.float(), w.float(), b.float())
            w8_t, sw_t = quantize_tensorwise(w)
            w8_r, sw_r = quantize_rowwise(w)

            def bf16():
                return F.linear(x, w, b)

            def fp8_tensorwise():
                x8, sx = quantize_tensorwise(x)
                return torch._scaled_mm(x8, w8_t.t(), scale_a=sx, scale_b=sw_t, bias=b, out_dtype=torch.bfloat16)

            def fp8_rowwise():
                x8, sx = quantize_rowwise(x)
                out = torch._scaled_mm(x8, w8_r.t(), scale_a=sx, scale_b=sw_r.t().contiguous(), out_dtype=torch.bfloat16)
                return out + b  # row-wise scaling takes no bias in every build: added here, timed

            row = []
            for variant, fn in (("bf16", bf16), ("fp8 tensorwise", fp8_tensorwise), ("fp8 rowwise", fp8_rowwise)):
                try:
                    err = relative_error(fn(), want)
                    ms = timed(fn, device, args.warmup, args.iters)
                    totals[variant] += ms
                    row.append(f"{variant} {ms:8.3f} ms err {err:.2e}")
                except Exception as exc:  # a variant this build or device does not run: said, not fatal
                    totals[variant] = float("nan")
                    row.append(f"{variant} failed: {type(exc).__name__}: {str(exc)[:120]}")
            print(f"  {label:<5} ({k}->{n}): " + " | ".join(row))
            del x, w, b, want, w8_t, w8_r
        per_block = " | ".join(f"{v} {t:.3f} ms" for v, t in totals.items())
        print(f"  one block: {per_block}")
        forward = " | ".join(f"{v} {t * args.layers:.1f} ms" for v, t in totals.items())
        print(f"  x {args.layers} blocks: {forward}")
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
