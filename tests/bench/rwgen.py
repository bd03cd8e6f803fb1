#!/usr/bin/python3
"""rwgen: a Prometheus remote_write 1.0 load generator, to measure a receiver (suanli-aggregator,
or Prometheus with --web.enable-remote-write-receiver) under the same load.

Every connection is one shard of the series (series i goes to shard i % --conns) and one
process; it encodes all of its WriteRequests (protobuf, snappy block format) before the clock
starts, then posts them in order over one keep-alive HTTP/1.1 connection, so each series'
samples arrive in order, as from Prometheus' sharded queues.

The series: host h = i // --metrics-per-host exports --metrics-per-host counters named
<prefix>_metric_NNN_total with labels dc="dcNN" (h % 20), instance="srv-NNNNNN.example:9100",
job="node" and --extra-labels more (xNN="v..."). A counter starts at a random value in
[0, 1000] and grows by (i % 7 + 1) per step; step s is stamped --start-ms + s * --step-ms
(default: the run's samples end 5 s before it starts). Step 0 creates the series; the steady
rate leaves it out.

It prints one Python dict (read it with ast.literal_eval): samples accepted, wall time, the
rates over the whole run and over the steady steps, and, with --pid, the receiver's CPU
seconds (from /proc/PID/stat) and samples per receiver CPU-second. Needs Debian's
python3-snappy: run it with /usr/bin/python3.
  rwgen.py --url http://127.0.0.1:9466/api/v1/write --pid PID --series 100000 --steps 30
tests/bench/loadgen_paced_rw.py imports build_shard() from here.
"""
import argparse
import http.client
import multiprocessing
import os
import random
import struct
import sys
import time
import urllib.parse

import snappy

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


# ---- protobuf wire format (prometheus.WriteRequest), only what a request needs ----

def _varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes_field(number, payload):
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_labels(labels):
    """TimeSeries.labels (field 1) for every Label{name=1, value=2}, sorted by name."""
    return b"".join(
        _bytes_field(1, _bytes_field(1, k.encode()) + _bytes_field(2, v.encode()))
        for k, v in sorted(labels.items()))


def encode_sample(value, timestamp_ms):
    """TimeSeries.samples (field 2): Sample{value=1 (double), timestamp=2 (int64)}."""
    return _bytes_field(2, b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(timestamp_ms))


# ---- the workload ----

def series_labels(i, prefix, metrics_per_host, extra_labels):
    host, metric = divmod(i, metrics_per_host)
    labels = {
        "__name__": "%s_metric_%03d_total" % (prefix, metric),
        "dc": "dc%02d" % (host % 20),
        "instance": "srv-%06d.example:9100" % host,
        "job": "node",
    }
    for k in range(extra_labels):
        labels["x%02d" % k] = "v%d" % ((host + k) % 97)
    return labels


def build_shard(shard, args):
    """The requests of one shard, in sending order: (step, snappy body, samples, protobuf
    bytes). `args` needs series, conns, steps, step_ms, start_ms, batch, prefix,
    metrics_per_host and extra_labels."""
    ids = range(shard, args.series, args.conns)
    encoded = [encode_labels(series_labels(i, args.prefix, args.metrics_per_host,
                                           args.extra_labels)) for i in ids]
    increments = [i % 7 + 1 for i in ids]
    values = [float(random.randint(0, 1000)) for _ in ids]
    requests = []
    for step in range(args.steps):
        ts = args.start_ms + step * args.step_ms
        for first in range(0, len(encoded), args.batch):
            last = min(first + args.batch, len(encoded))
            parts = []
            for j in range(first, last):
                values[j] += increments[j]
                parts.append(_bytes_field(1, encoded[j] + encode_sample(values[j], ts)))
            proto = b"".join(parts)
            requests.append((step, snappy.compress(proto), last - first, len(proto)))
    return requests


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (0 without a pid)."""
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send_shard(shard, args, ready, results):
    requests = build_shard(shard, args)
    url = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = dict(HEADERS, **{"User-Agent": "suanli-rwgen/1"})
    ready.wait()
    started, cpu0 = time.time(), time.process_time()
    steady_from = None
    accepted = refused = wire = 0
    for step, body, n, _ in requests:
        if step == 1 and steady_from is None:
            steady_from = time.time()
        conn.request("POST", url.path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if 200 <= resp.status < 300:
            accepted += n
        else:
            if refused == 0:
                sys.stderr.write("shard %d: HTTP %d\n" % (shard, resp.status))
            refused += n
        wire += len(body)
    ended = time.time()
    results.put({
        "accepted": accepted, "refused": refused, "started": started, "ended": ended,
        "steady_from": steady_from or ended, "cpu": time.process_time() - cpu0, "wire": wire,
        "proto": sum(r[3] for r in requests), "requests": len(requests),
        "step0": sum(r[2] for r in requests if r[0] == 0),
    })


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:19090/api/v1/write")
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--step-ms", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=2000, help="series per request")
    ap.add_argument("--conns", type=int, default=4, help="connections = processes = shards")
    ap.add_argument("--metrics-per-host", type=int, default=500)
    ap.add_argument("--extra-labels", type=int, default=0)
    ap.add_argument("--prefix", default="rw%d" % int(time.time()), help="metric name prefix")
    ap.add_argument("--pid", type=int, default=0, help="receiver pid, for its CPU seconds")
    ap.add_argument("--start-ms", type=int, default=0, help="timestamp of step 0")
    args = ap.parse_args(argv)
    if not args.start_ms:
        args.start_ms = int(time.time() * 1000) - args.steps * args.step_ms - 5000
    return args


def main(argv=None):
    args = parse_args(argv)
    ready = multiprocessing.Barrier(args.conns + 1)
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=send_shard, args=(s, args, ready, results))
             for s in range(args.conns)]
    for p in procs:
        p.start()
    ready.wait()  # every shard has encoded its requests
    cpu0 = cpu_seconds(args.pid)
    shards = [results.get() for _ in procs]
    receiver_cpu = cpu_seconds(args.pid) - cpu0
    for p in procs:
        p.join()

    accepted = sum(s["accepted"] for s in shards)
    refused = sum(s["refused"] for s in shards)
    start = min(s["started"] for s in shards)
    end = max(s["ended"] for s in shards)
    steady_start = max(s["steady_from"] for s in shards)
    wall, steady_wall = end - start, end - steady_start
    sent = max(accepted + refused, 1)
    print({
        "series": args.series, "steps": args.steps, "batch": args.batch, "conns": args.conns,
        "samples_ok": accepted, "samples_bad": refused, "wall_s": round(wall, 3),
        "rate_all": round(accepted / wall) if wall > 0 else None,
        "steady_rate": (round((accepted - sum(s["step0"] for s in shards)) / steady_wall)
                        if steady_wall > 0 else None),
        "step0_s": round(steady_start - start, 3),
        "receiver_cpu_s": round(receiver_cpu, 2),
        "samples_per_receiver_cpu_s": round(accepted / receiver_cpu) if receiver_cpu else None,
        "client_cpu_s": round(sum(s["cpu"] for s in shards), 2),
        "wire_bytes_per_sample": round(sum(s["wire"] for s in shards) / sent, 2),
        "raw_proto_bytes_per_sample": round(sum(s["proto"] for s in shards) / sent, 2),
        "requests": sum(s["requests"] for s in shards),
    })
    return 0  # refused samples show in samples_bad; the caller judges them


if __name__ == "__main__":
    sys.exit(main())
