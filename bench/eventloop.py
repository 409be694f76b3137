#!/usr/bin/env python3
"""The event-loop spike: requests per CPU-second of redis-server and of kvik
under its two event-loop models, measured side by side.

  shared   one tokio multi-thread runtime (work-stealing), the default
  percore  one single-threaded tokio loop per worker thread; the acceptor
           hands connections out round-robin (KVIK_IO_MODEL=percore)

For each server, redis-benchmark runs SET and GET (50 clients, 32-byte
values, P=1 and P=16); the server's CPU time (utime+stime from /proc) over
the run gives requests per CPU-second. Rounds are interleaved so machine
noise hits all servers alike; medians are printed.

    python3 bench/eventloop.py [--rounds 3] [--requests 300000] [--threads 2]
"""

import argparse
import os
import statistics
import subprocess

import common


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def run(proc, port, test, pipeline, requests):
    before = cpu_ticks(proc.pid)
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-n", str(requests),
         "-c", "50", "-d", "32", "-P", str(pipeline), "-r", "100000", "--csv"],
        check=True, capture_output=True, text=True).stdout
    ticks = cpu_ticks(proc.pid) - before
    rps = float(out.strip().splitlines()[-1].split(",")[1].strip('"'))
    hz = os.sysconf("SC_CLK_TCK")
    return rps, requests / max(ticks / hz, 1e-9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=300_000)
    ap.add_argument("--threads", default="2")
    a = ap.parse_args()
    kvik = common.build_kvik()
    servers = [("redis", *common.start(common.redis_binary(), "redis"))]
    for model in ("shared", "percore"):
        os.environ["KVIK_IO_MODEL"] = model
        servers.append((f"kvik-{model}", *common.start(kvik, model, ["--worker-threads", a.threads])))
    os.environ.pop("KVIK_IO_MODEL", None)
    cases = [(t, p) for p in (1, 16) for t in ("set", "get")]
    results = {(s[0], c): ([], []) for s in servers for c in cases}
    for _ in range(a.rounds):
        for case in cases:
            for name, proc, port in servers:
                rps, per_cpu = run(proc, port, case[0], case[1], a.requests)
                results[(name, case)][0].append(rps)
                results[(name, case)][1].append(per_cpu)
    print(f"{'server':<14}{'test':<10}{'rps':>12}{'req/CPU-s':>12}")
    for case in cases:
        for name, _, _ in servers:
            rps, per_cpu = results[(name, case)]
            label = f"{case[0].upper()} P={case[1]}"
            print(f"{name:<14}{label:<10}{statistics.median(rps):>12.0f}{statistics.median(per_cpu):>12.0f}")


if __name__ == "__main__":
    main()
