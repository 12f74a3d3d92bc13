#!/usr/bin/env bash
# Installs libda3 for C and C++ programs into PREFIX:
#
#     scripts/install.sh PREFIX                  # cargo build --release --locked, then install
#     scripts/install.sh --lib-dir DIR PREFIX    # install the libda3.so already in DIR (no build)
#
#   PREFIX/lib/libda3.so.X.Y.Z, libda3.so.X -> it (the SONAME), libda3.so -> libda3.so.X
#   PREFIX/lib/libda3_cuda_support.so          (when the build made it: CUDA graphs etc.)
#   PREFIX/include/da3.h (and da3.hpp when the checkout has it)
#   PREFIX/lib/pkgconfig/da3.pc                (pkg-config --cflags --libs da3)
#   PREFIX/lib/cmake/da3/da3-config.cmake, da3-config-version.cmake
#                                              (find_package(da3 CONFIG); target da3::da3)
#
# The pkg-config and CMake files compute every path from their own location, so the prefix
# can be moved. libtorch is not copied: on the build machine libda3 finds the one it was built
# against (its run path); scripts/bundle.sh PREFIX puts the libtorch libraries it needs
# beside it for shipping. A script rather than cargo-c: it reuses the ordinary
# `cargo build --release` (cargo-c would be one more tool to install, with its own build of
# the crate), and the build already sets the SONAME and run paths (build.rs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

usage() { echo "usage: $0 [--lib-dir DIR] PREFIX" >&2; exit 2; }
lib_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --lib-dir) [ $# -ge 2 ] || usage; lib_dir=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
prefix=$1

if [ -z "$lib_dir" ]; then
  cargo build --release --locked
  lib_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
fi
[ -f "$lib_dir/libda3.so" ] || { echo "$lib_dir/libda3.so is missing" >&2; exit 1; }

# The version from Cargo.toml's [package] (the first `version =` line).
version=$(sed -n 's/^version *= *"\([0-9][0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
description=$(sed -n 's/^description *= *"\(.*\)"$/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
soname=$(readelf -d "$lib_dir/libda3.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" != "libda3.so.$major" ]; then
  echo "$lib_dir/libda3.so has SONAME '$soname', expected libda3.so.$major (rebuild: build.rs sets it)" >&2
  exit 1
fi

mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/da3" "$prefix/include"
prefix=$(cd "$prefix" && pwd)
install -m 755 "$lib_dir/libda3.so" "$prefix/lib/libda3.so.$version"
ln -sfn "libda3.so.$version" "$prefix/lib/libda3.so.$major"
ln -sfn "libda3.so.$major" "$prefix/lib/libda3.so"
# `cargo test` leaves libda3.so in <profile>/deps/ and the shim in <profile>/.
for dir in "$lib_dir" "$lib_dir/.."; do
  if [ -f "$dir/libda3_cuda_support.so" ]; then
    install -m 755 "$dir/libda3_cuda_support.so" "$prefix/lib/libda3_cuda_support.so"
    break
  fi
done
install -m 644 include/da3.h "$prefix/include/da3.h"
if [ -f include/da3.hpp ]; then
  install -m 644 include/da3.hpp "$prefix/include/da3.hpp"
fi

fill() {
  sed -e "s|@DA3_VERSION@|$version|g" -e "s|@DA3_MAJOR@|$major|g" -e "s|@DA3_DESCRIPTION@|$description|g" "$1" >"$2"
  chmod 644 "$2"
}
fill cmake/da3.pc.in "$prefix/lib/pkgconfig/da3.pc"
fill cmake/da3-config.cmake.in "$prefix/lib/cmake/da3/da3-config.cmake"
fill cmake/da3-config-version.cmake.in "$prefix/lib/cmake/da3/da3-config-version.cmake"

echo "installed libda3 $version into $prefix:"
(cd "$prefix" && for f in lib/libda3.so* lib/libda3_cuda_support.so include/da3.h include/da3.hpp \
  lib/pkgconfig/da3.pc lib/cmake/da3/da3-config*.cmake; do [ ! -e "$f" ] || ls -ld "$f"; done)
