#!/usr/bin/env bash
# libda3 behind NVIDIA Triton Inference Server (README, "Serving").
#
#   scripts/triton.sh setup    .venv-triton: PyPI's nvidia-pytriton 0.7.0 for its tritonserver
#                              2.51 binary (CPU and GPU) and tritonclient[http] for the tests
#   scripts/triton.sh build    target/triton/backends/da3/libtriton_da3.so, with libda3.so.0
#                              beside it (build the library first: cargo build --release)
#   scripts/triton.sh repository PRESET CHECKPOINT REPO [options of triton/make_model_repository.py]
#                              writes REPO/PRESET/config.pbtxt and REPO/PRESET/1/
#   scripts/triton.sh serve REPO [tritonserver options]
#                              tritonserver on 127.0.0.1 (HTTP 8000, gRPC 8001, metrics 8002,
#                              unless given) with the da3 backend; Ctrl-C stops it cleanly
#   scripts/triton.sh server-path
#                              prints the tritonserver binary's path
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv-triton"
BACKENDS="$REPO_ROOT/target/triton/backends"
PYTRITON="nvidia-pytriton==0.7.0"

server_path() {
  local found
  found=$(find "$VENV/lib" -path '*/pytriton/tritonserver/bin/tritonserver' -type f 2>/dev/null | head -n 1)
  [ -n "$found" ] || { echo "triton: no tritonserver in $VENV: run scripts/triton.sh setup" >&2; exit 1; }
  echo "$found"
}

case "${1:-}" in
  setup)
    stamp="$VENV/.da3-triton-stamp"
    want="$(printf '%s\n' "$PYTRITON"; cat triton/requirements.txt)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      echo "triton: .venv-triton is up to date"
      exit 0
    fi
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r triton/requirements.txt
    # --no-deps: only the wheel's tritonserver binary and the libraries it bundles are used.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$PYTRITON"
    # (--help exits 1 after printing the usage.)
    usage=$("$(server_path)" --help 2>&1 || true)
    case "$usage" in
      *"Usage: tritonserver"*) ;;
      *) echo "triton: tritonserver does not start here: $usage" >&2; exit 1 ;;
    esac
    printf '%s' "$want" > "$stamp"
    echo "triton: .venv-triton ready ($(server_path))"
    ;;
  build)
    [ -f target/release/libda3.so ] || { echo "triton: build libda3 first (cargo build --release --locked)" >&2; exit 1; }
    cargo build --release --locked --manifest-path triton/Cargo.toml --target-dir target/triton/build
    mkdir -p "$BACKENDS/da3"
    # Copies, not links: the backend finds libda3.so.0 through its $ORIGIN run path.
    cp -f target/triton/build/release/libtriton_da3.so "$BACKENDS/da3/libtriton_da3.so"
    cp -f target/release/libda3.so "$BACKENDS/da3/libda3.so.0"
    if [ -f target/release/libda3_cuda_support.so ]; then
      cp -f target/release/libda3_cuda_support.so "$BACKENDS/da3/"
    fi
    echo "triton: backend in $BACKENDS/da3"
    ;;
  repository)
    [ $# -ge 4 ] || { echo "usage: scripts/triton.sh repository PRESET CHECKPOINT REPO [options]" >&2; exit 2; }
    preset=$2 checkpoint=$3 repo=$4
    shift 4
    python3 triton/make_model_repository.py --preset "$preset" --checkpoint "$checkpoint" --repository "$repo" "$@"
    ;;
  serve)
    [ $# -ge 2 ] || { echo "usage: scripts/triton.sh serve REPO [tritonserver options]" >&2; exit 2; }
    repo=$2
    shift 2
    [ -f "$BACKENDS/da3/libtriton_da3.so" ] || { echo "triton: run scripts/triton.sh build first" >&2; exit 1; }
    exec "$(server_path)" --model-repository "$repo" --backend-directory "$BACKENDS" \
      --http-address 127.0.0.1 --grpc-address 127.0.0.1 --metrics-address 127.0.0.1 "$@"
    ;;
  server-path)
    server_path
    ;;
  *)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
