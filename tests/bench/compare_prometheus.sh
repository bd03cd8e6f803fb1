#!/bin/bash
# Side-by-side remote_write ingest: Debian's Prometheus (--web.enable-remote-write-receiver)
# and suanli-aggregator, one after the other in ONE run, same generator (tests/bench/rwgen.py,
# or RWGEN=PATH) and arguments; prints both results, the ratio of samples per receiver
# CPU-second, and each receiver's resident memory per series (RSS after the run minus RSS once
# ready, / series).
# Usage: tests/bench/compare_prometheus.sh BUILD_DIR [rwgen args...]   (default: --series 100000
# --steps 30 --conns 4)
# RUNS=N repeats the comparison N times and ends with the median ratio. rwgen's samples end 5 s
# before it starts: a run whose samples cross a full hour closes every open chunk in the
# aggregator (measured separately in aggregator/storage/README.md), so the script waits until
# the run fits inside the hour.
set -euo pipefail
build=${1:?usage: compare_prometheus.sh BUILD_DIR [rwgen args]}
shift
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--series 100000 --steps 30 --conns 4)
here=$(cd "$(dirname "$0")" && pwd)
rwgen=${RWGEN:-$here/rwgen.py}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

wait_ready() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; return 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo 'global: {}' > "$tmp/empty.yml"
# Seconds of samples rwgen sends: --steps x --step-ms, plus its 5 s lead and the run itself.
steps=30 step_ms=1000
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --steps) steps=${args[i + 1]} ;;
    --step-ms) step_ms=${args[i + 1]} ;;
  esac
done
span_s=$((steps * step_ms / 1000 + 5 + 60))

one_run() {
  rm -rf "$tmp/prom" "$tmp/agg"
  # Wait out an hour boundary that this run's samples would cross (both receivers' runs).
  local into=$(( $(date +%s) % 3600 ))
  if (( into < span_s || into + 2 * span_s > 3600 )); then
    local wait_s=$(( into < span_s ? span_s - into : 3600 - into + span_s ))
    echo "waiting ${wait_s} s so that the samples do not cross an hour boundary" >&2
    sleep "$wait_s"
  fi
  prometheus --config.file="$tmp/empty.yml" --storage.tsdb.path="$tmp/prom" \
    --web.listen-address=127.0.0.1:19190 --web.enable-remote-write-receiver >"$tmp/prom.log" 2>&1 &
  ppid=$!
  wait_ready http://127.0.0.1:19190/-/ready
  prss0=$(rss_kb $ppid)
  prom=$(/usr/bin/python3 "$rwgen" --url http://127.0.0.1:19190/api/v1/write --pid $ppid "${args[@]}")
  prss=$(rss_kb $ppid)
  echo "prometheus: $prom"
  echo "prometheus RSS: ${prss0} kB ready, ${prss} kB after"
  kill $ppid; wait $ppid 2>/dev/null || true

  "$build/bin/suanli-aggregator" --storage.path="$tmp/agg" --web.listen-address=127.0.0.1:19191 \
    >"$tmp/agg.log" 2>&1 &
  apid=$!
  wait_ready http://127.0.0.1:19191/-/ready
  arss0=$(rss_kb $apid)
  agg=$(/usr/bin/python3 "$rwgen" --url http://127.0.0.1:19191/api/v1/write --pid $apid "${args[@]}")
  echo "suanli:     $agg"
  arss=$(rss_kb $apid)
  echo "suanli RSS: ${arss0} kB ready, ${arss} kB after"
  kill $apid; wait $apid 2>/dev/null || true

  /usr/bin/python3 - "$prom" "$agg" "$prss0" "$prss" "$arss0" "$arss" <<'PY'
import ast, sys
p, a = ast.literal_eval(sys.argv[1]), ast.literal_eval(sys.argv[2])
prss0, prss, arss0, arss = (int(x) for x in sys.argv[3:7])
pp, aa = p["samples_per_receiver_cpu_s"], a["samples_per_receiver_cpu_s"]
print("samples per receiver CPU-second: prometheus %d, suanli %d, ratio %.2fx (target >= 10x)"
      % (pp, aa, aa / pp))
n = a["series"]
print("RSS per series (after - ready): prometheus %.0f B, suanli %.0f B (target <= 1 kB)"
      % ((prss - prss0) * 1024 / n, (arss - arss0) * 1024 / n))
PY
}

runs=${RUNS:-1}
for ((r = 1; r <= runs; r++)); do one_run | tee -a "$tmp/results"; done
if ((runs > 1)); then
  grep -o 'ratio [0-9.]*x' "$tmp/results" | tr -d 'x' | awk '{print $2}' | sort -g |
    awk '{v[NR] = $1} END {printf "median ratio of %d runs: %.2fx\n", NR,
      (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
fi
