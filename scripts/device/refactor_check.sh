#!/usr/bin/env bash
# The architecture change (issue 9) on GPUs, in one device call on nvidia-h200-x2 (PyTorch, no
# Rust, no network), from the repository root. Carried from the build machine:
#   .carry-refactor/new/   libda3.so, libda3_cuda_support.so, accel_accuracy   (this code)
#   .carry-refactor/old/   the same three from the code before the change (26eab53)
#   .carry-refactor/       da3_bench, da3_oom, da3_multi_gpu (C: one binary for both libraries)
#   .whl/                  the official package (random-weight checkpoints)
# Does, each step under a time cap:
#   1. a random-weight da3-large checkpoint (official package, seed 0);
#   2. speed: da3_bench forward 1 and 16 views, accelerate off and on, bf16, old and new
#      library alternately (twice), on GPU 0;
#   3. accuracy: accel_accuracy (old and new) on the sample photos, GPU 0: the accelerated
#      runner's bound and the old library's numbers;
#   4. out of memory on the GPU through the C API (da3_oom, with all but OOM_FREE_GIB GiB of
#      the GPU taken by a ballast): DA3_ERR_OUT_OF_MEMORY, a short message, the handle usable
#      afterwards;
#   5. sharding over the two GPUs (da3_multi_gpu capacity with a forced shard and an equality
#      check against one GPU) and replicas (throughput, 2 GPUs).
set -uo pipefail
# STEPS: which of speed, accuracy, oom, multi to run (default all).
STEPS=${STEPS:-speed,accuracy,oom,multi}
want() { [[ ",$STEPS," == *",$1,"* ]]; }
C=$PWD/.carry-refactor
OUT=${OUT:-$PWD/out/refactor}
mkdir -p "$OUT" /tmp/ck /tmp/dump
T0=$(date +%s)
BUDGET_S=${BUDGET_S:-560}
cap() { local left=$(( BUDGET_S - ($(date +%s) - T0) )); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }
step() { echo; echo "== [$(( $(date +%s) - T0 )) s] $*"; }
source scripts/device/python_env.sh
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
date -u

step "checkpoint"
timeout "$(cap 200)" python3 tests/oracle/make_checkpoint.py --model da3-large --seed 0 --out /tmp/ck/da3-large > /tmp/ck/large.log 2>&1
tail -n 1 /tmp/ck/large.log
L=/tmp/ck/da3-large

with() { local v=$1; shift; LD_LIBRARY_PATH=$C/$v:$TORCH_LIB "$@"; }

want speed && step "speed, old vs new (GPU 0)"
want speed && for round in 1 2; do
  for v in old new; do
    echo "# $v library, round $round"
    CUDA_VISIBLE_DEVICES=0 with $v timeout "$(cap 90)" $C/da3_bench --model $L --views 1,16 --precision auto \
      --accelerate both --mode forward --warmup 3 --iters 10 2>&1 | tee -a "$OUT/speed.txt" | grep -v '^{'
  done
done
want speed && for v in old new; do
  echo "# $v library, e2e"
  CUDA_VISIBLE_DEVICES=0 with $v timeout "$(cap 60)" $C/da3_bench --model $L --views 1 --precision auto \
    --accelerate on --mode e2e --warmup 3 --iters 10 2>&1 | tee -a "$OUT/speed.txt" | grep -v '^{'
done

if want accuracy; then
step "accuracy (GPU 0)"
for v in old new; do
  CUDA_VISIBLE_DEVICES=0 with $v timeout "$(cap 120)" $C/$v/accel_accuracy $L assets/images/soh_000.png assets/images/soh_010.png \
    > "$OUT/accuracy-$v.txt" 2> "$OUT/accuracy-$v.err"; echo "$v: exit $?"
done
diff "$OUT/accuracy-old.txt" "$OUT/accuracy-new.txt" > /dev/null && echo "accuracy output: identical" || echo "accuracy output: differs"
cat "$OUT/accuracy-new.txt"
fi

want oom && step "out of memory (GPU 0, ${OOM_FREE_GIB:-6} GiB left free by a ballast)"
want oom && CUDA_VISIBLE_DEVICES=0 DA3_LOG=info with new timeout "$(cap 150)" $C/da3_oom $L "${OOM_FREE_GIB:-6}" 2>&1 | tee "$OUT/oom.txt"

if want multi; then
step "two GPUs: sharded == single, replicas"
with new timeout "$(cap 120)" $C/da3_multi_gpu capacity --model $L --devices cuda:0,cuda:1 --views 32 --placement shard \
  --check-views 16 --dump /tmp/dump/shard2.bin 2>&1 | tee "$OUT/multi.txt"
with new timeout "$(cap 90)" $C/da3_multi_gpu capacity --model $L --devices cuda:0 --views 32 --placement replicate \
  --check-views 16 --dump /tmp/dump/single.bin 2>&1 | tee -a "$OUT/multi.txt"
python3 - <<'PY' 2>&1 | tee -a "$OUT/multi.txt"
import numpy as np
a = np.fromfile("/tmp/dump/shard2.bin", dtype=np.float32); b = np.fromfile("/tmp/dump/single.bin", dtype=np.float32)
if a.size == 0 or a.size != b.size:
    print(f"RESULT sharded vs single: sizes {a.size} and {b.size}")
else:
    print(f"RESULT sharded (2 GPUs) vs single (1 GPU), 16 views: max rel diff {float(np.max(np.abs(a - b)) / (np.ptp(b) or 1)):.3g}")
PY
with new timeout "$(cap 120)" $C/da3_multi_gpu throughput --model $L --devices cuda:0,cuda:1 --scenes 32 --views 4 --repeat 1 \
  2>&1 | tee -a "$OUT/multi.txt"
fi
date -u
