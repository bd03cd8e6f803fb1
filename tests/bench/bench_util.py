"""What the Python benchmarks share: a free loopback port, waiting for /-/ready, and a
suanli-aggregator started on loopback with its log in a scratch folder."""
import http.client
import os
import socket
import subprocess
import sys
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, what):
    """Waits until http://127.0.0.1:port/-/ready answers 200; exits if `proc` ends first."""
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/-/ready")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{what} not ready on port {port}")


def start_aggregator(build, scratch):
    """suanli-aggregator from BUILD/bin with its store and log in `scratch`, once ready:
    (process, port)."""
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(build, "bin", "suanli-aggregator"),
         f"--storage.path={os.path.join(scratch, 'agg')}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=open(os.path.join(scratch, "agg.log"), "w"), stderr=subprocess.STDOUT)
    wait_ready(port, proc, "suanli-aggregator")
    return proc, port
