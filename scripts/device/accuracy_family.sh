#!/usr/bin/env bash
# Issue 12's accuracy table for the metric, mono and nested models (never measured in bf16 before):
# random-weight checkpoints made here, then accel_accuracy --bf16-accelerated-only on the two sample
# photos (each alone, both, both with crops), one model after the other, each bounded in time.
#   bash scripts/device/accuracy_family.sh
# Carried: .carry-speed (scripts/device/prepare_carry_speed.sh) and .whl. Writes $OUT.
set -uo pipefail
C=$PWD/.carry-speed
OUT=${OUT:-$PWD/out/accuracy_family}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$C:$TORCH_LIB
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u; } | tee "$OUT/env.txt"
CK=/tmp/da3-ckpt
for model in ${MODELS:-da3metric-large da3mono-large da3nested-giant-large}; do
  python3 tests/oracle/make_checkpoint.py --model $model --seed 0 --out $CK/$model > "$OUT/ck-$model.log" 2>&1
  echo "checkpoint $model: exit $?"; date -u
  timeout ${LIMIT:-90} $C/accel_accuracy --bf16-accelerated-only $CK/$model assets/images/soh_000.png \
    assets/images/soh_010.png 2>&1 | tee "$OUT/accuracy-$model.txt"
  rm -rf $CK/$model
done
