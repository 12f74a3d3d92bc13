#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this and nothing else):
#   1. set up .venv (torch 2.11.0 + the official depth-anything-3 package as oracle),
#   2. build the library,
#   3. make random-weight checkpoints in the official layout with the official package and
#      the official outputs for the case files tests/oracle/cases*.json (da3-small, da3-base,
#      da3metric-large, da3mono-large, and da3nested-reduced: the nested model with small branches),
#   4. set up .venv-triton (tritonserver, tritonclient) and build the Triton backend,
#   5. run every Rust and C test (among them a real tritonserver serving da3-small), the fault-injection test (failpoints build), the fuzz smoke
#      runs and the memory-safety jobs (scripts/check_memory_safety.sh: ASan+UBSan, valgrind,
#      miri); the parity table is printed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

scripts/setup.sh
cargo build --release --locked
# The Triton backend and its server (tests/triton.rs): .venv-triton, then libtriton_da3.so.
scripts/triton.sh setup
scripts/triton.sh build
models="${DA3_PARITY_MODELS:-da3-small,da3-base,da3metric-large,da3mono-large,da3nested-reduced}"
for model in ${models//,/ }; do
  tests/oracle/run_oracle.sh "$model" "target/oracle/$model"
done
# Known cameras, ray pose and exported features: the any-view models, and the nested model
# through inference() (metric scaling after the alignment to the given cameras).
pose_models="${DA3_POSE_PARITY_MODELS:-da3-small,da3-base,da3nested-reduced}"
for model in ${pose_models//,/ }; do
  tests/oracle/run_oracle_pose.sh "$model" "target/oracle/$model"
done
export DA3_PARITY_MODELS="$models" DA3_POSE_PARITY_MODELS="$pose_models"
# The sanitized runs are the memory-safety script's first job: skipped here, run there once.
cargo test --release --locked -- --skip parity_with_official_implementation --skip under_sanitizers
# Injected failures need the failpoints build (its own artifacts: the default ones stay).
cargo test --release --locked --features failpoints --test faults
# ASan+UBSan over every C/C++ program, valgrind on the error paths, miri on the pure Rust.
scripts/check_memory_safety.sh
# Each fuzz target a few seconds from its seeds (image decoding, da3_image, da3_options, .npy,
# checkpoints).
scripts/fuzz.sh smoke
# Last, so the run ends on its summary: the parity table is the point of this test, show it.
cargo test --release --locked --test parity -- --nocapture
