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

# Each label must hold at least this many tests: a configuration that lost a suite (tests
# switched off in a reused cache, a directory no longer added) fails here, not silently.
MIN_TESTS_PER_LABEL=(unit:100 integration:20 dashboards:2)

release() {
  local build=${SUANLI_BUILD_DIR:-build}
  # Tests on explicitly: the folder may hold a cache from scripts/run.sh or an older
  # configuration, and a cached SUANLI_BUILD_TESTS=OFF would leave ctest with nothing to run.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSUANLI_BUILD_TESTS=ON \
    -DSUANLI_BUILD_BENCH=ON ${SUANLI_CMAKE_ARGS:-} >/dev/null
  cmake --build "$build" -j"$(nproc)"
  check_test_counts "$build"
  (cd "$build" && ctest --output-on-failure --no-tests=error -j"$(nproc)" --timeout 600)
}

check_test_counts() {
  local build=$1 entry label min n
  for entry in "${MIN_TESTS_PER_LABEL[@]}"; do
    label=${entry%%:*} min=${entry#*:}
    n=$(cd "$build" && ctest -N -L "^${label}\$" | sed -n 's/^Total Tests: //p')
    if [ "${n:-0}" -lt "$min" ]; then
      echo "test.sh: label '$label' has ${n:-0} tests in $build, expected at least $min" >&2
      return 1
    fi
    echo "test.sh: label '$label': $n tests"
  done
}

phase release release
if [ "${SUANLI_CI_SANITIZERS:-1}" != 0 ]; then
  phase tsan bash scripts/sanitize.sh thread
  phase asan-ubsan bash scripts/sanitize.sh address
  phase fuzz bash fuzz/run.sh "${SUANLI_FUZZ_SECONDS:-20}"
fi
printf '%s\n' "${timings[@]}"
