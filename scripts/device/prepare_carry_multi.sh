#!/usr/bin/env bash
# Builds what scripts/device/multi_gpu.sh needs on the 2-GPU machine into DIR (default
# .carry-multi; git-ignored as /.carry-*/): libda3.so, examples_c/da3_multi_gpu and the script
# itself. The device tool sends the lead's checkout (/work/main), so build here and pass e.g.
# /work/main/.carry-multi; .whl/ (the official package's wheels) comes from
# scripts/device/prepare_carry.sh. Then, on the device tool (kind nvidia-h200-x2, carry
# [".carry-multi", ".whl"]):
#   set -o pipefail; PYTHONUNBUFFERED=1 CARRY=.carry-multi bash .carry-multi/multi_gpu.sh 2>&1 \
#     | tee $OUT/log; grep RESULT $OUT/log > $OUT/summary.txt
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$REPO_ROOT"
DIR=${1:-.carry-multi}
cargo build --release --locked
make -s -C examples_c da3_multi_gpu
mkdir -p "$DIR"
cp target/release/libda3.so target/release/libda3_cuda_support.so examples_c/da3_multi_gpu scripts/device/multi_gpu.sh "$DIR"/
# Programs linked to libda3 ask for its SONAME at run time (a copy: the device tool carries files).
cp target/release/libda3.so "$DIR"/libda3.so.0
ls -la "$DIR"
