#!/usr/bin/env python3
"""The agent's remote_write over http:// through its own client (agent/plain_http_client.h)
against libcurl (core/http_client.h), side by side in one run: two real agents, the same
settings, the same fixture tree as /proc and /sys, pushing to one real suanli-aggregator on
loopback, at 1 s and at 15 s sampling (every sweep is then its own request), keep-alive on.

    tests/bench/agent_http_client.py [BUILD_DIR] [--runs N] [--requests-1s N] [--requests-15s N]

BUILD_DIR (default build) must hold bin/suanli-agent, bin/agent_curl_http (the same agent with
libcurl for http:// too, built with SUANLI_BUILD_BENCH=ON: tests/bench/CMakeLists.txt) and
bin/suanli-aggregator. Each run starts both agents and, past their first sweeps, measures each
over N sample intervals (N requests), read half an interval after a sweep, with no scrape of
the agents inside the window but the one that reads its counters at the start:
- CPU: the sum of every thread's run time (/proc/PID/task/*/schedstat, nanoseconds), per request
  and per sweep; the sender thread's alone; utime+stime from /proc/PID/stat (10 ms ticks) beside
  it as a check;
- memory after the window: VmRSS (anonymous and file-backed), Pss from smaps_rollup, and the
  resident pages of the shared libraries only the libcurl agent maps (from smaps);
- keep-alive: the local port of each agent's connection to the aggregator at the start and the
  end of the window (one port throughout: one connection reused).
Prints each run, then the median of each figure over the runs, the ratios, and the verdict of
the rule the project keeps its own client by: libcurl costing more than 10% of the agent's CPU
per sweep, or more than 1 MB of RSS. The CPU side of the rule is what libcurl's sender thread
takes per sweep beyond the agent client's, as a share of the whole agent's CPU per sweep: the
other threads do the same work in both agents, and on a shared host their noise is larger than
the client's cost (the whole agents' ratio is printed beside it).
"""
import argparse
import glob
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_util  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ns(pid):
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(path).read().split()[0])
        except (OSError, IndexError):
            pass  # a thread that ended meanwhile
    return total


def thread_ns(pid, name):
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            if open(f"{task}/comm").read().strip() == name:
                return int(open(f"{task}/schedstat").read().split()[0])
        except OSError:
            pass
    return 0


def cpu_ticks(pid):
    # Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pss_kb(pid):
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def library_rss_kb(pid):
    """Resident kB of each mapped file ending in .so or .so.N..."""
    out, current = {}, None
    for line in open(f"/proc/{pid}/smaps"):
        parts = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            current = parts[5] if len(parts) > 5 and ".so" in parts[5] else None
        elif current and parts[0] == "Rss:":
            out[current] = out.get(current, 0) + int(parts[1])
    return out


def connection_ports(pid, remote_port):
    """Local ports of the process' TCP connections to 127.0.0.1:remote_port."""
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        local, remote, state, inode = f[1], f[2], f[3], f[9]
        if inode in inodes and int(remote.split(":")[1], 16) == remote_port and state == "01":
            ports.add(int(local.split(":")[1], 16))
    return sorted(ports)


