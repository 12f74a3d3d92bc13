#!/usr/bin/env bash
# Issue 12, the head's glue kernels and the host side of a call, on the device tool's GPU
# machine (nvidia-h200), from the repository root:
#   bash scripts/device/head_kernels.sh check   # glue_kernels_check (the upsampling bit for bit
#                                               # against libtorch's), then memory.sh's accuracy
#                                               # and ab steps (the $C/old build against this
#                                               # one) and a kernel profile of da3-large at 16 and
#                                               # 64 views
#   bash scripts/device/head_kernels.sh side    # memory.sh's side step (forward against the
#                                               # official and torch.compile), then end to end
#                                               # from 640x480 RGB8 frames at 1, 16 and 64 views
#   bash scripts/device/head_kernels.sh faults  # bench/host_faults.py: the $C/old build against this
#                                               # one at 1,16,64 views, three processes each, with
#                                               # the processes' page faults
# Carried: .carry-speed (scripts/device/prepare_carry_speed.sh; the earlier build by hand into
# .carry-speed/old) and .whl (scripts/device/prepare_carry.sh). Writes $OUT (default out/head).
set -uo pipefail
OUT_NAME=head
source scripts/device/speed_env.sh "${1:-}"
export OUT
case "${1:-}" in
check)
  echo "== glue_kernels_check"
  DA3_LOG=info $C/glue_kernels_check 2>&1 | tee "$OUT/kernels-check.txt"
  bash scripts/device/memory.sh accuracy ab
  echo "== profile"; date -u
  timeout 150 python3 bench/profile_libda3.py --lib $C/libda3.so --model $CK/da3-large --views 16,64 --accelerate on \
    --out "$OUT/profile.md" 2>&1 | tail -5
  cat "$OUT/profile.md"
  ;;
side)
  bash scripts/device/memory.sh side
  echo "== end to end"; date -u
  python3 bench/side_by_side.py --device cuda --checkpoints $CK --make-missing --bench "$C/da3_bench" \
    --cases da3-large:1 --e2e-views 1,16,64 --modes e2e,libda3 --compile-cases '' --libda3-accelerate on \
    --warmup 3 --iters 10 --max-seconds 15 --out "$OUT/e2e.md" --json "$OUT/e2e.json" 2>&1 | tail -20
  ;;
faults)
  make_checkpoints da3-large
  python3 bench/host_faults.py --bench "$C/da3_bench" --model $CK/da3-large --builds "old=$C/old,new=$C" \
    --views 1,16,64 --rounds 3 2>&1 | tee "$OUT/faults.txt"
  ;;
*) echo "usage: $0 check|side|faults"; exit 2 ;;
esac
date -u
