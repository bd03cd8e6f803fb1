#!/usr/bin/env bash
# Side-by-side, in one run on this machine: suanli-agent's CPU time per sweep and resident
# memory against Debian's prometheus-node-exporter's CPU per scrape and memory, with the same
# collector set (cpu, meminfo, netdev, loadavg, pressure, rapl, hwmon) over the live host.
#
#   tests/bench/agent_vs_node_exporter.sh [BUILD_DIR] [SECONDS]
#
# The agent sweeps every 100 ms and pushes each sweep to a local suanli-aggregator (so its
# figure includes encoding and sending); node_exporter is scraped as fast as curl can over
# one keep-alive connection. CPU is utime+stime from /proc/PID/stat; memory is VmRSS after the
# run. Prints the ratios the issue asks for.
set -euo pipefail
build=${1:-build}
secs=${2:-20}
bin=$(cd "$build/bin" && pwd)
if ! command -v prometheus-node-exporter >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus-node-exporter >/dev/null
fi
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

"$bin/suanli-aggregator" --storage.path="$work/agg" --web.listen-address=127.0.0.1:0 \
  2>"$work/agg.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/agg.log" && break; sleep 0.1; done
agg=$(grep -o 'listening on http://[0-9.:]*' "$work/agg.log" | sed 's|.*http://||')

cat >"$work/agent.yml" <<YML
labels: {region: bench, dc: bench-1}
sample_interval: 100ms
remote_write: [{url: "http://$agg/api/v1/write"}]
collectors: {stat: false, netclass: false}
YML
# Only the node_exporter collector set under comparison (cpu, meminfo, netdev, loadavg,
# pressure, rapl, hwmon); power collectors that need a BMC or GPU are left at their defaults
# (they report "no data" quickly on a host without them).
"$bin/suanli-agent" --config.file="$work/agent.yml" --web.listen-address=127.0.0.1:0 \
  2>"$work/agent.log" &
agent=$!
pids+=($agent)
for _ in $(seq 100); do grep -q 'listening on' "$work/agent.log" && break; sleep 0.1; done
aport=$(grep -o 'listening on http://[0-9.:]*' "$work/agent.log" | sed 's|.*http://||')

prometheus-node-exporter --web.listen-address=127.0.0.1:0 --collector.disable-defaults \
  --collector.cpu --collector.meminfo --collector.netdev --collector.loadavg \
  --collector.pressure --collector.rapl --collector.hwmon 2>"$work/ne.log" &
ne=$!
pids+=($ne)
for _ in $(seq 100); do grep -q 'Listening on' "$work/ne.log" && break; sleep 0.1; done
neaddr=$(grep -o 'address=[0-9.:]*' "$work/ne.log" | tail -1 | sed 's/address=//')

sleep 2  # let both settle (first sweeps, page cache)
sweeps0=$(curl -s "http://$aport/metrics" | awk '/^suanli_agent_sweeps_total/ {print $2}')
a0=$(cpu_ticks $agent); n0=$(cpu_ticks $ne)
end=$((SECONDS + secs))
scrapes=0
urls=()
for _ in $(seq 50); do urls+=("http://$neaddr/metrics"); done
while [ $SECONDS -lt $end ]; do
  curl -s -o /dev/null "${urls[@]}"   # 50 scrapes over one keep-alive connection
  scrapes=$((scrapes + 50))
done
a1=$(cpu_ticks $agent); n1=$(cpu_ticks $ne)
sweeps1=$(curl -s "http://$aport/metrics" | awk '/^suanli_agent_sweeps_total/ {print $2}')
sweeps=$(awk -v a="$sweeps0" -v b="$sweeps1" 'BEGIN {print b - a}')

awk -v at=$((a1 - a0)) -v nt=$((n1 - n0)) -v hz="$hz" -v sw="$sweeps" -v sc="$scrapes" \
  -v ar="$(rss_kb $agent)" -v nr="$(rss_kb $ne)" 'BEGIN {
  a = at / hz / sw * 1e6; n = nt / hz / sc * 1e6;
  printf "suanli-agent:   %d sweeps, %.0f us CPU per sweep, RSS %.1f MB\n", sw, a, ar / 1024;
  printf "node_exporter:  %d scrapes, %.0f us CPU per scrape, RSS %.1f MB\n", sc, n, nr / 1024;
  printf "ratios: CPU per sweep / CPU per scrape = 1/%.1f, RSS = 1/%.1f\n", n / a, nr / ar;
}'
