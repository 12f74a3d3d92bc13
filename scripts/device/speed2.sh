#!/usr/bin/env bash
# Issue 12 on the device tool's GPU machine (nvidia-h200), from the repository root, two calls:
#   bash scripts/device/speed2.sh glue   # da3-large forward: fused glue on/off (alternating
#                                        # rounds), then accel_accuracy
#   bash scripts/device/speed2.sh side   # bench/side_by_side.py with the compile rows at 1, 16, 64
#   bash scripts/device/speed2.sh both   # the glue rounds (no accuracy), then side
# Carried: .carry-speed (built here by scripts/device/prepare_carry_speed.sh) and .whl
# (scripts/device/prepare_carry.sh). Writes $OUT (default out/speed2).
set -uo pipefail
OUT_NAME=speed2
source scripts/device/speed_env.sh "${1:-}"
case "${1:-}" in
glue|both)
  python3 tests/oracle/make_checkpoint.py --model da3-large --seed 0 --out $CK/da3-large > "$OUT/ck.log" 2>&1
  echo "checkpoint: exit $?"
  L=$CK/da3-large
  # Alternating rounds, one process each (one load each): default (fused glue), official glue.
  for round in 1 2; do
    for variant in default DA3_ACCEL_GLUE=official; do
      echo "# round $round $variant"
      env ${variant/default/DA3_UNUSED=1} $C/da3_bench --model $L --views 1,16,64 --precision bf16 --accelerate on \
        --mode forward --warmup 3 --iters 10 2>&1
    done
  done | tee "$OUT/glue-ablation.txt"
  [ "$1" = both ] && exec bash "$0" side
  echo "== accuracy (default fused glue)"; date -u
  timeout 200 $C/accel_accuracy $L assets/images/soh_000.png assets/images/soh_010.png 2>&1 | tee "$OUT/accuracy-large.txt"
  ;;
side)
  python3 bench/side_by_side.py --device cuda --checkpoints $CK --make-missing --bench "$C/da3_bench" \
    --cases da3-large:1,16,64 --compile-cases da3-large:1,16,64 --modes forward,compile,libda3 \
    --warmup 3 --iters 10 --max-seconds 20 \
    --out "$OUT/side_by_side.md" --json "$OUT/side_by_side.json" 2>&1 | tee "$OUT/side_by_side.log"
  ;;
*) echo "usage: $0 glue|side"; exit 2 ;;
esac
date -u
