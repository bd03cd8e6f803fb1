#!/usr/bin/python3
"""remote_read end to end: 90 days of one series, read at 1h steps by a real Prometheus.

Two Prometheus servers answer the same query_range over HTTP, in one run:
  - "own TSDB": a Prometheus whose blocks hold the series (built from the same samples with
    `promtool tsdb create-blocks-from openmetrics`);
  - "via suanli": a Prometheus with an empty TSDB and `remote_read` (read_recent: true) to a
    suanli-aggregator that received the same samples by remote_write.
Each query runs --repeat times alternating between the two (keep-alive connections); the script
prints the median and p90 wall time of each, their ratio, and checks that both answer the same
values (to 1e-9 relative).

The series: one gauge (a wandering temperature-like value with noise, 2 decimals) and one
counter (bytes with a noisy rate, reset once a week), one sample every 15 s, 7 s past the
minute with up to 200 ms of jitter either way, over --days days ending two hours before now.

  /usr/bin/python3 tests/bench/remote_read_e2e.py --build build [--days 90 --repeat 30]
Needs Debian's prometheus (with promtool) and python3-snappy.
"""
import argparse
import http.client
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snappy  # noqa: E402
from bench_util import free_port, start_aggregator, wait_ready  # noqa: E402
from rwgen import HEADERS, _bytes_field, encode_labels, encode_sample  # noqa: E402

HOUR = 3_600_000


def make_series(days, seed=7):
    rnd = random.Random(seed)
    end = (int(time.time() * 1000) // HOUR - 2) * HOUR
    start = end - days * 24 * HOUR
    gauge, counter = [], []
    c = 0.0
    week = 7 * 24 * HOUR
    t = start + 7_000  # a scrape's offset: never on the rollups' interval grid
    while t < end:
        ts = t + rnd.randint(-200, 200)
        g = 45 + 10 * math.sin(ts / 3.6e6 / 24 * 2 * math.pi) + rnd.uniform(-1, 1)
        gauge.append((ts, round(g, 2)))
        if ts // week != (ts - 15_000) // week:
            c = 0.0
        c += max(0.0, 1.5e6 * (1 + 0.5 * rnd.uniform(-1, 1)))
        counter.append((ts, c))
        t += 15_000
    return start, end, {"bench_temperature_celsius": gauge, "bench_bytes_total": counter}


LABELS = {"dc": "dc01", "instance": "srv-000001.example:9100", "job": "node", "region": "west"}


def write_openmetrics(path, series):
    with open(path, "w") as f:
        body = ",".join(f'{k}="{v}"' for k, v in sorted(LABELS.items()))
        for name, samples in series.items():
            kind = "counter" if name.endswith("_total") else "gauge"
            family = name[:-len("_total")] if kind == "counter" else name
            f.write(f"# TYPE {family} {kind}\n")
            for ts, v in samples:
                f.write(f"{name}{{{body}}} {v!r} {ts / 1000:.3f}\n")
        f.write("# EOF\n")


def remote_write(port, series, per_request=20_000):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for name, samples in series.items():
        labels = encode_labels(dict(LABELS, __name__=name))
        for first in range(0, len(samples), per_request):
            part = b"".join(encode_sample(v, ts) for ts, v in samples[first:first + per_request])
            body = snappy.compress(_bytes_field(1, labels + part))
            conn.request("POST", "/api/v1/write", body=body, headers=HEADERS)
            r = conn.getresponse()
            text = r.read()
            if r.status // 100 != 2:
                sys.exit(f"remote_write answered {r.status}: {text[:300]!r}")


def prometheus(tmp, name, port, data, extra_config="", extra_flags=()):
    cfg = os.path.join(tmp, f"{name}.yml")
    with open(cfg, "w") as f:
        f.write("global: {}\n" + extra_config)
    log = open(os.path.join(tmp, f"{name}.log"), "w")
    return subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d",
         *extra_flags], stdout=log, stderr=subprocess.STDOUT)


def query(conn, q, start, end, step):
    path = "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": start / 1000, "end": end / 1000, "step": step})
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    took = time.perf_counter() - t0
    if r.status != 200:
        sys.exit(f"{q}: HTTP {r.status}: {body[:300]!r}")
    doc = json.loads(body)
    for w in doc.get("warnings", []):
        print(f"  warning from Prometheus: {w}", flush=True)
    result = doc["data"]["result"]
    return took, {json.dumps(s["metric"], sort_keys=True): s["values"] for s in result}


