#!/usr/bin/env python3
"""Checks docs/metrics.md against the metrics the real binaries expose.

Starts a suanli-aggregator (temporary --storage.path) and suanli-agents over fixture proc/sys
trees on 127.0.0.1 with free ports, feeds the aggregator (the agents' remote_write, and
suanli-loadgen's simulated data centers when it is built) until per-dc series appear, scrapes
every /metrics, and compares with the tables of docs/metrics.md. It fails, naming each one:
  - a metric family exposed but not documented, or a full metric name in the sources (a string
    literal "node_..." or "suanli_...") that no row matches;
  - a documented metric that no binary defines: neither exposed in this run nor named in the
    sources (so conditional ones, e.g. GPU, IPMI or Redfish metrics, still count as defined);
  - an exposed family whose TYPE differs from the documented type;
  - an exposed label that the metric's row does not list.

docs/metrics.md rows: the first cell holds the metric name(s) in backticks; `*` matches any
characters and {a,b} expands to alternatives. The type cell holds counter, gauge, histogram,
summary or untyped; the labels cell the label names in backticks.

usage: check_metrics_doc.py --bin-dir DIR --source-dir DIR [--fixtures DIR] [--keep]
"""
import argparse
import fnmatch
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

LISTEN_RE = re.compile(r"listening on http://([0-9.]+:[0-9]+)")
SOURCE_DIRS = ("agent", "aggregator", "exporters", "core")
# Metric names the sources hold that no binary exposes: series the aggregator reads from what is
# written to it (a facility meter's suanli_facility_power_watts), documented in prose.
INPUT_ONLY = {"suanli_facility_power_watts"}
# Label names every scraper may see on any series of a histogram or summary.
STRUCTURAL_LABELS = {"le", "quantile"}


# ---------------------------------------------------------------- docs/metrics.md

def expand_braces(text):
    """'a_{x,y}_b' -> ['a_x_b', 'a_y_b'] (several groups allowed, no nesting)."""
    parts = re.split(r"(\{[^{}]*\})", text)
    choices = [p[1:-1].split(",") if p.startswith("{") else [p] for p in parts]
    return ["".join(c) for c in itertools.product(*choices)]


class DocRow:
    def __init__(self, line_no, raw_names, mtype, labels):
        self.line_no = line_no
        self.raw_names = raw_names  # as written, for messages
        self.patterns = [n for raw in raw_names for n in expand_braces(raw)]
        self.type = mtype
        self.labels = labels

    def matches(self, name):
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def exact(self, name):
        return name in self.patterns


def parse_doc(path):
    rows, errors = [], []
    header = None
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("|"):
                header = None
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = [c.lower() for c in cells]
                continue
            if set("".join(cells)) <= set("-: "):
                continue  # the |---| line
            if not header or header[0] != "metric":
                continue
            col = {name: i for i, name in enumerate(header)}
            if "type" not in col or "labels" not in col:
                errors.append(f"docs/metrics.md:{line_no}: a metric table needs type and labels "
                              "columns")
                continue
            names = re.findall(r"`([^`]+)`", cells[0])
            if not names:
                errors.append(f"docs/metrics.md:{line_no}: no `metric_name` in the first cell")
                continue
            mtype = cells[col["type"]].strip("` ").lower()
            if mtype not in ("counter", "gauge", "histogram", "summary", "untyped"):
                errors.append(f"docs/metrics.md:{line_no}: type \"{mtype}\" is not counter, "
                              "gauge, histogram, summary or untyped")
            labels = set(re.findall(r"`([^`]+)`", cells[col["labels"]]))
            rows.append(DocRow(line_no, names, mtype, labels))
    return rows, errors


# ---------------------------------------------------------------- exposition

def parse_exposition(text, families):
    """Adds {family: {"type": t, "labels": set}} from Prometheus text format."""
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, mtype = line.split(None, 3)
            types[name] = mtype.strip()
            families.setdefault(name, {"type": types[name], "labels": set()})
            families[name]["type"] = types[name]
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
        if not m:
            continue
        name = m.group(1)
        family = name
        if name not in types:
            for suffix in ("_bucket", "_sum", "_count", "_total", "_created"):
                base = name[: -len(suffix)] if name.endswith(suffix) else None
                if base and base in types:
                    family = base
                    break
        entry = families.setdefault(family, {"type": types.get(family, "untyped"),
                                             "labels": set()})
        if m.group(3):
            entry["labels"].update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3)))
    return families


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


# ---------------------------------------------------------------- processes

