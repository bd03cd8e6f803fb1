#!/bin/bash
# Disk bytes per sample on real data, Prometheus beside the aggregator, in two phases.
#
#   tests/bench/real_data_bytes.sh record BUILD_DIR DIR [SECONDS]   (default 7200: two hours)
#     A Prometheus scrapes node_exporter, the aggregator and itself every second and
#     remote_writes every sample it scrapes to a suanli-aggregator, so that both hold the same
#     real samples (stale markers included). Everything listens on 127.0.0.1.
#   tests/bench/real_data_bytes.sh measure BUILD_DIR DIR
#     Dumps Prometheus' samples (promtool tsdb dump), turns them into OpenMetrics and builds
#     Prometheus' own compacted blocks from them (promtool tsdb create-blocks-from openmetrics);
#     closes and compacts the aggregator's store offline (suanli_load --compact_existing); prints
#     bytes per sample of both, the aggregator's by family (raw, 1m, 5m, 1h rollups), and the
#     ratio raw/Prometheus.
set -euo pipefail
phase=${1:?usage: real_data_bytes.sh record|measure BUILD_DIR DIR [SECONDS]}
build=$(cd "${2:?BUILD_DIR}" && pwd)
dir=${3:?DIR}
seconds=${4:-7200}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

wait_ready() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case $phase in
record)
  trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT
  rm -rf "$dir/prom" "$dir/agg"
  ne=$(free_port) agg=$(free_port) prom=$(free_port)
  prometheus-node-exporter --web.listen-address=127.0.0.1:$ne >"$dir/node_exporter.log" 2>&1 &
  "$build/bin/suanli-aggregator" --storage.path="$dir/agg" --web.listen-address=127.0.0.1:$agg \
    >"$dir/aggregator.log" 2>&1 &
  wait_ready "http://127.0.0.1:$agg/-/ready"
  cat >"$dir/prometheus.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 900ms, external_labels: {region: bench, dc: bench}}
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["127.0.0.1:$ne"]}]
  - job_name: aggregator
    static_configs: [{targets: ["127.0.0.1:$agg"]}]
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$prom"]}]
remote_write:
  - url: http://127.0.0.1:$agg/api/v1/write
YML
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prom" \
    --web.listen-address=127.0.0.1:$prom >"$dir/prometheus.log" 2>&1 &
  wait_ready "http://127.0.0.1:$prom/-/ready"
  echo "recording for $seconds s into $dir" >&2
  sleep "$seconds"
  # What remote_write could not deliver would make the two stores differ: say so.
  curl -s "http://127.0.0.1:$prom/api/v1/query?query=sum(prometheus_remote_storage_samples_failed_total)%2Bsum(prometheus_remote_storage_samples_dropped_total)%20or%20vector(0)" \
    >"$dir/remote_write_failed.json" || true
  cat "$dir/remote_write_failed.json" >&2; echo >&2
  ;;
measure)
  # Prometheus' external labels are added on remote_write only: the dump lacks them, which
  # only makes Prometheus' side smaller (labels are stored once per series, not per sample).
  promtool tsdb dump "$dir/prom" >"$dir/dump.txt"
  python3 - "$dir/dump.txt" "$dir/samples.om" <<'PY'
import re, sys
# promtool tsdb dump: `{__name__="x", a="b"} value timestamp_ms`, grouped by series.
line_re = re.compile(r'^\{(.*)\} (\S+) (\d+)$')
pair_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
n = 0
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    for line in src:
        m = line_re.match(line.rstrip("\n"))
        if not m:
            continue
        labels = dict(pair_re.findall(m.group(1)))
        name = labels.pop("__name__")
        value = m.group(2)
        if value.lower() == "nan" or value.startswith("NaN"):
            continue  # stale markers: OpenMetrics has no way to write them
        body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        out.write(f'{name}{{{body}}} {value} {int(m.group(3)) / 1000:.3f}\n')
        n += 1
    out.write("# EOF\n")
print(n)
PY
  rm -rf "$dir/blocks"
  promtool tsdb create-blocks-from openmetrics "$dir/samples.om" "$dir/blocks" >"$dir/create-blocks.log"
  samples=$(grep -vc '^#' "$dir/samples.om")
  prom_bytes=$(du -sb "$dir/blocks" | cut -f1)
  echo "samples: $samples (stale markers left out)"
  echo "prometheus blocks: $prom_bytes bytes, $(python3 -c "print(f'{$prom_bytes/$samples:.3f}')") B/sample"
  "$build/bin/suanli_load" --path="$dir/agg" --compact_existing --samples="$samples"
  ;;
*) echo "usage: real_data_bytes.sh record|measure BUILD_DIR DIR [SECONDS]" >&2; exit 2 ;;
esac
