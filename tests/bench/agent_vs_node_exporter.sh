#!/usr/bin/env bash
# Side-by-side, in one run on this machine: suanli-agent's CPU time per sweep and resident
# memory against Debian's prometheus-node-exporter's CPU per scrape and memory, with the same
# collector set (cpu, meminfo, netdev, loadavg, pressure, rapl, hwmon) over the live host.
#
#   tests/bench/agent_vs_node_exporter.sh [BUILD_DIR] [SECONDS]
#
# The agent sweeps every 100 ms and pushes each sweep to a local suanli-aggregator (so its
# figure includes encoding and sending). node_exporter is measured twice over one keep-alive
# connection: scraped at the agent's cadence (as Prometheus would scrape it in place of the
# agent: the like-for-like figure, where each wake-up starts with cold caches), then as fast as
# curl can (warm caches: its cheapest figure per scrape). Beside them runs agent_floor_reader
# (tests/bench/agent_floor_reader.cc), a C++ program that wakes at the same cadence and reads
# the same /proc and /sys files, nothing else: the least CPU per sweep and the least memory any
# agent can reach on this host. Beside it, exposition_floor (tests/bench/exposition_floor.cc)
# holds prometheus-cpp's registry and text exposition, fmt and one waking thread: its RSS is the
# least an agent on the libraries DESIGN.md fixes can hold. The agent and the floor reader are
# measured during the paced phase (every process wakes at the same cadence, the machine
# otherwise idle, as in production); the back-to-back phase only gives node_exporter's warm
# figure.
#
# CPU is the sum of the threads' run time from /proc/PID/task/*/schedstat (nanoseconds;
# utime+stime from /proc/PID/stat counts 10 ms ticks, too coarse for tens of microseconds per
# sweep, and is printed beside it as a check). Memory is VmRSS after the run, split into
# anonymous and file-backed (shared libraries) pages, and beside it PSS and the private pages
# (USS) from smaps_rollup: RSS counts libc and libstdc++ pages that every C++ process on the
# host shares, while node_exporter is one static binary, so USS is what each adds to a host.
# Prints the ratios the issue asks for, then the agent's CPU per thread (threads are named:
# sampler, sender-N, c-COLLECTOR for collectors that may block).
#
# RUNS=N runs the whole comparison N times and prints the median of each figure.
# INTERVAL_MS=N sets the cadence of the agent, the paced scrapes and the floor reader (default
# 100; at 1000 and above every sweep is sent in its own request, as at the default 15 s).
# BASELINE_AGENT=PATH runs another suanli-agent binary (say, an earlier commit's build) beside
# the agent with the same settings (its own spool and dc label) and prints both CPU figures:
# a before/after comparison in one run.
set -euo pipefail
build=${1:-build}
secs=${2:-20}
runs=${RUNS:-1}
interval_ms=${INTERVAL_MS:-100}
bin=$(cd "$build/bin" && pwd)
if ! command -v prometheus-node-exporter >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus-node-exporter >/dev/null
fi
work=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Run time of every thread, in nanoseconds (threads that ended are not counted: the agent's and
# node_exporter's threads live as long as the process).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
thread_ns() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(cat "$t/comm") $(cut -d' ' -f1 "$t/schedstat")"; done; }
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# From smaps_rollup: PSS (shared pages divided among the processes that map them) and the
# private pages (USS: what the process alone holds), in kB.
pss_kb() { awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup"; }
uss_kb() { awk '$1 ~ /^Private_(Clean|Dirty):$/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
# host:port a daemon logged as "listening on http://..." (waits up to 10 s for the line).
listen_address() {
  for _ in $(seq 100); do grep -qs 'listening on' "$1" && break; sleep 0.1; done
  grep -o 'listening on http://[0-9.:]*' "$1" | sed 's|.*http://||'
}
hz=$(getconf CLK_TCK)

# Scrapes http://$1/metrics every $3 seconds for $2 seconds over one keep-alive connection;
# prints the number of scrapes.
paced_scrapes() {
  python3 - "$@" <<'PY'
import http.client, sys, time
host, port = sys.argv[1].rsplit(":", 1)
secs, period = float(sys.argv[2]), float(sys.argv[3])
conn = http.client.HTTPConnection(host, int(port), timeout=10)
n, start = 0, time.monotonic()
while time.monotonic() - start < secs:
    conn.request("GET", "/metrics")
    conn.getresponse().read()
    n += 1
    time.sleep(max(0.0, start + n * period - time.monotonic()))
print(n)
PY
}

# One comparison; prints "agent_us ne_us agent_rss_kb ne_rss_kb agent_anon_kb agent_file_kb
# ne_anon_kb ne_file_kb sweeps scrapes agent_tick_us ne_tick_us agent_pss_kb ne_pss_kb
# agent_uss_kb ne_uss_kb ne_paced_us paced_scrapes floor_us floor_rss_kb floor_sweeps
# collect_us memory_us baseline_us" (the last three: the variants' and the baseline agent's CPU
# over the paced phase) and
# leaves the agent's per-thread figures in $work/threads. ne_us is per scrape back to back,
# ne_paced_us per scrape at the agent's interval; every other CPU figure covers the paced phase.
one_run() {
  local dir=$work/run$1
  mkdir -p "$dir"
  "$bin/suanli-aggregator" --storage.path="$dir/agg" --web.listen-address=127.0.0.1:0 \
    2>"$dir/agg.log" &
  local aggpid=$!
  pids+=($aggpid)
  local agg
  agg=$(listen_address "$dir/agg.log")

  # Default settings but the interval (INTERVAL_MS, by default 100 ms: many sweeps in a short
  # run) and the spool
  # directory (per run, not ./data/agent-spool where the script is started).
  cat >"$dir/agent.yml" <<YML
labels: {region: bench, dc: bench-1}
sample_interval: ${interval_ms}ms
remote_write: [{url: "http://$agg/api/v1/write"}]
collectors: {stat: false, netclass: false}
spool: {directory: "$dir/spool"}
YML
  # Only the node_exporter collector set under comparison (cpu, meminfo, netdev, loadavg,
  # pressure, rapl, hwmon); power collectors that need a BMC or GPU are left at their defaults
  # (they report "no data" quickly on a host without them).
  "$bin/suanli-agent" --config.file="$dir/agent.yml" --web.listen-address=127.0.0.1:0 \
    2>"$dir/agent.log" &
  local agent=$!
  pids+=($agent)
  local aport
  aport=$(listen_address "$dir/agent.log")
  # Two variants, for where the agent's CPU goes: collectors and the sweep loop only (no
  # remote_write: nothing is encoded, spooled or sent), and the whole pipeline with the spool in
  # memory (encoding, compression and sending, but no segment writes or syncs).
  sed '/^remote_write/d; /^spool/d' "$dir/agent.yml" >"$dir/agent-collect.yml"
  # (Its own dc label: the aggregator would refuse its samples as duplicates of the agent's.)
  sed 's|^spool: .*|spool: {directory: ""}|; s|dc: bench-1|dc: bench-memory|' "$dir/agent.yml" \
    >"$dir/agent-memory.yml"
  local collect memory
  "$bin/suanli-agent" --config.file="$dir/agent-collect.yml" --web.listen-address=127.0.0.1:0 \
    2>"$dir/agent-collect.log" &
  collect=$!
  "$bin/suanli-agent" --config.file="$dir/agent-memory.yml" --web.listen-address=127.0.0.1:0 \
    2>"$dir/agent-memory.log" &
  memory=$!
  pids+=($collect $memory)
  local baseline=""
  if [ -n "${BASELINE_AGENT:-}" ]; then
    sed "s|dc: bench-1|dc: bench-baseline|; s|$dir/spool|$dir/spool-baseline|" "$dir/agent.yml" \
      >"$dir/agent-baseline.yml"
    "$BASELINE_AGENT" --config.file="$dir/agent-baseline.yml" --web.listen-address=127.0.0.1:0 \
      2>"$dir/agent-baseline.log" &
    baseline=$!
    pids+=($baseline)
  fi

  prometheus-node-exporter --web.listen-address=127.0.0.1:0 --collector.disable-defaults \
    --collector.cpu --collector.meminfo --collector.netdev --collector.loadavg \
    --collector.pressure --collector.rapl --collector.hwmon 2>"$dir/ne.log" &
  local ne=$!
  pids+=($ne)
  for _ in $(seq 100); do grep -qs 'Listening on' "$dir/ne.log" && break; sleep 0.1; done
  local neaddr
  neaddr=$(grep -o 'address=[0-9.:]*' "$dir/ne.log" | tail -1 | sed 's/address=//')

  # The floor: the files the agent's collectors read on this host (those that exist), at its
  # interval.
  local files=(/proc/stat /proc/meminfo /proc/loadavg /proc/net/dev)
  local f
  for f in /proc/pressure/{cpu,memory,io} /sys/class/powercap/*/energy_uj \
    /sys/class/hwmon/hwmon*/{power,energy,temp,in,curr,fan}*_input; do
    [ -r "$f" ] && files+=("$f")
  done
  "$bin/agent_floor_reader" "$interval_ms" "${files[@]}" &
  local floor=$!
  pids+=($floor)
  # The memory floor of the libraries: prometheus-cpp's registry and exposition, fmt and one
  # waking thread (tests/bench/exposition_floor.cc).
  "$bin/exposition_floor" "$interval_ms" 2>/dev/null &
  local libfloor=$!
  pids+=($libfloor)

  sleep 2  # let them settle (first sweeps, page cache)
  local sweeps0 a0 n0 at0 nt0 f0 fw0
  sweeps0=$(curl -s "http://$aport/metrics" | awk '/^suanli_agent_sweeps_total/ {print $2}')
  a0=$(cpu_ns $agent); at0=$(cpu_ticks $agent)
  f0=$(cpu_ns $floor); fw0=$(date +%s%N)
  local c0 m0 c1 m1 b0=0 b1=0
  c0=$(cpu_ns $collect); m0=$(cpu_ns $memory)
  [ -n "$baseline" ] && b0=$(cpu_ns $baseline)
  thread_ns $agent | sort >"$dir/t0"
  local paced np0 np1
  np0=$(cpu_ns $ne)
  paced=$(paced_scrapes "$neaddr" "$secs" "$(awk -v i="$interval_ms" 'BEGIN {print i / 1000}')")
  np1=$(cpu_ns $ne)
  # The agent and the floor reader are measured over the paced phase, in which every process
  # wakes at the same cadence and the machine is otherwise as idle as a production host.
  local a1 at1 sweeps1 f1 fw1
  a1=$(cpu_ns $agent); at1=$(cpu_ticks $agent)
  f1=$(cpu_ns $floor); fw1=$(date +%s%N)
  c1=$(cpu_ns $collect); m1=$(cpu_ns $memory)
  [ -n "$baseline" ] && b1=$(cpu_ns $baseline)
  local floor_rss
  floor_rss=$(rss_kb $floor VmRSS)
  local libfloor_rss
  libfloor_rss=$(rss_kb $libfloor VmRSS)
  if grep -Eq 'level=(warn|error).*remote_write' "$dir/agent-memory.log"; then
    echo "agent with its spool in memory logged remote_write trouble:" >&2
    grep -E 'level=(warn|error).*remote_write' "$dir/agent-memory.log" >&2
  fi
  # Stopped before the memory figures are read: pages the variants map from the same binary,
  # and the floor reader from the same libraries, would count as shared in the agent's PSS and
  # USS.
  kill $floor $libfloor $collect $memory $baseline
  wait $floor $libfloor $collect $memory $baseline 2>/dev/null || true
  thread_ns $agent | sort >"$dir/t1"
  curl -s "http://$aport/metrics" >"$dir/agent-metrics"
  sweeps1=$(awk '/^suanli_agent_sweeps_total/ {print $2}' "$dir/agent-metrics")
  # The spool's fdatasyncs over the agent's life, for the last run's summary.
  awk '/^suanli_agent_spool_syncs_total/ {sub(/.*file="/, "", $1); sub(/".*/, "", $1);
    printf "%s %s ", $1, $2}' "$dir/agent-metrics" >"$work/syncs"

  local n1 nt1
  n0=$(cpu_ns $ne); nt0=$(cpu_ticks $ne)
  local end=$((SECONDS + secs)) scrapes=0 urls=()
  for _ in $(seq 50); do urls+=("http://$neaddr/metrics"); done
  while [ $SECONDS -lt $end ]; do
    curl -s "${urls[@]}" >/dev/null # 50 scrapes over one keep-alive connection
    scrapes=$((scrapes + 50))
  done
  n1=$(cpu_ns $ne); nt1=$(cpu_ticks $ne)
  local sweeps
  sweeps=$(awk -v a="$sweeps0" -v b="$sweeps1" 'BEGIN {print b - a}')
  join "$dir/t0" "$dir/t1" | awk -v sw="$sweeps" '$5 > $3 {
    printf "  %-14s %7.1f us/sweep\n", $2, ($5 - $3) / 1e3 / sw}' >"$work/threads"
  echo "$(( (a1 - a0) / 1000 )) $(( (n1 - n0) / 1000 )) $(rss_kb $agent VmRSS) $(rss_kb $ne VmRSS)" \
    "$(rss_kb $agent RssAnon) $(rss_kb $agent RssFile) $(rss_kb $ne RssAnon) $(rss_kb $ne RssFile)" \
    "$sweeps $scrapes $((at1 - at0)) $((nt1 - nt0))" \
    "$(pss_kb $agent) $(pss_kb $ne) $(uss_kb $agent) $(uss_kb $ne)" \
    "$(( (np1 - np0) / 1000 )) $paced $(( (f1 - f0) / 1000 )) $floor_rss" \
    "$(( (fw1 - fw0) / (interval_ms * 1000000) )) $(( (c1 - c0) / 1000 )) $(( (m1 - m0) / 1000 ))" \
    "$(( (b1 - b0) / 1000 )) $libfloor_rss"
  kill $agent $ne $aggpid
  wait $agent $ne $aggpid 2>/dev/null || true
  pids=()
}

for r in $(seq "$runs"); do
  one_run "$r" | awk -v hz="$hz" '{
    printf "%.1f %.1f %d %d %d %d %d %d %d %d %.1f %.1f %d %d %d %d %.1f %d %.1f %d %d %.1f %.1f %.1f %d\n",
      $1 / $9, $2 / $10, $3, $4, $5, $6, $7, $8, $9, $10, $11 / hz / $9 * 1e6,
      $12 / hz / $10 * 1e6, $13, $14, $15, $16, $17 / $18, $18, $19 / $21, $20, $21,
      $22 / $21, $23 / $21, $24 / $21, $25 }' \
    >>"$work/results"
  if [ "$runs" -gt 1 ]; then
    awk -v i="$interval_ms" '{printf "run: agent %.0f us/sweep, node_exporter %.0f us/scrape at " \
      i " ms and %.0f back " \
      "to back, floor %.0f us; RSS %.1f / %.1f MB" ($24 > 0 ? "; baseline agent %.0f us/sweep" : "") \
      "\n", $1, $17, $2, $19, $3 / 1024, $4 / 1024, $24}' \
      <(tail -1 "$work/results")
  fi
