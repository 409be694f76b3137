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


def load(port, n, batch=10_000):
    s = socket.create_connection(("127.0.0.1", port))
    sent = 0
    while sent < n:
        buf = bytearray()
        count = min(batch, n - sent)
        for i in range(sent, sent + count):
            buf += common.resp(b"XADD", b"events", b"*",
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
    s.sendall(common.resp(b"XLEN", b"events"))
    reply = s.recv(64)
    s.close()
    return int(reply[1:].split(b"\r\n")[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    a = ap.parse_args()
    common.compare_rss("entry", a.entries, load, "XLEN")


if __name__ == "__main__":
    main()
