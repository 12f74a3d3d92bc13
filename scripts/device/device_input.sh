#!/usr/bin/env bash
# Views preprocessed on the GPU (issue 12, "End to end" and "Zero-copy"), on the device tool's
# GPU machine (nvidia-h200), from the repository root:
#   bash scripts/device/device_input.sh [side]
# 1. device_input_check on da3-small (the tensor preprocessing path on CUDA = the host path's
#    bytes and input; da3_infer_cuda = da3_infer bit for bit, fp32, accelerate off/on, null and
#    caller stream; refusals) and its timing on da3-large (bf16 + accelerate, 640x480 frames,
#    1/16/64 views: host preprocessing, DA3_PREPROCESS=device, da3_infer_cuda; alternating);
# 2. da3_bench end to end, DA3_PREPROCESS=host vs device, alternating rounds (one process each),
#    and the forward alone at the frames' network size (378x504);
# 3. with `side`: bench/side_by_side.py, da3-large forward at 1/16/64 views against the official
#    forward and torch.compile, and end to end from 640x480 frames against the official inference().
# Carried: .carry-speed (scripts/device/prepare_carry_speed.sh) and .whl
# (scripts/device/prepare_carry.sh). Writes $OUT (default out/device_input).
set -uo pipefail
OUT_NAME=device_input
source scripts/device/speed_env.sh input
make_checkpoints da3-small da3-large
echo "== device_input_check"; date -u
timeout 300 $C/device_input_check $CK/da3-small $CK/da3-large 2>&1 | tee "$OUT/device-input-check.txt"
echo "device_input_check exit ${PIPESTATUS[0]}"
echo "== da3_bench e2e, DA3_PREPROCESS host / device"; date -u
for round in 1 2; do
  for where in host device; do
    echo "# round $round DA3_PREPROCESS=$where"
    DA3_PREPROCESS=$where timeout 120 $C/da3_bench --model $CK/da3-large --views 1,16,64 --precision bf16 --accelerate on \
      --mode e2e --warmup 3 --iters 10 2>&1
  done
done | tee "$OUT/e2e-preprocess.txt"
echo "== da3_bench forward at the frames' network size (378x504): what end to end adds"; date -u
timeout 100 $C/da3_bench --model $CK/da3-large --views 1,16,64 --precision bf16 --accelerate on \
  --mode forward --input 378x504 --warmup 3 --iters 10 2>&1 | tee "$OUT/forward-378x504.txt"
date -u
if [ "${1:-}" = side ]; then
  echo "== side by side"
  python3 bench/side_by_side.py --device cuda --checkpoints $CK --make-missing --bench "$C/da3_bench" \
    --cases da3-large:1,16,64 --e2e-views 1,16,64 --compile-cases da3-large:1,16,64 --modes forward,e2e,compile,libda3 \
    --warmup 3 --iters 10 --max-seconds 20 \
    --out "$OUT/side_by_side.md" --json "$OUT/side_by_side.json" 2>&1 | tee "$OUT/side_by_side.log" | tail -40
  date -u
fi
