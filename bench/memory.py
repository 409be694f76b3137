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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    a = ap.parse_args()
    common.compare_rss("key", a.keys, load, "DBSIZE")


if __name__ == "__main__":
    main()
