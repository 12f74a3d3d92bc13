"""Builds of libda3 against each other, with the host's minor page faults per process.

Each round runs `da3_bench` once per build (alternating, one process each) and prints the
forward medians and the process's minor page faults (`getrusage(RUSAGE_CHILDREN)`). Page faults
are what the host side of a call costs when it writes into fresh memory (see
bench/results/2026-12-01-h200-output-buffers.md).

    python3 bench/host_faults.py --bench DA3_BENCH --model CKPT --builds old=DIR,new=DIR \
        [--views 1,16,64] [--rounds 3] [--iters 10] [--precision bf16]

A build is a directory holding libda3.so (and libda3_cuda_support.so); it goes first on the
loader's path of its processes, before $TORCH_LIB.
"""
import argparse
import os
import resource
import subprocess


def run(bench, model, views, iters, precision, lib_dir):
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = f"{lib_dir}:{os.environ.get('TORCH_LIB', '')}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    out = subprocess.run([bench, "--model", model, "--views", views, "--precision", precision, "--accelerate", "on",
                          "--mode", "forward", "--warmup", "3", "--iters", str(iters)],
                         env=env, capture_output=True, text=True, timeout=300)
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before
    medians = [line.split()[5] for line in out.stderr.splitlines() if line.startswith("da3-") and len(line.split()) > 5]
    if out.returncode != 0 or not medians:
        raise SystemExit(f"da3_bench failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return faults, medians


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--builds", required=True, help="name=DIR,name=DIR")
    ap.add_argument("--views", default="1,16,64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--precision", default="bf16")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.builds.split(",")]
    print(f"views {a.views}: forward median ms per view count, minor page faults of the process", flush=True)
    for rnd in range(1, a.rounds + 1):
        for name, lib_dir in builds:
            faults, medians = run(a.bench, a.model, a.views, a.iters, a.precision, lib_dir)
            print(f"round {rnd} {name:<8} faults {faults:>9}  medians {' / '.join(medians)}", flush=True)


if __name__ == "__main__":
    main()
