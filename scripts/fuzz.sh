#!/usr/bin/env bash
# Fuzzing (issue 11): the cargo-fuzz targets in fuzz/ (image_bytes, pixel_buffer, options and
# any other target fuzz/Cargo.toml lists) and the C .npy reader of examples_c (fuzz/c/npy_reader.c,
# libFuzzer through clang), each under AddressSanitizer.
#
#   scripts/fuzz.sh smoke              each target for SMOKE_SECONDS (default 12) from its seed
#                                      corpus; fails on any crash, leak, timeout or OOM. Part
#                                      of scripts/test.sh.
#   scripts/fuzz.sh campaign SECONDS   each target for SECONDS, one after the other, on one core,
#                                      growing fuzz/corpus-campaign/TARGET (git-ignored);
#                                      prints the executions per target and in total.
#
# FUZZ_TARGETS="options npy_reader" picks targets (default: all).
# Needs a nightly toolchain, cargo-fuzz and clang (scripts/setup.sh installs the first two).
# A crash leaves its input in fuzz/artifacts/TARGET/; replay it with
# `fuzz/target/x86_64-unknown-linux-gnu/release/TARGET FILE` (C: fuzz/target/c/npy_reader FILE).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

mode="${1:-}"
case "$mode" in
  smoke) seconds="${SMOKE_SECONDS:-12}" ;;
  campaign) seconds="${2:?usage: scripts/fuzz.sh campaign SECONDS}" ;;
  *) echo "usage: scripts/fuzz.sh smoke | campaign SECONDS" >&2; exit 2 ;;
esac

triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="fuzz/target/$triple/release"
c_bin="fuzz/target/c/npy_reader"
# The targets link libtorch (through the library); the library's own binaries find it
# through their run path, these through the loader path.
torch_lib="$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

start=$SECONDS
# -a: debug assertions and overflow checks on, so that a wrapped size panics instead of passing.
(cd fuzz && cargo +nightly fuzz build -a)
mkdir -p fuzz/target/c
clang -std=c11 -g -O1 -Wall -Wextra -Werror -pedantic -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I examples_c fuzz/c/npy_reader.c -o "$c_bin"
echo "fuzz: built in $((SECONDS - start)) s"

# FUZZ_TARGETS="a b" runs only those.
targets="${FUZZ_TARGETS:-$(cd fuzz && cargo +nightly fuzz list) npy_reader}"
total=0
for target in $targets; do
  exe="$bin_dir/$target"
  [ "$target" = npy_reader ] && exe="$c_bin"
  mkdir -p "fuzz/artifacts/$target"
  if [ "$mode" = smoke ]; then
    # New inputs go to a scratch directory: the committed seeds stay as they are.
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
  else
    work="fuzz/corpus-campaign/$target"
    mkdir -p "$work"
  fi
  log="fuzz/artifacts/$target/last-run.log"
  # -timeout: a single input taking 10 s is a hang; -rss_limit_mb: the library's limits keep
  # a decode well under it (see include/da3.h, DA3_IMAGE_MAX_*).
  seeds=()
  [ -d "fuzz/corpus/$target" ] && seeds=("fuzz/corpus/$target")
  if ! "$exe" "$work" "${seeds[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target FAILED (log: $log)" >&2
    exit 1
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  corpus="$(find "$work" -type f | wc -l)"
  echo "fuzz: $target: ${runs:-?} executions in $seconds s, 0 crashes, corpus $corpus files"
  total=$((total + ${runs:-0}))
  [ "$mode" = smoke ] && rm -rf "$work"
done
echo "fuzz: $mode done: $total executions in total, $((SECONDS - start)) s including the build"
