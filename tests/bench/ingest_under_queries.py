#!/usr/bin/python3
"""Ingest while dashboards read: does a query stall remote_write?

Each run starts a fresh suanli-aggregator and sends it --series series (rwgen.py's workload) for
--steps steps of --step-ms, stamped so that the steps cross an hour boundary (every series
closes its chunk of the hour in the middle of the run), as fast as --conns connections can;
each request's acknowledgment latency is recorded. "with queries" runs do the same while
--readers readers each send one remote_read range query per --read-interval-s seconds, each
for one metric name (series/metrics-per-host... i.e. one series per host) over the whole span
of the run, as dashboards refreshing. Runs alternate (without, with) --runs times; the script
prints each run's samples/s and p50/p99 acknowledgment latency, the medians, and the ratio of
throughput with queries to without.

  /usr/bin/python3 tests/bench/ingest_under_queries.py --build build \\
      [--series 100000 --steps 20 --readers 20 --runs 3]
On a machine with few cores the readers also take CPU from ingest: the script prints the
aggregator's CPU seconds per run so that a drop can be told from a stall.
"""
import argparse
import http.client
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snappy  # noqa: E402
import rwgen  # noqa: E402
from bench_util import start_aggregator  # noqa: E402

HOUR = 3_600_000
READ_HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Read-Version": "0.1.0"}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_request(name, start_ms, end_ms):
    """ReadRequest{queries=1: Query{start=1, end=2, matchers=3: {type=1 EQ=0, name=2, value=3}},
    accepted_response_types=2: SAMPLES=0}."""
    matcher = rwgen._bytes_field(2, b"__name__") + rwgen._bytes_field(3, name.encode())
    query = (b"\x08" + rwgen._varint(start_ms) + b"\x10" + rwgen._varint(end_ms)
             + rwgen._bytes_field(3, matcher))
    return snappy.compress(rwgen._bytes_field(1, query) + b"\x10\x00")


def sender(shard, args, port, go, out):
    requests = rwgen.build_shard(shard, args)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies, samples = [], 0
    go.wait()
    for _, body, n, _ in requests:
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/write", body=body, headers=rwgen.HEADERS)
        r = conn.getresponse()
        r.read()
        latencies.append(time.perf_counter() - t0)
        if r.status // 100 != 2:
            sys.exit(f"remote_write answered {r.status}")
        samples += n
    out.put((samples, latencies))


def reader(port, args, stop, counts):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    i = 0
    while not stop.is_set():
        name = "%s_metric_%03d_total" % (args.prefix, (i * 37 + id(stop)) % args.metrics_per_host)
        body = read_request(name, args.start_ms, args.start_ms + args.steps * args.step_ms)
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/read", body=body, headers=READ_HEADERS)
        r = conn.getresponse()
        payload = r.read()
        if r.status != 200:
            sys.exit(f"remote_read answered {r.status}: {payload[:200]!r}")
        counts.append(len(payload))
        i += 1
        stop.wait(max(0.0, args.read_interval_s - (time.perf_counter() - t0)))


def one_run(args, with_queries):
    tmp = tempfile.mkdtemp(prefix="iuq-")
    agg, port = start_aggregator(args.build, tmp)
    try:
        go, out = mp.Event(), mp.Queue()
        procs = [mp.Process(target=sender, args=(s, args, port, go, out))
                 for s in range(args.conns)]
        for p in procs:
            p.start()
        time.sleep(args.encode_wait_s)  # the senders encode everything before the clock starts
        stop, counts, readers = threading.Event(), [], []
        if with_queries:
            readers = [threading.Thread(target=reader, args=(port, args, stop, counts))
                       for _ in range(args.readers)]
            for t in readers:
                t.start()
        cpu0, t0 = cpu_seconds(agg.pid), time.perf_counter()
        go.set()
        results = [out.get() for _ in procs]
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(agg.pid) - cpu0
        stop.set()
        for t in readers:
            t.join()
        for p in procs:
            p.join()
        samples = sum(r[0] for r in results)
        lat = sorted(x for r in results for x in r[1])
        return {"rate": samples / wall, "p50_ms": 1000 * lat[len(lat) // 2],
                "p99_ms": 1000 * lat[int(len(lat) * 0.99)], "cpu_s": cpu,
                "queries": len(counts), "samples": samples}
    finally:
        agg.terminate()
        agg.wait(30)
        subprocess.run(["rm", "-rf", tmp])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--step-ms", type=int, default=15000)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--metrics-per-host", type=int, default=500)
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--read-interval-s", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--encode-wait-s", type=float, default=0,
                    help="seconds to let the senders encode (default: 2 per 100k series-steps)")
    args = ap.parse_args()
    args.extra_labels = 0
    args.prefix = "iuq"
    # Half the steps before the last full hour, half after (and all in the past).
    now = int(time.time() * 1000)
    boundary = now // HOUR * HOUR
    span = args.steps * args.step_ms
    if boundary + span // 2 > now - 60_000:
        boundary -= HOUR
    args.start_ms = boundary - span // 2
    if not args.encode_wait_s:
        args.encode_wait_s = 2 + 2 * args.series * args.steps / 100000 / args.conns
    print(f"{args.series} series x {args.steps} steps across the hour boundary at "
          f"{time.strftime('%H:%M', time.gmtime(boundary / 1000))} UTC; "
          f"{args.readers} readers, one query each per {args.read_interval_s} s", flush=True)
    res = {False: [], True: []}
    for run in range(args.runs):
        for wq in (False, True):
            r = one_run(args, wq)
            res[wq].append(r)
            print(f"run {run + 1} {'with queries   ' if wq else 'without queries'}: "
                  f"{r['rate']:9.0f} samples/s, ack p50 {r['p50_ms']:6.1f} ms, "
                  f"p99 {r['p99_ms']:7.1f} ms, aggregator CPU {r['cpu_s']:.1f} s, "
                  f"{r['queries']} queries", flush=True)
    med = {wq: {k: statistics.median(r[k] for r in res[wq]) for k in ("rate", "p50_ms", "p99_ms")}
           for wq in res}
    for wq in (False, True):
        print(f"median {'with queries   ' if wq else 'without queries'}: "
              f"{med[wq]['rate']:.0f} samples/s, p99 {med[wq]['p99_ms']:.1f} ms")
    print(f"throughput with queries / without: {med[True]['rate'] / med[False]['rate']:.3f}; "
          f"p99 ratio {med[True]['p99_ms'] / med[False]['p99_ms']:.2f}")


if __name__ == "__main__":
    main()
