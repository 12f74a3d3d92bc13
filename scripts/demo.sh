#!/usr/bin/env bash
# Sets everything up and runs the C example on the shipped sample images, writing depth maps
# you can look at (out/demo/depth_*.png) and the raw outputs as NumPy files.
#
# Weights: DA3_MODEL (a checkpoint directory or a Hugging Face repo id) if set; else the first
# official DA3 checkpoint found in the local Hugging Face cache; else a randomly initialised
# da3-small checkpoint made by the official package (tests/oracle/make_checkpoint.py), which
# shows the pipeline working but not real depth. Nothing is downloaded at run time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

scripts/setup.sh
cargo build --release --locked
make -s -C examples_c

model="${DA3_MODEL:-}"
if [ -z "$model" ]; then
  for root in "${HF_HUB_CACHE:-}" "${HF_HOME:+$HF_HOME/hub}" "$HOME/.cache/huggingface/hub"; do
    [ -n "$root" ] || continue
    for repo in DA3-LARGE-1.1 DA3-LARGE DA3-GIANT-1.1 DA3-GIANT DA3-BASE DA3-SMALL; do
      if ls "$root/models--depth-anything--$repo"/snapshots/*/model.safetensors >/dev/null 2>&1; then
        model="depth-anything/$repo"
        break 2
      fi
    done
  done
fi
if [ -z "$model" ]; then
  model="target/demo-checkpoint/da3-small"
  if [ ! -f "$model/model.safetensors" ]; then
    "$PYTHON" tests/oracle/make_checkpoint.py --model da3-small --seed 0 --out "$model" >/dev/null
  fi
  cat <<MSG

*** No Depth Anything 3 weights found (DA3_MODEL unset, nothing in the Hugging Face cache).
*** Running with a RANDOMLY INITIALISED da3-small checkpoint ($model):
*** the outputs show the pipeline working, not real depth. For real depth maps:
***   hf download depth-anything/DA3-LARGE-1.1  (on a machine with network access)
***   DA3_MODEL=depth-anything/DA3-LARGE-1.1 scripts/demo.sh

MSG
fi

examples_c/da3_infer --model "$model" --png --out out/demo assets/images/soh_000.png assets/images/soh_010.png
echo "demo: depth maps in out/demo/depth_0.png and out/demo/depth_1.png; depth.npy, conf.npy, extrinsics.npy, intrinsics.npy beside them"
