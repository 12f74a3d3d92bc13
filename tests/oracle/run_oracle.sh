#!/usr/bin/env bash
# Produce the parity-test references of the official DA3 for one model:
#   tests/oracle/run_oracle.sh MODEL OUTDIR
# MODEL: an official preset (da3-small, da3-base, ..., da3metric-large, da3mono-large,
# da3nested-giant-large) or da3nested-reduced (the nested model with small branches, see
# make_checkpoint.py). Writes OUTDIR/images (synthetic test images), OUTDIR/checkpoint
# (config.json + model.safetensors + official_config.json), OUTDIR/checkpoint_allsky for
# models with a sky head, OUTDIR/checkpoint_tinymetric for nested models (variants, see
# make_checkpoint.py), OUTDIR/official_configs (every preset's official config) and
# OUTDIR/ref/<case>.safetensors for every case of the case file.
# A step is skipped when its output is newer than the scripts it depends on, so a rerun
# costs nothing. Env: PYTHON (default <repo>/.venv/bin/python), SEED (default 0), CASES
# (default by model family: cases.json for any-view models, cases_metric.json for metric and
# mono, cases_nested.json for nested).
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
SEED=${SEED:-0}
case "$MODEL" in
    da3metric-*|da3mono-*) FAMILY_CASES=$HERE/cases_metric.json ;;
    da3nested-*) FAMILY_CASES=$HERE/cases_nested.json ;;
    *) FAMILY_CASES=$HERE/cases.json ;;
esac
CASES=${CASES:-$FAMILY_CASES}
mkdir -p "$OUT"

# up_to_date STAMP DEPS...: STAMP exists and is newer than every DEP.
up_to_date() {
    local stamp=$1; shift
    [ -e "$stamp" ] || return 1
    for dep in "$@"; do
        [ "$stamp" -nt "$dep" ] || return 1
    done
}

# Stamp files are written last, so an interrupted step is redone. The checkpoint
# stamp records model and seed: asking for another one rebuilds it.
IMAGES_STAMP=$OUT/images/.done
if ! up_to_date "$IMAGES_STAMP" "$HERE/make_test_images.py"; then
    "$PYTHON" "$HERE/make_test_images.py" --out "$OUT/images"
    touch "$IMAGES_STAMP"
fi

CKPT_STAMP=$OUT/checkpoint/.done
if ! up_to_date "$CKPT_STAMP" "$HERE/make_checkpoint.py" "$HERE/ref_stubs.py" \
        || [ "$(cat "$CKPT_STAMP")" != "$MODEL seed=$SEED" ]; then
    rm -rf "$OUT/checkpoint" "$OUT/checkpoint_allsky" "$OUT/checkpoint_tinymetric" "$OUT/official_configs" "$OUT/ref"
    "$PYTHON" "$HERE/make_checkpoint.py" --model "$MODEL" --seed "$SEED" --out "$OUT/checkpoint" \
        --allsky-out "$OUT/checkpoint_allsky" --tiny-metric-out "$OUT/checkpoint_tinymetric" \
        --official-configs "$OUT/official_configs"
    echo "$MODEL seed=$SEED" > "$CKPT_STAMP"
fi

REF_STAMP=$OUT/ref/.done
if ! up_to_date "$REF_STAMP" "$CKPT_STAMP" "$IMAGES_STAMP" "$CASES" \
        "$HERE/reference.py" "$HERE/make_test_images.py" "$HERE/ref_stubs.py" \
        || [ "$(cat "$REF_STAMP")" != "$CASES" ]; then
    rm -rf "$OUT/ref"
    "$PYTHON" "$HERE/reference.py" --checkpoint "$OUT/checkpoint" --cases "$CASES" \
        --images "$OUT/images" --out "$OUT/ref"
    echo "$CASES" > "$REF_STAMP"
fi
echo "oracle for $MODEL ready in $OUT"