def same(a, b):
    if a.keys() != b.keys():
        return f"series differ: {sorted(a)} vs {sorted(b)}"
    for k in a:
        va, vb = a[k], b[k]
        if [t for t, _ in va] != [t for t, _ in vb]:
            return f"{k}: timestamps differ ({len(va)} vs {len(vb)} points)"
        for (t, x), (_, y) in zip(va, vb):
            x, y = float(x), float(y)
            if abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y)):
                return f"{k} at {t}: {x} vs {y}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="rr-e2e-")
    procs = []
    try:
        start, end, series = make_series(args.days)
        n = sum(len(s) for s in series.values())
        print(f"samples: {n} in {len(series)} series over {args.days} days", flush=True)
        om = os.path.join(tmp, "samples.om")
        write_openmetrics(om, series)
        own = os.path.join(tmp, "prom-own")
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, own],
                       check=True, stdout=subprocess.DEVNULL)

        agg, agg_port = start_aggregator(args.build, tmp)
        procs.append(agg)
        remote_write(agg_port, series)

        own_port, via_port = free_port(), free_port()
        procs.append(prometheus(tmp, "own", own_port, own))
        procs.append(prometheus(
            tmp, "via", via_port, os.path.join(tmp, "prom-via"),
            "remote_read:\n"
            f"  - url: http://127.0.0.1:{agg_port}/api/v1/read\n"
            "    read_recent: true\n"))
        wait_ready(own_port, procs[-2], "prometheus (own TSDB)")
        wait_ready(via_port, procs[-1], "prometheus (remote_read)")

        # Prometheus compacts the backfilled two-hour blocks into larger ones after it starts,
        # as it would have over 90 days: measure it once that is done (fewer blocks than it
        # started with, then unchanged for two minutes; at most 30 minutes), not while it reads
        # a thousand small blocks.
        own_conn = http.client.HTTPConnection("127.0.0.1", own_port, timeout=60)
        history = []
        deadline = time.time() + 1800
        while time.time() < deadline and (
                len(history) < 13 or len(set(history[-13:])) > 1
                or (args.days > 1 and history[-1] >= history[0])):
            own_conn.request("GET", "/metrics")
            text = own_conn.getresponse().read().decode()
            loaded = [line.split()[-1] for line in text.splitlines()
                      if line.startswith("prometheus_tsdb_blocks_loaded ")]
            history.append(int(float(loaded[0])) if loaded else -1)
            time.sleep(10)
        print(f"prometheus (own TSDB): {history[-1]} blocks after compaction", flush=True)

        conns = {"own TSDB": http.client.HTTPConnection("127.0.0.1", own_port, timeout=60),
                 "via suanli": http.client.HTTPConnection("127.0.0.1", via_port, timeout=60)}
        queries = ["max_over_time(bench_temperature_celsius[1h])",
                   "avg_over_time(bench_temperature_celsius[1h])",
                   "increase(bench_bytes_total[1h])"]
        q_start, q_end = start + HOUR, end
        failed = False
        for q in queries:
            times = {k: [] for k in conns}
            answers = {}
            for i in range(args.repeat + 2):  # two warm-up rounds left out
                for k, c in conns.items():
                    took, ans = query(c, q, q_start, q_end, 3600)
                    if i >= 2:
                        times[k].append(took * 1000)
                    answers[k] = ans
            diff = same(answers["own TSDB"], answers["via suanli"])
            points = sum(len(v) for v in answers["own TSDB"].values())
            print(f"{q} over {args.days} d at 1h ({points} points):")
            for k, ts in times.items():
                ts.sort()
                print(f"  {k:10s} median {statistics.median(ts):7.2f} ms  "
                      f"p90 {ts[int(len(ts) * 0.9) - 1]:7.2f} ms")
            ratio = statistics.median(times["via suanli"]) / statistics.median(times["own TSDB"])
            print(f"  via suanli / own TSDB: {ratio:.2f}x; answers "
                  + ("identical" if diff is None else f"DIFFER: {diff}"), flush=True)
            failed |= diff is not None
        return 1 if failed else 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
