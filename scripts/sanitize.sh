#!/usr/bin/env bash
# Builds Suanli with ASan+UBSan and with TSan, each in its own build folder, and runs the test
# suite (ctest) in each; a sanitizer report fails the test it happens in.
#   scripts/sanitize.sh [address|thread|all] [extra ctest arguments...]
# e.g. scripts/sanitize.sh address -L unit
#      scripts/sanitize.sh thread -R 'http_tests|storage_tests|SecurityTest'
# Build folders: $SUANLI_ASAN_BUILD_DIR (build-asan), $SUANLI_TSAN_BUILD_DIR (build-tsan).
# $SUANLI_SANITIZE_TARGETS (space-separated) builds only those targets (a quicker local run); select
# their tests with -L/-R, as ctest lists tests of unbuilt binaries as *_NOT_BUILT (no label).
# The `dashboards` tests (promtool, amtool and Python on the rule and dashboard files) run none
# of our code, so they are left to the release run of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
which=${1:-all}
shift || true
ctest_args=("$@")

# Daemons started by the integration tests inherit these, so they are checked too (and the
# harness fails the test whose child printed a report). abort_on_error everywhere: a report
# ends the process with SIGABRT, never with an exit code that a test expecting a failure (a bad
# config file, say) could take for its own.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$root/scripts/tsan.supp:halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:history_size=4}

run() {
  local kind=$1 dir=$2
  local start=$SECONDS
  echo "== SUANLI_SANITIZE=$kind in $dir"
  # -O1 and line tables only (-g1): much less compile and link time than -O2 -g, and the
  # reports still name file:line. The benchmarks are not run here, so not built.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DSUANLI_SANITIZE="$kind" -DSUANLI_BUILD_TESTS=ON -DSUANLI_BUILD_BENCH=OFF >/dev/null
  local targets=()
  for t in ${SUANLI_SANITIZE_TARGETS:-}; do targets+=(--target "$t"); done
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
  local built=$SECONDS
  # Sanitized code runs 2-15x slower: a longer per-test timeout than scripts/test.sh. The
  # tests that wait out a minute-long outage on purpose run in the release and ASan runs only;
  # the forwarder's threads are covered under TSan by its unit tests (exporter_tests).
  local skip=()
  [ "$kind" = thread ] && skip=(-E '^(ForwardTest|PartitionTest)\.')
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j"$(nproc)" --timeout 1200 \
    -LE dashboards "${skip[@]}" "${ctest_args[@]}")
  echo "== $kind: build $((built - start)) s, tests $((SECONDS - built)) s"
}

case $which in
  address) run address "${SUANLI_ASAN_BUILD_DIR:-build-asan}" ;;
  thread) run thread "${SUANLI_TSAN_BUILD_DIR:-build-tsan}" ;;
  all)
    run address "${SUANLI_ASAN_BUILD_DIR:-build-asan}"
    run thread "${SUANLI_TSAN_BUILD_DIR:-build-tsan}"
    ;;
  *)
    echo "usage: $0 [address|thread|all] [ctest arguments...]" >&2
    exit 2
    ;;
esac
