#!/usr/bin/env bash
# Full-size parity of the metric / mono / nested models on the device tool's machine (16 CPU
# cores, no Rust, no network), fp32 on its CPU. Carry from the build machine:
#   .carry/parity   the parity test binary (cargo test --release --test parity --no-run)
#   .whl/*.whl      the official package and its pure-Python needs (scripts/device/prepare_carry.sh)
# Env: MODELS (default da3nested-giant-large), STEP (oracle | parity | all, default all),
# OUT (default out/device). Only the model-level cases of each family's case file run (the
# pipeline cases need the build machine's OpenCV; they run in CI on the CPU).
set -euo pipefail
MODELS=${MODELS:-da3nested-giant-large}
STEP=${STEP:-all}
OUT=${OUT:-$PWD/out/device}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$TORCH_LIB
lscpu | grep -m1 "Model name"; date -u

if [ "$STEP" != parity ]; then
  for model in $MODELS; do
    case "$model" in
      da3metric-*|da3mono-*) family=tests/oracle/cases_metric.json ;;
      da3nested-*) family=tests/oracle/cases_nested.json ;;
      *) family=tests/oracle/cases.json ;;
    esac
    python3 -c 'import json, sys; json.dump([c for c in json.load(open(sys.argv[1])) if c["kind"] == "model"], open(sys.argv[2], "w"))' \
      "$family" "/tmp/cases_$model.json"
    /usr/bin/time -f "$model oracle: %e s, max RSS %M kB" env CASES="/tmp/cases_$model.json" PYTHON=python3 \
      tests/oracle/run_oracle.sh "$model" "/tmp/oracle/$model" 2>&1 | grep -v "WARN\|INFO" | tee "$OUT/oracle-$model.txt"
  done
fi
if [ "$STEP" != oracle ]; then
  DA3_DEVICE=cpu DA3_ORACLE_DIR=/tmp/oracle DA3_PARITY_MODELS=$(echo $MODELS | tr " " ",") DA3_REPO_ROOT=$PWD \
    /usr/bin/time -f "parity: %e s, max RSS %M kB" .carry/parity --nocapture 2>&1 | tee "$OUT/parity.txt"
fi
