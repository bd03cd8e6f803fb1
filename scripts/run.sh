#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs a suanli-aggregator and a suanli-agent
# on this machine with their embedded default configurations. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The same settings as scripts/test.sh, so the two commands share one build folder in either
# order; only the two daemons are built here.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSUANLI_BUILD_TESTS=ON -DSUANLI_BUILD_BENCH=ON >/dev/null
cmake --build build -j"$(nproc)" --target suanli-agent suanli-aggregator
mkdir -p data
./build/bin/suanli-aggregator --storage.path=data/aggregator 2> >(tee data/aggregator.log >&2) &
agg=$!
trap 'kill $agg $agent 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for _ in $(seq 50); do curl -fs http://127.0.0.1:9466/-/ready >/dev/null && break; sleep 0.2; done
./build/bin/suanli-agent 2> >(tee data/agent.log >&2) &
agent=$!
cat <<MSG

Suanli is running (logs in data/*.log):
  aggregator capacity metrics  http://127.0.0.1:9466/metrics
  aggregator health            http://127.0.0.1:9466/-/ready
  agent metrics                http://127.0.0.1:9465/metrics
The agent samples every 15s; per-dc figures appear after two sweeps. Ctrl-C stops both.

MSG
wait -n $agg $agent
