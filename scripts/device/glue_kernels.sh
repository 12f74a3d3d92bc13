#!/usr/bin/env bash
# Issue 12, the run-time compiled glue kernels, on the device tool's GPU machine (nvidia-h200),
# from the repository root:
#   bash scripts/device/glue_kernels.sh check   # glue_kernels_check, accuracy of da3-large
#                                               # (bf16 + accelerate), then da3-large forward with
#                                               # DA3_ACCEL_GLUE=kernels / libtorch / official in
#                                               # alternating rounds (one process each)
#   bash scripts/device/glue_kernels.sh side    # glue_kernels_check, bench/side_by_side.py with the
#                                               # compile rows, da3-giant's forward at 1 and 16
#                                               # views, a kernel profile of da3-large at 16 and 64
#   bash scripts/device/glue_kernels.sh host    # glue_kernels_check, accuracy of da3-large (bf16 +
#                                               # accelerate), then da3-large forward and end to
#                                               # end with .carry-speed/base/libda3.so (an earlier
#                                               # build: what the record says) and with this tree's,
#                                               # alternating rounds
# Carried: .carry-speed (scripts/device/prepare_carry_speed.sh) and .whl
# (scripts/device/prepare_carry.sh). Writes $OUT (default out/glue).
set -uo pipefail
OUT_NAME=glue
source scripts/device/speed_env.sh "${1:-}"
make_checkpoint() {
  [ -f "$CK/$1/model.safetensors" ] || python3 tests/oracle/make_checkpoint.py --model "$1" --seed 0 --out "$CK/$1" > "$OUT/ck-$1.log" 2>&1
  echo "checkpoint $1: exit $?"
}
case "${1:-}" in
check)
  make_checkpoint da3-large
  L=$CK/da3-large
  echo "== glue_kernels_check"
  DA3_LOG=info $C/glue_kernels_check 2>&1 | tee "$OUT/kernels-check.txt"
  echo "== accuracy, bf16 + accelerate, glue kernels"; date -u
  DA3_LOG=info timeout 150 $C/accel_accuracy --bf16-accelerated-only $L assets/images/soh_000.png assets/images/soh_010.png 2>&1 \
    | tee "$OUT/accuracy-large.txt"
  for round in 1 2; do
    for glue in kernels libtorch official; do
      [ $round = 2 ] && [ $glue = official ] && continue
      echo "# round $round DA3_ACCEL_GLUE=$glue"
      DA3_ACCEL_GLUE=$glue $C/da3_bench --model $L --views 1,16,64 --precision bf16 --accelerate on \
        --mode forward --warmup 3 --iters 10 2>&1
    done
  done | tee "$OUT/glue-ablation.txt"
  ;;
side)
  echo "== glue_kernels_check"
  DA3_LOG=info $C/glue_kernels_check 2>&1 | tee "$OUT/kernels-check.txt"
  python3 bench/side_by_side.py --device cuda --checkpoints $CK --make-missing --bench "$C/da3_bench" \
    --cases da3-large:1,16,64 --compile-cases da3-large:1,16,64 --modes forward,compile,libda3 \
    --warmup 3 --iters 10 --max-seconds 20 \
    --out "$OUT/side_by_side.md" --json "$OUT/side_by_side.json" 2>&1 | tee "$OUT/side_by_side.log"
  make_checkpoint da3-giant
  $C/da3_bench --model $CK/da3-giant --views 1,16 --precision bf16 --accelerate on --mode forward --warmup 3 --iters 10 \
    2>&1 | tee "$OUT/giant.txt"
  timeout 150 python3 bench/profile_libda3.py --lib $C/libda3.so --model $CK/da3-large --views 16,64 --accelerate on \
    --out "$OUT/profile.md" 2>&1 | tail -5
  ;;
host)
  make_checkpoint da3-large
  echo "== glue_kernels_check"
  DA3_LOG=info $C/glue_kernels_check 2>&1 | tee "$OUT/kernels-check.txt"
  echo "== accuracy, bf16 + accelerate"; date -u
  timeout 150 $C/accel_accuracy --bf16-accelerated-only $CK/da3-large assets/images/soh_000.png assets/images/soh_010.png \
    2>&1 | tee "$OUT/accuracy-large.txt"
  for round in 1 2; do
    for lib in base new; do
      echo "# round $round library $lib"
      dir=$C; [ $lib = base ] && dir=$C/base
      LD_LIBRARY_PATH=$dir:$TORCH_LIB $C/da3_bench --model $CK/da3-large --views 1,16,64 --precision bf16 --accelerate on \
        --mode both --warmup 3 --iters 10 2>&1 | grep -v '^{'
    done
  done | tee "$OUT/host-ablation.txt"
  ;;
*) echo "usage: $0 check|side|host"; exit 2 ;;
esac
date -u
