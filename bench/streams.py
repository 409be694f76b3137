#!/usr/bin/env python3
"""Memory per stream entry of kvik and redis-server for the same load.

Starts both servers side by side on free loopback ports, appends N entries
to one stream with pipelined `XADD key * f1 v1 f2 v2 f3 v3` (three small
fields: a small integer, a short word, a growing integer) and prints the
RSS growth per entry, total RSS per entry and the kvik/redis ratio.

    python3 bench/streams.py [--entries 1000000]
"""

import argparse
import socket

import common

WORDS = [b"click", b"view", b"buy", b"login", b"logout"]


def resp(*args):
    out = bytearray(b"*%d\r\n" % len(args))
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return bytes(out)


def load(port, n, batch=10_000):
    s = socket.create_connection(("127.0.0.1", port))
    sent = 0
    while sent < n:
        buf = bytearray()
        count = min(batch, n - sent)
        for i in range(sent, sent + count):
            buf += resp(b"XADD", b"events", b"*",
                        b"user", b"%d" % (i % 1000),
                        b"action", WORDS[i % len(WORDS)],
                        b"seq", b"%d" % i)
        s.sendall(buf)
        # Each reply is one bulk string ID (`$len\r\nID\r\n`): two CRLFs.
        crlf = 0
        last = b""
        while crlf < 2 * count:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise SystemExit("connection closed")
            if chunk.startswith(b"-") or b"\r\n-" in chunk:
                raise SystemExit(f"error reply: {chunk[:200]!r}")
            crlf += (last + chunk).count(b"\r\n") - last.count(b"\r\n")
            last = chunk[-1:]
        sent += count
    s.sendall(resp(b"XLEN", b"events"))
    reply = s.recv(64)
    s.close()
    return int(reply[1:].split(b"\r\n")[0])


def measure(binary, name, n):
    proc, port = common.start(binary, name)
    before = common.rss_bytes(proc.pid)
    entries = load(port, n)
    after = common.rss_bytes(proc.pid)
    common.stop(proc)
    assert entries == n, f"{name}: XLEN {entries} != {n}"
    return before, after


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    a = ap.parse_args()
    kvik = common.build_kvik()
    rb, ra = measure(common.redis_binary(), "redis", a.entries)
    kb, ka = measure(kvik, "kvik", a.entries)
    n = a.entries
    print(f"{'server':<8}{'RSS empty':>12}{'RSS loaded':>12}{'growth/entry':>14}{'total/entry':>13}")
    for name, b, af in (("redis", rb, ra), ("kvik", kb, ka)):
        print(f"{name:<8}{b:>12}{af:>12}{(af - b) / n:>14.1f}{af / n:>13.1f}")
    print(f"kvik/redis growth per entry: {((ka - kb) / n) / ((ra - rb) / n):.2f}x")


if __name__ == "__main__":
    main()
