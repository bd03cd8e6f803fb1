#!/usr/bin/env python3
"""Runs suanli-agent on a machine with NVIDIA GPUs and checks its GPU series against nvidia-smi
and NVML (through nvidia-ml-py), idle and under a PyTorch matrix-multiply load; also measures
the agent's CPU per sweep with and without the gpu collector. Not part of the test suite: CI
machines have no GPU.

  tests/device/pack_agent.sh build /tmp/gpucheck   # here: the agent, its libraries, this script
  python3 /tmp/gpucheck/gpu_vs_nvidia_smi.py       # there; OUT=DIR keeps the report and logs

The GPU host needs nvidia-smi; nvidia-ml-py (import pynvml) adds the energy and memory
cross-checks, and PyTorch the load phase; without them those checks are skipped and say so.
Exits 1 when a check fails. Uses 127.0.0.1 ports 19465-19468 and 19490.
"""
import glob, json, os, re, resource, shutil, subprocess, sys, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.environ.get("OUT", "/tmp/gpucheck-out")
os.makedirs(OUT, exist_ok=True)
REPORT = []


def log(s=""):
    print(s, flush=True)
    REPORT.append(s)


def sh(cmd, timeout=60):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


log("== environment")
for c in ["uname -r", "head -2 /etc/os-release", "nproc", "nvidia-smi -L",
          "ldconfig -p | grep -i nvidia-ml", "ls /proc/driver/nvidia/gpus 2>&1 | head",
          "ls /sys/class/powercap /sys/class/hwmon 2>&1 | head",
          "lspci -nn 2>/dev/null | grep -i nvidia | head -3", "echo LD_LIBRARY_PATH=$LD_LIBRARY_PATH"]:
    log("$ " + c + "\n" + sh(c)[1].rstrip())
rc, q = sh("nvidia-smi -q -d MEMORY,POWER")
log(q[-1500:])

nvml_paths = [p for d in ["/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu",
                          "/usr/lib64", "/usr/lib"] for p in glob.glob(d + "/libnvidia-ml.so.1")]
log("libnvidia-ml.so.1 at: %s" % nvml_paths)
nvml_dirs = ":".join(sorted({os.path.dirname(p) for p in nvml_paths}))

# Direct run with the host's libc when it is new enough, else Debian's loader and libc.
env = dict(os.environ)
env["LD_LIBRARY_PATH"] = HERE + "/lib:" + env.get("LD_LIBRARY_PATH", "")
agent = [HERE + "/suanli-agent"]
rc, v = sh("LD_LIBRARY_PATH=%s %s --version" % (env["LD_LIBRARY_PATH"], agent[0]))
if rc != 0:
    log("direct run failed (%s); using the carried loader" % v.strip()[:300])
    libpath = ":".join(x for x in [HERE + "/sys", nvml_dirs, os.environ.get("LD_LIBRARY_PATH", "")] if x)
    agent = [HERE + "/sys/ld-linux-x86-64.so.2", "--library-path", libpath, HERE + "/suanli-agent"]
log("agent: %s" % subprocess.run(agent + ["--version"], env=env, capture_output=True,
                                  text=True).stdout.strip())


