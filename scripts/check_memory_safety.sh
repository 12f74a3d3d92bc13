#!/usr/bin/env bash
# The memory-safety jobs of the test suite (scripts/test.sh runs this after the release build
# and the oracle checkpoints; README "Sanitizers, valgrind and miri"):
#   1. ASan+UBSan: every C/C++ program of the tree (tests/c/*.c, tests/c/*.cpp, examples_c/*.c,
#      examples_cpp/*.cpp) built with -fsanitize=address,undefined and run on its test inputs
#      (tests/c_api.rs, the tests named *under_sanitizers*); fails if one has no sanitized run.
#   2. valgrind memcheck on the error-path program tests/c/test_errors.c
#      (tests/c_api.rs, c_error_tests_pass_under_valgrind).
#   3. cargo miri test over the pure-Rust unit tests (MIRI_TESTS below); fails if none ran.
# Prints one summary line per job and the time each took.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

LOG_DIR="${CARGO_TARGET_DIR:-target}/memory-safety"
mkdir -p "$LOG_DIR"
summary=()

# The tests skip (and pass) where the toolchain lacks a sanitizer runtime: here that is an error.
probe="$LOG_DIR/probe"
printf 'int main(void) { return 0; }\n' > "$probe.c"
if ! { "${CC:-cc}" -fsanitize=address,undefined -o "$probe" "$probe.c" && "$probe"; }; then
  echo "check_memory_safety: ${CC:-cc} cannot build and run a program with -fsanitize=address,undefined" >&2
  exit 1
fi
printf '#include <string>\nint main() { return std::string("x").size() == 1 ? 0 : 1; }\n' > "$probe.cpp"
if ! { g++ -fsanitize=address,undefined -o "$probe" "$probe.cpp" && "$probe"; } &&
   ! { clang++ -fsanitize=address,undefined -o "$probe" "$probe.cpp" && "$probe"; }; then
  echo "check_memory_safety: neither g++ nor clang++ builds and runs a sanitized C++ program" >&2
  exit 1
fi

# Job 1: ASan+UBSan.
start=$SECONDS
cargo test --release --locked --test c_api under_sanitizers -- --nocapture --test-threads 2 > "$LOG_DIR/asan.log" 2>&1 ||
  { tail -n 200 "$LOG_DIR/asan.log"; echo "check_memory_safety: ASan/UBSan job failed (log: $LOG_DIR/asan.log)" >&2; exit 1; }
ran=$(sed -n 's/^ran under ASan\/UBSan: //p' "$LOG_DIR/asan.log" | sort -u)
missing=()
for source in tests/c/*.c tests/c/*.cpp examples_c/*.c examples_cpp/*.cpp; do
  grep -qxF "$source" <<< "$ran" || missing+=("$source")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "check_memory_safety: no sanitized run of: ${missing[*]} (add one to tests/c_api.rs)" >&2
  exit 1
fi
tests=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$LOG_DIR/asan.log")
summary+=("ASan+UBSan: $(wc -l <<< "$ran") programs clean in $tests tests ($((SECONDS - start)) s): $(tr '\n' ' ' <<< "$ran")")

# Job 2: valgrind memcheck.
start=$SECONDS
cargo test --release --locked --test c_api c_error_tests_pass_under_valgrind -- --ignored --exact > "$LOG_DIR/valgrind.log" 2>&1 ||
  { tail -n 200 "$LOG_DIR/valgrind.log"; echo "check_memory_safety: valgrind job failed (log: $LOG_DIR/valgrind.log)" >&2; exit 1; }
grep -q "^test result: ok\. 1 passed" "$LOG_DIR/valgrind.log" ||
  { echo "check_memory_safety: the valgrind test did not run" >&2; exit 1; }
summary+=("valgrind memcheck: tests/c/test_errors.c (basic and checkpoint groups) 0 errors, 0 bytes definitely lost ($((SECONDS - start)) s)")

# Job 3: miri over the unit tests that do not call libtorch (miri cannot execute FFI). A module
# listed here whose tests call tch marks those #[cfg_attr(miri, ignore)].
MIRI_TESTS=(
  preprocess::cv_resize preprocess::tests scheduler:: sharding:: cancel:: utils::rng
  geometry::tests ffi::tests::option ffi::tests::older_options
)
start=$SECONDS
cargo +nightly miri test --locked --lib -- "${MIRI_TESTS[@]}" --skip utils::geometry > "$LOG_DIR/miri.log" 2>&1 ||
  { tail -n 100 "$LOG_DIR/miri.log"; echo "check_memory_safety: miri job failed (log: $LOG_DIR/miri.log)" >&2; exit 1; }
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed; 0 failed; \([0-9]*\) ignored.*/\1 \2/p' "$LOG_DIR/miri.log" | head -n 1)
read -r miri_passed miri_ignored <<< "${passed:-0 0}"
if [ "${miri_passed:-0}" -eq 0 ]; then
  tail -n 50 "$LOG_DIR/miri.log"
  echo "check_memory_safety: miri ran no test: a job that runs nothing cannot fail" >&2
  exit 1
fi
summary+=("miri: $miri_passed unit tests passed, $miri_ignored ignored (they call libtorch) ($((SECONDS - start)) s)")

printf 'check_memory_safety: %s\n' "${summary[@]}"
