#!/usr/bin/python3
"""forward_bench: forwarding after a one-hour outage of the target, measured side by side with
Prometheus' own remote_write queue (docs/forwarding.md, docs/performance.md).

One run:
  1. Aggregator A is loaded with one hour of data while its raw target's receiver is down:
     --dcs x --dc-series suanli_dc_* series (region, dc labels; what capacity forwards, as
     the recorded evaluations would be) and rwgen.py (--series x --steps at --step-ms, the
     hour before now). rwgen gives A's ingest CPU. The raw cursor is seeded at log position 1
     (tests/bench/cursor_tool, before A starts) so that the log keeps every batch.
  2. A stops; cursor_tool seeds the rollups (5m, rollup_delay 0s) and capacity
     (evaluation_interval 15s) cursors at the first sample's time (rollups: the start of its
     interval), and A starts again with
     all three targets, each to its own receiver (a fresh suanli-aggregator), all down. (A
     rollups target running during the load would pass over the hour's intervals before their
     samples arrive: rollups close by the wall clock.)
  3. Phase per target, one at a time (raw, rollups, capacity): its receiver starts; the
     catch-up lasts until suanli_aggregator_forward_samples_sent_total{target} stops growing
     with ..._backlog_seconds{target} 0 (A's /metrics, polled). A's CPU and peak RSS are
     taken over the phase. Catch-up ratio = 3600 s / catch-up seconds (from the receiver's
     readiness, so the retry backoff, at most max_backoff 5s, counts; also given from the
     first accepted request).
  4. Prometheus P (--web.enable-remote-write-receiver, remote_write to a fresh
     suanli-aggregator B', default queue_config) gets the same rwgen arguments, with the hour
     starting at P's start (its remote_write sends only samples newer than its own start);
     its CPU from rwgen's start until its queue has sent every sample
     (prometheus_remote_storage_samples_pending 0 and ..._samples_total reaching the count) is
     set against A's ingest + raw catch-up CPU per sample.
RSS of A: after the load, after the restart with a one-hour backlog on every target, peak
during each catch-up, after the last one, and after one more restart with no backlog.

Usage (from the repository root, Release build with suanli-aggregator and cursor_tool):
  RUNS=3 /usr/bin/python3 tests/bench/forward_bench.py --build build-bench
  /usr/bin/python3 tests/bench/forward_bench.py --build build-bench --series 20000   (smaller)
Every server listens on 127.0.0.1 (free high ports) and is stopped when the script ends.
Needs Debian's python3-snappy (through rwgen.py) and /usr/bin/prometheus for step 4.
"""
import argparse
import ast
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rwgen  # noqa: E402  (protobuf and snappy encoding of WriteRequests)

HOUR_S = 3600.0
PROCS = []  # every process this script started, stopped at exit


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv, logfile):
    f = open(logfile, "wb")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    PROCS.append(p)
    return p


def stop(p, timeout=60):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(PROCS):
        try:
            stop(p, 20)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def http_get(port, path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def wait_ready(port, p, path="/-/ready", limit_s=120):
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError("process %s exited with %s" % (p.args[0], p.returncode))
        try:
            if http_get(port, path, 2)[0] == 200:
                return time.time()
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("not ready on port %d" % port)


def cpu_s(pid):
    return rwgen.cpu_seconds(pid)


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def scrape(port):
    """{(name, frozenset of label pairs): value} of a /metrics page."""
    out = {}
    status, text = http_get(port, "/metrics")
    if status != 200:
        return out
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = METRIC_RE.match(line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric(page, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in page.items() if n == name and want <= ls)


# ---- the capacity series (suanli_dc_*), as recorded evaluations would be ----

def send_dc_series(port, dcs, per_dc, steps, step_ms, start_ms):
    encoded = []
    for d in range(dcs):
        for k in range(per_dc):
            encoded.append(rwgen.encode_labels({
                "__name__": "suanli_dc_figure_%02d" % k, "region": "region%d" % (d % 3),
                "dc": "dc-%02d" % d}))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = dict(rwgen.HEADERS, **{"User-Agent": "suanli-forward-bench/1"})
    sent = 0
    for first in range(0, steps, 10):  # 10 steps per request, each series in time order
        parts = []
        for j, lab in enumerate(encoded):
            samples = b"".join(
                rwgen.encode_sample(float((j * 7 + s) % 1000), start_ms + s * step_ms)
                for s in range(first, min(first + 10, steps)))
            parts.append(rwgen._bytes_field(1, lab + samples))
        conn.request("POST", "/api/v1/write", body=rwgen.snappy.compress(b"".join(parts)),
                     headers=headers)
        r = conn.getresponse()
        body = r.read()
        if r.status // 100 != 2:
            raise RuntimeError("dc series refused: %d %s" % (r.status, body[:200]))
        sent += len(encoded) * (min(first + 10, steps) - first)
    conn.close()
    return sent


def run_rwgen(port, pid, args, start_ms):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "rwgen.py"),
           "--url", "http://127.0.0.1:%d/api/v1/write" % port, "--pid", str(pid),
           "--series", str(args.series), "--steps", str(args.steps),
           "--step-ms", str(args.step_ms), "--conns", str(args.conns),
           "--start-ms", str(start_ms)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, timeout=args.limit_s).stdout
    return ast.literal_eval(out.decode().strip().splitlines()[-1])


