"""Shared helpers for kvik's benchmarks: build kvik, start kvik and
redis-server side by side on free loopback ports, encode commands, read
and compare the servers' RSS, and stop everything on exit."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def build_kvik():
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "kvik-server"], cwd=ROOT, check=True
    )
    return os.path.join(ROOT, "target", "release", "kvik-server")


def _wait_ready(port, proc, name):
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{name} did not answer PING on port {port}")


def start(binary, name, extra=()):
    """Starts a redis-server-compatible binary; returns (proc, port)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix=f"kvik-bench-{name}-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, *extra]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _procs.append((proc, workdir))
    _wait_ready(port, proc, name)
    return proc, port


def redis_binary():
    path = shutil.which("redis-server")
    if not path:
        sys.exit("redis-server not found (apt-get install -y redis-server redis-tools)")
    return path


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def resp(*args):
    """One command in RESP (arguments that are not bytes go through str)."""
    out = bytearray(b"*%d\r\n" % len(args))
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return bytes(out)


def measure_rss(binary, name, load):
    """Starts `binary`, runs `load(port)` and stops it again; returns the
    RSS before and after the load and what `load` returned."""
    proc, port = start(binary, name)
    before = rss_bytes(proc.pid)
    result = load(port)
    after = rss_bytes(proc.pid)
    stop(proc)
    return before, after, result


def print_rss(unit, n, redis, kvik):
    """Prints RSS empty / loaded and growth and total per `unit` for the
    (before, after) pairs of redis and kvik, then the growth ratio."""
    growth, total = f"growth/{unit}", f"total/{unit}"
    gw, tw = len(growth) + 2, len(total) + 2
    print(f"{'server':<8}{'RSS empty':>12}{'RSS loaded':>12}{growth:>{gw}}{total:>{tw}}")
    for name, (b, af) in (("redis", redis), ("kvik", kvik)):
        print(f"{name:<8}{b:>12}{af:>12}{(af - b) / n:>{gw}.1f}{af / n:>{tw}.1f}")
    (rb, ra), (kb, ka) = redis, kvik
    print(f"kvik/redis growth per {unit}: {((ka - kb) / n) / ((ra - rb) / n):.2f}x")


def compare_rss(unit, n, load, what):
    """Loads `n` units into redis-server, then kvik, with `load(port, n)`,
    which returns the count (`what` names the command) the server then
    reports, and prints the RSS comparison."""
    kvik = build_kvik()
    results = []
    for binary, name in ((redis_binary(), "redis"), (kvik, "kvik")):
        before, after, got = measure_rss(binary, name, lambda port: load(port, n))
        assert got == n, f"{name}: {what} {got} != {n}"
        results.append((before, after))
    print_rss(unit, n, *results)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@atexit.register
def _cleanup():
    for proc, workdir in _procs:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
