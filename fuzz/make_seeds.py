#!/usr/bin/python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/seed-*.

Run with Debian's python3 (python3-snappy). Regression inputs (crashes found and fixed) are
kept beside the seeds as regress-*; this script never touches them.
"""
import glob
import os
import struct
import subprocess
import sys

import snappy

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def label(name, value):
    return field(1, 2, name.encode()) + field(2, 2, value.encode())


def sample(value, ts):
    return field(1, 1, struct.pack("<d", value)) + field(2, 0, varint(ts))


def series(labels, samples):
    out = b"".join(field(1, 2, label(n, v)) for n, v in labels)
    return out + b"".join(field(2, 2, sample(v, t)) for v, t in samples)


def write(name, data):
    os.makedirs(os.path.dirname(name), exist_ok=True)
    with open(name, "wb") as f:
        f.write(data)


def remote_write():
    d = os.path.join(HERE, "corpus", "remote_write")
    base = [("__name__", "node_cpu_seconds_total"), ("cpu", "0"), ("dc", "lanzhou-1"),
            ("instance", "n1"), ("mode", "idle"), ("region", "gansu")]
    one = field(1, 2, series(base, [(1234.5, 1700000000000)]))
    write(os.path.join(d, "seed-one"), snappy.compress(one))
    many = b"".join(
        field(1, 2, series([("__name__", "m"), ("n", str(i))],
                           [(float(i), 1700000000000 + 15000 * j) for j in range(3)]))
        for i in range(20))
    meta = field(3, 2, field(1, 0, varint(1)) + field(2, 2, b"m") + field(4, 2, b"help"))
    write(os.path.join(d, "seed-many-meta"), snappy.compress(many + meta))
    nan = field(1, 2, series([("__name__", "x")], [(float("nan"), -1), (float("inf"), 0)]))
    write(os.path.join(d, "seed-nan"), snappy.compress(nan))
    write(os.path.join(d, "seed-empty"), snappy.compress(b""))
    # A snappy header claiming 4 GiB - 1: the decompression-bomb check.
    write(os.path.join(d, "seed-bomb-header"), varint((1 << 32) - 1) + b"\x00" * 8)


def remote_read():
    d = os.path.join(HERE, "corpus", "remote_read")
    matcher = field(1, 0, varint(0)) + field(2, 2, b"__name__") + field(3, 2, b"up")
    re = field(1, 0, varint(2)) + field(2, 2, b"dc") + field(3, 2, b"lanzhou-.*")
    hints = (field(1, 0, varint(15000)) + field(2, 2, b"rate") + field(3, 0, varint(1)) +
             field(4, 0, varint(2)) + field(5, 2, b"dc") + field(6, 0, varint(1)) +
             field(7, 0, varint(300000)))
    query = (field(1, 0, varint(1700000000000)) + field(2, 0, varint(1700003600000)) +
             field(3, 2, matcher) + field(3, 2, re) + field(4, 2, hints))
    req = field(1, 2, query) + field(2, 0, varint(0))
    write(os.path.join(d, "seed-request"), snappy.compress(req))
    ts = series([("__name__", "up"), ("dc", "a")], [(1.0, 1700000000000), (0.0, 1700000015000)])
    resp = field(1, 2, field(1, 2, ts)) + field(1, 2, b"")
    write(os.path.join(d, "seed-response"), snappy.compress(resp))


def procfs():
    # Synthetic trees in the kernel's formats (written here, not copied from fixtures).
    d = os.path.join(HERE, "corpus", "procfs")
    stat = (b"cpu  74608 2520 24433 1117073 6176 4054 0 0 0 0\n"
            b"cpu0 19093 706 6165 278408 1546 1068 0 0 0 0\n"
            b"cpu1 18585 608 6127 279269 1547 911 0 0 0 0\n"
            b"intr 8885917 17 0 0 0 0 0 0 0 1 79281 0 0 0 0 0 0 0 231237 0 0\n"
            b"ctxt 38014093\nbtime 1418183276\nprocesses 26442\nprocs_running 2\n"
            b"procs_blocked 1\nsoftirq 5057579 250191 1481983 1647 211099 186066 0 1783454\n")
    meminfo = (b"MemTotal:       15666184 kB\nMemFree:          440324 kB\n"
               b"MemAvailable:   10934132 kB\nBuffers:         1020128 kB\n"
               b"Cached:          6742692 kB\nSwapTotal:       8388604 kB\n"
               b"HugePages_Total:       0\nHugepagesize:       2048 kB\n")
    netdev = (b"Inter-|   Receive                                                |  Transmit\n"
              b" face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
              b"packets errs drop fifo colls carrier compressed\n"
              b"    lo: 1664039048 1566805    0    0    0     0          0         0 1664039048 "
              b"1566805    0    0    0     0       0          0\n"
              b"  eth0: 874354587 1036395    0    0    0     0          0         0 563352563  "
              b"732147    0    0    0     0       0          0\n")
    # Selector bytes follow procfs_fuzzer.cc's Trees() order.
    sep = b"\n@@\n"
    write(os.path.join(d, "seed-cpu"), b"\x00" + stat)
    write(os.path.join(d, "seed-stat"), b"\x01" + stat)
    write(os.path.join(d, "seed-meminfo"), b"\x02" + meminfo)
    write(os.path.join(d, "seed-loadavg"), b"\x03" + b"0.21 0.37 0.39 1/719 19737\n")
    psi = b"some avg10=0.00 avg60=0.00 avg300=0.00 total=14036781\n" \
          b"full avg10=0.00 avg60=0.00 avg300=0.00 total=8421\n"
    write(os.path.join(d, "seed-pressure"), b"\x04" + sep.join([psi, psi, psi, psi]))
    write(os.path.join(d, "seed-netdev"), b"\x05" + netdev)
    write(os.path.join(d, "seed-netclass"),
          b"\x06" + sep.join([b"up\n", b"1000\n", b"1500\n", b"01:01:01:01:01:01\n", b"1\n",
                               b"full\n", b"0x1303\n", b"\n", b"ff:ff:ff:ff:ff:ff\n", b"1000\n"]))
    write(os.path.join(d, "seed-rapl"),
          b"\x07" + sep.join([b"package-0\n", b"240422366267\n", b"262143328850\n", b"core\n",
                               b"118821284256\n", b"262143328850\n"]))
    write(os.path.join(d, "seed-hwmon"),
          b"\x08" + sep.join([b"power_meter\n", b"345000000\n", b"", b"", b"12000\n", b"2000\n",
                               b"1000\n", b"PSU1\n"]))


def config():
    d = os.path.join(HERE, "corpus", "config")
    deploy = os.path.join(HERE, "..", "deploy")
    for selector, name in ((0, "agent.example.yml"), (1, "aggregator.example.yml")):
        try:
            with open(os.path.join(deploy, name), "rb") as f:
                write(os.path.join(d, "seed-" + name), bytes([selector]) + f.read())
        except OSError:
            pass
    web = (b"basic_auth_users:\n  prom: $2y$10$abcdefghijklmnopqrstuubpco9BuLQZBZtn/gwh0hqaJSVqpe2FC\n"
           b"credentials:\n  - name: dc-a\n    region: east\n    dc: a\n"
           b"    bearer_tokens: [token-for-dc-a-0123456789]\n    scopes: [write, read]\n"
           b"authorization:\n  anonymous: [metrics]\n")
    write(os.path.join(d, "seed-web"), b"\x02" + web)
    write(os.path.join(d, "seed-web-tls"),
          b"\x02tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
          b"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n")


def redfish():
    # Hand-written documents in the shapes the collector reads; fuzz/run.sh also feeds the DMTF
    # mockup documents in tests/fixtures/redfish (BSD-3-Clause, kept there with their licence).
    d = os.path.join(HERE, "corpus", "redfish_json")
    docs = {
        "root": b'{"@odata.id":"/redfish/v1/","Chassis":{"@odata.id":"/redfish/v1/Chassis"}}',
        "collection": b'{"Members@odata.count":2,"Members":[{"@odata.id":"/redfish/v1/Chassis/1"},'
                      b'{"@odata.id":"/redfish/v1/Chassis/2"}]}',
        "chassis": b'{"Id":"1","Power":{"@odata.id":"/redfish/v1/Chassis/1/Power"},'
                   b'"EnvironmentMetrics":{"@odata.id":"/redfish/v1/Chassis/1/EnvironmentMetrics"},'
                   b'"Links":{"ContainedBy":{"@odata.id":"/redfish/v1/Chassis/E"}}}',
        "power": b'{"PowerControl":[{"PowerConsumedWatts":345.5,"PhysicalContext":"Chassis",'
                 b'"Status":{"State":"Enabled"}},{"PowerConsumedWatts":null}]}',
        "env": b'{"PowerWatts":{"Reading":926.0,"DataSourceUri":"x"}}',
        "psu": b'{"InputPowerWatts":{"Reading":1.5e2},"Status":{"State":"Absent"}}',
        "escapes": b'\xef\xbb\xbf {"a":"\\u00e9\\ud83d\\ude00\\n","b":[1,-2.5e-3,true,false,null]}',
    }
    for name, data in docs.items():
        write(os.path.join(d, "seed-" + name), data)


def from_writers():
    # The on-disk formats' seeds come from the real writers (HeadLogWriter, the chunk and rollup
    # encoders, the Spool): each of these targets writes its own when SUANLI_FUZZ_WRITE_SEEDS
    # names a directory. Needs a built fuzz directory (fuzz/run.sh builds one).
    build = os.environ.get("SUANLI_FUZZ_BUILD_DIR", "build-fuzz")
    build = os.path.join(HERE, "..", build) if not os.path.isabs(build) else build
    for target, corpus in (("head_log_fuzzer", "head_log"), ("chunk_fuzzer", "chunk"),
                           ("spool_segment_fuzzer", "spool_segment")):
        binary = os.path.join(build, "bin", target)
        if not os.access(binary, os.X_OK):
            print(f"make_seeds.py: {binary} is not built; corpus/{corpus}/seed-* left as they are"
                  f" (build it with fuzz/run.sh 0 {target})", file=sys.stderr)
            continue
        d = os.path.join(HERE, "corpus", corpus)
        os.makedirs(d, exist_ok=True)
        for old in glob.glob(os.path.join(d, "seed-*")):
            os.remove(old)
        subprocess.run([binary], check=True, env=dict(os.environ, SUANLI_FUZZ_WRITE_SEEDS=d))


if __name__ == "__main__":
    remote_write()
    remote_read()
    procfs()
    config()
    redfish()
    from_writers()
