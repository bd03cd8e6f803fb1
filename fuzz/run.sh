#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for SECONDS (default 30),
# starting from its seeds and regression inputs in fuzz/corpus/<target>/. New interesting
# inputs go to a scratch corpus (not the repository); a crash leaves its input in
# $SUANLI_FUZZ_ARTIFACTS (default <build dir>/artifacts) and makes the script fail.
#   fuzz/run.sh [SECONDS] [TARGET...]        SUANLI_FUZZ_BUILD_DIR (default build-fuzz)
# Regression check only (every stored input once, no fuzzing): fuzz/run.sh 0
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] &&
  targets=(remote_write_fuzzer remote_read_fuzzer procfs_fuzzer config_fuzzer redfish_json_fuzzer
    head_log_fuzzer chunk_fuzzer spool_segment_fuzzer)
build=${SUANLI_FUZZ_BUILD_DIR:-build-fuzz}
artifacts=${SUANLI_FUZZ_ARTIFACTS:-$build/artifacts}

# Line tables only: crash stacks keep file:line, and the build links much faster than with -g.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only" -DSUANLI_FUZZ=ON \
  -DSUANLI_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
mkdir -p "$artifacts"

# detect_leaks stays on: a leak on untrusted input is a bug too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/${t%_fuzzer}
  dict=fuzz/dict/${t%_fuzzer}.dict
  dict_arg=()
  [ -f "$dict" ] && dict_arg=(-dict="$dict")
  if [ "$seconds" = 0 ]; then
    echo "== $t: regression inputs"
    "$build/bin/$t" "${dict_arg[@]}" -runs=0 "$seeds" || status=1
    continue
  fi
  extra=()
  # The Redfish target also starts from the DMTF mockup documents in tests/fixtures/redfish.
  [ "$t" = redfish_json_fuzzer ] && extra=(tests/fixtures/redfish)
  scratch=$build/corpus/${t%_fuzzer}
  mkdir -p "$scratch"
  echo "== $t: ${seconds}s"
  # -timeout: an input that takes a second is a hang; -rss_limit_mb: a blow-up.
  if ! "$build/bin/$t" "${dict_arg[@]}" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "$scratch" "$seeds" "${extra[@]}" 2>"$build/$t.log"; then
    status=1
    echo "!! $t failed; see $build/$t.log and $artifacts/" >&2
    tail -n 40 "$build/$t.log" >&2
  fi
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+.*DONE" \
    "$build/$t.log" || true
done
exit $status
