#!/usr/bin/python3
"""Tier simulation: regions x dcs x servers of simulated agents, one dc aggregator per dc, each
forwarding `select: capacity` to one alliance aggregator (docs/tiers.md), all on 127.0.0.1.

Processes: one suanli-loadgen per dc (--only-dc, writing to that dc's aggregator), one
suanli-aggregator per dc (forward: select: capacity through a byte-counting TCP relay in this
script to the alliance aggregator), one alliance aggregator. After a warm-up it measures over a
steady window:

  freshness   poll time minus the dc's newest_sample_timestamp in the alliance's
              GET /api/v1/capacity (polled about once a second at random phases), and the same
              on each dc aggregator's own /api/v1/capacity?dc= (one dc a second, in turn)
  bytes       bytes per second per dc across the passage (TCP payload, both directions: HTTP
              headers and bodies, counted by the relay)
  cpu         CPU seconds per second (utime + stime from /proc/PID/stat) of each aggregator,
              per server it covers; the load generators' CPU beside it
  ingest      samples ingested per dc aggregator against what the simulation wrote (keeps up?)
  disk        growth of suanli_aggregator_storage_bytes (uncompacted: memtables, WAL, L0)

Then a second phase on the first dc aggregator: SIGHUP with two more targets, `select: raw` and
`select: rollups` (--rollup-resolution), each through its own counting relay to a sink that
answers 204; raw bytes over --raw-s seconds, rollups over the first delivered interval.

Every process is started with PR_SET_PDEATHSIG and stopped in `finally`; the whole run is
bounded by --time-limit. Prints a JSON report (and writes it to --out). Usage:
  tests/bench/tier_simulation.py --build build-sim                 # 3 x 4 dcs x 2,000 servers
  tests/bench/tier_simulation.py --nodes-per-dc 20 --steady-s 60 --rollup-resolution 1m  # smoke
"""
import argparse
import ctypes
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")
LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
PR_SET_PDEATHSIG = 1


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def die_with_parent():
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# ---- a byte-counting TCP relay and a remote_write sink -------------------------------------

class Relay:
    """Listens on 127.0.0.1:0 and relays each connection to upstream, counting the bytes of
    both directions (TCP payload)."""

    def __init__(self, name, upstream):
        self.name, self.upstream = name, upstream
        self.up_bytes = 0     # sender -> receiver (requests)
        self.down_bytes = 0   # receiver -> sender (answers)
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def counts(self):
        with self.lock:
            return self.up_bytes, self.down_bytes

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream, timeout=10)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, up):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
                with self.lock:
                    if up:
                        self.up_bytes += len(b)
                    else:
                        self.down_bytes += len(b)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()


class SinkHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        else:
            self.rfile.read(n)
        self.server.requests += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


