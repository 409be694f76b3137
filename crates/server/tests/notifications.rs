//! Keyspace notifications against the real binary: every write command
//! publishes at least one event (so a new command without notifications
//! fails here), `expired` fires for lazy and active expiry, hash field
//! expiry events, and RESP2/RESP3 delivery.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::{KvikServer, Reply, RespConn};

fn conn(srv: &KvikServer) -> RespConn {
    RespConn::connect(srv.port(), Duration::from_secs(10)).expect("connect")
}

fn args(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn call(c: &mut RespConn, line: &str) -> Reply {
    c.call(&args(line)).expect("reply")
}

/// Turns notifications off again.
fn reset(c: &mut RespConn) {
    let r = c
        .call(&["CONFIG", "SET", "notify-keyspace-events", ""])
        .expect("reply");
    assert_eq!(r, Reply::Simple(b"OK".to_vec()));
}

fn text(r: &Reply) -> String {
    match r {
        Reply::Bulk(b) | Reply::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.compact(),
    }
}

/// A subscriber to every keyspace and keyevent channel, plus a `sync`
/// channel used to know when all events of a command have arrived.
struct Sub {
    c: RespConn,
    marker: u64,
}

impl Sub {
    fn new(srv: &KvikServer, resp3: bool) -> Sub {
        let mut c = conn(srv);
        if resp3 {
            let hello = call(&mut c, "HELLO 3");
            assert!(!hello.is_error(), "{hello:?}");
        }
        call(&mut c, "PSUBSCRIBE __key*__:*");
        call(&mut c, "SUBSCRIBE sync");
        Sub { c, marker: 0 }
    }

    /// The (channel, message) pairs of the keyspace messages published
    /// before a marker that `publisher` sends now.
    fn drain(&mut self, publisher: &mut RespConn) -> Vec<(String, String)> {
        self.marker += 1;
        let marker = self.marker.to_string();
        call(publisher, &format!("PUBLISH sync {marker}"));
        let mut events = Vec::new();
        loop {
            let m = self.c.read_reply().expect("message");
            let parts = match m {
                Reply::Array(p) | Reply::Push(p) => p,
                other => panic!("unexpected {other:?}"),
            };
            match text(&parts[0]).as_str() {
                "message" if text(&parts[2]) == marker => return events,
                "pmessage" => events.push((text(&parts[2]), text(&parts[3]))),
                other => panic!("unexpected message kind {other}: {parts:?}"),
            }
        }
    }

    /// Runs `line` on `c` and returns the db 0 keyevents it published.
    fn events_of(&mut self, c: &mut RespConn, line: &str) -> Vec<String> {
        call(c, line);
        keyevents(self.drain(c))
    }

    /// Drains events through `f` until `n` have come (or 10 seconds pass).
    fn collect<T>(
        &mut self,
        c: &mut RespConn,
        n: usize,
        f: impl Fn(Vec<(String, String)>) -> Vec<T>,
    ) -> Vec<T> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            got.extend(f(self.drain(c)));
            std::thread::sleep(Duration::from_millis(50));
        }
        got
    }
}

/// The keyevent messages of db 0 as `event:key`.
fn keyevents(v: Vec<(String, String)>) -> Vec<String> {
    v.into_iter()
        .filter(|(chan, _)| chan.starts_with("__keyevent"))
        .map(|(chan, key)| format!("{}:{key}", chan.trim_start_matches("__keyevent@0__:")))
        .collect()
}

