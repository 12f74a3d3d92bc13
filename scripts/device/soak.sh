#!/usr/bin/env bash
# The soak on the GPU machine (nvidia-h200-x2: PyTorch, no Rust, no network), from the
# repository root: examples_c/da3_soak with 32 host threads on ONE da3-large handle with
# use_accelerate (one replica per visible GPU), bf16 (precision auto), for SECONDS (first
# argument, default 600), every result checked against the serial result of its input, RSS
# and GPU memory sampled every second and judged flat or not. Usage:
#   CARRY=.carry-soak bash .carry-soak/soak.sh [SECONDS]
# Carried from the build machine: $CARRY/{libda3.so,libda3.so.0,libda3_cuda_support.so,da3_soak}
# (scripts/device/prepare_carry_soak.sh) and .whl/ (scripts/device/prepare_carry.sh), plus the
# working tree (tests/oracle/make_checkpoint.py, assets/images/).
# Environment: OUT (default out/soak: soak.json with every sample, summary.json, log.txt),
# CHECKPOINT (an existing checkpoint: skips making one), MODEL (preset of the random-weight
# checkpoint, default da3-large), THREADS (32), PROCESS_RES (504), INPUTS (12),
# MAX_VARIANTS (4: bit patterns a result may take per input: 2 replicas x eager or
# CUDA-graph forward; the summary's variants_max and max_*_diff say what was seen),
# BUDGET_S (570: the whole script's time; the device tool stops a call at 600 s).
# Without a GPU the same runs on the CPU (fp32; for trying the script, e.g. 20 s).
# Prints the log's tail and a RESULT line; exits with da3_soak's status.
set -uo pipefail
CARRY=${CARRY:-.carry-soak}
OUT=${OUT:-$PWD/out/soak}
REQUESTED_S=${1:-600}
MODEL=${MODEL:-da3-large}
BUDGET_S=${BUDGET_S:-570}
T0=$(date +%s)
mkdir -p "$OUT"
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used --format=csv,noheader
else
  echo "no GPU: the soak runs on the CPU"
fi
date -u

if [ -z "${CHECKPOINT:-}" ]; then
  source scripts/device/python_env.sh
  CHECKPOINT=/tmp/ck/$MODEL
  mkdir -p /tmp/ck
  timeout 240 python3 tests/oracle/make_checkpoint.py --model "$MODEL" --seed 0 --out "$CHECKPOINT" > /tmp/ck/"$MODEL".log 2>&1
  echo "checkpoint $MODEL: exit $? ($(( $(date +%s) - T0 )) s)"
else
  TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
fi
export LD_LIBRARY_PATH=$PWD/$CARRY:$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# Load, references and the threads' warm-up take about a minute and the drain a few seconds:
# keep 90 s of the budget for them.
SOAK_S=$REQUESTED_S
LEFT=$(( BUDGET_S - ($(date +%s) - T0) - 90 ))
if [ "$SOAK_S" -gt "$LEFT" ]; then
  echo "soak shortened from $REQUESTED_S s to $LEFT s to fit BUDGET_S=$BUDGET_S"
  SOAK_S=$LEFT
fi
"$CARRY"/da3_soak --model "$CHECKPOINT" --accelerate --precision auto --threads "${THREADS:-32}" \
  --seconds "$SOAK_S" --process-res "${PROCESS_RES:-504}" --inputs "${INPUTS:-12}" --sample-ms 1000 \
  --max-variants "${MAX_VARIANTS:-4}" --stall-s 120 --json "$OUT/soak.json" \
  > "$OUT/summary.json" 2> "$OUT/log.txt"
status=$?
tail -n 25 "$OUT/log.txt"
python3 - "$OUT/summary.json" "$status" <<'PY'
import json, sys
path, status = sys.argv[1], sys.argv[2]
try:
    s = json.load(open(path))
except Exception as e:
    print(f"RESULT soak: exit {status}, no summary ({e})"); sys.exit(0)
dev = s["device_reserved_mib"]
print(f"RESULT soak: exit {status} verdict {s['verdict']} {s['model']} {s['precision']} on {','.join(s['replica_devices'])}, "
      f"{s['threads']} threads x {s['timed_s']:.0f} s: {s['timed_calls']} calls ({s['calls_per_s']:.1f}/s), "
      f"{s['results_checked']} results, {s['identical']} identical, {s['variant_matches']} other variants "
      f"(max {s['variants_max']} per input), mismatches {s['mismatches']}, errors {s['errors']}")
print(f"RESULT diffs: max_abs {s['max_abs_diff']} max_rel {s['max_rel_diff']}")
r = s["rss_mib"]
print(f"RESULT rss MiB: first {r['first']} last {r['last']} max {r['max']} slope {r['slope_mib_per_min']} MiB/min "
      f"fitted rise {r['fitted_rise_second_half']} flat {r['flat']}")
if dev:
    print(f"RESULT gpu reserved MiB: first {dev['first']} last {dev['last']} max {dev['max']} slope "
          f"{dev['slope_mib_per_min']} MiB/min fitted rise {dev['fitted_rise_second_half']} flat {dev['flat']}")
    a = s["device_allocated_mib"]
    print(f"RESULT gpu allocated MiB: first {a['first']} last {a['last']} max {a['max']}; idle after references "
          f"{s['idle_after_reference_mib']['device_allocated']}, idle at the end {s['idle_end_mib']['device_allocated']}")
PY
echo "($(( $(date +%s) - T0 )) s)"
exit $status
