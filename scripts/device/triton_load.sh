#!/usr/bin/env bash
# Issue 13 on the device tool's GPU machine, from the repository root, one call:
#   bash scripts/device/triton_load.sh                       # one GPU (nvidia-h200)
#   GPUS=0,1 COUNTS=1 bash scripts/device/triton_load.sh     # two GPUs (nvidia-h200-x2): one instance each
# da3-large (random weights, made here), four-view 640x480 scenes from 16 concurrent clients for
# 30 s each: libda3 called directly (da3_infer_scenes, one model with a replica on each GPU of
# GPUS, use_accelerate, bf16), then tritonserver with libtriton_da3.so (for each instance count of
# COUNTS, default "1 2": that many instances per GPU; dynamic batching up to 8 scenes).
# Carried: .carry-triton (scripts/device/prepare_carry_triton.sh) and
# .whl. Writes $OUT (default out/triton_load): load.jsonl, server logs, env.txt.
set -uo pipefail
C=$PWD/.carry-triton
OUT=${OUT:-$PWD/out/triton_load}
mkdir -p "$OUT"
source scripts/device/python_env.sh
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u; } | tee "$OUT/env.txt"
mkdir -p /tmp/ts /tmp/backends/da3
tar -C /tmp/ts -xJf $C/tritonserver.tar.xz
cp $C/libtriton_da3.so $C/libda3.so.0 /tmp/backends/da3/
[ -f $C/libda3_cuda_support.so ] && cp $C/libda3_cuda_support.so /tmp/backends/da3/
export LD_LIBRARY_PATH=$TORCH_LIB
CK=/tmp/da3-ckpt
python3 tests/oracle/make_checkpoint.py --model da3-large --seed 0 --out $CK/da3-large > "$OUT/ck.log" 2>&1
echo "checkpoint: exit $?"
CLIENTS=${CLIENTS:-16} SECONDS_=${SECONDS_:-30} GPUS=${GPUS:-0} COUNTS=${COUNTS:-1 2}
devices=$(echo "$GPUS" | sed 's/\([0-9]\+\)/cuda:\1/g')
timeout 120 python3 bench/triton_load.py direct --libda3 /tmp/backends/da3/libda3.so.0 --checkpoint $CK/da3-large \
  --devices $devices --clients $CLIENTS --seconds $SECONDS_ --label "direct da3_infer_scenes, 1 model on $devices" \
  2>"$OUT/direct.err" | tee -a "$OUT/load.jsonl"
for count in $COUNTS; do
  rm -rf /tmp/models
  python3 triton/make_model_repository.py --preset da3-large --checkpoint $CK/da3-large --repository /tmp/models \
    --kind gpu --gpus $GPUS --count $count --use-accelerate --max-batch-size 8 >/dev/null
  /tmp/ts/pytriton/tritonserver/bin/tritonserver --model-repository /tmp/models --backend-directory /tmp/backends \
    --http-address 127.0.0.1 --grpc-address 127.0.0.1 --metrics-address 127.0.0.1 > "$OUT/server-$count.log" 2>&1 &
  pid=$!
  for i in $(seq 1 120); do
    curl -sf 127.0.0.1:8000/v2/models/da3-large/ready >/dev/null 2>&1 && break
    sleep 0.5
  done
  timeout 120 python3 bench/triton_load.py triton --url 127.0.0.1:8000 --model da3-large --clients $CLIENTS \
    --seconds $SECONDS_ --label "triton, $count instance(s) on each of GPUs $GPUS" 2>"$OUT/triton-$count.err" | tee -a "$OUT/load.jsonl"
  curl -s 127.0.0.1:8002/metrics | grep -E "^nv_inference_(request_success|count|exec_count)" > "$OUT/metrics-$count.txt"
  kill -TERM $pid; wait $pid; echo "server exit: $?"
done
