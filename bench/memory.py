#!/usr/bin/env python3
"""Memory per key of kvik and redis-server for the same load.

Loads N keys (16-byte keys, 32-byte values, no TTL) into each server with
pipelined SETs and prints the RSS growth per key and total RSS per key.

    python3 bench/memory.py [--keys 1000000]
"""

import argparse
import socket

import common


def load(port, n, batch=10_000):
    s = socket.create_connection(("127.0.0.1", port))
    value = b"v" * 32
    sent = 0
    while sent < n:
        buf = bytearray()
        count = min(batch, n - sent)
        for i in range(sent, sent + count):
            key = b"key:%012d" % i
            buf += b"*3\r\n$3\r\nSET\r\n$16\r\n" + key + b"\r\n$32\r\n" + value + b"\r\n"
        s.sendall(buf)
        got = 0
        while got < count:
            got += s.recv(1 << 20).count(b"+OK\r\n")
        sent += count
    s.sendall(b"DBSIZE\r\n")
    reply = s.recv(64)
    s.close()
    return int(reply[1:].split(b"\r\n")[0])


def measure(binary, name, n, extra=()):
    proc, port = common.start(binary, name, extra)
    before = common.rss_bytes(proc.pid)
    keys = load(port, n)
    after = common.rss_bytes(proc.pid)
    common.stop(proc)
    assert keys == n, f"{name}: DBSIZE {keys} != {n}"
    return before, after


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    a = ap.parse_args()
    kvik = common.build_kvik()
    rb, ra = measure(common.redis_binary(), "redis", a.keys)
    kb, ka = measure(kvik, "kvik", a.keys)
    n = a.keys
    print(f"{'server':<8}{'RSS empty':>12}{'RSS loaded':>12}{'growth/key':>12}{'total/key':>11}")
    for name, b, af in (("redis", rb, ra), ("kvik", kb, ka)):
        print(f"{name:<8}{b:>12}{af:>12}{(af - b) / n:>12.1f}{af / n:>11.1f}")
    print(f"kvik/redis growth per key: {((ka - kb) / n) / ((ra - rb) / n):.2f}x")


if __name__ == "__main__":
    main()
