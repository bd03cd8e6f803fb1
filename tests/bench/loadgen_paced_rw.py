#!/usr/bin/python3
"""Paced remote_write load: --series series, one sample each every --interval-s seconds, for
--intervals intervals, as agents at that scrape interval would send them (bodies pre-encoded
with tests/bench/rwgen.py's encoder, --conns connections, one shard each).

Per interval it prints how long sending that interval's samples took (every request answered
2xx = acknowledged durable), the receiver's CPU seconds over the interval and its resident
memory. The receiver keeps up when every interval's samples are acknowledged well within the
interval. Usage:
  tests/bench/loadgen_paced_rw.py --url http://127.0.0.1:PORT/api/v1/write --pid PID \\
      --series 1000000 --intervals 6 --interval-s 15
"""
import argparse
import http.client
import importlib.util
import multiprocessing as mp
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
# The project's generator beside this script; RWGEN=PATH loads another with the same build_shard().
RWGEN = os.environ.get("RWGEN", os.path.join(HERE, "rwgen.py"))


def load_rwgen():
    spec = importlib.util.spec_from_file_location("rwgen", RWGEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def worker(shard, args, start_barrier, step_barriers, q):
    rwgen = load_rwgen()
    bodies = rwgen.build_shard(shard, args)
    u = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    hdr = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
           "User-Agent": "loadgen_paced_rw/0.1", "X-Prometheus-Remote-Write-Version": "0.1.0"}
    start_barrier.wait()
    for step in range(args.steps):
        step_barriers[step].wait()
        ok = bad = 0
        for s, body, n, _ in bodies:
            if s != step:
                continue
            conn.request("POST", u.path, body=body, headers=hdr)
            r = conn.getresponse()
            r.read()
            if 200 <= r.status < 300:
                ok += n
            else:
                bad += n
        q.put((step, shard, ok, bad, time.time()))


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True, help="receiver pid (CPU and RSS)")
    ap.add_argument("--series", type=int, default=1000000)
    ap.add_argument("--intervals", type=int, default=6)
    ap.add_argument("--interval-s", type=float, default=15.0)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--metrics-per-host", type=int, default=500)
    ap.add_argument("--extra-labels", type=int, default=0)
    ap.add_argument("--prefix", default="paced%d" % int(time.time()))
    ap.add_argument("--start-ms", type=int, default=0,
                    help="timestamp of the first interval's samples (default: now); e.g. just "
                         "before an hour boundary, to include the intervals that close chunks")
    args = ap.parse_args()
    args.steps = args.intervals
    args.step_ms = int(args.interval_s * 1000)
    args.start_ms = args.start_ms or int(time.time() * 1000)
    start_barrier = mp.Barrier(args.conns + 1)
    step_barriers = [mp.Barrier(args.conns + 1) for _ in range(args.steps)]
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(s, args, start_barrier, step_barriers, q))
          for s in range(args.conns)]
    for p in ps:
        p.start()
    start_barrier.wait()  # every shard has encoded its bodies
    rss0 = rss_kb(args.pid)
    print("receiver RSS before: %d kB" % rss0, flush=True)
    t0 = time.time()
    kept_up = True
    for step in range(args.steps):
        due = t0 + step * args.interval_s
        time.sleep(max(0.0, due - time.time()))
        c0, w0 = proc_cpu(args.pid), time.time()
        step_barriers[step].wait()
        done = [q.get() for _ in ps]
        send_s = max(d[4] for d in done) - w0
        ok, bad = sum(d[2] for d in done), sum(d[3] for d in done)
        # CPU over the whole interval (background work such as checkpoints included).
        time.sleep(max(0.0, due + args.interval_s - time.time()))
        cpu = proc_cpu(args.pid) - c0
        rss = rss_kb(args.pid)
        kept_up = kept_up and bad == 0 and send_s < args.interval_s
        print("interval %d: %d samples acknowledged (%d refused) in %.2f s of %.0f s; receiver "
              "CPU %.2f s over the interval; RSS %d kB = %.0f B per series"
              % (step, ok, bad, send_s, args.interval_s, cpu, rss,
                 (rss - rss0) * 1024.0 / args.series), flush=True)
    for p in ps:
        p.join()
    print("kept up: %s" % ("yes" if kept_up else "NO"))
    return 0 if kept_up else 1


if __name__ == "__main__":
    sys.exit(main())
