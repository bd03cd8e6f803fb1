#!/usr/bin/python3
"""Series churn: do memory and start-up time return to baseline once churned series expire?

A suanli-aggregator (every resolution's retention --retention, default 2h2m) holds a steady
set of --steady series written with current timestamps. The script measures the baseline: the
aggregator's RSS, and the time a restart takes until /-/ready. Then it writes --churn series
that are never written again (like the veth links of containers that come and go), stamped
two hours ago, so that they leave the retention a couple of minutes later, and measures RSS
again. It waits until the store's retention pass has forgotten them
(suanli_aggregator_series_forgotten_total), then measures RSS and a restart once more; and
again for --cycles cycles, so that growth from cycle to cycle would show. The steady series
keep being written throughout, so the aggregator is never idle.

  /usr/bin/python3 tests/bench/series_churn.py --build build [--steady 20000 --churn 500000]
Prints RSS (VmRSS, MiB) and start-up seconds at baseline, after the churn and after the
forgetting, and the ratios to the baseline.
"""
import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwgen  # noqa: E402
from bench_util import free_port, wait_ready  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    m = re.search(r"^%s(?:\{\})? (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else 0.0


class Aggregator:
    def __init__(self, build, scratch, retention):
        self.build, self.scratch = build, scratch
        self.config = os.path.join(scratch, "agg.yml")
        with open(self.config, "w") as f:
            f.write("storage:\n  retention:\n")
            for res in ("raw", "1m", "5m", "1h"):
                f.write(f"    {res}: {retention}\n")
        self.proc, self.port = None, free_port()

    def start(self):
        """Starts it and returns the seconds until /-/ready."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "bin", "suanli-aggregator"),
             f"--config.file={self.config}",
             f"--storage.path={os.path.join(self.scratch, 'agg')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=open(os.path.join(self.scratch, "agg.log"), "a"), stderr=subprocess.STDOUT)
        wait_ready(self.port, self.proc, "suanli-aggregator")
        return time.perf_counter() - t0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(120)


def send(port, requests):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for _, body, _, _ in requests:
        conn.request("POST", "/api/v1/write", body=body, headers=rwgen.HEADERS)
        r = conn.getresponse()
        payload = r.read()
        if r.status // 100 != 2:
            sys.exit(f"remote_write answered {r.status}: {payload[:200]!r}")


def workload(series, prefix, start_ms, steps=1, step_ms=15000):
    args = argparse.Namespace(series=series, steps=steps, step_ms=step_ms, batch=2000, conns=1,
                              metrics_per_host=500, extra_labels=0, prefix=prefix,
                              start_ms=start_ms)
    return rwgen.build_shard(0, args)


class SteadyWriter(threading.Thread):
    """Writes the steady series every --interval seconds with the current time."""

    def __init__(self, agg, series, interval):
        super().__init__(daemon=True)
        self.agg, self.series, self.interval = agg, series, interval
        self.stop_event, self.paused = threading.Event(), threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            if not self.paused.is_set():
                try:
                    send(self.agg.port, workload(self.series, "steady", int(time.time() * 1000)))
                except OSError:
                    pass  # a restart in progress
            self.stop_event.wait(self.interval)


def settle(agg, seconds):
    """RSS after `seconds` more of steady ingest (the median of a reading per second)."""
    readings = []
    for _ in range(int(seconds)):
        time.sleep(1)
        readings.append(rss_mib(agg.proc.pid))
    return sorted(readings)[len(readings) // 2]


def restart(agg, writer):
    writer.paused.set()
    agg.stop()
    seconds = agg.start()
    writer.paused.clear()
    return seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--steady", type=int, default=20000)
    ap.add_argument("--churn", type=int, default=500000)
    ap.add_argument("--retention", default="2h2m")
    ap.add_argument("--cycles", type=int, default=2, help="churn-and-forget cycles")
    ap.add_argument("--interval", type=float, default=5.0, help="steady write interval, s")
    ap.add_argument("--settle-s", type=float, default=10)
    args = ap.parse_args()

    scratch = tempfile.mkdtemp(prefix="churn-")
    agg = Aggregator(args.build, scratch, args.retention)
    agg.start()
    writer = SteadyWriter(agg, args.steady, args.interval)
    writer.start()
    try:
        time.sleep(2 * args.interval)
        base_rss = settle(agg, args.settle_s)
        base_start = restart(agg, writer)
        base_rss_restarted = settle(agg, args.settle_s)
        print(f"baseline: {args.steady} series, RSS {base_rss:.1f} MiB "
              f"(after restart {base_rss_restarted:.1f}), start-up {base_start:.2f} s", flush=True)

        for cycle in range(1, args.cycles + 1):
            # Churn: stamped 2h ago (inside the retention now, outside it ~2 min later); the
            # store's checkpoint closes their chunks (more than an hour behind the clock).
            churn_ms = int(time.time() * 1000) - 2 * 3_600_000
            forgotten_before = metric(agg.port, "suanli_aggregator_series_forgotten_total")
            t0 = time.perf_counter()
            send(agg.port, workload(args.churn, "churn%d" % int(time.time()), churn_ms))
            churn_rss = settle(agg, args.settle_s)
            print(f"cycle {cycle}: churned {args.churn} series in {time.perf_counter() - t0:.0f}"
                  f" s, RSS {churn_rss:.1f} MiB, series "
                  f"{metric(agg.port, 'suanli_aggregator_series'):.0f}", flush=True)
            deadline = time.time() + 900
            while (metric(agg.port, "suanli_aggregator_series_forgotten_total")
                   < forgotten_before + args.churn):
                if time.time() > deadline:
                    sys.exit("the churned series were not forgotten within 15 minutes")
                time.sleep(5)
            forgot_rss = settle(agg, args.settle_s)
            forgot_start = restart(agg, writer)
            forgot_rss_restarted = settle(agg, args.settle_s)
            series = metric(agg.port, "suanli_aggregator_series")
            print(f"cycle {cycle}: forgotten; series {series:.0f}, RSS {forgot_rss:.1f} MiB "
                  f"(after restart {forgot_rss_restarted:.1f}), start-up {forgot_start:.2f} s")
            print(f"cycle {cycle}: ratios to baseline: RSS after churn {churn_rss / base_rss:.2f},"
                  f" after forgetting {forgot_rss / base_rss:.2f} (after restart "
                  f"{forgot_rss_restarted / base_rss_restarted:.2f}), start-up "
                  f"{forgot_start / base_start:.2f}", flush=True)
    finally:
        writer.stop_event.set()
        agg.stop()
        subprocess.run(["rm", "-rf", scratch])


if __name__ == "__main__":
    main()
