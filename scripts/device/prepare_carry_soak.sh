#!/usr/bin/env bash
# Builds what scripts/device/soak.sh needs on the GPU machine into DIR (default .carry-soak;
# git-ignored as /.carry-*/): libda3.so (and its SONAME copy libda3.so.0),
# libda3_cuda_support.so (GPU memory statistics, CUDA graphs), examples_c/da3_soak and the
# script itself. The device tool sends the lead's checkout (/work/main), so build there and
# pass e.g. /work/main/.carry-soak; .whl/ (the official package's wheels, for the random-weight
# checkpoint) comes from scripts/device/prepare_carry.sh. Then, on the device tool (kind
# nvidia-h200-x2, carry [".carry-soak", ".whl"], one call of at most 600 s):
#   CARRY=.carry-soak bash .carry-soak/soak.sh 420 2>&1 | tail -n 40
# (the soak's own seconds, here 420: the checkpoint, the load and the references take the rest
# of the call; the script shortens a duration that would not fit BUDGET_S, and says so).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$REPO_ROOT"
DIR=${1:-.carry-soak}
cargo build --release --locked
make -s -C examples_c da3_soak
mkdir -p "$DIR"
cp target/release/libda3.so target/release/libda3_cuda_support.so examples_c/da3_soak scripts/device/soak.sh "$DIR"/
# Programs linked to libda3 ask for its SONAME at run time (a copy: the device tool carries files).
cp target/release/libda3.so "$DIR"/libda3.so.0
ls -la "$DIR"