def metric(text, name, labels=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class Agent:
    def __init__(self, binary, name, scratch, interval, agg_port, procfs, sysfs):
        self.name = name
        config = os.path.join(scratch, f"{name}.yml")
        # Each its own dc label: the aggregator would refuse one's samples as the other's
        # duplicates.
        with open(config, "w") as f:
            f.write(f"labels: {{region: bench, dc: {name}, instance: {name}}}\n"
                    f"sample_interval: {interval}s\n"
                    f"remote_write: [{{url: \"http://127.0.0.1:{agg_port}/api/v1/write\"}}]\n"
                    f"spool: {{directory: \"{os.path.join(scratch, name + '-spool')}\"}}\n")
        self.log = os.path.join(scratch, f"{name}.log")
        self.started = time.monotonic()  # its first sweep follows within milliseconds
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", "--web.listen-address=127.0.0.1:0",
             f"--path.procfs={procfs}", f"--path.sysfs={sysfs}"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.url = None
        for _ in range(300):
            m = re.search(r"listening on (http://[0-9.:]+)", open(self.log).read())
            if m:
                self.url = m.group(1)
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if self.url is None:
            sys.exit(f"{name} did not start:\n{open(self.log).read()[-2000:]}")

    def metrics(self):
        return urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()

    def requests_ok(self, text=None):
        return metric(text or self.metrics(), "suanli_agent_remote_write_requests_total",
                      'result="ok"')

    def snapshot(self, agg_port):
        pid = self.proc.pid
        # CPU first: the scrape that reads the counters falls in the window at both ends alike.
        snap = {"ns": cpu_ns(pid), "sender_ns": thread_ns(pid, "sender-0"),
                "ticks": cpu_ticks(pid), "ports": connection_ports(pid, agg_port)}
        text = self.metrics()
        snap["requests"] = self.requests_ok(text)
        snap["sweeps"] = metric(text, "suanli_agent_sweeps_total")
        return snap

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def one_run(build, scratch, interval, requests, agg_port, procfs, sysfs):
    agents = [Agent(os.path.join(build, "bin", binary), f"{label}-{interval}s", scratch,
                    interval, agg_port, procfs, sysfs)
              for label, binary in (("builtin", "suanli-agent"), ("curl", "agent_curl_http"))]
    try:
        # An agent sweeps at its start and every interval after it. Each is read half an
        # interval after a sweep (nothing in flight), once past start-up (first sweeps, the
        # connection, libcurl's first load), and again `requests` intervals later: the window
        # holds that many sweeps, and nothing scrapes the agents inside it but the first read.
        warm = 3 if interval < 5 else 2
        at = [a.started + (warm + 0.5) * interval for a in agents]
        start, end = [None, None], [None, None]
        events = sorted([(t, i, start) for i, t in enumerate(at)] +
                        [(t + requests * interval, i, end) for i, t in enumerate(at)])
        for t, i, into in events:
            time.sleep(max(0.0, t - time.monotonic()))
            into[i] = agents[i].snapshot(agg_port)
        libs = [library_rss_kb(a.proc.pid) for a in agents]
        out = []
        for a, s, e, lib in zip(agents, start, end, libs):
            if s["requests"] < 2:
                sys.exit(f"{a.name} had delivered {s['requests']:.0f} requests after "
                         f"{warm} sweeps; see {a.log}")
            reqs = e["requests"] - s["requests"]
            sweeps = e["sweeps"] - s["sweeps"]
            if reqs <= 0 or sweeps <= 0:
                sys.exit(f"{a.name} made no request in the window; see {a.log}")
            pid = a.proc.pid
            out.append({
                "requests": reqs, "sweeps": sweeps,
                "us_per_request": (e["ns"] - s["ns"]) / 1e3 / reqs,
                "us_per_sweep": (e["ns"] - s["ns"]) / 1e3 / sweeps,
                "sender_us_per_request": (e["sender_ns"] - s["sender_ns"]) / 1e3 / reqs,
                "tick_us_per_request": (e["ticks"] - s["ticks"]) / CLOCK_TICKS * 1e6 / reqs,
                "rss_kb": status_kb(pid, "VmRSS"), "anon_kb": status_kb(pid, "RssAnon"),
                "file_kb": status_kb(pid, "RssFile"), "pss_kb": pss_kb(pid),
                "keep_alive": s["ports"] == e["ports"] and len(e["ports"]) == 1,
                "ports": (s["ports"], e["ports"]), "libs": lib,
            })
        only_curl = {k: v for k, v in libs[1].items() if k not in libs[0]}
        out[1]["curl_libs_kb"] = sum(only_curl.values())
        out[1]["curl_libs"] = only_curl
        return out
    finally:
        for a in agents:
            a.stop()


def main():
    # A SIGTERM stops the agents and the aggregator too (the finally clauses).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--requests-1s", type=int, default=60)
    p.add_argument("--requests-15s", type=int, default=16)
    fixtures = os.environ.get("SUANLI_TEST_FIXTURES_DIR", os.path.join(REPO, "tests", "fixtures"))
    p.add_argument("--root", default=os.path.join(fixtures, "node_exporter"),
                   help="tree with proc/ and sys/ the agents read (default: node_exporter's)")
    args = p.parse_args()
    build = os.path.abspath(args.build)
    procfs, sysfs = os.path.join(args.root, "proc"), os.path.join(args.root, "sys")
    scratch = tempfile.mkdtemp(prefix="suanli-http-bench-")
    agg, agg_port = bench_util.start_aggregator(build, scratch)
    summary = {}
    try:
        for interval, requests in ((1, args.requests_1s), (15, args.requests_15s)):
            runs = []
            for r in range(args.runs):
                run_dir = os.path.join(scratch, f"{interval}s-run{r}")
                os.makedirs(run_dir)
                b, c = one_run(build, run_dir, interval, requests, agg_port, procfs, sysfs)
                runs.append((b, c))
                print(f"{interval:>2} s run {r + 1}: {b['requests']:.0f} requests; CPU per request "
                      f"builtin {b['us_per_request']:.0f} us (sender {b['sender_us_per_request']:.0f}), "
                      f"libcurl {c['us_per_request']:.0f} us (sender "
                      f"{c['sender_us_per_request']:.0f}); RSS {b['rss_kb'] / 1024:.2f} vs "
                      f"{c['rss_kb'] / 1024:.2f} MB; keep-alive {b['keep_alive']}/{c['keep_alive']} "
                      f"(ports {b['ports']} / {c['ports']})", flush=True)
            summary[interval] = runs
    finally:
        agg.terminate()
        agg.wait(timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)

    def med(runs, side, key):
        return statistics.median(r[side][key] for r in runs)

    print(f"\nmedian of {args.runs} run(s), fixture tree {args.root}:")
    print("interval | client | CPU/request us (sender thread; ticks) | CPU/sweep us | "
          "RSS MB (anon, file) | PSS MB")
    verdicts = []
    for interval, runs in summary.items():
        for side, label in ((0, "builtin"), (1, "libcurl")):
            print(f"{interval:>2} s | {label} | {med(runs, side, 'us_per_request'):.0f} "
                  f"({med(runs, side, 'sender_us_per_request'):.0f}; "
                  f"{med(runs, side, 'tick_us_per_request'):.0f}) | "
                  f"{med(runs, side, 'us_per_sweep'):.0f} | "
                  f"{med(runs, side, 'rss_kb') / 1024:.2f} ({med(runs, side, 'anon_kb') / 1024:.2f}, "
                  f"{med(runs, side, 'file_kb') / 1024:.2f}) | {med(runs, side, 'pss_kb') / 1024:.2f}")
        cpu = med(runs, 1, "us_per_sweep") / med(runs, 0, "us_per_sweep")
        sender = med(runs, 1, "sender_us_per_request") / med(runs, 0, "sender_us_per_request")
        # What the client adds: the sender threads' difference (the other threads do the same
        # work in both agents, and their noise on a shared host is larger than the difference),
        # as a share of the whole agent's CPU per sweep, paired within each run.
        share = statistics.median(
            (c["sender_us_per_request"] - b["sender_us_per_request"]) * c["requests"] /
            c["sweeps"] / b["us_per_sweep"] for b, c in runs)
        rss_mb = (med(runs, 1, "rss_kb") - med(runs, 0, "rss_kb")) / 1024
        pss_mb = (med(runs, 1, "pss_kb") - med(runs, 0, "pss_kb")) / 1024
        keep = all(r[0]["keep_alive"] and r[1]["keep_alive"] for r in runs)
        print(f"{interval:>2} s: libcurl / builtin CPU per sweep {cpu:.2f} ({(cpu - 1) * 100:+.0f}%), "
              f"sender thread per request {sender:.2f}; libcurl's sender thread adds "
              f"{share * 100:+.1f}% of the agent's CPU per sweep; RSS {rss_mb:+.2f} MB, "
              f"PSS {pss_mb:+.2f} MB; libraries "
              f"only the libcurl agent maps {med(runs, 1, 'curl_libs_kb') / 1024:.2f} MB resident; "
              f"one connection per agent throughout: {keep}")
        verdicts.append(share > 0.10 or rss_mb > 1.0)
    last = summary[1][-1][1]["curl_libs"]
    print("resident kB of the libraries only the libcurl agent maps (last 1 s run): " +
          ", ".join(f"{os.path.basename(k)} {v}" for k, v in sorted(last.items(),
                                                                      key=lambda kv: -kv[1])))
    print("rule (keep the agent's own client if libcurl costs > 10% CPU per sweep or > 1 MB RSS): " +
          ("keep the agent's own client" if any(verdicts) else "use libcurl for every URL"))


if __name__ == "__main__":
    main()