# ---- one phase: a target catches up ----

def catch_up(args, a_port, a_pid, target, recv_port, tmp, expect=None):
    """Starts the target's receiver; returns the catch-up figures."""
    page0 = scrape(a_port)
    sent0 = metric(page0, "suanli_aggregator_forward_samples_sent_total", target=target)
    backlog0 = metric(page0, "suanli_aggregator_forward_backlog_seconds", target=target)
    b = start([args.aggregator, "--storage.path=%s/recv-%s" % (tmp, target),
               "--web.listen-address=127.0.0.1:%d" % recv_port], "%s/recv-%s.log" % (tmp, target))
    a_cpu0 = cpu_s(a_pid)
    t0 = time.time()  # the receiver comes up: the target's outage ends
    wait_ready(recv_port, b)
    t_ready = time.time()
    b_cpu0 = cpu_s(b.pid)
    a_cpu0 = cpu_s(a_pid)  # from the receiver's readiness on
    peak = rss_kb(a_pid)
    last_sent, last_change, first_ok = sent0, t_ready, None
    stable_since = None
    deadline = t_ready + args.limit_s
    while time.time() < deadline:
        time.sleep(args.poll_s)
        now = time.time()
        peak = max(peak, rss_kb(a_pid))
        page = scrape(a_port)
        sent = metric(page, "suanli_aggregator_forward_samples_sent_total", target=target)
        backlog = metric(page, "suanli_aggregator_forward_backlog_seconds", target=target)
        if first_ok is None and sent > sent0:
            first_ok = now
        if sent != last_sent:
            last_sent, last_change, stable_since = sent, now, None
            continue
        enough = expect is None or sent - sent0 >= expect
        if backlog == 0 and enough and sent > sent0:
            stable_since = stable_since or now
            if now - stable_since >= args.settle_s:
                break
        else:
            stable_since = None
    else:
        raise RuntimeError("target %s did not catch up in %d s" % (target, args.limit_s))
    a_cpu = cpu_s(a_pid) - a_cpu0  # includes the settle polls: a few ms
    b_cpu = cpu_s(b.pid) - b_cpu0
    dur = last_change - t_ready
    res = {
        "target": target, "samples": int(last_sent - sent0), "backlog_before_s": backlog0,
        "catch_up_s": round(dur, 2),
        "from_first_ok_s": round(last_change - first_ok, 2) if first_ok else None,
        "ratio": round(HOUR_S / dur, 1) if dur > 0 else None,
        "ratio_from_first_ok": (round(HOUR_S / (last_change - first_ok), 1)
                                if first_ok and last_change > first_ok else None),
        "a_cpu_s": round(a_cpu, 2), "receiver_cpu_s": round(b_cpu, 2),
        "a_peak_rss_kb": peak, "receiver_start_s": round(t_ready - t0, 2),
    }
    stop(b)
    log("catch-up %s: %s" % (target, res))
    return res


def write_config(path, a_port, db, targets, ports):
    with open(path, "w") as f:
        f.write("""web:
  listen_address: "127.0.0.1:%d"
storage:
  path: %s
capacity:
  stale_after: 5m
  forget_after: 1h
  watcher_window: 15m
  evaluation_interval: 15s
forward:
""" % (a_port, db))
        for t in targets:
            f.write("  - name: %s\n    url: http://127.0.0.1:%d/api/v1/write\n    select: %s\n"
                    % (t, ports[t], t))
            if t == "rollups":
                f.write("    resolution: 5m\n    rollup_delay: 0s\n")


