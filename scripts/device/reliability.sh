#!/usr/bin/env bash
# Issue 11 on the GPU machine (nvidia-h200-x2), from the repository root, in two device calls
# made back to back (the machine is released after 30 s idle):
#   bash scripts/device/reliability.sh start     # checkpoints, injected faults on the GPU,
#                                                # then the 10-minute soak in the background
#   bash scripts/device/reliability.sh collect   # waits for the soak, prints its RESULT lines
# Carried: .carry-soak/ (scripts/device/prepare_carry_soak.sh, plus `faults`: the
# failpoints test binary, `cargo test --release --locked --features failpoints --test faults
# --no-run`) and .whl/ (the official package, for the random-weight checkpoints).
# Files stay in target/gpu-reliability/ between the two calls; `collect` copies them to $OUT.
set -uo pipefail
W=$PWD/target/gpu-reliability
mkdir -p "$W"
source scripts/device/python_env.sh
export PYTHONUNBUFFERED=1
case "${1:-}" in
start)
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
  date -u
  T0=$(date +%s)
  python3 tests/oracle/make_checkpoint.py --model da3-small --seed 0 --out "$W/oracle/da3-small/checkpoint" > "$W/ck-small.log" 2>&1
  echo "da3-small checkpoint: exit $? ($(( $(date +%s) - T0 )) s)"
  python3 tests/oracle/make_checkpoint.py --model da3-large --seed 0 --out "$W/da3-large" > "$W/ck-large.log" 2>&1
  echo "da3-large checkpoint: exit $? ($(( $(date +%s) - T0 )) s)"
  echo "== injected faults on cuda:0 (fp32, da3-small)"
  CUDA_VISIBLE_DEVICES=0 DA3_ORACLE_DIR="$W/oracle" DA3_DEVICE=cuda LD_LIBRARY_PATH=$PWD/.carry-soak:$TORCH_LIB \
    timeout 120 .carry-soak/faults --nocapture 2>&1 | tail -n 5 | tee "$W/faults.txt"
  echo "== soak in the background ($(( $(date +%s) - T0 )) s)"
  CHECKPOINT="$W/da3-large" OUT="$W/soak" BUDGET_S=700 TORCH_LIB=$TORCH_LIB \
    setsid nohup bash .carry-soak/soak.sh "${SOAK_S:-600}" > "$W/soak.log" 2>&1 < /dev/null &
  echo $! > "$W/soak.pid"
  sleep 20
  tail -n 5 "$W/soak.log"
  ;;
collect)
  pid=$(cat "$W/soak.pid" 2>/dev/null)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then echo "the soak is not running (pid ${pid:-none})"; fi
  while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 5; done
  tail -n 40 "$W/soak.log"
  mkdir -p "${OUT:-out}"
  cp -r "$W/soak" "$W/soak.log" "$W/faults.txt" "${OUT:-out}/" 2>/dev/null
  ;;
*) echo "usage: $0 start|collect"; exit 2 ;;
esac
