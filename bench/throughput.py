#!/usr/bin/env python3
"""SET/GET throughput of kvik and redis-server, side by side.

Starts both on free loopback ports and runs redis-benchmark against them
alternately (so drift in machine load hits both alike): SET and GET, 50
clients, 32-byte values, unpipelined and with -P 16. Prints each median
requests/second and the kvik/redis ratio.

    python3 bench/throughput.py [--runs 5] [--requests 200000]
"""

import argparse
import csv
import io
import statistics
import subprocess

import common


def bench(port, test, pipeline, requests):
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test,
         "-n", str(requests), "-c", "50", "-d", "32", "-P", str(pipeline),
         "-r", "100000", "--csv"],
        check=True, capture_output=True, text=True).stdout
    rows = list(csv.reader(io.StringIO(out)))
    return float(rows[1][1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--threads", default="", help="kvik worker-threads (default: cores)")
    a = ap.parse_args()
    kvik = common.build_kvik()
    extra = ["--worker-threads", a.threads] if a.threads else []
    _, kport = common.start(kvik, "kvik", extra)
    _, rport = common.start(common.redis_binary(), "redis")
    print(f"{'test':<12}{'redis rps':>14}{'kvik rps':>14}{'kvik/redis':>12}")
    for pipeline in (1, 16):
        for test in ("set", "get"):
            r, k = [], []
            for _ in range(a.runs):
                r.append(bench(rport, test, pipeline, a.requests))
                k.append(bench(kport, test, pipeline, a.requests))
            rm, km = statistics.median(r), statistics.median(k)
            name = f"{test.upper()} P={pipeline}"
            print(f"{name:<12}{rm:>14.0f}{km:>14.0f}{km / rm:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
