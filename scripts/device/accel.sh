#!/usr/bin/env bash
# Runs on the device tool's GPU machine (PyTorch, no Rust, no network), from /work/main's
# root, carrying .carry-accel (libda3.so and a copy named libda3.so.0, libda3_cuda_support.so, da3_bench, accel_accuracy,
# this script) and .whl (the official package, to make random-weight checkpoints).
# Does, in order of value: random-weight da3-large and da3-giant checkpoints (official
# package, seed 0); da3_bench on da3-large (forward 1/4/16/64 views, e2e 1/16 views, both
# accelerate settings, bf16), ablations of the accelerated path, the accuracy check on the
# sample photos (with the bf16 and the fp32 head); da3_bench on da3-giant.
set -uo pipefail
C=$PWD/.carry-accel
OUT=${OUT:-$PWD/out/device-accel}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export LD_LIBRARY_PATH=$C:$TORCH_LIB
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u; } | tee "$OUT/env.txt"
for m in da3-large ${GIANT:-da3-giant}; do
  python3 tests/oracle/make_checkpoint.py --model $m --seed 0 --out /tmp/ck/$m > /tmp/ck-$m.log 2>&1 &
done
wait
ls /tmp/ck/*
L=/tmp/ck/da3-large
export DA3_LOG_GRAPHS=1
echo "== bench da3-large forward"; date -u
$C/da3_bench --model $L --views ${VIEWS:-1,4,16,64} --precision auto --accelerate both --mode forward \
  --warmup 3 --iters ${ITERS:-20} 2>&1 | tee "$OUT/bench-large-forward.txt"
echo "== ablations of the accelerated path"; date -u
{ for ablation in DA3_ATTENTION=sdpa DA3_ACCEL_HEAD=fp32 DA3_ACCEL_NHWC=0 DA3_ACCEL_FEATURES=fp32; do
    echo "# $ablation"; env $ablation $C/da3_bench --model $L --views 1,16,64 --accelerate on --mode forward --warmup 3 --iters 10 2>&1
  done; } | tee "$OUT/bench-large-ablation.txt"
echo "== bench da3-large e2e"; date -u
$C/da3_bench --model $L --views 1,16 --precision auto --accelerate both --mode e2e \
  --warmup 3 --iters ${ITERS:-20} 2>&1 | tee "$OUT/bench-large-e2e.txt"
echo "== accuracy da3-large"; date -u
$C/accel_accuracy $L assets/images/soh_000.png assets/images/soh_010.png 2>&1 | tee "$OUT/accuracy-large.txt"
if [ -d /tmp/ck/da3-giant ]; then
  echo "== bench da3-giant forward"; date -u
  $C/da3_bench --model /tmp/ck/da3-giant --views 1,16 --precision auto --accelerate both --mode forward \
    --warmup 3 --iters ${ITERS:-20} 2>&1 | tee "$OUT/bench-giant-forward.txt"
fi
date -u
