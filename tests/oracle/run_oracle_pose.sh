#!/usr/bin/env bash
# Official outputs for the pose cases (known cameras, ray-based pose, exported features):
#   tests/oracle/run_oracle_pose.sh MODEL OUTDIR
# needs OUTDIR/checkpoint from run_oracle.sh (same MODEL) and writes OUTDIR/pose_ref/<case>.safetensors
# for every case of cases_pose.json, plus the generated images they read. Skipped when up to
# date. Env: PYTHON (default <repo>/.venv/bin/python), CASES (default tests/oracle/cases_pose.json).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 MODEL OUTDIR" >&2
    exit 2
fi
MODEL=$1
OUT=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
CASES=${CASES:-$HERE/cases_pose.json}

CKPT_STAMP=$OUT/checkpoint/.done
if [ ! -e "$CKPT_STAMP" ] || [ "$(cut -d' ' -f1 "$CKPT_STAMP")" != "$MODEL" ]; then
    echo "no $MODEL checkpoint in $OUT: run tests/oracle/run_oracle.sh $MODEL $OUT first" >&2
    exit 1
fi

REF_STAMP=$OUT/pose_ref/.done
up_to_date=1
for dep in "$CKPT_STAMP" "$CASES" "$HERE/reference_pose.py" "$HERE/reference.py" \
        "$HERE/make_test_images.py" "$HERE/ref_stubs.py"; do
    if [ ! -e "$REF_STAMP" ] || [ ! "$REF_STAMP" -nt "$dep" ]; then
        up_to_date=0
    fi
done
if [ "$up_to_date" = 0 ]; then
    rm -rf "$OUT/pose_ref"
    "$PYTHON" "$HERE/reference_pose.py" --checkpoint "$OUT/checkpoint" --cases "$CASES" --out "$OUT/pose_ref"
    touch "$REF_STAMP"
fi
echo "pose oracle for $MODEL ready in $OUT/pose_ref"
