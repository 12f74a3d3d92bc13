#!/usr/bin/env bash
# Builds what scripts/device/speed2.sh needs into .carry-speed (git-ignored as /.carry-*/):
# libda3.so (+ its SONAME copy), libda3_cuda_support.so, da3_bench, accel_accuracy,
# glue_kernels_check, device_input_check and
# bench/side_by_side.py. .whl comes from scripts/device/prepare_carry.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$REPO_ROOT"
cargo build --release --locked
cargo build --release --locked --example accel_accuracy --example glue_kernels_check --example device_input_check
make -s -C examples_c da3_bench
C=.carry-speed
mkdir -p $C/bench
cp target/release/libda3.so target/release/libda3_cuda_support.so examples_c/da3_bench \
  target/release/examples/accel_accuracy target/release/examples/glue_kernels_check target/release/examples/device_input_check $C/
cp target/release/libda3.so $C/libda3.so.0
cp bench/side_by_side.py $C/bench/
ls -la $C