/// One sample invocation per write command: (command name as COMMAND
/// lists it, setup lines, the command line). Samples use keys that the
/// setup creates or that do not exist, so each emits at least one event.
const SAMPLES: &[(&str, &[&str], &str)] = &[
    ("append", &[], "APPEND k x"),
    ("bitfield", &[], "BITFIELD k SET u8 0 1"),
    ("bitop", &["SET a x"], "BITOP NOT k a"),
    ("blmove", &["RPUSH a x"], "BLMOVE a b LEFT RIGHT 0"),
    ("blmpop", &["RPUSH a x"], "BLMPOP 0 1 a LEFT"),
    ("blpop", &["RPUSH a x"], "BLPOP a 0"),
    ("brpop", &["RPUSH a x"], "BRPOP a 0"),
    ("brpoplpush", &["RPUSH a x"], "BRPOPLPUSH a b 0"),
    ("bzmpop", &["ZADD a 1 x"], "BZMPOP 0 1 a MIN"),
    ("bzpopmax", &["ZADD a 1 x"], "BZPOPMAX a 0"),
    ("bzpopmin", &["ZADD a 1 x"], "BZPOPMIN a 0"),
    ("copy", &["SET a x"], "COPY a b"),
    ("decr", &[], "DECR k"),
    ("decrby", &[], "DECRBY k 2"),
    ("del", &["SET k x"], "DEL k"),
    ("expire", &["SET k x"], "EXPIRE k 100"),
    ("expireat", &["SET k x"], "EXPIREAT k 99999999999"),
    ("geoadd", &[], "GEOADD k 10 10 m"),
    (
        "georadius",
        &["GEOADD a 10 10 m"],
        "GEORADIUS a 10 10 10 km STORE k",
    ),
    (
        "georadiusbymember",
        &["GEOADD a 10 10 m"],
        "GEORADIUSBYMEMBER a m 10 km STORE k",
    ),
    (
        "geosearchstore",
        &["GEOADD a 10 10 m"],
        "GEOSEARCHSTORE k a FROMMEMBER m BYRADIUS 10 km",
    ),
    ("getdel", &["SET k x"], "GETDEL k"),
    ("getex", &["SET k x"], "GETEX k EX 100"),
    ("getset", &[], "GETSET k x"),
    ("hdel", &["HSET k f v g v"], "HDEL k f"),
    ("hexpire", &["HSET k f v"], "HEXPIRE k 100 FIELDS 1 f"),
    (
        "hexpireat",
        &["HSET k f v"],
        "HEXPIREAT k 9999999999 FIELDS 1 f",
    ),
    ("hgetdel", &["HSET k f v g v"], "HGETDEL k FIELDS 1 f"),
    ("hgetex", &["HSET k f v"], "HGETEX k EX 100 FIELDS 1 f"),
    ("hincrby", &[], "HINCRBY k f 1"),
    ("hincrbyfloat", &[], "HINCRBYFLOAT k f 1.5"),
    ("hmset", &[], "HMSET k f v"),
    (
        "hpersist",
        &["HSET k f v", "HEXPIRE k 100 FIELDS 1 f"],
        "HPERSIST k FIELDS 1 f",
    ),
    ("hpexpire", &["HSET k f v"], "HPEXPIRE k 100000 FIELDS 1 f"),
    (
        "hpexpireat",
        &["HSET k f v"],
        "HPEXPIREAT k 9999999999000 FIELDS 1 f",
    ),
    ("hset", &[], "HSET k f v"),
    ("hsetex", &[], "HSETEX k EX 100 FIELDS 1 f v"),
    ("hsetnx", &[], "HSETNX k f v"),
    ("incr", &[], "INCR k"),
    ("incrby", &[], "INCRBY k 5"),
    ("incrbyfloat", &[], "INCRBYFLOAT k 1.5"),
    ("linsert", &["RPUSH k a"], "LINSERT k BEFORE a b"),
    ("lmove", &["RPUSH a x"], "LMOVE a b LEFT RIGHT"),
    ("lmpop", &["RPUSH a x"], "LMPOP 1 a LEFT"),
    ("lpop", &["RPUSH k a b"], "LPOP k"),
    ("lpush", &[], "LPUSH k a"),
    ("lpushx", &["RPUSH k a"], "LPUSHX k b"),
    ("lrem", &["RPUSH k a b"], "LREM k 0 a"),
    ("lset", &["RPUSH k a"], "LSET k 0 b"),
    ("ltrim", &["RPUSH k a b"], "LTRIM k 0 0"),
    ("move", &["SET k x"], "MOVE k 1"),
    ("mset", &[], "MSET k x"),
    ("msetnx", &[], "MSETNX k x"),
    ("persist", &["SET k x EX 100"], "PERSIST k"),
    ("pexpire", &["SET k x"], "PEXPIRE k 100000"),
    ("pexpireat", &["SET k x"], "PEXPIREAT k 99999999999000"),
    ("pfadd", &[], "PFADD k a"),
    ("pfmerge", &["PFADD a x"], "PFMERGE k a"),
    ("psetex", &[], "PSETEX k 100000 x"),
    ("rename", &["SET a x"], "RENAME a k"),
    ("renamenx", &["SET a x"], "RENAMENX a k"),
    ("rpop", &["RPUSH k a b"], "RPOP k"),
    ("rpoplpush", &["RPUSH a x"], "RPOPLPUSH a b"),
    ("rpush", &[], "RPUSH k a"),
    ("rpushx", &["RPUSH k a"], "RPUSHX k b"),
    ("sadd", &[], "SADD k a"),
    ("sdiffstore", &["SADD a x"], "SDIFFSTORE k a"),
    ("set", &[], "SET k x"),
    ("setbit", &[], "SETBIT k 1 1"),
    ("setex", &[], "SETEX k 100 x"),
    ("setnx", &[], "SETNX k x"),
    ("setrange", &[], "SETRANGE k 1 x"),
    ("sinterstore", &["SADD a x"], "SINTERSTORE k a"),
    ("smove", &["SADD a x"], "SMOVE a k x"),
    ("sort", &["RPUSH a 2 1"], "SORT a STORE k"),
    ("spop", &["SADD k a b"], "SPOP k"),
    ("srem", &["SADD k a b"], "SREM k a"),
    ("sunionstore", &["SADD a x"], "SUNIONSTORE k a"),
    ("unlink", &["SET k x"], "UNLINK k"),
    ("xadd", &[], "XADD k * f v"),
    (
        "xautoclaim",
        &[
            "XADD k 1-1 f v",
            "XGROUP CREATE k g 0",
            "XREADGROUP GROUP g c1 STREAMS k >",
        ],
        "XAUTOCLAIM k g c2 0 0",
    ),
    (
        "xclaim",
        &[
            "XADD k 1-1 f v",
            "XGROUP CREATE k g 0",
            "XREADGROUP GROUP g c1 STREAMS k >",
        ],
        "XCLAIM k g c2 0 1-1",
    ),
    ("xdel", &["XADD k 1-1 f v"], "XDEL k 1-1"),
    ("xgroup|create", &["XADD k 1-1 f v"], "XGROUP CREATE k g 0"),
    (
        "xgroup|createconsumer",
        &["XADD k 1-1 f v", "XGROUP CREATE k g 0"],
        "XGROUP CREATECONSUMER k g c",
    ),
    (
        "xgroup|delconsumer",
        &[
            "XADD k 1-1 f v",
            "XGROUP CREATE k g 0",
            "XGROUP CREATECONSUMER k g c",
        ],
        "XGROUP DELCONSUMER k g c",
    ),
    (
        "xgroup|destroy",
        &["XADD k 1-1 f v", "XGROUP CREATE k g 0"],
        "XGROUP DESTROY k g",
    ),
    (
        "xgroup|setid",
        &["XADD k 1-1 f v", "XGROUP CREATE k g 0"],
        "XGROUP SETID k g 0",
    ),
    (
        "xreadgroup",
        &["XADD k 1-1 f v", "XGROUP CREATE k g 0"],
        "XREADGROUP GROUP g c STREAMS k >",
    ),
    ("xsetid", &["XADD k 1-1 f v"], "XSETID k 5-5"),
    (
        "xtrim",
        &["XADD k 1-1 f v", "XADD k 2-1 f v"],
        "XTRIM k MAXLEN 1",
    ),
    ("zadd", &[], "ZADD k 1 a"),
    ("zdiffstore", &["ZADD a 1 x"], "ZDIFFSTORE k 1 a"),
    ("zincrby", &[], "ZINCRBY k 1 a"),
    ("zinterstore", &["ZADD a 1 x"], "ZINTERSTORE k 1 a"),
    ("zmpop", &["ZADD a 1 x"], "ZMPOP 1 a MIN"),
    ("zpopmax", &["ZADD k 1 a 2 b"], "ZPOPMAX k"),
    ("zpopmin", &["ZADD k 1 a 2 b"], "ZPOPMIN k"),
    ("zrangestore", &["ZADD a 1 x"], "ZRANGESTORE k a 0 -1"),
    ("zrem", &["ZADD k 1 a 2 b"], "ZREM k a"),
    (
        "zremrangebylex",
        &["ZADD k 0 a 0 b"],
        "ZREMRANGEBYLEX k [a [a",
    ),
    (
        "zremrangebyrank",
        &["ZADD k 1 a 2 b"],
        "ZREMRANGEBYRANK k 0 0",
    ),
    (
        "zremrangebyscore",
        &["ZADD k 1 a 2 b"],
        "ZREMRANGEBYSCORE k 1 1",
    ),
    ("zunionstore", &["ZADD a 1 x"], "ZUNIONSTORE k 1 a"),
];