done

# Median of each column over the runs.
median() { cut -d' ' -f"$1" "$work/results" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
a=$(median 1); n=$(median 2); ar=$(median 3); nr=$(median 4)
awk -v a="$a" -v n="$n" -v ar="$ar" -v nr="$nr" -v aa="$(median 5)" -v af="$(median 6)" \
  -v na="$(median 7)" -v nf="$(median 8)" -v sw="$(median 9)" -v sc="$(median 10)" \
  -v at="$(median 11)" -v nt="$(median 12)" -v ap="$(median 13)" -v np="$(median 14)" \
  -v au="$(median 15)" -v nu="$(median 16)" -v npc="$(median 17)" -v psc="$(median 18)" \
  -v fl="$(median 19)" -v flr="$(median 20)" -v fsw="$(median 21)" -v co="$(median 22)" \
  -v me="$(median 23)" -v ba="$(median 24)" -v lfr="$(median 25)" -v runs="$runs" -v iv="$interval_ms" 'BEGIN {
  printf "median of %d run(s):\n", runs;
  printf "suanli-agent:   %d sweeps, %.0f us CPU per sweep (ticks: %.0f), RSS %.1f MB (anon %.1f, file %.1f)\n", sw, a, at, ar / 1024, aa / 1024, af / 1024;
  printf "node_exporter:  %d scrapes at %d ms, %.0f us CPU per scrape\n", psc, iv, npc;
  printf "node_exporter:  %d scrapes back to back, %.0f us CPU per scrape (ticks: %.0f), RSS %.1f MB (anon %.1f, file %.1f)\n", sc, n, nt, nr / 1024, na / 1024, nf / 1024;
  printf "floor reader:   %d sweeps, %.0f us CPU per sweep, RSS %.1f MB\n", fsw, fl, flr / 1024;
  printf "library floor:  RSS %.1f MB (prometheus-cpp registry and exposition, fmt, one waking thread: the least any agent on DESIGN.md'"'"'s libraries holds; 1/%.1f of node_exporter)\n", lfr / 1024, nr / lfr;
  printf "ratios: CPU per sweep / CPU per scrape at %d ms = 1/%.1f (floor: 1/%.1f), back to back = 1/%.1f (floor: 1/%.1f); RSS = 1/%.1f (floor: 1/%.1f)\n", iv, npc / a, npc / fl, n / a, n / fl, nr / ar, nr / flr;
  printf "agent above the floor: %.0f us CPU per sweep, %.1f MB RSS\n", a - fl, (ar - flr) / 1024;
  printf "  of which: collectors and sweep loop %.0f us (agent without remote_write: %.0f), encoding, compressing and sending %.0f us (spool in memory: %.0f), spool segment writes and syncs %.0f us\n", co - fl, co, me - co, me, a - me;
  if (ba > 0) printf "baseline agent (%s): %.0f us CPU per sweep; this agent %.0f (%+.0f%%)\n", ENVIRON["BASELINE_AGENT"], ba, a, (a / ba - 1) * 100;
  printf "beside RSS: PSS agent %.1f MB, node_exporter %.1f MB (1/%.1f); private pages (USS) agent %.1f MB, node_exporter %.1f MB (1/%.1f)\n", ap / 1024, np / 1024, np / ap, au / 1024, nu / 1024, nu / au;
}'
echo "agent's spool fdatasync calls (last run, since the agent started): $(cat "$work/syncs")"
echo "agent CPU by thread (last run):"
cat "$work/threads"
