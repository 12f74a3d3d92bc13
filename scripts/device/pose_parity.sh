#!/usr/bin/env bash
# Pose-path parity (known cameras, ray pose, exported features) of the full-size any-view models on
# the device tool's machine (16 CPU cores, no Rust, no network), fp32 on its CPU. Carry from the
# build machine:
#   .carry/parity_pose   cargo test --release --test parity_pose --no-run
#   .whl/*.whl           the official package and its pure-Python needs (scripts/device/prepare_carry.sh)
# Env: MODELS (default "da3-large da3-giant"), OUT (default out/device). Only the model-level cases
# of tests/oracle/cases_pose.json run: the pipeline cases need the build machine's OpenCV (run in CI).
set -euo pipefail
MODELS=${MODELS:-da3-large da3-giant}
OUT=${OUT:-$PWD/out/device}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$TORCH_LIB
lscpu | grep -m1 "Model name"; date -u
python3 -c 'import json; json.dump([c for c in json.load(open("tests/oracle/cases_pose.json")) if c["kind"] == "model"], open("/tmp/cases_pose_model.json", "w"))'
for model in $MODELS; do
  dir=/tmp/oracle/$model
  /usr/bin/time -f "$model checkpoint: %e s" python3 tests/oracle/make_checkpoint.py --model "$model" --seed 0 --out "$dir/checkpoint" 2>&1 | grep -v "WARN\|INFO"
  echo "$model seed=0" > "$dir/checkpoint/.done"
  /usr/bin/time -f "$model pose oracle: %e s, max RSS %M kB" env CASES=/tmp/cases_pose_model.json PYTHON=python3 \
    tests/oracle/run_oracle_pose.sh "$model" "$dir" 2>&1 | grep -v "WARN\|INFO" | tee "$OUT/pose-oracle-$model.txt"
done
DA3_DEVICE=cpu DA3_ORACLE_DIR=/tmp/oracle DA3_POSE_PARITY_MODELS=$(echo $MODELS | tr " " ",") DA3_REPO_ROOT=$PWD \
  /usr/bin/time -f "pose parity: %e s, max RSS %M kB" .carry/parity_pose --nocapture --test-threads 1 \
  pose_cases_match_the_official_implementation numpy_choice_replica_matches_numpy 2>&1 | tee "$OUT/pose-parity.txt"
