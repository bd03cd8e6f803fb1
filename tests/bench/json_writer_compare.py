#!/usr/bin/env python3
"""/api/v1/capacity and /watcher rendered by two builds side by side: capacity_bench of OLD and
NEW, alternated ROUNDS times (default 3) on the same machine, each run 5 repetitions.

  tests/bench/json_writer_compare.py OLD_BUILD NEW_BUILD [ROUNDS]

Benchmarks (tests/bench/capacity_bench.cc): BM_CapacityJsonRender (the rendering alone, 1,000
dcs), BM_CapacityJsonHttp (GET /api/v1/capacity of a real aggregator holding 1,000 dcs fed by
remote_write, through HTTP), BM_Watcher (GET /watcher's document for 10,000 servers). Prints
the median over every repetition of CPU time (real time for the HTTP one), and NEW/OLD."""
import json
import os
import statistics
import subprocess
import sys
import tempfile

FILTER = "BM_CapacityJsonRender|BM_CapacityJsonHttp|BM_Watcher"


def run(build):
    # The results go to a file: the in-process aggregator logs to stdout.
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [os.path.join(build, "bin", "capacity_bench"), f"--benchmark_filter={FILTER}",
             "--benchmark_repetitions=5", f"--benchmark_out={out.name}",
             "--benchmark_out_format=json"],
            check=True, stdout=subprocess.DEVNULL)
        results = json.load(open(out.name))
    times = {}
    for b in results["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        key = "real_time" if "Http" in b["run_name"] else "cpu_time"
        times.setdefault(b["run_name"], []).append(b[key])
    return times


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    old, new = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    samples = {"old": {}, "new": {}}
    for r in range(rounds):
        for name, build in (("old", old), ("new", new)):
            for bench, t in run(build).items():
                samples[name].setdefault(bench, []).extend(t)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    print(f"{'benchmark':<28}{'old ms':>10}{'new ms':>10}{'new/old':>9}")
    for bench in sorted(samples["old"]):
        o = statistics.median(samples["old"][bench])
        n = statistics.median(samples["new"].get(bench, [float("nan")]))
        print(f"{bench:<28}{o:>10.2f}{n:>10.2f}{n / o:>9.3f}")


if __name__ == "__main__":
    main()