class Proc:
    def __init__(self, name, argv, log_path, cwd):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
        self.address = None

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_listening(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = LISTEN_RE.search(self.log_text())
            if m:
                self.address = m.group(1)
                return self.address
            if self.p.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no \"listening on\" line within {timeout} s "
                           f"(exit {self.p.poll()}):\n{self.log_text()[-3000:]}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def fixture_trees(fixtures_dirs):
    """(name, procfs, sysfs) for each usable tree; the host's own trees when none is found."""
    trees = []
    for base in fixtures_dirs:
        if not base or not os.path.isdir(base):
            continue
        candidates = [base] + [os.path.join(base, d) for d in sorted(os.listdir(base))]
        candidates += [os.path.join(base, "procfs", "fixtures")]
        for d in candidates:
            proc, sys_ = os.path.join(d, "proc"), os.path.join(d, "sys")
            if os.path.isdir(proc) and os.path.isdir(sys_):
                trees.append((os.path.relpath(d, base), proc, sys_))
        # kepler: hwmon power and energy sensors and a RAPL mmio duplicate, sys only.
        kepler = os.path.join(base, "kepler", "internal", "device", "testdata", "sys")
        if os.path.isdir(kepler) and trees:
            trees.append(("kepler", trees[0][1], kepler))
        if trees:
            break
    seen, unique = set(), []
    for t in trees:
        if (t[1], t[2]) not in seen:
            seen.add((t[1], t[2]))
            unique.append(t)
    return unique or [("host", "/proc", "/sys")]


def first_device(procfs):
    try:
        with open(os.path.join(procfs, "net", "dev")) as f:
            for line in f.readlines()[2:]:
                dev = line.split(":")[0].strip()
                if dev and dev != "lo":
                    return dev
    except OSError:
        pass
    return None


def metric_value(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                total = (total or 0) + float(line.rsplit(None, 1)[1])
            except ValueError:
                pass
    return total


# ---------------------------------------------------------------- sources

def load_sources(source_dir):
    texts = []
    for d in SOURCE_DIRS:
        for root, _, files in os.walk(os.path.join(source_dir, d)):
            for f in files:
                if f.endswith((".cc", ".h")):
                    with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                        texts.append(fh.read())
    return "\n".join(texts)


def defined_in_sources(pattern, sources):
    """True when the sources name `pattern` (a literal, or the literal part before a `*`)."""
    literal = pattern.split("*", 1)[0]
    if "*" not in pattern:
        if re.search(r'"' + re.escape(pattern) + r'"', sources):
            return True
        # The capacity exporter builds suanli_{dc,region,alliance}_SUFFIX from a level and a
        # suffix literal.
        m = re.match(r"suanli_(dc|region|alliance)_(.+)$", pattern)
        return bool(m and re.search(r'"' + re.escape(m.group(2)) + r'"', sources))
    return bool(literal) and re.search(r'"' + re.escape(literal), sources) is not None


# ---------------------------------------------------------------- main

def run(args):
    doc_path = os.path.join(args.source_dir, "docs", "metrics.md")
    rows, problems = parse_doc(doc_path)
    if not rows:
        problems.append("docs/metrics.md: no metric tables found")
    agent_bin = os.path.join(args.bin_dir, "suanli-agent")
    agg_bin = os.path.join(args.bin_dir, "suanli-aggregator")
    loadgen_bin = os.path.join(args.bin_dir, "suanli-loadgen")
    for b in (agent_bin, agg_bin):
        if not os.access(b, os.X_OK):
            problems.append(f"{b} is not built")
    if problems:
        return {}, rows, problems

    tmp = tempfile.mkdtemp(prefix="suanli-docs-")
    procs = []
    families = {}
    try:
        agg = Proc("aggregator", [agg_bin, "--storage.path=" + os.path.join(tmp, "store"),
                                  "--web.listen-address=127.0.0.1:0"],
                   os.path.join(tmp, "aggregator.log"), tmp)
        procs.append(agg)
        agg.wait_listening()
        write_url = f"http://{agg.address}/api/v1/write"

        if os.access(loadgen_bin, os.X_OK):
            lg = Proc("loadgen", [loadgen_bin, "--remote-write.url=" + write_url,
                                  "--regions=gansu,ningxia", "--dcs-per-region=1",
                                  "--nodes-per-dc=2", "--cpus=4", "--interval=500ms",
                                  "--facility-meters", "--web.listen-address=127.0.0.1:0"],
                      os.path.join(tmp, "loadgen.log"), tmp)
            procs.append(lg)
            lg.wait_listening()

        agents = []
        for i, (name, procfs, sysfs) in enumerate(fixture_trees(args.fixtures)):
            config = os.path.join(tmp, f"agent-{i}.yml")
            device = first_device(procfs)
            links = (f"links:\n  - {{device: {device}, name: docs-link-{i}, peer_dc: peer-1, "
                     "capacity: 10G}\n") if device else ""
            with open(config, "w") as f:
                f.write(f"labels: {{region: gansu, dc: fixture-{i}, instance: fixture-{i}}}\n"
                        "sample_interval: 500ms\n"
                        f"remote_write:\n  - url: {write_url}\n"
                        f"spool:\n  directory: {os.path.join(tmp, f'spool-{i}')}\n"
                        "web:\n  listen_address: 127.0.0.1:0\n" + links)
            a = Proc(f"agent over {name}",
                     [agent_bin, "--config.file=" + config, "--path.procfs=" + procfs,
                      "--path.sysfs=" + sysfs],
                     os.path.join(tmp, f"agent-{i}.log"), tmp)
            procs.append(a)
            agents.append(a)
        for a in agents:
            a.wait_listening()

        # Until every agent made three sweeps and the aggregator shows per-dc figures (rates
        # need two samples of each counter).
        deadline = time.time() + 60
        texts = {}
        while True:
            texts = {a.name: get(f"http://{a.address}/metrics") for a in agents}
            texts["aggregator"] = get(f"http://{agg.address}/metrics")
            ready = all((metric_value(t, "suanli_agent_sweeps_total") or 0) >= 3
                        for n, t in texts.items() if n != "aggregator")
            ready = ready and "suanli_dc_cpu_utilization_ratio{" in texts["aggregator"]
            if ready or time.time() > deadline:
                break
            time.sleep(0.5)
        if not ready:
            problems.append("no per-dc figures on the aggregator's /metrics within 60 s:\n" +
                            agg.log_text()[-2000:])
        for name, t in texts.items():
            mine = parse_exposition(t, {})
            print(f"{name}: {len(mine)} families")
            parse_exposition(t, families)
    finally:
        for p in reversed(procs):
            p.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return families, rows, problems


def compare(families, rows, sources):
    problems = []
    for name in sorted(families):
        fam = families[name]
        row = next((r for r in rows if r.exact(name)), None) or \
            next((r for r in rows if r.matches(name)), None)
        if row is None:
            problems.append(f"exposed but not documented in docs/metrics.md: {name} "
                            f"({fam['type']}, labels {sorted(fam['labels']) or 'none'})")
            continue
        if fam["type"] != row.type:
            problems.append(f"docs/metrics.md:{row.line_no}: {name} is a {fam['type']}, "
                            f"documented as {row.type}")
        extra = fam["labels"] - row.labels - STRUCTURAL_LABELS
        if extra:
            problems.append(f"docs/metrics.md:{row.line_no}: {name} has labels "
                            f"{sorted(extra)} that its row does not list")
    # Names the sources define but this run did not expose (a GPU, a BMC, forwarding, ...).
    for name in sorted(set(re.findall(r'"((?:node|suanli)_[a-zA-Z0-9_]*[a-zA-Z0-9])"', sources))):
        if name in families or name in INPUT_ONLY or any(r.matches(name) for r in rows):
            continue
        problems.append(f"named in the sources but not documented in docs/metrics.md: {name}")
    for row in rows:
        for pattern in row.patterns:
            if any(fnmatch.fnmatchcase(n, pattern) for n in families):
                continue
            if not defined_in_sources(pattern, sources):
                problems.append(f"docs/metrics.md:{row.line_no}: {pattern} is documented but no "
                                "binary defines it (not exposed, not named in the sources)")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--fixtures", action="append", default=[],
                    help="folder of proc/sys trees (repeatable; the first that has any wins)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    args.bin_dir = os.path.abspath(args.bin_dir)  # the processes run in a temporary folder
    args.source_dir = os.path.abspath(args.source_dir)
    args.fixtures = [os.path.abspath(f) for f in args.fixtures if f]
    if not args.fixtures:
        args.fixtures = [os.path.join(args.source_dir, "tests", "fixtures"),
                         os.path.join(args.source_dir, "..", "shared", "fixtures")]
    families, rows, problems = run(args)
    if not problems and "node_cpu_seconds_total" not in families:
        problems.append("the agents exposed no node_cpu_seconds_total: were the fixture trees "
                        "read? (see the agents' logs with --keep)")
    if not problems:
        problems = compare(families, rows, load_sources(args.source_dir))
    if problems:
        for p in problems:
            print("FAIL " + p)
        print(f"{len(problems)} problem(s); {len(families)} families exposed, "
              f"{len(rows)} documented rows")
        return 1
    print(f"ok: {len(families)} exposed families, {len(rows)} documented rows agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