class Sink(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    requests = 0


# ---- processes and HTTP ---------------------------------------------------------------------

class Procs:
    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []  # (name, Popen, logfile)

    def start(self, name, argv):
        logf = open(os.path.join(self.workdir, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=die_with_parent)
        self.procs.append((name, p, logf))
        return p

    def log_text(self, name):
        with open(os.path.join(self.workdir, name + ".log"), "rb") as f:
            return f.read().decode(errors="replace")

    def wait_address(self, name, p, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if p.poll() is not None:
                raise RuntimeError("%s exited (%d): %s" % (name, p.returncode,
                                                           self.log_text(name)[-2000:]))
            m = re.search(r"listening on https?://([0-9.]+:[0-9]+)", self.log_text(name))
            if m:
                return m.group(1)
            time.sleep(0.1)
        raise RuntimeError("%s did not start listening" % name)

    def check_alive(self):
        for name, p, _ in self.procs:
            if p.poll() is not None:
                raise RuntimeError("%s exited (%d): %s" % (name, p.returncode,
                                                           self.log_text(name)[-2000:]))

    def stop_all(self):
        for _, p, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.time() + 20
        for _, p, _ in self.procs:
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for _, _, f in self.procs:
            f.close()


def http_get(addr, path, timeout=10):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError("GET %s%s: %d" % (addr, path, r.status))
        return body
    finally:
        c.close()


def metrics(addr):
    """Prometheus text -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in http_get(addr, "/metrics", timeout=30).decode().splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(3) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return out


def metric_sum(ms, name, **want):
    return sum(v for (n, l), v in ms.items()
               if n == name and all((k, w) in l for k, w in want.items()))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dc_config(storage, relay_port, eval_s, extra=""):
    return """web:
  listen_address: "127.0.0.1:0"
storage:
  path: %s
capacity:
  evaluation_interval: %ds
forward:
  - name: alliance
    url: http://127.0.0.1:%d/api/v1/write
    select: capacity
%s""" % (storage, eval_s, relay_port, extra)


# ---- the run ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-sim"))
    ap.add_argument("--regions", default="gansu,ningxia,guizhou")
    ap.add_argument("--dcs-per-region", type=int, default=4)
    ap.add_argument("--nodes-per-dc", type=int, default=2000)
    ap.add_argument("--cpus", type=int, default=16)
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--interval-s", type=int, default=15, help="sampling and evaluation interval")
    ap.add_argument("--warmup-s", type=float, default=75,
                    help="after every dc is visible at the alliance")
    ap.add_argument("--steady-s", type=float, default=240)
    ap.add_argument("--raw-s", type=float, default=90)
    ap.add_argument("--rollup-resolution", default="5m", choices=["1m", "5m", "1h"])
    ap.add_argument("--no-phase2", action="store_true")
    ap.add_argument("--time-limit", type=float, default=1500, help="seconds for the whole run")
    ap.add_argument("--workdir", default=None, help="kept when given; default: a removed temp dir")
    ap.add_argument("--out", default=None, help="write the JSON report here too")
    a = ap.parse_args()

    deadline = time.time() + a.time_limit
    agg_bin = os.path.join(a.build, "bin", "suanli-aggregator")
    gen_bin = os.path.join(a.build, "bin", "suanli-loadgen")
    for b in (agg_bin, gen_bin):
        if not os.access(b, os.X_OK):
            sys.exit("missing %s: cmake --build %s --target suanli-aggregator suanli-loadgen"
                     % (b, a.build))
    regions = [r for r in a.regions.split(",") if r]
    dcs = [(r, "%s-%d" % (r, d)) for r in regions for d in range(1, a.dcs_per_region + 1)]
    workdir = a.workdir or tempfile.mkdtemp(prefix="suanli-tiers-")
    os.makedirs(workdir, exist_ok=True)
    procs = Procs(workdir)
    relays = []
    sink = None
    stop = threading.Event()

    def on_signal(signum, _):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)

    def check_deadline(what):
        if time.time() > deadline:
            raise RuntimeError("time limit reached while %s" % what)

    report = {"command": " ".join(sys.argv), "regions": regions, "dcs": len(dcs),
              "nodes_per_dc": a.nodes_per_dc, "servers": a.nodes_per_dc * len(dcs),
              "cpus": a.cpus, "gpus": a.gpus, "interval_s": a.interval_s,
              "machine_cores": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       time.gmtime())}
    try:
        # The alliance aggregator.
        astore = os.path.join(workdir, "alliance")
        with open(os.path.join(workdir, "alliance.yml"), "w") as f:
            f.write('web:\n  listen_address: "127.0.0.1:0"\nstorage:\n  path: %s\n' % astore)
        ap_ = procs.start("alliance", [agg_bin, "--config.file",
                                       os.path.join(workdir, "alliance.yml")])
        alliance = procs.wait_address("alliance", ap_)
        ahost, aport = alliance.rsplit(":", 1)
        log("alliance aggregator on %s" % alliance)

        # One dc aggregator per dc, forwarding through its own counting relay.
        dc_addr, dc_proc, dc_relay, dc_cfg = {}, {}, {}, {}
        for region, dc in dcs:
            rl = Relay(dc, (ahost, int(aport)))
            relays.append(rl)
            dc_relay[dc] = rl
            cfg = os.path.join(workdir, dc + ".yml")
            dc_cfg[dc] = cfg
            with open(cfg, "w") as f:
                f.write(dc_config(os.path.join(workdir, dc), rl.port, a.interval_s))
            dc_proc[dc] = procs.start("agg-" + dc, [agg_bin, "--config.file", cfg])
        for _, dc in dcs:
            dc_addr[dc] = procs.wait_address("agg-" + dc, dc_proc[dc])
        log("%d dc aggregators up" % len(dcs))

        # One load generator per dc, started at spread phases of the sampling interval.
        gen_proc = {}
        for i, (region, dc) in enumerate(dcs):
            check_deadline("starting load generators")
            gen_proc[dc] = procs.start("gen-" + dc, [
                gen_bin, "--regions", ",".join(regions),
                "--dcs-per-region", str(a.dcs_per_region), "--nodes-per-dc", str(a.nodes_per_dc),
                "--cpus", str(a.cpus), "--gpus", str(a.gpus), "--interval", "%ds" % a.interval_s,
                "--only-dc", dc, "--remote-write.url", "http://%s/api/v1/write" % dc_addr[dc]])
            time.sleep(a.interval_s / len(dcs))
        t_load = time.time()
        log("%d load generators started (%d servers)" % (len(dcs), report["servers"]))

        # Wait until every dc is visible at the alliance.
        while True:
            check_deadline("waiting for every dc at the alliance")
            procs.check_alive()
            d = json.loads(http_get(alliance, "/api/v1/capacity"))["data"]
            seen = {x["dc"] for x in d.get("dcs", []) if x.get("newest_sample_timestamp")}
            if all(dc in seen for _, dc in dcs):
                break
            time.sleep(1)
        log("every dc visible at the alliance after %.0f s; warm-up %.0f s"
            % (time.time() - t_load, a.warmup_s))
        time.sleep(a.warmup_s)
        check_deadline("warming up")

        # Pollers: the alliance about once a second, one dc aggregator a second.
        alliance_fresh = {dc: [] for _, dc in dcs}
        dc_fresh = {dc: [] for _, dc in dcs}
        alliance_poll_ms = []
        poll_errors = []

        def poll_alliance():
            rng = random.Random(1)
            while not stop.is_set():
                try:
                    t0 = time.time()
                    body = http_get(alliance, "/api/v1/capacity")
                    t = time.time()
                    alliance_poll_ms.append((t - t0) * 1000)
                    for x in json.loads(body)["data"]["dcs"]:
                        ts = x.get("newest_sample_timestamp")
                        if ts and x["dc"] in alliance_fresh:
                            alliance_fresh[x["dc"]].append(t - ts)
                except Exception as e:  # noqa: BLE001 (recorded, reported)
                    poll_errors.append("alliance: %s" % e)
                stop.wait(rng.uniform(0.5, 1.5))

        def poll_dcs():
            rng = random.Random(2)
            i = 0
            while not stop.is_set():
                region, dc = dcs[i % len(dcs)]
                i += 1
                try:
                    body = http_get(dc_addr[dc], "/api/v1/capacity?dc=" + dc)
                    t = time.time()
                    for x in json.loads(body)["data"]["dcs"]:
                        ts = x.get("newest_sample_timestamp")
                        if ts and x["dc"] == dc:
                            dc_fresh[dc].append(t - ts)
                except Exception as e:  # noqa: BLE001
                    poll_errors.append("%s: %s" % (dc, e))
                stop.wait(rng.uniform(0.5, 1.5))

        def snapshot():
            s = {"t": time.time(), "cpu": {}, "rss": {}, "relay": {}, "m": {}}
            for name, p, _ in procs.procs:
                s["cpu"][name] = cpu_seconds(p.pid)
                s["rss"][name] = rss_bytes(p.pid)
            for rl in relays:
                s["relay"][rl.name] = rl.counts()
            for _, dc in dcs:
                ms = metrics(dc_addr[dc])
                s["m"][dc] = {
                    "ingested": metric_sum(ms, "suanli_aggregator_samples_ingested_total"),
                    "storage": metric_sum(ms, "suanli_aggregator_storage_bytes"),
                    "series": metric_sum(ms, "suanli_aggregator_series"),
                    "fwd_sent": metric_sum(ms, "suanli_aggregator_forward_samples_sent_total",
                                           target="alliance"),
                    "fwd_requests": metric_sum(ms, "suanli_aggregator_forward_requests_total",
                                               target="alliance"),
                    "fwd_backlog": metric_sum(ms, "suanli_aggregator_forward_backlog_seconds",
                                              target="alliance")}
            ms = metrics(alliance)
            s["m"]["alliance"] = {
                "ingested": metric_sum(ms, "suanli_aggregator_samples_ingested_total"),
                "storage": metric_sum(ms, "suanli_aggregator_storage_bytes"),
                "series": metric_sum(ms, "suanli_aggregator_series")}
            return s

        threads = [threading.Thread(target=poll_alliance, daemon=True),
                   threading.Thread(target=poll_dcs, daemon=True)]
        load_at_start = os.getloadavg()[0]
        s0 = snapshot()
        for t in threads:
            t.start()
        end = s0["t"] + a.steady_s
        while time.time() < end:
            check_deadline("measuring")
            procs.check_alive()
            time.sleep(min(5, max(0.1, end - time.time())))
        stop.set()
        for t in threads:
            t.join(15)
        s1 = snapshot()
        w = s1["t"] - s0["t"]
        log("steady window %.0f s done" % w)

        # ---- figures of the steady window
        servers = report["servers"]
        series_per_server = None
        per_dc = {}
        for region, dc in dcs:
            up = s1["relay"][dc][0] - s0["relay"][dc][0]
            down = s1["relay"][dc][1] - s0["relay"][dc][1]
            m0, m1 = s0["m"][dc], s1["m"][dc]
            cpu = (s1["cpu"]["agg-" + dc] - s0["cpu"]["agg-" + dc]) / w
            per_dc[dc] = {
                "capacity_bytes_per_s": (up + down) / w,
                "capacity_request_bytes_per_s": up / w,
                "capacity_answer_bytes_per_s": down / w,
                "forwarded_samples_per_eval": (m1["fwd_sent"] - m0["fwd_sent"]) / w * a.interval_s,
                "forward_requests_per_s": (m1["fwd_requests"] - m0["fwd_requests"]) / w,
                "forward_backlog_s_at_end": m1["fwd_backlog"],
                "ingested_samples_per_s": (m1["ingested"] - m0["ingested"]) / w,
                "series": m1["series"],
                "storage_bytes": m1["storage"],
                "storage_growth_bytes_per_s": (m1["storage"] - m0["storage"]) / w,
                "cpu_cores": cpu,
                "cpu_core_seconds_per_s_per_server": cpu / a.nodes_per_dc,
                "rss_bytes": s1["rss"]["agg-" + dc],
                "loadgen_cpu_cores": (s1["cpu"]["gen-" + dc] - s0["cpu"]["gen-" + dc]) / w,
                "alliance_freshness_p50_s": pct(alliance_fresh[dc], 0.5),
                "alliance_freshness_p99_s": pct(alliance_fresh[dc], 0.99),
                "alliance_freshness_max_s": max(alliance_fresh[dc] or [0]),
                "dc_freshness_p50_s": pct(dc_fresh[dc], 0.5),
                "dc_freshness_p99_s": pct(dc_fresh[dc], 0.99),
                "dc_freshness_polls": len(dc_fresh[dc]),
            }
            # Series per server from what the dc aggregator stores (nodes' series + facility).
            series_per_server = m1["series"] / a.nodes_per_dc
        all_alliance = [v for vs in alliance_fresh.values() for v in vs]
        all_dc = [v for vs in dc_fresh.values() for v in vs]
        written = servers * (series_per_server or 0) / a.interval_s
        ingested = sum(p["ingested_samples_per_s"] for p in per_dc.values())
        acpu = (s1["cpu"]["alliance"] - s0["cpu"]["alliance"]) / w
        dcpu = [p["cpu_cores"] for p in per_dc.values()]
        cap = [p["capacity_bytes_per_s"] for p in per_dc.values()]
        report["steady"] = {
            "window_s": w,
            "series_per_server": series_per_server,
            "keeps_up": {"expected_samples_per_s": written, "ingested_samples_per_s": ingested,
                         "ratio": ingested / written if written else None,
                         "forward_backlog_s_max": max(p["forward_backlog_s_at_end"]
                                                      for p in per_dc.values())},
            "alliance_freshness_s": {"p50": pct(all_alliance, 0.5), "p99": pct(all_alliance, 0.99),
                                     "max": max(all_alliance or [0]), "polls": len(all_alliance),
                                     "min": min(all_alliance or [0])},
            "dc_freshness_s": {"p50": pct(all_dc, 0.5), "p99": pct(all_dc, 0.99),
                               "max": max(all_dc or [0]), "polls": len(all_dc)},
            "alliance_poll_ms_p50": pct(alliance_poll_ms, 0.5),
            "poll_errors": poll_errors[:10],
            "capacity_bytes_per_s_per_dc": {"median": statistics.median(cap), "min": min(cap),
                                            "max": max(cap)},
            "dc_aggregator_cpu_cores": {"median": statistics.median(dcpu), "min": min(dcpu),
                                        "max": max(dcpu)},
            "dc_aggregator_cpu_per_server": statistics.median(dcpu) / a.nodes_per_dc,
            "dc_aggregator_rss_bytes_median": statistics.median(p["rss_bytes"]
                                                                for p in per_dc.values()),
            "dc_storage_growth_bytes_per_sample": statistics.median(
                p["storage_growth_bytes_per_s"] / p["ingested_samples_per_s"]
                for p in per_dc.values() if p["ingested_samples_per_s"] > 0),
            "alliance_cpu_cores": acpu,
            "alliance_cpu_per_server": acpu / servers,
            "alliance_cpu_per_dc": acpu / len(dcs),
            "alliance_rss_bytes": s1["rss"]["alliance"],
            "alliance_series": s1["m"]["alliance"]["series"],
            "alliance_ingested_samples_per_s": (s1["m"]["alliance"]["ingested"]
                                                - s0["m"]["alliance"]["ingested"]) / w,
            "loadgen_cpu_cores_total": sum(p["loadgen_cpu_cores"] for p in per_dc.values()),
            "loadgen_write_failures": sum(
                len(re.findall(r"^write (failed|answered)", procs.log_text("gen-" + dc), re.M))
                for _, dc in dcs),
            "machine_load_1m_at_start": load_at_start,
            "machine_load_1m_at_end": os.getloadavg()[0],
            "per_dc": per_dc,
        }
        log("steady: %s" % json.dumps({k: v for k, v in report["steady"].items()
                                       if k != "per_dc"}))

        # ---- phase 2: raw and rollups from the first dc aggregator
        if not a.no_phase2:
            region, dc = dcs[0]
            sink = Sink(("127.0.0.1", 0), SinkHandler)
            threading.Thread(target=sink.serve_forever, daemon=True).start()
            sport = sink.server_address[1]
            raw_relay = Relay("raw", ("127.0.0.1", sport))
            roll_relay = Relay("rollups", ("127.0.0.1", sport))
            relays += [raw_relay, roll_relay]
            extra = """  - name: raw
    url: http://127.0.0.1:%d/api/v1/write
    select: raw
  - name: rollups
    url: http://127.0.0.1:%d/api/v1/write
    select: rollups
    resolution: %s
    rollup_delay: 15s
""" % (raw_relay.port, roll_relay.port, a.rollup_resolution)
            with open(dc_cfg[dc], "w") as f:
                f.write(dc_config(os.path.join(workdir, dc), dc_relay[dc].port, a.interval_s,
                                  extra))
            t_hup = time.time()
            dc_proc[dc].send_signal(signal.SIGHUP)
            log("phase 2: %s forwards raw and %s rollups as well" % (dc, a.rollup_resolution))

            def sent(target):
                return metric_sum(metrics(dc_addr[dc]),
                                  "suanli_aggregator_forward_samples_sent_total", target=target)
            # raw: from its first delivery on, for raw_s seconds.
            while sent("raw") == 0:
                check_deadline("waiting for raw forwarding")
                procs.check_alive()
                time.sleep(0.5)
            r0, c0, rs0, t0 = raw_relay.counts(), cpu_seconds(dc_proc[dc].pid), sent("raw"), \
                time.time()
            time.sleep(a.raw_s)
            r1, c1, rs1, t1 = raw_relay.counts(), cpu_seconds(dc_proc[dc].pid), sent("raw"), \
                time.time()
            rw = t1 - t0
            raw_bps = (r1[0] - r0[0] + r1[1] - r0[1]) / rw
            report["raw"] = {"dc": dc, "window_s": rw, "bytes_per_s": raw_bps,
                             "request_bytes_per_s": (r1[0] - r0[0]) / rw,
                             "samples_per_s": (rs1 - rs0) / rw,
                             "bytes_per_sample": (r1[0] - r0[0] + r1[1] - r0[1]) / max(1, rs1 - rs0),
                             "bytes_per_s_per_server": raw_bps / a.nodes_per_dc,
                             "dc_aggregator_cpu_cores_with_raw_and_rollups": (c1 - c0) / rw}
            log("raw: %s" % json.dumps(report["raw"]))
            # rollups: the first interval delivered whole (sent count stable for 10 s).
            res_s = {"1m": 60, "5m": 300, "1h": 3600}[a.rollup_resolution]
            last, stable_since = 0, None
            while True:
                check_deadline("waiting for the first rollup interval")
                procs.check_alive()
                n = sent("rollups")
                if n > 0 and n == last:
                    if stable_since and time.time() - stable_since >= 10:
                        break
                    stable_since = stable_since or time.time()
                else:
                    stable_since = None
                last = n
                time.sleep(1)
            rb = roll_relay.counts()
            report["rollups"] = {"dc": dc, "resolution": a.rollup_resolution,
                                 "bytes_per_interval": rb[0] + rb[1],
                                 "request_bytes_per_interval": rb[0],
                                 "samples_per_interval": last,
                                 "bytes_per_s": (rb[0] + rb[1]) / res_s,
                                 "bytes_per_s_per_server": (rb[0] + rb[1]) / res_s
                                 / a.nodes_per_dc,
                                 "waited_s": time.time() - t_hup}
            log("rollups: %s" % json.dumps(report["rollups"]))
            capm = per_dc[dc]["capacity_bytes_per_s"]
            report["ratios"] = {"capacity_over_raw": capm / raw_bps if raw_bps else None,
                                "capacity_over_rollups": capm / report["rollups"]["bytes_per_s"]}
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = json.dumps(report, indent=1, sort_keys=True)
        print(text)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text + "\n")
        return 0
    finally:
        stop.set()
        procs.stop_all()
        for rl in relays:
            rl.close()
        if sink:
            sink.shutdown()
            sink.server_close()
        if not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
