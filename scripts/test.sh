#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite with ctest; then, as
# CI does, the same suite under ASan+UBSan and under TSan (scripts/sanitize.sh), and a short run
# of every libFuzzer target over its stored regression inputs (fuzz/run.sh). Any failure stops
# the run with a non-zero exit.
#   SUANLI_CI_SANITIZERS=0   release suite only (a quick local run); CI leaves it at 1
#   SUANLI_FUZZ_SECONDS=N    fuzzing time per target (default 20; 0 = regression inputs only)
# Order, cheapest suite first so that a failure shows early: release, TSan, ASan+UBSan, fuzzing.
# Measured 2026-11-25 on the shared 2-core machine: the TSan build took 415 CPU-s, the ASan+UBSan
# one about twice that, and each suite about 100-115 s of wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
timings=()
phase() {
  local name=$1 start=$SECONDS
  shift
  echo "==== $name"
  "$@"
  timings+=("$name: $((SECONDS - start)) s")
  echo "==== $name: done in $((SECONDS - start)) s"
}

release() {
  local build=${SUANLI_BUILD_DIR:-build}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${SUANLI_CMAKE_ARGS:-} >/dev/null
  cmake --build "$build" -j"$(nproc)"
  (cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 600)
}

phase release release
if [ "${SUANLI_CI_SANITIZERS:-1}" != 0 ]; then
  phase tsan bash scripts/sanitize.sh thread
  phase asan-ubsan bash scripts/sanitize.sh address
  phase fuzz bash fuzz/run.sh "${SUANLI_FUZZ_SECONDS:-20}"
fi
printf '%s\n' "${timings[@]}"
