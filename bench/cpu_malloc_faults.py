"""The CPU forward under three host-memory settings, with the process's minor page faults and CPU time.

Run from the repository root after `cargo build --release` and `make -C examples_c da3_bench`, with
TORCH_LIB set to the venv's torch/lib: `python3 bench/cpu_malloc_faults.py`. da3-small fp32
(target/oracle/da3-small/checkpoint), accelerate on, forward at 1 and 4 views, two rounds; variants: glibc's
defaults, glibc's mmap off with no trimming (freed memory stays in the heap), libtorch's
THP_MEM_ALLOC_ENABLE=1 (huge pages for its large CPU allocations).
"""
import os, resource, subprocess
variants = [("default", {}), ("heap", {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295"}), ("thp", {"THP_MEM_ALLOC_ENABLE": "1"})]
for rnd in (1, 2):
    for name, extra in variants:
        env = dict(os.environ); env.update(extra)
        env["LD_LIBRARY_PATH"] = f"{os.getcwd()}/target/release:{os.environ['TORCH_LIB']}"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(["examples_c/da3_bench", "--model", "target/oracle/da3-small/checkpoint", "--views", "1,4", "--precision", "fp32",
                              "--accelerate", "on", "--mode", "forward", "--warmup", "2", "--iters", "5"], env=env, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        med = [l.split()[5] for l in out.stderr.splitlines() if l.startswith("da3-")]
        print(f"round {rnd} {name:8} faults {after.ru_minflt - before.ru_minflt:>8} sys {after.ru_stime - before.ru_stime:6.1f}s user {after.ru_utime - before.ru_utime:6.1f}s medians {med} rc {out.returncode}", flush=True)
