"""Shared helpers for kvik's benchmarks: build kvik, start kvik and
redis-server side by side on free loopback ports, read a process's RSS,
and stop everything on exit."""

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
