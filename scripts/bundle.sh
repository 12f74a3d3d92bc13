#!/usr/bin/env bash
# Copies into PREFIX/lib the libtorch libraries an installed libda3 (scripts/install.sh
# PREFIX) needs at run time, taken from the torch wheel it was built against, so that PREFIX
# can be shipped and run elsewhere with no Python, no torch and no LD_LIBRARY_PATH: libda3
# looks beside itself first (run path $ORIGIN), and so do libtorch's libraries.
#
#     scripts/bundle.sh PREFIX [cpu|cuda]      (default cpu)
#
# cpu:  the closure of libda3's NEEDED entries within the wheel: libtorch_cpu, libc10,
#       libgomp, plus the CUDA runtime pieces the CUDA wheel's libtorch_cpu links (libcudart,
#       libcupti); CPU inference only.
# cuda: also libtorch's CUDA backend, which libda3 opens at run time when a GPU is there
#       (libtorch_cuda, libc10_cuda, libtorch_cuda_linalg), libda3_cuda_support's needs, the
#       libraries those open themselves (cuDNN's engine libraries, NVRTC), and their closure
#       (cuBLAS, cuDNN, NCCL, cuFFT, cuSPARSE, ...). The NVIDIA driver (libcuda.so.1) is the
#       target machine's own and is never copied.
# Libraries outside the wheel (glibc, libstdc++, libgcc_s) are the system's: listed, not
# copied. Prints each copied file's size and the total.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

usage() { echo "usage: $0 PREFIX [cpu|cuda]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
prefix=$1
flavour=${2:-cpu}
case "$flavour" in cpu|cuda) ;; *) usage ;; esac
lib="$prefix/lib"
[ -e "$lib/libda3.so" ] || { echo "$lib/libda3.so is missing: run scripts/install.sh $prefix first" >&2; exit 1; }

if [ -n "${LIBTORCH:-}" ]; then
  torch_lib="$LIBTORCH/lib"
else
  torch_lib=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
fi
site=$(cd "$torch_lib/../.." && pwd)
# Where the wheels keep shared libraries (torch's own first).
search=("$torch_lib")
for d in "$site/torch.libs" "$site"/nvidia/*/lib; do
  [ -d "$d" ] && search+=("$d")
done

find_lib() {
  local d
  for d in "${search[@]}"; do
    if [ -e "$d/$1" ]; then
      echo "$d/$1"
      return 0
    fi
  done
  return 1
}

declare -A seen=()
declare -A system=()
queue=("$(readlink -f "$lib/libda3.so")")
if [ "$flavour" = cuda ]; then
  [ -f "$lib/libda3_cuda_support.so" ] && queue+=("$lib/libda3_cuda_support.so")
  # Opened with dlopen, so absent from any NEEDED list.
  extra=(libtorch_cuda.so libc10_cuda.so libtorch_cuda_linalg.so libcaffe2_nvrtc.so)
  for d in "${search[@]}"; do
    for f in "$d"/libcudnn_*.so.* "$d"/libnvrtc.so.* "$d"/libnvrtc-builtins.so.*; do
      [ -e "$f" ] && extra+=("$(basename "$f")")
    done
  done
  for name in "${extra[@]}"; do
    path=$(find_lib "$name") || { echo "warning: $name not found in the wheel" >&2; continue; }
    seen[$name]=1
    queue+=("$path")
  done
fi

copied=()
while [ ${#queue[@]} -gt 0 ]; do
  file=${queue[0]}
  queue=("${queue[@]:1}")
  name=$(basename "$file")
  case "$name" in
    libda3.so*|libda3_cuda_support.so) ;;  # already installed
    *)
      cp -L "$file" "$lib/$name.tmp.$$"
      mv -f "$lib/$name.tmp.$$" "$lib/$name"
      copied+=("$name")
      ;;
  esac
  while read -r needed; do
    [ -n "${seen[$needed]:-}" ] && continue
    seen[$needed]=1
    if path=$(find_lib "$needed"); then
      queue+=("$path")
    else
      system[$needed]=1
    fi
  done < <(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
total=0
echo "bundled ($flavour) into $lib:"
for name in $(printf '%s\n' "${copied[@]}" | sort); do
  size=$(stat -c %s "$lib/$name")
  total=$((total + size))
  printf '  %-44s %8s MiB\n' "$name" "$(mib "$size")"
done
for name in libda3.so.* libda3_cuda_support.so; do
  for f in "$lib"/$name; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    size=$(stat -c %s "$f")
    total=$((total + size))
    printf '  %-44s %8s MiB (installed)\n' "$(basename "$f")" "$(mib "$size")"
  done
done
printf '  %-44s %8s MiB (%d bytes)\n' total "$(mib "$total")" "$total"
echo "from the system (not copied): $(printf '%s\n' "${!system[@]}" | sort | tr '\n' ' ')"
