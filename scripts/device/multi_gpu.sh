#!/usr/bin/env bash
# The multi-GPU proof, on the device tool's 2-GPU machine (PyTorch, no Rust, no network).
# Expects, carried from the build machine (scripts/device/prepare_carry_multi.sh):
#   $CARRY/libda3.so, $CARRY/da3_multi_gpu, $CARRY/multi_gpu.sh   (CARRY=.carry-multi)
#   .whl/*.whl   the official package and the pure-Python packages its model code needs
# and tests/oracle/make_checkpoint.py in the working tree. Does, each step under a time cap:
#   0. random-weight da3-large and da3-giant checkpoints made by the official package;
#   1. throughput: 64 scenes x 4 views (504x378), da3-large, bf16, da3_infer_scenes on 1 GPU
#      (cuda:0) and on 2 GPUs (cuda:0,cuda:1, one replica each);
#   2. capacity: one da3-giant scene at 504 px, growing view counts until one fails, on 1 GPU
#      and on 2 GPUs (placement auto: the scene is sharded when it does not fit one GPU), with
#      LEAVE_FREE_GIB GiB left free on each GPU (the rest taken by a ballast allocation) to
#      stand in for smaller cards: an H200's full 140 GiB would need minutes per step;
#   3. equality: 2-GPU vs 1-GPU depth (the 64 scenes of step 1; a sharded giant scene vs
#      the same scene on one GPU), max relative difference.
# Prints everything; lines starting with RESULT are the table (see
# scripts/device/prepare_carry_multi.sh for the device-tool command that keeps them).
set -uo pipefail
CARRY=${CARRY:-.carry-multi}
OUT=${OUT:-$PWD/out/multi}
LEAVE_FREE_GIB=${LEAVE_FREE_GIB:-16}
GIANT_STEPS=${GIANT_STEPS:-32,64,96,128,160,192,224,256,320}
mkdir -p "$OUT" /tmp/ck /tmp/dump
T0=$(date +%s)
# The whole script stays under BUDGET_S seconds (the device call's limit is 600): each step's
# cap is the smaller of its own and what is left.
BUDGET_S=${BUDGET_S:-560}
elapsed() { echo "[$(( $(date +%s) - T0 )) s]"; }
cap() { local left=$(( BUDGET_S - ($(date +%s) - T0) )); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }

source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$PWD/$CARRY:$TORCH_LIB
nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv,noheader
echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset} NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-unset}"
date -u

# 0. Checkpoints, both at once (CPU only).
for model in da3-large da3-giant; do
  ( timeout 180 python3 tests/oracle/make_checkpoint.py --model "$model" --seed 0 --out "/tmp/ck/$model" \
      > "/tmp/ck/$model.log" 2>&1; echo "checkpoint $model: exit $?" >> "/tmp/ck/$model.log" ) &
done
wait
tail -n 2 /tmp/ck/da3-large.log /tmp/ck/da3-giant.log
echo "$(elapsed) checkpoints done"

BIN=$CARRY/da3_multi_gpu
# 1. Throughput.
for devices in cuda:0 cuda:0,cuda:1; do
  timeout "$(cap 90)" "$BIN" throughput --model /tmp/ck/da3-large --devices "$devices" --scenes 64 --views 4 \
    --repeat 2 --dump "/tmp/dump/large-$devices.bin"
  echo "exit $? $(elapsed)"
done

# 2. Capacity (and the sharded check scene of 32 views for step 3).
for devices in cuda:0 cuda:0,cuda:1; do
  timeout "$(cap 150)" "$BIN" capacity --model /tmp/ck/da3-giant --devices "$devices" --views "$GIANT_STEPS" \
    --placement auto --leave-free-gib "$LEAVE_FREE_GIB" --step-cap-s 30 --total-cap-s 90 \
    --check-views 32 --dump "/tmp/dump/giant32-$devices.bin"
  echo "exit $? $(elapsed)"
done

# 3. Equality.
python3 - <<'PY'
import numpy as np, os
def compare(name, a, b, per):
    if not (os.path.exists(a) and os.path.exists(b)):
        print(f"RESULT equality {name}: missing dump"); return
    x, y = np.fromfile(a, np.float32), np.fromfile(b, np.float32)
    if x.size != y.size:
        print(f"RESULT equality {name}: sizes differ {x.size} {y.size}"); return
    x, y = x.reshape(-1, per), y.reshape(-1, per)
    rng = np.maximum(y.max(1) - y.min(1), 1e-12)
    rel = (np.abs(x - y).max(1) / rng).max()
    print(f"RESULT equality {name}: max_rel_diff={rel:.3e} identical={bool((x == y).all())} values={x.size}")
per_scene = 4 * 504 * 378
compare("large 64x4 scenes 2gpu-vs-1gpu", "/tmp/dump/large-cuda:0,cuda:1.bin", "/tmp/dump/large-cuda:0.bin", per_scene)
compare("giant 32-view scene sharded-2gpu-vs-1gpu", "/tmp/dump/giant32-cuda:0,cuda:1.bin", "/tmp/dump/giant32-cuda:0.bin", 32 * 504 * 378)
PY
echo "$(elapsed) done"
