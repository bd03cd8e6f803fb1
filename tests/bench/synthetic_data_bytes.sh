#!/bin/bash
# Disk bytes per sample of suanli_load's synthetic data, Prometheus beside the aggregator, on the
# very same samples.
#
#   tests/bench/synthetic_data_bytes.sh BUILD_DIR [SERIES] [STEPS]   (default 10000 x 720: 3 h at 15 s)
#
# For each dataset (--values=linear, then --values=mixed), suanli_load appends the samples to a
# fresh store, compacts it fully and writes the same samples as OpenMetrics
# (--dump_openmetrics, values at full precision); promtool tsdb create-blocks-from openmetrics
# builds Prometheus' own blocks from that file (2 h blocks, as tests/bench/real_data_bytes.sh).
# Prints bytes per sample of Prometheus' blocks (every file of them: chunks, index, meta), of
# the aggregator's raw samples with their index (raw + head + index families) and of all its
# families (the 1m, 5m and 1h rollups too), and the ratios. Scratch files (the OpenMetrics file
# is about 100 bytes a sample) go under $SCRATCH (default: a new directory under /tmp) and are
# deleted as soon as they are measured.
set -euo pipefail
build=$(cd "${1:?usage: synthetic_data_bytes.sh BUILD_DIR [SERIES] [STEPS]}" && pwd)
series=${2:-10000}
steps=${3:-720}
scratch=${SCRATCH:-$(mktemp -d /tmp/synthetic_data_bytes.XXXXXX)}
mkdir -p "$scratch"
trap 'rm -rf "$scratch/store" "$scratch/samples.om" "$scratch/blocks" "$scratch/dump.txt"; rmdir "$scratch" 2>/dev/null || true' EXIT
samples=$((series * steps))

# VERIFY=1: reads Prometheus' blocks back (promtool tsdb dump) and checks that they hold every
# sample of the OpenMetrics file with the same timestamp and the same float64 bits (slow: for
# small runs).
verify() {
  mkdir -p "$2/wal"  # promtool tsdb dump opens a WAL too
  promtool tsdb dump "$2" >"$scratch/dump.txt"
  rm -rf "$2/wal"
  python3 - "$1" "$scratch/dump.txt" <<'PY'
import re, struct, sys
def key(labels):
    return tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)))
written, stored = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r'^(\w+)\{(.*)\} (\S+) (\d+)\.(\d{3})$', line.rstrip("\n"))
    if m:
        series = key(m.group(2) + f',__name__="{m.group(1)}"')
        written[series, int(m.group(4)) * 1000 + int(m.group(5))] = struct.pack("d", float(m.group(3)))
for line in open(sys.argv[2]):
    m = re.match(r'^\{(.*)\} (\S+) (\d+)$', line.rstrip("\n"))
    stored[key(m.group(1)), int(m.group(3))] = struct.pack("d", float(m.group(2)))
differ = sum(1 for k, v in written.items() if stored.get(k) != v)
print(f"verify: {len(written)} samples written, {len(stored)} in Prometheus' blocks, {differ} differ",
      file=sys.stderr)
sys.exit(1 if differ or len(written) != len(stored) else 0)
PY
  rm -f "$scratch/dump.txt"
}

summary=()
for values in linear mixed; do
  echo "== --values=$values: $series series x $steps steps ($samples samples)" >&2
  rm -rf "$scratch/store" "$scratch/blocks"
  "$build/bin/suanli_load" --path="$scratch/store" --series="$series" --steps="$steps" \
    --read_days=0 --values="$values" --dump_openmetrics="$scratch/samples.om" \
    >"$scratch/load.txt" 2>&1
  grep -v '\[info\]' "$scratch/load.txt" >&2
  rm -rf "$scratch/store"
  promtool tsdb create-blocks-from openmetrics "$scratch/samples.om" "$scratch/blocks" \
    >"$scratch/create-blocks.txt"
  cat "$scratch/create-blocks.txt" >&2
  # Every sample must have reached a block: the two stores then hold the same samples.
  in_blocks=$(awk '$2 ~ /^[0-9]+$/ {n += $5} END {print n + 0}' "$scratch/create-blocks.txt")
  if [ "$in_blocks" != "$samples" ]; then
    echo "promtool wrote $in_blocks samples into blocks, suanli_load appended $samples" >&2
    exit 1
  fi
  prom_bytes=$(du -sb "$scratch/blocks" | cut -f1)
  if [ "${VERIFY:-0}" = 1 ]; then verify "$scratch/samples.om" "$scratch/blocks"; fi
  rm -rf "$scratch/blocks" "$scratch/samples.om"
  summary+=("$(python3 - "$values" "$samples" "$prom_bytes" "$scratch/load.txt" <<'PY'
import re, sys
values, samples, prom_bytes, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
families = {}
for line in open(load):
    m = re.match(r'^\s+(\S+)\s+(\d+) bytes', line)
    if m:
        families[m.group(1)] = int(m.group(2))
raw = sum(families.get(f, 0) for f in ("raw", "head", "index"))
every = sum(families.values())
prom = prom_bytes / samples
print(f"{values:6}  prometheus {prom:.3f} B/sample  aggregator raw+index {raw / samples:.3f} "
      f"({raw / prom_bytes:.2f}x)  with rollups {every / samples:.3f} ({every / prom_bytes:.2f}x)  "
      f"[" + ", ".join(f"{f} {b / samples:.3f}" for f, b in sorted(families.items()) if b) + "]")
PY
)")
  rm -f "$scratch/load.txt" "$scratch/create-blocks.txt"
done
echo "bytes per sample, $series series x $steps steps, the same samples in both stores:"
printf '%s\n' "${summary[@]}"
