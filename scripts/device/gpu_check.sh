#!/usr/bin/env bash
# Runs on the device tool's GPU machine, which has PyTorch but no Rust toolchain and no
# network. Expects, carried from the build machine:
#   .carry/libda3.so, .carry/da3_infer, .carry/parity   (scripts/device/prepare_carry.sh)
#   .whl/*.whl   the official package and the few pure-Python packages its model code needs
# Does:
#   1. the official-package oracle for da3-large and da3-giant (model-level cases; the
#      pipeline cases need the build machine's OpenCV and run in CI on the CPU),
#   2. the parity test on them, fp32 on the CPU (16 cores),
#   3. the C example on the GPU with the random-weight da3-large checkpoint.
set -euo pipefail
OUT=${OUT:-$PWD/out/device}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$PWD/.carry:$TORCH_LIB
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
date -u

python3 - <<'PY'
import json
cases = json.load(open("tests/oracle/cases.json"))
json.dump([c for c in cases if c["kind"] == "model"], open("/tmp/cases_model.json", "w"))
PY
for model in ${MODELS:-da3-large da3-giant}; do
  CASES=/tmp/cases_model.json PYTHON=python3 tests/oracle/run_oracle.sh "$model" "/tmp/oracle/$model" | tail -n 3
done
DA3_DEVICE=cpu DA3_ORACLE_DIR=/tmp/oracle DA3_PARITY_MODELS=$(echo ${MODELS:-da3-large da3-giant} | tr " " ",") DA3_REPO_ROOT=$PWD \
  .carry/parity --nocapture 2>&1 | tee "$OUT/parity.txt"

for precision in auto fp32; do
  .carry/da3_infer --model /tmp/oracle/da3-large/checkpoint --precision "$precision" --repeat 10 --png \
    --out "/tmp/device-out/large-$precision" assets/images/soh_000.png assets/images/soh_010.png | tee "$OUT/large-$precision.txt" | head -n 6
done
cp /tmp/device-out/large-auto/depth_0.png "$OUT/large-auto-depth_0.png"