/// Write commands that legitimately publish no keyspace event, with why.
const EXEMPT: &[(&str, &str)] = &[
    ("flushall", "Redis publishes no keyspace events for flushes"),
    ("flushdb", "Redis publishes no keyspace events for flushes"),
    ("swapdb", "Redis publishes no keyspace events for SWAPDB"),
    ("pfdebug", "debugging command, no event in Redis"),
    ("xack", "Redis's XACK publishes no event"),
    ("xgroup", "container command: its subcommands are covered"),
    ("function", "container command; functions are not keys"),
    ("function|delete", "functions are not keys"),
    ("function|flush", "functions are not keys"),
    ("function|load", "functions are not keys"),
    ("function|restore", "functions are not keys"),
];

/// Names (`cmd` or `container|sub`) of every command COMMAND lists with the
/// `write` flag.
fn write_commands(c: &mut RespConn) -> BTreeSet<String> {
    fn has_write(flags: &Reply) -> bool {
        match flags {
            Reply::Array(f) | Reply::Set(f) => f.iter().any(|x| text(x) == "write"),
            _ => false,
        }
    }
    fn walk(entry: &Reply, out: &mut BTreeSet<String>) {
        let Reply::Array(parts) = entry else {
            return;
        };
        if parts.len() < 3 {
            return;
        }
        if has_write(&parts[2]) {
            out.insert(text(&parts[0]).to_ascii_lowercase());
        }
        if let Some(Reply::Array(subs)) = parts.get(9) {
            for s in subs {
                walk(s, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    match call(c, "COMMAND") {
        Reply::Array(all) => {
            for e in &all {
                walk(e, &mut out);
            }
        }
        other => panic!("COMMAND: {other:?}"),
    }
    out
}

#[test]
fn every_write_command_publishes_an_event() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    let writes = write_commands(&mut c);
    assert!(
        writes.contains("set") && writes.contains("lpush"),
        "{writes:?}"
    );
    let sampled: BTreeSet<&str> = SAMPLES.iter().map(|s| s.0).collect();
    let exempt: BTreeSet<&str> = EXEMPT.iter().map(|s| s.0).collect();
    let missing: Vec<&String> = writes
        .iter()
        .filter(|w| !sampled.contains(w.as_str()) && !exempt.contains(w.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "write commands without a sample in SAMPLES (add one, or an EXEMPT entry with a reason): {missing:?}"
    );

    call(&mut c, "CONFIG SET notify-keyspace-events KEA");
    let mut sub = Sub::new(&srv, false);
    let mut silent = Vec::new();
    for (name, setup, sample) in SAMPLES {
        if !writes.contains(*name) {
            // Not registered (yet): nothing to check.
            continue;
        }
        call(&mut c, "FLUSHALL");
        for line in *setup {
            let r = call(&mut c, line);
            assert!(!r.is_error(), "{name}: setup `{line}`: {}", r.compact());
        }
        sub.drain(&mut c);
        let r = call(&mut c, sample);
        assert!(!r.is_error(), "{name}: `{sample}`: {}", r.compact());
        let events = sub.drain(&mut c);
        if events.is_empty() {
            silent.push(*name);
        }
    }
    reset(&mut c);
    assert!(
        silent.is_empty(),
        "commands that published no event: {silent:?}"
    );
}

/// Waits for the next keyspace message of `sub` (skipping none).
fn next_event(sub: &mut Sub) -> (String, String) {
    let m = sub.c.read_reply().expect("message");
    let (Reply::Array(parts) | Reply::Push(parts)) = m else {
        panic!("unexpected {m:?}");
    };
    (text(&parts[2]), text(&parts[3]))
}

#[test]
fn expired_fires_for_lazy_and_active_expiry() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    call(&mut c, "CONFIG SET notify-keyspace-events Ex");
    // Lazy: active expiry is off, so only the access reclaims the key.
    call(&mut c, "DEBUG SET-ACTIVE-EXPIRE 0");
    let mut sub = Sub::new(&srv, false);
    call(&mut c, "SET lazy v PX 30");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sub.drain(&mut c), vec![]);
    assert_eq!(call(&mut c, "GET lazy"), Reply::NullBulk);
    assert_eq!(
        sub.drain(&mut c),
        vec![("__keyevent@0__:expired".to_string(), "lazy".to_string())]
    );

    // Active: nobody touches the keys, the background cycle reclaims them.
    call(&mut c, "DEBUG SET-ACTIVE-EXPIRE 1");
    call(&mut c, "SELECT 2");
    for i in 0..20 {
        call(&mut c, &format!("SET active{i} v PX 20"));
    }
    let mut seen = BTreeSet::new();
    for (chan, key) in sub.collect(&mut c, 20, |v| v) {
        assert_eq!(chan, "__keyevent@2__:expired");
        seen.insert(key);
    }
    assert_eq!(seen.len(), 20, "active expiry events: {seen:?}");
    reset(&mut c);
}

#[test]
fn hash_field_expiry_events() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    call(&mut c, "CONFIG SET notify-keyspace-events KEA");
    let mut sub = Sub::new(&srv, false);
    call(&mut c, "HSET h a 1 b 2 c 3");
    sub.drain(&mut c);
    // (command, keyevents); a time in the past deletes the field at once
    // (Redis 7.4: `hdel`).
    let cases: &[(&str, &[&str])] = &[
        ("HEXPIRE h 100 FIELDS 1 a", &["hexpire:h"]),
        ("HPERSIST h FIELDS 2 a b", &["hpersist:h"]),
        ("HPEXPIREAT h 1 FIELDS 1 a", &["hdel:h"]),
        ("HGETDEL h FIELDS 1 b", &["hdel:h"]),
        ("HGETDEL h FIELDS 1 c", &["hdel:h", "del:h"]),
        (
            "HSETEX h3 EX 100 FIELDS 2 a 1 b 2",
            &["hset:h3", "hexpire:h3"],
        ),
        ("HGETEX h3 PERSIST FIELDS 1 a", &["hpersist:h3"]),
        ("HGETEX h3 PERSIST FIELDS 1 a", &[]),
        ("HGETEX h3 EX 50 FIELDS 1 a", &["hexpire:h3"]),
        ("HGETEX h3 PXAT 1 FIELDS 2 a b", &["hdel:h3", "del:h3"]),
        (
            "HSETEX h4 PXAT 1 FIELDS 1 a 1",
            &["hset:h4", "hdel:h4", "del:h4"],
        ),
    ];
    for (line, want) in cases {
        assert_eq!(sub.events_of(&mut c, line), *want, "{line}");
    }

    // Lazy field expiry on access: `hexpired`, then `del` if the hash
    // emptied.
    call(&mut c, "DEBUG SET-ACTIVE-EXPIRE 0");
    call(&mut c, "HSET h5 a 1 b 2");
    for (field, read, want) in [
        ("a", "HGET h5 b", &["hexpired:h5"][..]),
        ("b", "HMGET h5 a b", &["hexpired:h5", "del:h5"][..]),
    ] {
        call(&mut c, &format!("HPEXPIRE h5 20 FIELDS 1 {field}"));
        sub.drain(&mut c);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(sub.events_of(&mut c, read), want, "{read}");
    }
    call(&mut c, "DEBUG SET-ACTIVE-EXPIRE 1");

    // Active field expiry: the hash empties, so the key goes too.
    call(&mut c, "HSET h2 a 1");
    call(&mut c, "HPEXPIRE h2 20 FIELDS 1 a");
    sub.drain(&mut c);
    assert_eq!(sub.collect(&mut c, 2, keyevents), ["hexpired:h2", "del:h2"]);
    reset(&mut c);
}

#[test]
fn resp3_subscriber_gets_push_frames() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    call(&mut c, "CONFIG SET notify-keyspace-events KEl");
    let mut sub = Sub::new(&srv, true);
    call(&mut c, "RPUSH l a");
    // Class $: not published.
    call(&mut c, "SET s v");
    call(&mut c, "LPOP l");
    for want in [
        ("__keyspace@0__:l", "rpush"),
        ("__keyevent@0__:rpush", "l"),
        ("__keyspace@0__:l", "lpop"),
        ("__keyevent@0__:lpop", "l"),
    ] {
        let (chan, msg) = next_event(&mut sub);
        assert_eq!((chan.as_str(), msg.as_str()), want);
    }
    // The `del` of the emptied list is class g: not published.
    assert_eq!(sub.drain(&mut c), vec![]);
    reset(&mut c);
}