def start_agent(name, port, interval, extra=(), library=None, energy_interval=None):
    cfg = "/tmp/%s.yml" % name
    spool = "/tmp/spool-%s" % name
    shutil.rmtree(spool, ignore_errors=True)
    text = ("labels: {region: gansu, dc: gpu-check}\nsample_interval: %s\n"
            "remote_write:\n  - url: http://127.0.0.1:19490/api/v1/write\n"
            "spool: {directory: %s}\nweb: {listen_address: \"127.0.0.1:%d\"}\n" % (interval, spool, port))
    if library or energy_interval:
        text += "collector_config:\n  gpu:\n"
        text += "    library: %s\n" % library if library else ""
        text += "    energy_interval: %s\n" % energy_interval if energy_interval else ""
    open(cfg, "w").write(text)
    logf = open(os.path.join(OUT if name == "agent" else "/tmp", name + ".log"), "w")
    p = subprocess.Popen(agent + ["--config.file=" + cfg] + list(extra), env=env, stdout=logf,
                         stderr=subprocess.STDOUT)
    return p


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def series(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def pick(s, name, **want):
    for (n, ls), v in s.items():
        d = dict(ls)
        if n == name and all(d.get(k) == w for k, w in want.items()):
            return v, d
    return None, None


def cpu_ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def status(pid):
    d = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            d[k] = v.strip()
    return d


SMI_FIELDS = ["index", "uuid", "name", "driver_version", "power.draw", "power.draw.average",
              "power.draw.instant", "enforced.power.limit", "utilization.gpu", "utilization.memory",
              "memory.used", "memory.total", "memory.reserved"]


def smi():
    fields = list(SMI_FIELDS)
    while fields:
        rc, o = sh("nvidia-smi --query-gpu=%s --format=csv,noheader,nounits" % ",".join(fields))
        if rc == 0:
            return [dict(zip(fields, [x.strip() for x in line.split(",")])) for line in o.strip().splitlines()]
        bad = re.search(r'"([a-z_.]+)" is not a valid field', o)
        if not bad or bad.group(1) not in fields:
            log("nvidia-smi failed: " + o[:300])
            return []
        fields.remove(bad.group(1))
    return []


try:
    import pynvml
    pynvml.nvmlInit()
except Exception as e:  # noqa
    pynvml = None
    log("pynvml unavailable: %r" % e)


def nvml_read(i):
    if pynvml is None:
        return {}
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    d = {"power_w": pynvml.nvmlDeviceGetPowerUsage(h) / 1e3,
         "energy_j": pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1e3}
    m1 = pynvml.nvmlDeviceGetMemoryInfo(h)
    d["mem_v1_used"], d["mem_v1_total"] = m1.used, m1.total
    try:
        m2 = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
        d["mem_v2_used"], d["mem_v2_total"], d["mem_v2_reserved"] = m2.used, m2.total, m2.reserved
    except Exception as e:  # noqa
        d["mem_v2"] = repr(e)
    return d


FAILS = []


def check(ok, what):
    log(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        FAILS.append(what)


def compare(phase, port, rounds, gap):
    log("== %s: agent vs nvidia-smi / NVML (%d rounds)" % (phase, rounds))
    rows = []
    for k in range(rounds):
        text = scrape(port)
        t0 = time.time()
        g = smi()
        n = [nvml_read(i) for i in range(len(g))]
        rows.append((series(text), g, n, time.time() - t0))
        if k == 0 and phase == "load":
            open(os.path.join(OUT, "metrics-%s.txt" % phase), "w").write(text)
        time.sleep(gap)
    for (s, g, n, dt) in rows:
        for i, gpu in enumerate(g):
            idx = gpu["index"]
            info_v, info = pick(s, "suanli_gpu_info", gpu=idx)
            pw, _ = pick(s, "suanli_gpu_power_watts", gpu=idx)
            en, _ = pick(s, "suanli_gpu_energy_joules_total", gpu=idx)
            lim, _ = pick(s, "suanli_gpu_power_limit_watts", gpu=idx)
            ut, _ = pick(s, "suanli_gpu_utilization_ratio", gpu=idx)
            mu, _ = pick(s, "suanli_gpu_memory_utilization_ratio", gpu=idx)
            used, _ = pick(s, "suanli_gpu_memory_used_bytes", gpu=idx)
            tot, _ = pick(s, "suanli_gpu_memory_total_bytes", gpu=idx)
            res, _ = pick(s, "suanli_gpu_memory_reserved_bytes", gpu=idx)
            if phase == "load" and used is not None:  # steady: the load allocated before
                check(abs(used / 2**20 - float(gpu["memory.used"])) <= 1,
                      "memory used %.1f MiB vs smi %s MiB" % (used / 2**20, gpu["memory.used"]))
                if "memory.reserved" in gpu:
                    check(res is not None and abs(res / 2**20 - float(gpu["memory.reserved"])) <= 1,
                          "memory reserved %s MiB vs smi %s MiB" % (res and res / 2**20, gpu["memory.reserved"]))
            log("gpu %s | agent: power %s W energy %s J limit %s W util %s memutil %s used %s MiB total %s MiB"
                % (idx, pw, en, lim, ut, mu, used and used / 2**20, tot and tot / 2**20))
            log("      | smi: %s" % json.dumps(gpu))
            log("      | nvml after (%.2fs): %s" % (dt, json.dumps(n[i])))
            rows_ok = info is not None
            check(rows_ok and info.get("uuid") == gpu["uuid"] and info.get("model") == gpu["name"]
                  and info.get("driver_version") == gpu["driver_version"],
                  "identity uuid/model/driver: %s" % (info,))
            if "enforced.power.limit" in gpu and lim is not None:
                check(abs(lim - float(gpu["enforced.power.limit"])) < 0.5, "power limit %s vs %s" % (lim, gpu["enforced.power.limit"]))
            if tot is not None:
                check(abs(tot / 2**20 - float(gpu["memory.total"])) <= 1 or tot == n[i].get("mem_v1_total"),
                      "memory total %.0f MiB vs smi %s MiB / nvml v1 %s" % (tot / 2**20, gpu["memory.total"], n[i].get("mem_v1_total")))
            if en is not None and "energy_j" in n[i]:
                lag = n[i]["energy_j"] - en
                check(0 <= lag <= 2.5 * max(n[i]["power_w"], 1) + 1,
                      "energy: agent %.1f J, NVML read after it %.1f J (lag %.1f J = %.2f s at %.0f W)"
                      % (en, n[i]["energy_j"], lag, lag / max(n[i]["power_w"], 1), n[i]["power_w"]))
    return rows


def power_summary(rows, phase):
    a = [pick(s, "suanli_gpu_power_watts", gpu="0")[0] for s, _, _, _ in rows]
    b = [float(g[0]["power.draw"]) for _, g, _, _ in rows if g and g[0].get("power.draw") not in (None, "[N/A]")]
    u = [pick(s, "suanli_gpu_utilization_ratio", gpu="0")[0] for s, _, _, _ in rows]
    v = [float(g[0]["utilization.gpu"]) for _, g, _, _ in rows if g]
    a = [x for x in a if x is not None]
    u = [x for x in u if x is not None]
    med = lambda xs: sorted(xs)[len(xs) // 2] if xs else None
    log("%s medians: power agent %s W vs nvidia-smi %s W; utilization agent %s vs nvidia-smi %s %%"
        % (phase, med(a), med(b), med(u), med(v)))
    return med(a), med(b), med(u), med(v)


if not smi():
    log("nvidia-smi reports no GPU: nothing to compare")
    sys.exit(2)

# A receiver that accepts every remote_write, so that the agents' CPU is that of a healthy link.
import http.server, threading


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


sink = http.server.ThreadingHTTPServer(("127.0.0.1", 19490), Sink)
threading.Thread(target=sink.serve_forever, daemon=True).start()

# ---- main agent at 1 s, default library name
PORT = 19465
p = start_agent("agent", PORT, "1s")
time.sleep(3)
s = series(scrape(PORT))
nd, _ = pick(s, "suanli_agent_collector_no_data", collector="gpu")
succ, _ = pick(s, "suanli_agent_collector_success", collector="gpu")
log("gpu collector with the default library name: success=%s no_data=%s" % (succ, nd))
if nd == 1 and nvml_paths:
    p.terminate(); p.wait()
    log("restarting with library: %s" % nvml_paths[0])
    p = start_agent("agent", PORT, "1s", library=nvml_paths[0])
    time.sleep(3)

# the torch load starts importing now so that its start-up overlaps the idle phase
if os.path.exists("/tmp/load_started"):
    os.remove("/tmp/load_started")
load = subprocess.Popen([sys.executable, "-c", """
import torch, time, sys
x = torch.empty(8 << 30, dtype=torch.uint8, device='cuda')  # 8 GiB so memory.used moves
a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16); b = torch.randn_like(a)
torch.cuda.synchronize(); open('/tmp/load_started', 'w').write('1')
end = time.time() + 40
while time.time() < end:
    for _ in range(20): c = a @ b
    torch.cuda.synchronize()
"""], stdout=open(os.path.join(OUT, "load.log"), "w"), stderr=subprocess.STDOUT)

t_cpu0, s0 = cpu_ticks(p.pid), pick(series(scrape(PORT)), "suanli_agent_sweeps_total")[0]
idle = compare("idle", PORT, 4, 1.0)
idle_med = power_summary(idle, "idle")

# ---- per-sweep cost at 100 ms with and without the gpu collector (run side by side)
lib = nvml_paths[0] if nd == 1 and nvml_paths else None
pa = start_agent("fast-all", 19466, "100ms", library=lib)
pb = start_agent("fast-nogpu", 19467, "100ms", extra=["--no-collector.gpu"])
pc = start_agent("fast-energy-1s", 19468, "100ms", library=lib, energy_interval="1s")
FAST = [("all", pa, 19466), ("no-gpu", pb, 19467), ("all, gpu energy_interval 1s", pc, 19468)]
time.sleep(2)
base = {}
for name, pp, port in FAST:
    base[name] = (cpu_ticks(pp.pid), pick(series(scrape(port)), "suanli_agent_sweeps_total")[0])
time.sleep(12)
hz = os.sysconf("SC_CLK_TCK")
for name, pp, port in FAST:
    c1, s1 = cpu_ticks(pp.pid), pick(series(scrape(port)), "suanli_agent_sweeps_total")[0]
    c0, s0b = base[name]
    sweeps = s1 - s0b
    log("cost at 100 ms, collectors %s: %.0f us CPU per sweep over %d sweeps; %s"
        % (name, (c1 - c0) / hz * 1e6 / max(sweeps, 1), sweeps, status(pp.pid)))
    dur = [(dict(ls).get("collector"), v) for (n, ls), v in series(scrape(port)).items()
           if n == "suanli_agent_collector_duration_seconds"]
    log("   collector durations (s): %s" % sorted(dur))
e_calls = series(scrape(19468))
ev, _ = pick(e_calls, "suanli_gpu_energy_joules_total", gpu="0")
check(ev is not None, "energy_interval 1s still exports the energy counter: %s J" % ev)
for pp in (pa, pb, pc):
    pp.terminate()
    pp.wait()

# nvidia-smi's own cost for one query, for scale
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(5):
    sh("nvidia-smi --query-gpu=power.draw,utilization.gpu,memory.used --format=csv,noheader")
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
log("nvidia-smi query: %.1f ms CPU each (mean of 5)"
    % ((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / 5 * 1e3))

# ---- load phase
for _ in range(120):
    if os.path.exists("/tmp/load_started") or load.poll() is not None:
        break
    time.sleep(0.5)
loaded = os.path.exists("/tmp/load_started")
log("load started: %s%s" % (loaded, "" if loaded else " (no PyTorch or no CUDA? see load.log)"))
time.sleep(5)
busy = compare("load", PORT, 8, 1.3)
busy_med = power_summary(busy, "load")
t_cpu1, s1 = cpu_ticks(p.pid), pick(series(scrape(PORT)), "suanli_agent_sweeps_total")[0]
log("main agent at 1 s (with this script's scrapes): %.0f us CPU per sweep over %d sweeps; %s"
    % ((t_cpu1 - t_cpu0) / os.sysconf("SC_CLK_TCK") * 1e6 / max(s1 - s0, 1), s1 - s0, status(p.pid)))
if busy_med[0] is not None and busy_med[1] is not None:
    check(abs(busy_med[0] - busy_med[1]) <= max(0.1 * busy_med[1], 15),
          "load power median agent %.0f W vs nvidia-smi %.0f W (10%%)" % (busy_med[0], busy_med[1]))
if loaded and busy_med[2] is not None and busy_med[3] is not None:
    check(busy_med[2] * 100 >= 90 and busy_med[3] >= 90, "load utilization agent %.2f, nvidia-smi %.0f%%" % (busy_med[2], busy_med[3]))
if loaded and idle_med[0] is not None and busy_med[0] is not None:
    check(busy_med[0] > idle_med[0] + 50, "power rises under load: %.0f -> %.0f W" % (idle_med[0], busy_med[0]))

s = series(scrape(PORT))
for n in ["suanli_node_power_watts", "suanli_node_gpus", "suanli_node_compute_capacity_flops",
          "suanli_node_compute_model_known", "suanli_node_cpu_info", "suanli_agent_collector_success",
          "suanli_agent_collector_no_data"]:
    for (name, ls), v in sorted(s.items(), key=lambda kv: str(kv[0])):
        if name == n:
            log("%s%s %s" % (name, dict(ls), v))
load.wait()
p.terminate(); p.wait()
log("== %d failed checks" % len(FAILS))
for f in FAILS:
    log("FAIL " + f)
open(os.path.join(OUT, "report.txt"), "w").write("\n".join(REPORT) + "\n")
sys.exit(1 if FAILS else 0)
