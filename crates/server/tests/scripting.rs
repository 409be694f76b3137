//! Scripting integration tests: script atomicity across shards, rate
//! limiters under contention, BUSY / SCRIPT KILL, FUNCTION DUMP/RESTORE,
//! and hostile scripts that must not take the server down.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{KvikServer, Reply, RespConn};

fn conn(srv: &KvikServer) -> RespConn {
    RespConn::connect(srv.port(), Duration::from_secs(20)).expect("connect")
}

fn int_of(r: &Reply) -> i64 {
    match r {
        Reply::NullBulk => 0,
        Reply::Bulk(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
        Reply::Integer(n) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

fn error_text(r: &Reply) -> String {
    match r {
        Reply::Error(e) => String::from_utf8_lossy(e).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Moves one unit from one key to another, the keys declared.
const MOVE_DECLARED: &str = "local v = tonumber(redis.call('get', KEYS[1]) or '0')\n\
     if v > 0 then\n\
       redis.call('set', KEYS[1], v - 1)\n\
       redis.call('incr', KEYS[2])\n\
     end\n\
     return v";

/// The same move between keys the script names itself (undeclared).
const MOVE_UNDECLARED: &str = "local from, to = ARGV[1], ARGV[2]\n\
     local v = tonumber(redis.call('get', from) or '0')\n\
     if v > 0 then\n\
       redis.call('decr', from)\n\
       redis.call('incrby', to, 1)\n\
     end\n\
     return v";

/// Scripts moving value between keys of different shards, with declared
/// and undeclared keys, while readers sum the keys: the total never
/// changes, so no reader ever observes half of a script.
#[test]
fn scripts_are_atomic_across_shards() {
    let srv = KvikServer::start(&[]);
    let keys = ["acct:{a}", "acct:{b}", "acct:{c}", "acct:{d}"];
    let total = 1000i64;
    {
        let mut c = conn(&srv);
        c.call(&["SET", keys[0], &total.to_string()]).unwrap();
        for k in &keys[1..] {
            c.call(&["SET", k, "0"]).unwrap();
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let mut c = conn(&srv);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Alternate MGET and a read-only script as readers.
                    let r = if (reads + i).is_multiple_of(2) {
                        c.call(&["MGET", keys[0], keys[1], keys[2], keys[3]])
                    } else {
                        c.call(&[
                            "EVAL_RO",
                            "return redis.call('mget', KEYS[1], KEYS[2], KEYS[3], KEYS[4])",
                            "4",
                            keys[0],
                            keys[1],
                            keys[2],
                            keys[3],
                        ])
                    }
                    .expect("read");
                    let Reply::Array(v) = r else {
                        panic!("read reply {r:?}")
                    };
                    let sum: i64 = v.iter().map(int_of).sum();
                    assert_eq!(sum, total, "a reader saw a partial script: {v:?}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let movers: Vec<_> = (0..4)
        .map(|w| {
            let mut c = conn(&srv);
            std::thread::spawn(move || {
                for i in 0..400usize {
                    let from = keys[(i + w) % 4];
                    let to = keys[(i + w + 1 + i % 3) % 4];
                    let r = if i % 2 == 0 {
                        c.call(&["EVAL", MOVE_DECLARED, "2", from, to])
                    } else {
                        c.call(&["EVAL", MOVE_UNDECLARED, "0", from, to])
                    }
                    .expect("move");
                    assert!(matches!(r, Reply::Integer(_)), "move reply {r:?}");
                }
            })
        })
        .collect();
    for m in movers {
        m.join().expect("mover");
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    assert!(reads > 0);
    let mut c = conn(&srv);
    let r = c
        .call(&["MGET", keys[0], keys[1], keys[2], keys[3]])
        .unwrap();
    let Reply::Array(v) = r else { panic!() };
    assert_eq!(v.iter().map(int_of).sum::<i64>(), total);
}

/// Sliding-window limiter: admits a request when fewer than ARGV[2]
/// requests were admitted in the last ARGV[1] microseconds; returns the
/// admission time (server clock, microseconds) or -1.
const SLIDING_WINDOW: &str = "local t = redis.call('time')\n\
     local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n\
     local window = tonumber(ARGV[1])\n\
     redis.call('zremrangebyscore', KEYS[1], '-inf', now - window)\n\
     if redis.call('zcard', KEYS[1]) < tonumber(ARGV[2]) then\n\
       redis.call('zadd', KEYS[1], now, ARGV[3])\n\
       redis.call('pexpire', KEYS[1], 60000)\n\
       return now\n\
     end\n\
     return -1";

/// 50 clients hammer a Lua sliding-window limiter and an INCR/EXPIRE
/// MULTI fixed-window limiter at the same time: neither ever admits more
/// than its limit per window.
#[test]
fn rate_limiters_never_exceed_their_limit() {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 60;
    const LIMIT: i64 = 25;
    const WINDOW_US: i64 = 100_000;
    let srv = KvikServer::start(&[]);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let mut c = conn(&srv);
            std::thread::spawn(move || {
                let mut admitted = Vec::new();
                let mut counters: Vec<(String, i64)> = Vec::new();
                for i in 0..ROUNDS {
                    let id = format!("{w}-{i}");
                    let r = c
                        .call(&[
                            "EVAL",
                            SLIDING_WINDOW,
                            "1",
                            "limiter:sliding",
                            &WINDOW_US.to_string(),
                            &LIMIT.to_string(),
                            &id,
                        ])
                        .expect("limiter");
                    let t = int_of(&r);
                    if t >= 0 {
                        admitted.push(t);
                    }
                    // Fixed window: one counter per 50 ms of client time.
                    let slot = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis()
                        / 50;
                    let key = format!("limiter:fixed:{slot}");
                    c.send(&["MULTI"]).unwrap();
                    c.send(&["INCR", key.as_str()]).unwrap();
                    c.send(&["EXPIRE", key.as_str(), "10"]).unwrap();
                    c.send(&["EXEC"]).unwrap();
                    for _ in 0..3 {
                        c.read_reply().unwrap();
                    }
                    let Reply::Array(v) = c.read_reply().unwrap() else {
                        panic!("EXEC reply")
                    };
                    counters.push((key, int_of(&v[0])));
                }
                (admitted, counters)
            })
        })
        .collect();
    let mut admitted: Vec<i64> = Vec::new();
    let mut per_key: HashMap<String, Vec<i64>> = HashMap::new();
    for w in workers {
        let (a, counters) = w.join().expect("worker");
        admitted.extend(a);
        for (k, n) in counters {
            per_key.entry(k).or_default().push(n);
        }
    }
    // Sliding window: any window of WINDOW_US ending at an admission holds
    // at most LIMIT admissions.
    admitted.sort_unstable();
    assert!(!admitted.is_empty());
    for (i, &t) in admitted.iter().enumerate() {
        let in_window = admitted[..=i]
            .iter()
            .rev()
            .take_while(|&&u| u > t - WINDOW_US)
            .count() as i64;
        assert!(
            in_window <= LIMIT,
            "{in_window} admissions within {WINDOW_US}us ending at {t}"
        );
    }
    // Fixed window: INCR results within one key are distinct, so exactly
    // min(n, LIMIT) requests of a window were admitted.
    for (k, mut v) in per_key {
        v.sort_unstable();
        let n = v.len();
        v.dedup();
        assert_eq!(v.len(), n, "duplicate INCR results for {k}");
        let admitted = v.iter().filter(|&&x| x <= LIMIT).count() as i64;
        assert!(admitted <= LIMIT);
    }
}

/// A `while true do end` script past busy-reply-threshold: other clients
/// get -BUSY, SCRIPT KILL stops it; a script that wrote cannot be killed;
/// FUNCTION KILL stops a function.
#[test]
fn busy_scripts_and_script_kill() {
    let srv = KvikServer::start(&[]);
    let mut admin = conn(&srv);
    assert_eq!(
        admin
            .call(&["CONFIG", "SET", "busy-reply-threshold", "100"])
            .unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
    let e = error_text(&admin.call(&["SCRIPT", "KILL"]).unwrap());
    assert!(e.starts_with("NOTBUSY"), "{e}");

    // 1. A read-only infinite loop, killed.
    let mut runner = conn(&srv);
    let t = std::thread::spawn(move || runner.call(&["EVAL", "while true do end", "0"]).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    let e = error_text(&admin.call(&["GET", "x"]).unwrap());
    assert_eq!(
        e,
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    let e = error_text(&admin.call(&["FUNCTION", "KILL"]).unwrap());
    assert!(e.starts_with("BUSY"), "{e}");
    assert_eq!(
        admin.call(&["SCRIPT", "KILL"]).unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
    let e = error_text(&t.join().unwrap());
    assert!(e.contains("Script killed by user with SCRIPT KILL"), "{e}");
    assert_eq!(
        admin.call(&["PING"]).unwrap(),
        Reply::Simple(b"PONG".to_vec())
    );

    // 2. pcall cannot swallow the kill.
    let mut runner = conn(&srv);
    let t = std::thread::spawn(move || {
        runner
            .call(&[
                "EVAL",
                "while true do pcall(function() while true do end end) end",
                "0",
            ])
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    admin.call(&["SCRIPT", "KILL"]).unwrap();
    let e = error_text(&t.join().unwrap());
    assert!(e.contains("Script killed by user"), "{e}");

    // 3. A script that wrote is unkillable; it finishes on its own.
    let mut runner = conn(&srv);
    let t = std::thread::spawn(move || {
        runner
            .call(&[
                "EVAL",
                "redis.call('set', 'w', 1) local t0 = os.clock() while os.clock() - t0 < 1 do end return 7",
                "0",
            ])
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    let e = error_text(&admin.call(&["SCRIPT", "KILL"]).unwrap());
    assert!(e.starts_with("UNKILLABLE"), "{e}");
    assert_eq!(t.join().unwrap(), Reply::Integer(7));
    assert_eq!(
        admin.call(&["GET", "w"]).unwrap(),
        Reply::Bulk(b"1".to_vec())
    );

    // 4. FUNCTION KILL.
    admin
        .call(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=spin\nredis.register_function('spin', function() while true do end end)",
        ])
        .unwrap();
    let mut runner = conn(&srv);
    let t = std::thread::spawn(move || runner.call(&["FCALL", "spin", "0"]).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    let e = error_text(&admin.call(&["GET", "x"]).unwrap());
    assert!(e.contains("FUNCTION KILL"), "{e}");
    let stats = admin.call(&["FUNCTION", "STATS"]).unwrap();
    let Reply::Array(v) = &stats else {
        panic!("{stats:?}")
    };
    assert!(matches!(v[1], Reply::Array(_)), "running_script: {stats:?}");
    let e = error_text(&admin.call(&["SCRIPT", "KILL"]).unwrap());
    assert!(e.starts_with("BUSY"), "{e}");
    assert_eq!(
        admin.call(&["FUNCTION", "KILL"]).unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
    let e = error_text(&t.join().unwrap());
    assert!(e.contains("killed"), "{e}");
    assert_eq!(
        admin.call(&["PING"]).unwrap(),
        Reply::Simple(b"PONG".to_vec())
    );
}

/// FUNCTION LOAD, FCALL, DUMP, FLUSH, RESTORE with each policy.
#[test]
fn function_dump_restore_round_trip() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    let lib_a = "#!lua name=liba\n\
        redis.register_function('hello', function(keys, args) return 'hello ' .. args[1] end)\n\
        redis.register_function{function_name='getter', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads a key'}";
    let lib_b = format!(
        "#!lua name=libb\n-- {}\nredis.register_function('incr2', function(keys) redis.call('incr', keys[1]) return redis.call('incr', keys[1]) end)",
        "padding ".repeat(50)
    );
    assert_eq!(
        c.call(&["FUNCTION", "LOAD", lib_a]).unwrap(),
        Reply::Bulk(b"liba".to_vec())
    );
    assert_eq!(
        c.call(&["FUNCTION", "LOAD", &lib_b]).unwrap(),
        Reply::Bulk(b"libb".to_vec())
    );
    assert_eq!(
        c.call(&["FCALL", "hello", "0", "world"]).unwrap(),
        Reply::Bulk(b"hello world".to_vec())
    );
    assert_eq!(
        c.call(&["FCALL", "incr2", "1", "n"]).unwrap(),
        Reply::Integer(2)
    );
    let Reply::Bulk(payload) = c.call(&["FUNCTION", "DUMP"]).unwrap() else {
        panic!("DUMP")
    };
    assert_eq!(payload[0], 245, "function opcode");
    assert_eq!(&payload[payload.len() - 10..payload.len() - 8], &[11, 0]);

    c.call(&["FUNCTION", "FLUSH"]).unwrap();
    assert!(c.call(&["FCALL", "hello", "0", "x"]).unwrap().is_error());
    assert_eq!(
        c.call(&[b"FUNCTION".as_slice(), b"RESTORE", &payload])
            .unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
    assert_eq!(
        c.call(&["FCALL_RO", "getter", "1", "n"]).unwrap(),
        Reply::Bulk(b"2".to_vec())
    );
    assert_eq!(
        c.call(&["FCALL", "incr2", "1", "n"]).unwrap(),
        Reply::Integer(4)
    );
    // APPEND (the default) refuses existing libraries; REPLACE and FLUSH
    // accept them.
    let e = error_text(
        &c.call(&[b"FUNCTION".as_slice(), b"RESTORE", &payload])
            .unwrap(),
    );
    assert!(e.contains("already exists"), "{e}");
    for policy in ["REPLACE", "FLUSH"] {
        assert_eq!(
            c.call(&[
                b"FUNCTION".as_slice(),
                b"RESTORE",
                &payload,
                policy.as_bytes()
            ])
            .unwrap(),
            Reply::Simple(b"OK".to_vec())
        );
    }
    let Reply::Array(libs) = c.call(&["FUNCTION", "LIST"]).unwrap() else {
        panic!("LIST")
    };
    assert_eq!(libs.len(), 2);
    // A corrupted payload is refused.
    let mut bad = payload.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let e = error_text(&c.call(&[b"FUNCTION".as_slice(), b"RESTORE", &bad]).unwrap());
    assert_eq!(e, "ERR DUMP payload version or checksum are wrong");
    // The same payload again after a dump of the restored state is equal.
    let Reply::Bulk(again) = c.call(&["FUNCTION", "DUMP"]).unwrap() else {
        panic!("DUMP")
    };
    assert_eq!(again, payload);
}

/// Scripts built to break the server get errors; the server stays up.
#[test]
fn hostile_scripts_do_not_crash() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    let cases = [
        // self-referencing and deeply nested replies
        "local t = {} t[1] = t return t",
        "local t = {} local c = t for i=1,100000 do c[1] = {} c = c[1] end return t",
        "local t = {} t.map = t return t",
        // huge unpack / deep recursion
        "return unpack({}, 1, 1e8)",
        "local function f() return 1 + f() end return f()",
        "return pcall(string.rep, 'x', 1e12)",
        // error objects of every type
        "error({})",
        "error(nil)",
        "error(setmetatable({}, {__tostring = function() error('x') end}))",
        "error(function() end)",
        // metatable tricks on shared tables
        "setmetatable(string, {})",
        "rawset(redis, 'call', nil)",
        "local mt = getmetatable('') mt.__index = nil",
        "return loadstring('\\27Lua')",
    ];
    for script in cases {
        let r = c.call(&["EVAL", script, "0"]).expect(script);
        // Any reply will do, as long as the server answers.
        let _ = r;
        assert_eq!(
            c.call(&["PING"]).unwrap(),
            Reply::Simple(b"PONG".to_vec()),
            "after {script}"
        );
    }
    // The sandbox still holds.
    let r = c.call(&["EVAL", "return redis.call('ping')", "0"]).unwrap();
    assert_eq!(r, Reply::Simple(b"PONG".to_vec()));
    let started = Instant::now();
    let r = c
        .call(&["EVAL", "local s = string.rep('a', 1000000) return #s", "0"])
        .unwrap();
    assert_eq!(r, Reply::Integer(1_000_000));
    assert!(started.elapsed() < Duration::from_secs(10));
}
