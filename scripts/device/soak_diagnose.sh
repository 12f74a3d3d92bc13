#!/usr/bin/env bash
# Narrows down the GPU soak failure of 2026-11-30 (bench/results/2026-11-30-soak-gpu.md) in one
# device call on nvidia-h200-x2: the same 32-thread soak, shorter (SOAK_S each, default 110 s),
# under variants: cuDNN attention vs SDPA, automatic placement vs replicas only, two GPUs vs one.
# Carried as for scripts/device/reliability.sh.
set -uo pipefail
W=$PWD/target/gpu-reliability
mkdir -p "$W"
source scripts/device/python_env.sh
T0=$(date +%s)
python3 tests/oracle/make_checkpoint.py --model da3-large --seed 0 --out "$W/da3-large" > "$W/ck-large.log" 2>&1
echo "da3-large checkpoint: exit $? ($(( $(date +%s) - T0 )) s)"
run() {
  local name=$1; shift
  echo "== $name ($(( $(date +%s) - T0 )) s): $*"
  env "$@" CHECKPOINT="$W/da3-large" OUT="$OUT/$name" BUDGET_S=400 TORCH_LIB=$TORCH_LIB \
    bash .carry-soak/soak.sh "${SOAK_S:-110}" 2>&1 | grep -E "RESULT|first_error|CUDAGraph|shortened" | cut -c1-400
  python3 -c "import json,sys; s=json.load(open('$OUT/$name/summary.json')); print('first_error:', s.get('first_error')); print('errors_by_status:', s.get('errors_by_status'))" 2>&1 | cut -c1-400
}
run sdpa-auto-2gpu DA3_ATTENTION=sdpa
run cudnn-replicate-2gpu DA3_PLACEMENT=replicate
run cudnn-auto-1gpu CUDA_VISIBLE_DEVICES=0