def suanli_side(args, tmp):
    a_port = free_port()
    ports = {"raw": free_port(), "rollups": free_port(), "capacity": free_port()}
    db = os.path.join(tmp, "a")
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - args.steps * args.step_ms  # the last step is one step before now
    # Load: A with the raw target only, its cursor at the log's start (so the log keeps every
    # batch) and its receiver down. Rollups and capacity targets are added after the load: a
    # running one would pass over the hour's intervals before their samples arrive (rollups
    # close by the wall clock; docs/forwarding.md, Limits).
    subprocess.run([args.cursor_tool, db, "forward/raw", "log", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    cfg = os.path.join(tmp, "a.yml")
    write_config(cfg, a_port, db, ["raw"] if "raw" in args.targets else [], ports)
    a = start([args.aggregator, "--config.file=" + cfg], os.path.join(tmp, "a-load.log"))
    wait_ready(a_port, a)
    time.sleep(1)
    rss_ready = rss_kb(a.pid)
    c0 = cpu_s(a.pid)
    dc_samples = send_dc_series(a_port, args.dcs, args.dc_series, args.steps, args.step_ms,
                                start_ms)
    dc_cpu = cpu_s(a.pid) - c0
    log("A: %d suanli_dc_* samples in, %.2f CPU s" % (dc_samples, dc_cpu))
    gen = run_rwgen(a_port, a.pid, args, start_ms)
    log("A ingest: %s" % gen)
    if gen["samples_bad"]:
        raise RuntimeError("A refused samples: %s" % gen)
    c1 = cpu_s(a.pid)
    time.sleep(args.idle_s)  # what the load leaves behind (checkpoints, flushes), and retries
    idle_cpu = cpu_s(a.pid) - c1
    rss_loaded = rss_kb(a.pid)
    hwm_loaded = rss_kb(a.pid, "VmHWM")
    stop(a)
    # The other targets, down since the first sample: capacity from just before it, rollups
    # from the start of its 5m interval (a cursor between interval starts means "sent up to
    # here", so the interval holding it would be passed over).
    for name, at in (("rollups", start_ms - start_ms % 300000), ("capacity", start_ms - 1)):
        subprocess.run([args.cursor_tool, db, "forward/" + name, "time", str(at)],
                       check=True, stdout=subprocess.DEVNULL)
    write_config(cfg, a_port, db, args.targets, ports)
    t = time.time()
    a = start([args.aggregator, "--config.file=" + cfg], os.path.join(tmp, "a.log"))
    restart_backlog_s = wait_ready(a_port, a) - t
    time.sleep(16)  # the capacity recorder's first evaluation comes within 15 s
    rss_backlog = rss_kb(a.pid)
    ingested = gen["samples_ok"] + dc_samples
    res = {"series": args.series, "steps": args.steps, "samples_in": ingested,
           "ingest_cpu_s": gen["receiver_cpu_s"], "ingest_wall_s": gen["wall_s"],
           "ingest_samples_per_cpu_s": gen["samples_per_receiver_cpu_s"],
           "idle_after_ingest_cpu_s": round(idle_cpu, 2), "idle_s": args.idle_s,
           "rss_ready_kb": rss_ready, "rss_loaded_kb": rss_loaded, "hwm_loaded_kb": hwm_loaded,
           "rss_backlog_kb": rss_backlog}
    for target in args.targets:
        expect = ingested if target == "raw" else None
        res[target] = catch_up(args, a_port, a.pid, target, ports[target], tmp, expect)
    time.sleep(2)
    res["rss_caught_up_kb"] = rss_kb(a.pid)
    page = scrape(a_port)
    res["dropped"] = metric(page, "suanli_aggregator_forward_samples_dropped_total")
    # The same store with no backlog, restarted as above: RSS at 0 against RSS at one hour.
    time.sleep(62)  # a checkpoint (every 60 s) lets the log go up to the raw cursor
    stop(a)
    t = time.time()
    a = start([args.aggregator, "--config.file=" + cfg], os.path.join(tmp, "a-again.log"))
    res["restart_no_backlog_s"] = round(wait_ready(a_port, a) - t, 2)
    time.sleep(16)
    res["rss_restart_no_backlog_kb"] = rss_kb(a.pid)
    res["restart_backlog_s"] = round(restart_backlog_s, 2)
    stop(a)
    shutil.rmtree(db, ignore_errors=True)
    return res


def no_future_check(args, tmp):
    """Flags for a receiver that takes an hour of samples ahead of its clock, where the
    aggregator has storage.future_grace."""
    cfg = os.path.join(tmp, "recv-prom.yml")
    with open(cfg, "w") as f:
        f.write("storage:\n  future_grace: 0s\n")
    r = subprocess.run([args.aggregator, "--config.file=" + cfg, "--config.check"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ["--config.file=" + cfg] if r.returncode == 0 else []


def prometheus_side(args, tmp):
    p_port, b_port = free_port(), free_port()
    b = start([args.aggregator, "--storage.path=%s/recv-prom" % tmp,
               "--web.listen-address=127.0.0.1:%d" % b_port] + no_future_check(args, tmp),
              os.path.join(tmp, "recv-prom.log"))
    wait_ready(b_port, b)
    cfg = os.path.join(tmp, "prom.yml")
    with open(cfg, "w") as f:
        f.write("global: {}\nremote_write:\n  - url: http://127.0.0.1:%d/api/v1/write\n" % b_port)
    p = start([args.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=%s/prom" % tmp,
               "--web.listen-address=127.0.0.1:%d" % p_port, "--web.enable-remote-write-receiver"],
              os.path.join(tmp, "prom.log"))
    wait_ready(p_port, p)
    time.sleep(1)
    rss_ready = rss_kb(p.pid)
    # Prometheus' remote_write (its WAL watcher) sends only samples newer than its own start,
    # so its hour begins now: the same steps, shifted after its start.
    start_ms = int(time.time() * 1000) + 1000
    c0 = cpu_s(p.pid)
    b_cpu0 = cpu_s(b.pid)
    t0 = time.time()
    gen = run_rwgen(p_port, p.pid, args, start_ms)
    log("P ingest: %s" % gen)
    t_gen = time.time()
    rss_after_ingest = rss_kb(p.pid)
    n = gen["samples_ok"]
    deadline = time.time() + args.limit_s
    sent = pending = 0
    while time.time() < deadline:
        page = scrape(p_port)
        sent = metric(page, "prometheus_remote_storage_samples_total")
        pending = metric(page, "prometheus_remote_storage_samples_pending")
        if sent >= n and pending == 0:
            break
        time.sleep(args.poll_s)
    else:
        raise RuntimeError("prometheus did not forward %d samples (sent %d, pending %d)"
                           % (n, sent, pending))
    t_done = time.time()
    cpu = cpu_s(p.pid) - c0
    page = scrape(p_port)
    res = {"samples_in": n, "samples_sent": int(sent), "receive_cpu_s": gen["receiver_cpu_s"],
           "total_cpu_s": round(cpu, 2), "wall_s": round(t_done - t0, 2),
           "forward_tail_s": round(t_done - t_gen, 2),
           "failed": metric(page, "prometheus_remote_storage_samples_failed_total"),
           "dropped": metric(page, "prometheus_remote_storage_samples_dropped_total"),
           "shards": metric(page, "prometheus_remote_storage_shards"),
           "receiver_cpu_s": round(cpu_s(b.pid) - b_cpu0, 2),
           "rss_ready_kb": rss_ready, "rss_after_ingest_kb": rss_after_ingest,
           "rss_done_kb": rss_kb(p.pid), "hwm_kb": rss_kb(p.pid, "VmHWM")}
    log("P forward: %s" % res)
    stop(p)
    stop(b)
    shutil.rmtree(os.path.join(tmp, "prom"), ignore_errors=True)
    return res


def summarize(s, p):
    """The figures of one run against their targets."""
    f = {}
    for t in ("raw", "rollups", "capacity"):
        if t in s:
            f["%s_catch_up_s" % t] = s[t]["catch_up_s"]
            f["%s_ratio" % t] = s[t]["ratio"]
            f["%s_ratio_from_first_ok" % t] = s[t]["ratio_from_first_ok"]
            f["%s_samples" % t] = s[t]["samples"]
            f["%s_cpu_s" % t] = s[t]["a_cpu_s"]
    if "raw" in s:
        f["raw_cpu_over_ingest"] = round(s["raw"]["a_cpu_s"] / s["ingest_cpu_s"], 3)
        f["suanli_us_per_sample"] = round(
            (s["ingest_cpu_s"] + s["raw"]["a_cpu_s"]) * 1e6 / s["samples_in"], 3)
    if p:
        f["prometheus_us_per_sample"] = round(p["total_cpu_s"] * 1e6 / p["samples_in"], 3)
        if "suanli_us_per_sample" in f:
            f["prometheus_over_suanli"] = round(
                f["prometheus_us_per_sample"] / f["suanli_us_per_sample"], 2)
    f["rss_loaded_mb"] = round(s["rss_loaded_kb"] / 1024, 1)
    f["rss_backlog_mb"] = round(s["rss_backlog_kb"] / 1024, 1)
    f["rss_peak_catch_up_mb"] = round(
        max(s[t]["a_peak_rss_kb"] for t in ("raw", "rollups", "capacity") if t in s) / 1024, 1)
    f["rss_caught_up_mb"] = round(s["rss_caught_up_kb"] / 1024, 1)
    f["rss_restart_no_backlog_mb"] = round(s["rss_restart_no_backlog_kb"] / 1024, 1)
    f["restart_backlog_s"] = s["restart_backlog_s"]
    f["restart_no_backlog_s"] = s["restart_no_backlog_s"]
    return f


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-bench", help="build directory (bin/ inside)")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--step-ms", type=int, default=15000)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--dcs", type=int, default=12)
    ap.add_argument("--dc-series", type=int, default=50)
    ap.add_argument("--targets", default="raw,rollups,capacity")
    ap.add_argument("--no-prometheus", action="store_true")
    ap.add_argument("--poll-s", type=float, default=0.25)
    ap.add_argument("--settle-s", type=float, default=3.0,
                    help="sent must stay still this long, with backlog 0, to end a catch-up")
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--limit-s", type=int, default=900, help="bound on every wait")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "1")))
    args = ap.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    args.aggregator = os.path.join(args.build, "bin", "suanli-aggregator")
    args.cursor_tool = os.path.join(args.build, "bin", "cursor_tool")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="forward_bench.")
    runs = []
    try:
        for r in range(args.runs):
            log("run %d of %d" % (r + 1, args.runs))
            s = suanli_side(args, tmp)
            p = None if args.no_prometheus else prometheus_side(args, tmp)
            f = summarize(s, p)
            print("run %d suanli: %s" % (r + 1, s))
            if p:
                print("run %d prometheus: %s" % (r + 1, p))
            print("run %d figures: %s" % (r + 1, f))
            sys.stdout.flush()
            runs.append(f)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {}
    for k in runs[0]:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            med[k] = round(statistics.median(vals), 3)
    print("median of %d runs (%d series x %d steps at %d ms): %s"
          % (len(runs), args.series, args.steps, args.step_ms, med))
    targets = []
    for t, want in (("capacity", 50), ("rollups", 50), ("raw", 10)):
        if "%s_ratio" % t in med:
            targets.append("%s catch-up %.1fx real time (>= %dx: %s)" % (
                t, med["%s_ratio" % t], want, "met" if med["%s_ratio" % t] >= want else "not met"))
    if "raw_cpu_over_ingest" in med:
        v = med["raw_cpu_over_ingest"]
        targets.append("raw forward CPU %.1f%% of ingest CPU (<= 20%%: %s)"
                       % (100 * v, "met" if v <= 0.2 else "not met"))
    if "prometheus_over_suanli" in med:
        v = med["prometheus_over_suanli"]
        targets.append("ingest + raw forward CPU per sample: Prometheus spends %.2fx suanli's "
                       "(suanli below Prometheus: %s)" % (v, "met" if v > 1 else "not met"))
    targets.append("A's RSS: after the load %.1f MB; restarted with a 1h backlog %.1f MB, peak "
                   "catching up %.1f MB, caught up %.1f MB; restarted with no backlog %.1f MB"
                   % (med["rss_loaded_mb"], med["rss_backlog_mb"], med["rss_peak_catch_up_mb"],
                      med["rss_caught_up_mb"], med["rss_restart_no_backlog_mb"]))
    for line in targets:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
