# Sourced by the speed scripts run from .carry-speed (speed2.sh, glue_kernels.sh) with their
# mode as $1 and OUT_NAME set: the carried libraries first on the loader's path, the wheels'
# Python environment (python_env.sh), $OUT (default out/$OUT_NAME), the checkpoints' folder $CK,
# and the GPU and date written to $OUT/env-$1.txt.
C=$PWD/.carry-speed
OUT=${OUT:-$PWD/out/$OUT_NAME}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$C:$TORCH_LIB
export PYTHONUNBUFFERED=1
CK=/tmp/da3-ckpt
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u; } | tee "$OUT/env-$1.txt"
