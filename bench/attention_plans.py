"""Every cuDNN execution plan for DA3's attention shapes, timed against libtorch's kernels.

libda3's accelerated attention is libtorch's `_scaled_dot_product_cudnn_attention`, which
builds one cuDNN graph and runs the first plan of heuristics mode A. This asks the cuDNN
frontend (pip `nvidia-cudnn-frontend`, carried as a wheel) for all plans of the same graph and
times each, with libtorch's cuDNN, flash and memory-efficient kernels on the same tensors, so
a faster plan (or layout) shows before any shim code is written. It also tries cuDNN's FP8
attention (`sdpa_fp8`, unit scales) on the same shapes, for speed only.

    python3 bench/attention_plans.py [--shapes global64,global16,local64,giant16] [--iters 10]

Shapes (batch, heads, tokens, 64): da3-large (16 heads) with 870 tokens per view (336x504
views and the camera token); da3-giant 24 heads.
"""
import argparse
import math

import torch

SHAPES = {
    "global64": (1, 16, 64 * 870),
    "global16": (1, 16, 16 * 870),
    "local64": (64, 16, 870),
    "giant16": (1, 24, 16 * 870),
}
HEAD_DIM = 64


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    samples.sort()
    return samples[len(samples) // 2]


def tflops(batch, heads, tokens, ms):
    return 4.0 * batch * heads * tokens * tokens * HEAD_DIM / (ms * 1e-3) / 1e12


def make_inputs(batch, heads, tokens, layout):
    """q, k, v as (B, H, N, D) views: `bhsd` contiguous, `bshd` strided views of one (B, N, 3, H, D) buffer."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    if layout == "bhsd":
        return [torch.randn(batch, heads, tokens, HEAD_DIM, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(3)]
    qkv = torch.randn(batch, tokens, 3, heads, HEAD_DIM, device="cuda", dtype=torch.bfloat16, generator=gen)
    return [qkv[:, :, i].transpose(1, 2) for i in range(3)]


def cudnn_plans(cudnn, q, k, v, warmup, iters, report):
    scale = 1.0 / math.sqrt(HEAD_DIM)
    graph = cudnn.pygraph(io_data_type=cudnn.data_type.BFLOAT16, intermediate_data_type=cudnn.data_type.FLOAT,
                          compute_data_type=cudnn.data_type.FLOAT)
    tq, tk, tv = graph.tensor_like(q), graph.tensor_like(k), graph.tensor_like(v)
    o, _stats = graph.sdpa(name="sdpa", q=tq, k=tk, v=tv, generate_stats=False, attn_scale=scale, use_causal_mask=False)
    out = torch.empty(q.shape[0], q.shape[2], q.shape[1], HEAD_DIM, device="cuda", dtype=q.dtype).transpose(1, 2)
    o.set_output(True).set_dim(list(out.shape)).set_stride(list(out.stride()))
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.B, cudnn.heur_mode.FALLBACK])
    graph.check_support()
    graph.build_plans(cudnn.build_plan_policy.ALL)
    count = graph.get_execution_plan_count()
    pack = {tq: q, tk: k, tv: v, o: out}
    results = []
    for index in range(count):
        try:
            name = graph.get_plan_name_at_index(index)
            workspace = torch.empty(max(1, graph.get_workspace_size_plan_at_index(index)), device="cuda", dtype=torch.uint8)
            ms = timed(lambda: graph.execute_plan_at_index(pack, workspace, index), warmup, iters)
            results.append((name, ms, out.clone()))
            report(f"cudnn plan {index} {name}", ms)
        except Exception as exc:  # a plan the device cannot run: say so and go on
            print(f"    cudnn plan {index}: {type(exc).__name__}: {str(exc)[:200]}")
    return results


def cudnn_fp8(cudnn, q, k, v, warmup, iters, report, fp8_output):
    """FP8 inputs with unit scales; O in bf16 (Blackwell only) or FP8 (then cast back here)."""
    fp8 = torch.float8_e4m3fn
    q8, k8, v8 = (t.to(fp8) for t in (q, k, v))
    one = torch.ones(1, 1, 1, 1, device="cuda", dtype=torch.float32)
    graph = cudnn.pygraph(io_data_type=cudnn.data_type.FP8_E4M3, intermediate_data_type=cudnn.data_type.FLOAT,
                          compute_data_type=cudnn.data_type.FLOAT)
    tq, tk, tv = graph.tensor_like(q8), graph.tensor_like(k8), graph.tensor_like(v8)
    scales = [graph.tensor_like(one) for _ in range(6)]
    o, _stats, amax_s, amax_o = graph.sdpa_fp8(q=tq, k=tk, v=tv, descale_q=scales[0], descale_k=scales[1],
                                               descale_v=scales[2], descale_s=scales[3], scale_s=scales[4],
                                               scale_o=scales[5], generate_stats=False,
                                               attn_scale=1.0 / math.sqrt(HEAD_DIM), use_causal_mask=False)
    out = torch.empty(q.shape, device="cuda", dtype=fp8 if fp8_output else torch.bfloat16)
    o.set_output(True).set_dim(list(out.shape)).set_stride(list(out.stride())).set_data_type(
        cudnn.data_type.FP8_E4M3 if fp8_output else cudnn.data_type.BFLOAT16)
    amax = [torch.empty(1, 1, 1, 1, device="cuda", dtype=torch.float32) for _ in range(2)]
    amax_s.set_output(True).set_dim([1, 1, 1, 1]).set_stride([1, 1, 1, 1]).set_data_type(cudnn.data_type.FLOAT)
    amax_o.set_output(True).set_dim([1, 1, 1, 1]).set_stride([1, 1, 1, 1]).set_data_type(cudnn.data_type.FLOAT)
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
    graph.check_support()
    graph.build_plans()
    pack = {tq: q8, tk: k8, tv: v8, o: out, amax_s: amax[0], amax_o: amax[1]}
    for t in scales:
        pack[t] = one
    workspace = torch.empty(max(1, graph.get_workspace_size()), device="cuda", dtype=torch.uint8)
    ms = timed(lambda: graph.execute(pack, workspace), warmup, iters)
    report(f"cudnn fp8 (unit scales, O in {'fp8' if fp8_output else 'bf16'})", ms)
    return out.to(torch.bfloat16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="global64,global16,local64,giant16")
    ap.add_argument("--layouts", default="bhsd,bshd")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--no-fp8", action="store_true")
    args = ap.parse_args()
    try:
        import cudnn
        print(f"cudnn frontend {getattr(cudnn, '__version__', '?')}, backend {cudnn.backend_version()}")
    except Exception as exc:
        cudnn = None
        print(f"cudnn frontend unavailable: {exc}")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, libtorch cuDNN {torch.backends.cudnn.version()}")
    aten = torch.ops.aten
    for shape in args.shapes.split(","):
        batch, heads, tokens = SHAPES[shape]
        for layout in args.layouts.split(","):
            print(f"== {shape}: batch {batch}, heads {heads}, tokens {tokens}, layout {layout}")
            q, k, v = make_inputs(batch, heads, tokens, layout)

            def report(label, ms):
                print(f"  {label:<70} {ms:9.3f} ms  {tflops(batch, heads, tokens, ms):6.1f} TFLOP/s")

            reference = aten._scaled_dot_product_cudnn_attention(q, k, v, None, False)[0]
            report("libtorch cudnn", timed(lambda: aten._scaled_dot_product_cudnn_attention(q, k, v, None, False), args.warmup, args.iters))
            report("libtorch flash", timed(lambda: aten._scaled_dot_product_flash_attention(q, k, v), args.warmup, args.iters))
            try:
                report("libtorch efficient", timed(lambda: aten._scaled_dot_product_efficient_attention(q, k, v, None, False), args.warmup, args.iters))
            except Exception as exc:
                print(f"  libtorch efficient: {exc}")
            if cudnn is None:
                continue
            try:
                for name, _ms, out in cudnn_plans(cudnn, q, k, v, args.warmup, args.iters, report):
                    print(f"    plan {name}: max |diff| to libtorch cudnn {(out.float() - reference.float()).abs().max().item():.3e}")
            except Exception as exc:
                print(f"  cudnn plans failed: {type(exc).__name__}: {str(exc)[:500]}")
            if not args.no_fp8 and layout == "bhsd":
                for fp8_output in (False, True):
                    try:
                        out = cudnn_fp8(cudnn, q, k, v, args.warmup, args.iters, report, fp8_output)
                        err = (out.float() - reference.float()).abs()
                        print(f"    fp8: max |diff| {err.max().item():.3e}, mean {err.mean().item():.3e}, "
                              f"reference mean |x| {reference.float().abs().mean().item():.3e}")
                    except Exception as exc:
                        print(f"  cudnn fp8 (O in {'fp8' if fp8_output else 'bf16'}) failed: {type(exc).__name__}: {str(exc)[:300]}")
            del q, k, v
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
