#!/usr/bin/env bash
# Peak GPU memory per view (issue 12: "peak memory <= 0.5x the official" and the largest scene
# on one H200), on the device tool's GPU machine (nvidia-h200), from the repository root:
#   bash scripts/device/memory.sh STEP...
# Steps:
#   ab        da3_bench forward, da3-large bf16 + accelerate, 1/16/64 views: earlier builds
#             in $C/old and $C/mid (libda3.so + libda3_cuda_support.so, optional) against the
#             carried one, alternating rounds, one process each (peak and loaded MiB, speed);
#   capacity  bench/side_by_side.py forward rows of the official and libda3 (accelerate on)
#             for da3-large and da3-giant at 16/64/128 views: the peak MiB that
#             bench/capacity_fit.py fits (peak = fixed + per view x views) to predict the
#             largest scene a GPU holds; with CAPACITY_OLD=1 also the $C/old build's rows;
#   trace     the memory noted at each stage of a 64-view forward (DA3_LOG=debug), da3-large
#             and da3-giant;
#   accuracy  accel_accuracy (bf16 + accelerate against the fp32 reference) on the sample photos
#             with one more 64-view scene (the feed-forward then runs in chunks of rows), for
#             da3-large, and da3-giant with a 32-view scene;
#   side      bench/side_by_side.py, da3-large forward at 1/16/64 views against the official
#             forward and torch.compile at 16/64 views (COMPILE_CASES; speed and peak memory in one run).
# Carried: .carry-speed (scripts/device/prepare_carry_speed.sh; the old build by hand into
# .carry-speed/old) and .whl (scripts/device/prepare_carry.sh). Writes $OUT (default out/memory).
set -uo pipefail
OUT_NAME=memory
source scripts/device/speed_env.sh memory
# Only the checkpoints the steps use (a fresh machine makes da3-giant's in about a minute).
case " $* " in
  *" capacity "*|*" trace "*|*" accuracy "*) make_checkpoints da3-large da3-giant ;;
  *) make_checkpoints da3-large ;;
esac
old_lib_path=$C/old:$TORCH_LIB
for step in "$@"; do
  echo "== $step"; date -u
  case $step in
    ab)
      for round in 1 2; do
        for build in old mid new; do
          [ $build != new ] && [ ! -f "$C/$build/libda3.so" ] && continue
          echo "# round $round build $build"
          path=$LD_LIBRARY_PATH
          [ $build != new ] && path=$C/$build:$TORCH_LIB
          LD_LIBRARY_PATH=$path timeout 150 $C/da3_bench --model $CK/da3-large --views 1,16,64 --precision bf16 \
            --accelerate on --mode forward --warmup 3 --iters 10 2>&1
        done
      done | tee "$OUT/ab.txt"
      ;;
    capacity)
      python3 bench/side_by_side.py --device cuda --checkpoints $CK --bench "$C/da3_bench" \
        --cases "da3-large:16,64,128;da3-giant:16,64,128" --modes forward,libda3 --compile-cases '' \
        --libda3-accelerate on --warmup 1 --iters 3 --max-seconds 10 \
        --out "$OUT/capacity.md" --json "$OUT/capacity.json" 2>&1 | tee "$OUT/capacity.log" | tail -30
      if [ -n "${CAPACITY_OLD:-}" ] && [ -f "$C/old/libda3.so" ]; then
        for model in da3-large da3-giant; do
          LD_LIBRARY_PATH=$old_lib_path timeout 200 $C/da3_bench --model $CK/$model --views 16,64,128 --precision bf16 \
            --accelerate on --mode forward --warmup 1 --iters 3 2>&1
        done | tee "$OUT/capacity-old.txt"
      fi
      python3 bench/capacity_fit.py "$OUT/capacity.json" 2>&1 | tee "$OUT/capacity-fit.txt"
      ;;
    trace)
      for model in da3-large da3-giant; do
        echo "# $model, 64 views, the first (eager) forward at DA3_LOG=debug"
        DA3_LOG=debug timeout 120 $C/da3_bench --model $CK/$model --views 64 --precision bf16 --accelerate on \
          --mode forward --warmup 0 --iters 1 2>&1 | grep -E "forward memory|peak_mib" | sed -E 's/^.*forward memory on //'
      done | tee "$OUT/trace.txt"
      ;;
    accuracy)
      photos="assets/images/soh_000.png assets/images/soh_010.png"
      timeout 200 $C/accel_accuracy --bf16-accelerated-only --scene-views 64 $CK/da3-large $photos 2>&1 | tee "$OUT/accuracy-large.txt"
      timeout 200 $C/accel_accuracy --bf16-accelerated-only --scene-views 32 $CK/da3-giant $photos 2>&1 | tee "$OUT/accuracy-giant.txt"
      ;;
    side)
      python3 bench/side_by_side.py --device cuda --checkpoints $CK --bench "$C/da3_bench" \
        --cases da3-large:1,16,64 --compile-cases "${COMPILE_CASES:-da3-large:16,64}" --modes forward,compile,libda3 \
        --libda3-accelerate on --warmup 3 --iters 10 --max-seconds 20 \
        --out "$OUT/side_by_side.md" --json "$OUT/side_by_side.json" 2>&1 | tee "$OUT/side_by_side.log" | tail -40
      ;;
    *) echo "unknown step $step" ;;
  esac
done
date -u
