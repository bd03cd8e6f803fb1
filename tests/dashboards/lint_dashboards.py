#!/usr/bin/python3
"""Offline lint of Suanli's Grafana dashboards (python3 standard library + promtool only).

Checks every dashboards/grafana/*.json:
  - the datasource is templated: a `datasource` variable of type datasource (prometheus), and
    every panel, target and query variable uses it (uid "${datasource}"), never a fixed uid;
  - `region` and `dc` query variables exist;
  - every panel (rows aside) sets a unit (fieldConfig.defaults.unit) that Grafana knows;
  - every target has an expression, rate()/irate()/increase() ranges are [$__rate_interval];
  - every expression parses: all of them (and the variables' label_values() selectors) are
    written, with Grafana's variables replaced, into one temporary rules file that
    `promtool check rules` must accept; a failure names the dashboard, panel and target.
Panel ids must be unique and dashboard uids too.

Usage: lint_dashboards.py [--promtool=/usr/bin/promtool] DIR_OR_FILE...
Exit status 0 when clean; 1 with one line per problem on stderr.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

# Grafana's unit ids (packages/grafana-data valueFormats categories), the ones a dashboard of
# ours could sensibly use.
KNOWN_UNITS = {
    "none", "short", "percent", "percentunit", "humidity", "dB", "hex0x", "hex", "sci", "locale",
    "flops", "mflops", "gflops", "tflops", "pflops", "eflops", "zflops", "yflops",
    "bits", "bytes", "kbytes", "mbytes", "gbytes", "tbytes", "pbytes",
    "decbits", "decbytes", "deckbytes", "decmbytes", "decgbytes", "dectbytes", "decpbytes",
    "pps", "bps", "Bps", "binbps", "binBps", "KBs", "Kbits", "MBs", "Mbits", "GBs", "Gbits",
    "TBs", "Tbits",
    "watt", "kwatt", "megwatt", "gwatt", "mwatt", "Wm2", "voltamp", "kvoltamp", "voltampreact",
    "kvoltampreact", "watth", "watthperkg", "kwatth", "kwattm", "joule", "ev", "amp", "kamp",
    "mamp", "volt", "kvolt", "mvolt", "dBm", "ohm", "lumens",
    "celsius", "fahrenheit", "kelvin",
    "hertz", "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms",
    "dtdhms", "timeticks", "clockms", "clocks",
    "ops", "reqps", "rps", "wps", "iops", "opm", "rpm", "wpm",
}
TEMPLATED_UIDS = {"${datasource}", "$datasource"}
# Grafana's built-in interval variables, replaced by sample durations for parsing.
BUILTINS = {"$__rate_interval": "5m", "${__rate_interval}": "5m", "$__interval": "1m",
            "${__interval}": "1m", "$__range": "1h", "${__range}": "1h"}
RATE_FUNCS = re.compile(r"\b(rate|irate|increase)\s*\(")


def substitute(expr):
    """Grafana variables -> values promtool can parse (any string is a valid label value)."""
    for k, v in BUILTINS.items():
        expr = expr.replace(k, v)
    expr = re.sub(r"\$\{(\w+)(:\w+)?\}", "placeholder", expr)
    return re.sub(r"\$(\w+)", "placeholder", expr)


def call_body(expr, open_paren):
    """The text between the '(' at open_paren and its matching ')'."""
    depth = 0
    for i in range(open_paren, len(expr)):
        if expr[i] == "(":
            depth += 1
        elif expr[i] == ")":
            depth -= 1
            if depth == 0:
                return expr[open_paren + 1:i]
    return expr[open_paren + 1:]


def check_rate_ranges(expr):
    bad = []
    for m in RATE_FUNCS.finditer(expr):
        body = call_body(expr, m.end() - 1)
        for r in re.findall(r"\[([^\]]*)\]", body):
            if r.strip() not in ("$__rate_interval", "${__rate_interval}"):
                bad.append(f"{m.group(1)}() over [{r}], not [$__rate_interval]")
    return bad


def panels_of(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        for inner in p.get("panels", []) or []:  # collapsed rows hold their panels
            yield inner


def is_templated(ds):
    if isinstance(ds, str):
        return ds in TEMPLATED_UIDS
    return isinstance(ds, dict) and ds.get("uid") in TEMPLATED_UIDS


class Linter:
    def __init__(self):
        self.problems = []
        self.exprs = []  # (where, expr)
        self.uids = {}

    def problem(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def lint_file(self, path):
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            self.problem(name, f"not readable JSON: {e}")
            return
        uid = d.get("uid")
        if not uid:
            self.problem(name, "dashboard has no uid")
        elif uid in self.uids:
            self.problem(name, f"uid {uid!r} also used by {self.uids[uid]}")
        else:
            self.uids[uid] = name
        if not d.get("title"):
            self.problem(name, "dashboard has no title")
        variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            self.problem(name, "no `datasource` variable of type datasource with query prometheus")
        for required in ("region", "dc"):
            v = variables.get(required)
            if not v or v.get("type") != "query":
                self.problem(name, f"no `{required}` query variable")
        for vname, v in variables.items():
            if v.get("type") != "query":
                continue
            where = f"{name}: variable {vname}"
            if not is_templated(v.get("datasource")):
                self.problem(where, "datasource is not ${datasource}")
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
            if m:
                self.exprs.append((where, m.group(1)))
            elif q.strip():
                self.exprs.append((where, q))
            else:
                self.problem(where, "empty query")
        ids = set()
        for p in panels_of(d):
            where = f"{name}: panel {p.get('id')} {p.get('title')!r}"
            if p.get("id") in ids:
                self.problem(where, "duplicate panel id")
            ids.add(p.get("id"))
            if "gridPos" not in p:
                self.problem(where, "no gridPos")
            if p.get("type") == "row":
                continue
            if not is_templated(p.get("datasource")):
                self.problem(where, "datasource is not ${datasource}")
            unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
            if not unit:
                self.problem(where, "no unit (fieldConfig.defaults.unit)")
            elif unit not in KNOWN_UNITS:
                self.problem(where, f"unit {unit!r} is not a Grafana unit id")
            targets = p.get("targets") or []
            if not targets:
                self.problem(where, "no targets")
            for t in targets:
                twhere = f"{where} target {t.get('refId')}"
                if "datasource" in t and not is_templated(t["datasource"]):
                    self.problem(twhere, "datasource is not ${datasource}")
                expr = t.get("expr", "")
                if not expr.strip():
                    self.problem(twhere, "empty expr")
                    continue
                for msg in check_rate_ranges(expr):
                    self.problem(twhere, msg)
                self.exprs.append((twhere, expr))

    def check_parse(self, promtool):
        """Every expression through `promtool check rules`, one group per expression."""
        if not self.exprs:
            return
        lines = ["groups:"]
        for i, (where, expr) in enumerate(self.exprs):
            lines.append(f"  - name: {json.dumps(where)}")
            lines.append("    rules:")
            lines.append(f"      - record: lint:expr_{i}")
            lines.append(f"        expr: {json.dumps(substitute(expr))}")
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("\n".join(lines) + "\n")
            path = f.name
        try:
            r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True,
                               timeout=120)
        except OSError as e:
            self.problem("promtool", f"cannot run {promtool}: {e}")
            return
        finally:
            os.unlink(path)
        if r.returncode != 0:
            out = (r.stdout + r.stderr).strip()
            # promtool names the group (our "where") of each bad expression.
            named = False
            for where, expr in self.exprs:
                if json.dumps(where)[1:-1] in out or where in out:
                    self.problem(where, f"expression does not parse: {expr}")
                    named = True
            if not named:
                self.problem("promtool", out)


def main(argv):
    promtool = "/usr/bin/promtool"
    paths = []
    for a in argv[1:]:
        if a.startswith("--promtool="):
            promtool = a.split("=", 1)[1]
        else:
            paths.append(a)
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".json"))
        else:
            files.append(p)
    if not files:
        print("lint_dashboards: no dashboards given", file=sys.stderr)
        return 2
    lint = Linter()
    for f in files:
        lint.lint_file(f)
    lint.check_parse(promtool)
    for p in lint.problems:
        print(p, file=sys.stderr)
    print(f"lint_dashboards: {len(files)} dashboards, {len(lint.exprs)} expressions, "
          f"{len(lint.problems)} problems")
    return 1 if lint.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
