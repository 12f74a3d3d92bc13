#!/usr/bin/env bash
# Creates the project virtualenv (.venv) with PyPI's torch==2.11.0 (libtorch for the build
# and the run) and the official Depth Anything 3 package with the few packages its model
# code imports (the test oracle). Idempotent: reruns only when a requirement changed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

TORCH_REQ="torch==2.11.0"
REQS="tests/oracle/requirements.txt"
TOOLS="tests/requirements-tools.txt"
STAMP="$VIRTUAL_ENV/.da3-setup-stamp"
want="$(printf '%s\n' "$TORCH_REQ"; cat "$REQS" "$TOOLS")"

# The fuzzing tools (scripts/fuzz.sh): a nightly toolchain (sanitizers) and cargo-fuzz, pinned;
# each skipped when present.
CARGO_FUZZ_VERSION="0.13.2"
cargo +nightly --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
# miri for scripts/check_memory_safety.sh (nightly only; a no-op when already installed).
rustup component add miri rust-src --toolchain nightly >/dev/null
# clang with its libFuzzer runtime, for the C fuzz target of scripts/fuzz.sh: Debian's package
# where it is missing (a machine image without it was seen; apt is root's, as on CI).
if ! command -v clang >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q clang >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q clang >/dev/null; }
  else
    echo "setup: clang is missing (scripts/fuzz.sh needs it): install Debian's clang package" >&2
    exit 1
  fi
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
[ -x "$VIRTUAL_ENV/bin/python" ] || python3 -m venv "$VIRTUAL_ENV"
"$PYTHON" -m pip install -q --disable-pip-version-check "$TORCH_REQ"
# --no-deps: depth-anything-3 declares export-only dependencies (open3d, xformers, gradio,
# ...) that its network code never imports; the file lists every package needed instead.
"$PYTHON" -m pip install -q --disable-pip-version-check --no-deps -r "$REQS"
"$PYTHON" -m pip install -q --disable-pip-version-check --no-deps -r "$TOOLS"
"$PYTHON" -c "import torch, depth_anything_3, cv2, plyfile, trimesh; print('setup: torch', torch.__version__)"
"$VIRTUAL_ENV/bin/cmake" --version | head -n 1
printf '%s' "$want" > "$STAMP"
