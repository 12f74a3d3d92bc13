# Sourced by the speed scripts run from .carry-speed (speed2.sh, glue_kernels.sh) with their
# mode as $1 and OUT_NAME set: the carried libraries first on the loader's path, the wheels'
# Python environment (python_env.sh), $OUT (default out/$OUT_NAME), the checkpoints' folder $CK
# (make_checkpoints PRESET...), and the GPU and date written to $OUT/env-$1.txt.
C=$PWD/.carry-speed
OUT=${OUT:-$PWD/out/$OUT_NAME}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$C:$TORCH_LIB
export PYTHONUNBUFFERED=1
CK=/tmp/da3-ckpt
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u; } | tee "$OUT/env-$1.txt"
# Random-weight checkpoints of the given presets in $CK (official package, seed 0), unless there.
make_checkpoints() {
  for model in "$@"; do
    [ -f "$CK/$model/model.safetensors" ] || python3 tests/oracle/make_checkpoint.py --model $model --seed 0 --out "$CK/$model" > "$OUT/ck-$model.log" 2>&1
    echo "checkpoint $model: exit $?"
  done
}