#[test]
fn serving_blocked_clients_publishes_their_pops() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    call(&mut c, "CONFIG SET notify-keyspace-events El$zg");
    let mut sub = Sub::new(&srv, false);
    let mut blocked = conn(&srv);
    let cases = [
        (
            "BLPOP blk 0",
            "LPUSH blk x",
            &["lpush:blk", "lpop:blk", "del:blk"][..],
        ),
        (
            "BLMOVE blk2 dst LEFT RIGHT 0",
            "RPUSH blk2 x y",
            &["rpush:blk2", "rpush:dst", "lpop:blk2"][..],
        ),
        (
            "BZPOPMIN bz 0",
            "ZADD bz 1 a",
            &["zadd:bz", "zpopmin:bz", "del:bz"][..],
        ),
    ];
    for (block, push, want) in cases {
        blocked.send(&args(block)).expect("send");
        // Wait until the client is blocked.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let info = text(&call(&mut c, "INFO clients"));
            if info.contains("blocked_clients:1") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        call(&mut c, push);
        let reply = blocked.read_reply().expect("served");
        assert!(!reply.is_error(), "{block}: {}", reply.compact());
        assert_eq!(
            keyevents(sub.drain(&mut c)),
            want,
            "{block} served by {push}"
        );
    }
    reset(&mut c);
}
