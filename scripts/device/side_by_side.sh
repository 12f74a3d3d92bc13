#!/usr/bin/env bash
# Runs bench/side_by_side.py on the device tool's GPU machine (PyTorch, no Rust, no network).
#
# Here (build machine), fill a carry folder inside the checkout the device tool sends:
#     cargo build --release --locked && make -C examples_c
#     C=/work/main/.carry-prep; mkdir -p $C/bench $C/scripts/device $C/tests/oracle
#     cp target/release/libda3.so target/release/libda3_cuda_support.so examples_c/da3_bench $C/
#     cp target/release/libda3.so $C/libda3.so.0   # the SONAME da3_bench asks for
#     cp bench/side_by_side.py $C/bench/; cp scripts/device/side_by_side.sh $C/scripts/device/
#     cp tests/oracle/ref_stubs.py tests/oracle/make_checkpoint.py $C/tests/oracle/
# There (run tool, carrying .carry-prep and .whl; kind nvidia-h100-x1):
#     bash .carry-prep/scripts/device/side_by_side.sh [side_by_side.py arguments]
# Environment: CARRY (default .carry-prep), OUT (default ./out/device), CKPT (default /tmp/da3-ckpt).
# Random-weight checkpoints (da3-large, da3-giant) are made under $CKPT in the same call
# (the machine is handed back between calls). Writes $OUT/side_by_side.{md,json,log}.
set -euo pipefail
CARRY=${CARRY:-.carry-prep}
OUT=${OUT:-$PWD/out/device}
CKPT=${CKPT:-/tmp/da3-ckpt}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# Without OpenCV the official end-to-end rows fail (reported in the table); the model-only rows run.
python3 -c 'import cv2' 2>/dev/null || echo "no OpenCV on this machine: official e2e rows will fail" >&2
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$PWD/$CARRY:$TORCH_LIB
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import cv2, torch; print("opencv", cv2.__version__, "torch", torch.__version__)' 2>/dev/null || true
BENCH=()
if [ -x "$CARRY/da3_bench" ]; then BENCH=(--bench "$CARRY/da3_bench"); fi
set -o pipefail
python3 "$CARRY/bench/side_by_side.py" --device cuda --checkpoints "$CKPT" --make-missing "${BENCH[@]}" \
  --out "$OUT/side_by_side.md" --json "$OUT/side_by_side.json" "$@" 2>&1 | tee "$OUT/side_by_side.log"
