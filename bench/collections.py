#!/usr/bin/env python3
"""Memory per element of kvik's collections against redis-server.

For each shape, starts a fresh kvik and a fresh redis-server, loads the
same data with pipelined commands and prints the RSS growth per element
and kvik's ratio to Redis:

  set      one set of N members            (SADD, 16-byte members)
  hash     one hash of N fields            (HSET, 16-byte fields and values)
  zset     one sorted set of N members     (ZADD, integer scores)
  sessions N/10 hashes of 10 fields each   (HSET, the session shape)

A shape kvik does not implement yet (its first command gets an error
reply) is reported as unsupported instead of failing the run.

    python3 bench/collections.py [--n 1000000] [--only set,hash]
"""

import argparse
import socket

import common


resp = common.resp


class Conn:
    """A pipelining client for commands whose replies are one line each
    (integers, simple strings, errors)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def run(self, cmds):
        """Sends `cmds` (already encoded) and returns their reply lines."""
        self.s.sendall(b"".join(cmds))
        lines = []
        while len(lines) < len(cmds):
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\r\n")
            lines += done
        return lines

    def close(self):
        self.s.close()


def member(i):
    return b"member:%09d" % i  # 16 bytes


def field(i):
    return b"field:%010d" % i  # 16 bytes


VALUE = b"v" * 16


def batches(n, per_cmd):
    for start in range(0, n, per_cmd):
        yield range(start, min(n, start + per_cmd))


def load_set(conn, n):
    for r in batches(n, 1000):
        yield resp(b"SADD", b"bench:set", *(member(i) for i in r))


def load_hash(conn, n):
    for r in batches(n, 500):
        args = []
        for i in r:
            args += [field(i), VALUE]
        yield resp(b"HSET", b"bench:hash", *args)


def load_zset(conn, n):
    for r in batches(n, 500):
        args = []
        for i in r:
            args += [str(i).encode(), member(i)]
        yield resp(b"ZADD", b"bench:zset", *args)


SESSION_FIELDS = [b"user_id", b"created_at", b"last_seen", b"ip", b"agent",
                  b"locale", b"theme", b"cart", b"csrf", b"flags"]


def load_sessions(conn, n):
    for i in range(n // 10):
        args = []
        for f in SESSION_FIELDS:
            args += [f, VALUE]
        yield resp(b"HSET", b"session:%08d" % i, *args)


SHAPES = {
    # name: (loader, elements per unit, unit label)
    "set": (load_set, "member"),
    "hash": (load_hash, "field"),
    "zset": (load_zset, "member"),
    "sessions": (load_sessions, "field"),
}


def measure(binary, name, shape, n):
    """Returns (rss growth in bytes, None) or (None, error reply)."""
    loader, _ = SHAPES[shape]
    proc, port = common.start(binary, name)
    try:
        conn = Conn(port)
        before = common.rss_bytes(proc.pid)
        gen = loader(conn, n)
        first = next(gen)
        reply = conn.run([first])[0]
        if reply.startswith(b"-"):
            return None, reply.decode(errors="replace")
        pending = []
        for cmd in gen:
            pending.append(cmd)
            if len(pending) == 64:
                errs = [r for r in conn.run(pending) if r.startswith(b"-")]
                if errs:
                    return None, errs[0].decode(errors="replace")
                pending = []
        if pending:
            errs = [r for r in conn.run(pending) if r.startswith(b"-")]
            if errs:
                return None, errs[0].decode(errors="replace")
        after = common.rss_bytes(proc.pid)
        conn.close()
        return after - before, None
    finally:
        common.stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000,
                    help="elements per shape (sessions: n/10 hashes of 10 fields)")
    ap.add_argument("--only", default="", help="comma-separated shapes to run")
    a = ap.parse_args()
    shapes = [s for s in SHAPES if not a.only or s in a.only.split(",")]
    kvik = common.build_kvik()
    redis = common.redis_binary()
    print(f"{'shape':<10}{'per':<8}{'redis B/el':>12}{'kvik B/el':>12}{'kvik/redis':>12}")
    for shape in shapes:
        unit = SHAPES[shape][1]
        rg, rerr = measure(redis, "redis", shape, a.n)
        kg, kerr = measure(kvik, "kvik", shape, a.n)
        rcol = f"{rg / a.n:12.1f}" if rerr is None else f"{'error':>12}"
        if kerr is not None:
            print(f"{shape:<10}{unit:<8}{rcol}{'unsupported':>12}{'-':>12}   ({kerr})")
            continue
        kcol = f"{kg / a.n:12.1f}"
        ratio = f"{kg / rg:12.2f}" if rerr is None and rg > 0 else f"{'-':>12}"
        print(f"{shape:<10}{unit:<8}{rcol}{kcol}{ratio}")
        if shape == "sessions" and rerr is None:
            keys = a.n // 10
            print(f"{'':<10}{'hash':<8}{rg / keys:12.1f}{kg / keys:12.1f}")


if __name__ == "__main__":
    main()
