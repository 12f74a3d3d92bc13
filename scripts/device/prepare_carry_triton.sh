#!/usr/bin/env bash
# Builds what scripts/device/triton_load.sh needs into .carry-triton (git-ignored as /.carry-*/):
# libda3 (+ libda3_cuda_support.so), the Triton backend, and tritonserver with the libraries it
# links, xz-compressed (the wheel's 115 MiB of libraries would not fit the 64 MiB carry; what
# the binary links is 83 MiB, 26 MiB compressed). .whl comes from scripts/device/prepare_carry.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$REPO_ROOT"
cargo build --release --locked
scripts/triton.sh setup
scripts/triton.sh build
C=.carry-triton
rm -rf $C && mkdir -p $C
cp target/triton/backends/da3/* $C/
server=$(scripts/triton.sh server-path)
site=${server%/pytriton/tritonserver/bin/tritonserver}
libs=$(ldd "$server" | awk '/nvidia_pytriton.libs/ {print $3}' | sed "s#^$site/pytriton/tritonserver/bin/../../../##")
tar -C "$site" -cJf $C/tritonserver.tar.xz pytriton/tritonserver/bin $libs
ls -la $C
du -sh $C
