#!/usr/bin/env python3
"""Pub/Sub fan-out of kvik and redis-server, side by side.

One publisher pipelines PUBLISH of small messages to one channel with
1,000 subscribers for a fixed time; the load generator (the Rust example
crates/server/examples/fanout.rs, since a Python client would be the
bottleneck) counts the messages all subscribers received and reports
delivered messages per second. Both servers run on free loopback ports and
are measured alternately (so drift in machine load hits both alike); the
medians and the kvik/redis ratio are printed.

    python3 bench/fanout.py [--runs 5] [--subscribers 1000] [--seconds 5]
                            [--size 16] [--pipeline 16] [--client-threads 1]
"""

import argparse
import os
import resource
import statistics
import subprocess

import common


def build_fanout():
    subprocess.run(
        ["cargo", "build", "--release", "-q", "--example", "fanout", "-p", "kvik-server"],
        cwd=common.ROOT, check=True)
    return os.path.join(common.ROOT, "target", "release", "examples", "fanout")


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run(gen, port, a):
    out = subprocess.run(
        [gen, "--port", str(port), "--subscribers", str(a.subscribers),
         "--seconds", str(a.seconds), "--size", str(a.size),
         "--pipeline", str(a.pipeline), "--threads", str(a.client_threads)],
        check=True, capture_output=True, text=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split())
    if fields["delivered"] != fields["expected"]:
        print(f"  warning: port {port} delivered {fields['delivered']} of "
              f"{fields['expected']} messages", flush=True)
    return float(fields["delivered_per_sec"]), out.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=16, help="message bytes")
    ap.add_argument("--pipeline", type=int, default=16, help="PUBLISH per batch")
    ap.add_argument("--client-threads", type=int, default=1,
                    help="load generator runtime threads")
    ap.add_argument("--threads", default="", help="kvik worker-threads (default: cores)")
    ap.add_argument("--verbose", action="store_true", help="print every run")
    a = ap.parse_args()
    # Servers inherit the limit: subscribers + publisher + slack.
    limit = raise_fd_limit(max(4096, 2 * a.subscribers + 256))
    if limit < a.subscribers + 64:
        raise SystemExit(f"open file limit {limit} too low for {a.subscribers} subscribers")
    kvik = common.build_kvik()
    gen = build_fanout()
    maxclients = ["--maxclients", str(a.subscribers + 100)]
    extra = ["--worker-threads", a.threads] if a.threads else []
    _, kport = common.start(kvik, "kvik", maxclients + extra)
    _, rport = common.start(common.redis_binary(), "redis", maxclients)
    print(f"{a.subscribers} subscribers, {a.size}-byte messages, PUBLISH pipeline "
          f"{a.pipeline}, {a.seconds:g} s per run, {a.runs} runs each", flush=True)
    r, k = [], []
    for _ in range(a.runs):
        rv, rline = run(gen, rport, a)
        kv, kline = run(gen, kport, a)
        r.append(rv)
        k.append(kv)
        if a.verbose:
            print(f"  redis: {rline}\n  kvik:  {kline}", flush=True)
    rm, km = statistics.median(r), statistics.median(k)
    print(f"{'':<22}{'redis':>14}{'kvik':>14}{'kvik/redis':>12}")
    print(f"{'delivered msgs/s':<22}{rm:>14.0f}{km:>14.0f}{km / rm:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
