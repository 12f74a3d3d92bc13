#!/usr/bin/env bash
# Builds what scripts/device/gpu_check.sh needs on the GPU machine into .carry/ and .whl/
# (both ignored by git; name them in the device tool's `carry`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$REPO_ROOT"
cargo build --release --locked
make -s -C examples_c
parity=$(cargo test --release --locked --test parity --no-run --message-format=json 2>/dev/null \
  | "$PYTHON" -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable") and "parity" in m["executable"]][0])')
mkdir -p .carry .whl
# libda3_cuda_support.so (CUDA graphs, allocator statistics) is found next to libda3.so.
cp target/release/libda3.so target/release/libda3_cuda_support.so examples_c/da3_infer examples_c/da3_bench "$parity" .carry/
# Programs linked to libda3 ask for its SONAME at run time (a copy: the device tool carries files).
cp target/release/libda3.so .carry/libda3.so.0
mv ".carry/$(basename "$parity")" .carry/parity
# Python 3.12 wheels of the oracle's pure-Python needs that the GPU image lacks.
for req in depth-anything-3==0.1.1 addict==2.4.0 omegaconf==2.3.0 einops==0.8.2 huggingface_hub==0.36.2 evo==1.38.1; do
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 -d .whl "$req"
done
# antlr4 4.9.3 (omegaconf's parser runtime) is published as an sdist only.
"$PYTHON" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -la .carry .whl
