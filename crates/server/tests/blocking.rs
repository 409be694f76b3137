//! Blocking commands against the real binary: wake-up order, chaining,
//! timeouts, CLIENT UNBLOCK, disconnects, retyped keys, a many-producer /
//! many-consumer stress test proving exactly-once delivery, and a reliable
//! list queue (BLMOVE into a processing list) surviving a consumer crash.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{KvikServer, Reply, RespConn};

fn conn(srv: &KvikServer) -> RespConn {
    RespConn::connect(srv.port(), Duration::from_secs(20)).expect("connect")
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn arr(v: &[&str]) -> Reply {
    Reply::Array(v.iter().map(|s| bulk(s)).collect())
}

/// Waits until INFO reports `n` blocked clients.
fn wait_blocked(c: &mut RespConn, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let start = Instant::now();
    loop {
        let info = c.call(&["INFO", "clients"]).expect("info");
        let text = match &info {
            Reply::Bulk(b) | Reply::Verbatim(_, b) => String::from_utf8_lossy(b).to_string(),
            other => panic!("INFO reply {other:?}"),
        };
        if text.contains(&want) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never saw {want:?} in {text}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn first_blocked_is_first_served_and_before_the_pushers_next_command() {
    let srv = KvikServer::start(&[]);
    let mut a = conn(&srv);
    let mut b = conn(&srv);
    let mut p = conn(&srv);
    a.send(&["BLPOP", "q", "0"]).unwrap();
    wait_blocked(&mut p, 1);
    b.send(&["BLPOP", "other", "q", "0"]).unwrap();
    wait_blocked(&mut p, 2);
    assert_eq!(
        p.call(&["RPUSH", "q", "x", "y", "z"]).unwrap(),
        Reply::Integer(3)
    );
    // Both waiters were served before the pusher's reply: one element is
    // left, and nobody is blocked any more.
    assert_eq!(p.call(&["LRANGE", "q", "0", "-1"]).unwrap(), arr(&["z"]));
    assert_eq!(a.read_reply().unwrap(), arr(&["q", "x"]));
    assert_eq!(b.read_reply().unwrap(), arr(&["q", "y"]));
    wait_blocked(&mut p, 0);
}

#[test]
fn keys_are_tried_in_order_and_each_type_wakes_its_own_waiters() {
    let srv = KvikServer::start(&[]);
    let mut a = conn(&srv);
    let mut z = conn(&srv);
    let mut p = conn(&srv);
    a.send(&["BRPOP", "k1", "k2", "0"]).unwrap();
    z.send(&["BZPOPMAX", "z1", "k2", "0"]).unwrap();
    wait_blocked(&mut p, 2);
    // A string under a waited-on key serves nobody; the waiters stay.
    p.call(&["SET", "k2", "v"]).unwrap();
    p.call(&["DEL", "k2"]).unwrap();
    p.call(&["ZADD", "k2", "1", "m1", "5", "m5"]).unwrap();
    assert_eq!(z.read_reply().unwrap(), arr(&["k2", "m5", "5"]));
    p.call(&["DEL", "k2"]).unwrap();
    p.call(&["RPUSH", "k2", "a", "b"]).unwrap();
    assert_eq!(a.read_reply().unwrap(), arr(&["k2", "b"]));
    wait_blocked(&mut p, 0);
}

#[test]
fn blmove_chains_into_a_key_another_client_waits_on() {
    let srv = KvikServer::start(&[]);
    let mut mover = conn(&srv);
    let mut popper = conn(&srv);
    let mut p = conn(&srv);
    popper.send(&["BLPOP", "{t}dst", "0"]).unwrap();
    wait_blocked(&mut p, 1);
    mover
        .send(&["BLMOVE", "src", "{t}dst", "LEFT", "RIGHT", "0"])
        .unwrap();
    wait_blocked(&mut p, 2);
    p.call(&["LPUSH", "src", "job"]).unwrap();
    assert_eq!(mover.read_reply().unwrap(), bulk("job"));
    assert_eq!(popper.read_reply().unwrap(), arr(&["{t}dst", "job"]));
    assert_eq!(
        p.call(&["EXISTS", "src", "{t}dst"]).unwrap(),
        Reply::Integer(0)
    );
    // Timeouts answer a null array, even for BRPOPLPUSH.
    assert_eq!(
        p.call(&["BRPOPLPUSH", "none", "x", "0.05"]).unwrap(),
        Reply::NullArray
    );
    assert_eq!(
        p.call(&["BLPOP", "none", "0.05"]).unwrap(),
        Reply::NullArray
    );
}

#[test]
fn timeouts_unblock_and_resp3_nulls() {
    let srv = KvikServer::start(&[]);
    let mut a = conn(&srv);
    let mut p = conn(&srv);
    let t = Instant::now();
    assert_eq!(a.call(&["BLPOP", "q", "0.2"]).unwrap(), Reply::NullArray);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(190), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    a.call(&["HELLO", "3"]).unwrap();
    assert_eq!(
        a.call(&["BZMPOP", "0.01", "1", "z", "MIN"]).unwrap(),
        Reply::Null
    );
    // CLIENT UNBLOCK: as a timeout, then as an error.
    let id = match a.call(&["CLIENT", "ID"]).unwrap() {
        Reply::Integer(n) => n.to_string(),
        other => panic!("{other:?}"),
    };
    a.send(&["BLMPOP", "0", "2", "l1", "l2", "LEFT"]).unwrap();
    wait_blocked(&mut p, 1);
    assert_eq!(
        p.call(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]).unwrap(),
        Reply::Integer(1)
    );
    assert_eq!(a.read_reply().unwrap(), Reply::Null);
    a.send(&["BLMOVE", "l1", "l2", "LEFT", "LEFT", "0"])
        .unwrap();
    wait_blocked(&mut p, 1);
    assert_eq!(
        p.call(&["CLIENT", "UNBLOCK", &id, "ERROR"]).unwrap(),
        Reply::Integer(1)
    );
    assert_eq!(
        a.read_reply().unwrap(),
        Reply::Error(b"UNBLOCKED client unblocked via CLIENT UNBLOCK".to_vec())
    );
    assert_eq!(
        p.call(&["CLIENT", "UNBLOCK", &id]).unwrap(),
        Reply::Integer(0)
    );
    // Requests pipelined behind a blocked one run after it.
    a.send(&["BLPOP", "l1", "0"]).unwrap();
    a.send(&["PING"]).unwrap();
    wait_blocked(&mut p, 1);
    p.call(&["RPUSH", "l1", "v"]).unwrap();
    assert_eq!(a.read_reply().unwrap(), arr(&["l1", "v"]));
    assert_eq!(a.read_reply().unwrap(), Reply::Simple(b"PONG".to_vec()));
}

#[test]
fn a_disconnected_waiter_takes_nothing() {
    let srv = KvikServer::start(&[]);
    let mut p = conn(&srv);
    {
        let mut a = conn(&srv);
        a.send(&["BLPOP", "q", "0"]).unwrap();
        wait_blocked(&mut p, 1);
        a.shutdown();
    }
    wait_blocked(&mut p, 0);
    p.call(&["RPUSH", "q", "kept"]).unwrap();
    assert_eq!(p.call(&["LRANGE", "q", "0", "-1"]).unwrap(), arr(&["kept"]));
}

/// Many producers and consumers on separate connections and keys spread
/// over shards: every element is delivered exactly once.
#[test]
fn stress_every_element_is_delivered_exactly_once() {
    const PRODUCERS: usize = 6;
    const CONSUMERS: usize = 8;
    const PER_PRODUCER: usize = 1500;
    let keys = ["qa", "qb", "qc", "qd"];
    let srv = KvikServer::start(&[]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|i| {
            let mut c = conn(&srv);
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    // Alternate commands so every blocking form takes part.
                    let r = match i % 4 {
                        0 => c.call(&["BLPOP", "qa", "qb", "qc", "qd", "0.5"]),
                        1 => c.call(&["BRPOP", "qd", "qc", "qb", "qa", "0.5"]),
                        2 => c.call(&[
                            "BLMPOP", "0.5", "4", "qc", "qa", "qd", "qb", "LEFT", "COUNT", "3",
                        ]),
                        _ => c.call(&["BLMOVE", "qb", "qa", "LEFT", "RIGHT", "0.5"]),
                    }
                    .expect("pop");
                    match r {
                        Reply::NullArray | Reply::NullBulk => break,
                        Reply::Bulk(_) => {} // moved to qa: delivered later
                        Reply::Array(v) => match &v[1] {
                            Reply::Bulk(b) => got.push(b.clone()),
                            Reply::Array(items) => {
                                for it in items {
                                    if let Reply::Bulk(b) = it {
                                        got.push(b.clone());
                                    }
                                }
                            }
                            other => panic!("{other:?}"),
                        },
                        other => panic!("unexpected {other:?}"),
                    }
                }
                seen.lock().unwrap().extend(got);
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut c = conn(&srv);
            std::thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    let key = keys[(i * 7 + p) % keys.len()];
                    let v = format!("{p}:{i}");
                    if i % 2 == 0 {
                        c.call(&["RPUSH", key, &v]).unwrap();
                    } else {
                        c.call(&["LPUSH", key, &v]).unwrap();
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    // Consumers stop after 0.5 s without work; drain what the last BLMOVE
    // may have left in qa.
    for c in consumers {
        c.join().unwrap();
    }
    let mut c = conn(&srv);
    let mut all = seen.lock().unwrap().clone();
    for k in keys {
        if let Reply::Array(v) = c.call(&["LRANGE", k, "0", "-1"]).unwrap() {
            for it in v {
                if let Reply::Bulk(b) = it {
                    all.push(b);
                }
            }
        }
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), all.len(), "an element was delivered twice");
    assert_eq!(all.len(), PRODUCERS * PER_PRODUCER, "elements were lost");
    wait_blocked(&mut c, 0);
}

/// The reliable-queue pattern: BLMOVE jobs into a processing list, LREM
/// when done; a consumer that dies mid-job leaves its job in the
/// processing list, from which recovery requeues it.
#[test]
fn reliable_list_queue_survives_a_consumer_crash() {
    const JOBS: usize = 200;
    let srv = KvikServer::start(&[]);
    let mut p = conn(&srv);
    for i in 0..JOBS {
        p.call(&["LPUSH", "{q}jobs", &format!("job{i}")]).unwrap();
    }
    // A consumer takes one job and crashes before acknowledging it.
    {
        let mut crash = conn(&srv);
        let r = crash
            .call(&["BLMOVE", "{q}jobs", "{q}processing", "RIGHT", "LEFT", "1"])
            .unwrap();
        assert!(matches!(r, Reply::Bulk(_)));
        crash.shutdown();
    }
    let done = Arc::new(Mutex::new(Vec::new()));
    let worker = |c: &mut RespConn, done: &Arc<Mutex<Vec<Vec<u8>>>>| loop {
        let r = c
            .call(&["BLMOVE", "{q}jobs", "{q}processing", "RIGHT", "LEFT", "0.3"])
            .unwrap();
        let Reply::Bulk(job) = r else { break };
        done.lock().unwrap().push(job.clone());
        let removed = c
            .call(&[b"LREM".as_slice(), b"{q}processing", b"1", &job])
            .unwrap();
        assert_eq!(removed, Reply::Integer(1));
    };
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let mut c = conn(&srv);
            let done = done.clone();
            std::thread::spawn(move || worker(&mut c, &done))
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // Recovery: the crashed consumer's job is still in processing; move it
    // back and process it.
    assert_eq!(
        p.call(&["LLEN", "{q}processing"]).unwrap(),
        Reply::Integer(1)
    );
    while let Reply::Bulk(_) = p.call(&["RPOPLPUSH", "{q}processing", "{q}jobs"]).unwrap() {}
    worker(&mut p, &done);
    let done = done.lock().unwrap();
    let unique: HashSet<_> = done.iter().cloned().collect();
    assert_eq!(unique.len(), JOBS, "every job processed");
    assert_eq!(done.len(), JOBS, "no job processed twice here");
    assert_eq!(
        p.call(&["EXISTS", "{q}jobs", "{q}processing"]).unwrap(),
        Reply::Integer(0)
    );
}

#[test]
fn swapdb_exec_and_lmove_make_keys_ready() {
    let srv = KvikServer::start(&[]);
    let mut a = conn(&srv);
    let mut p = conn(&srv);
    // SWAPDB brings a list under the waited key.
    a.send(&["BLPOP", "sw", "0"]).unwrap();
    wait_blocked(&mut p, 1);
    p.call(&["SELECT", "1"]).unwrap();
    p.call(&["RPUSH", "sw", "from1"]).unwrap();
    p.call(&["SWAPDB", "0", "1"]).unwrap();
    assert_eq!(a.read_reply().unwrap(), arr(&["sw", "from1"]));
    p.call(&["SELECT", "0"]).unwrap();
    // Waiters are served after EXEC, seeing the transaction's end state.
    a.send(&["BLPOP", "tx", "0"]).unwrap();
    wait_blocked(&mut p, 1);
    p.call(&["MULTI"]).unwrap();
    p.call(&["RPUSH", "tx", "1", "2"]).unwrap();
    p.call(&["LPOP", "tx"]).unwrap();
    let exec = p.call(&["EXEC"]).unwrap();
    assert_eq!(exec, Reply::Array(vec![Reply::Integer(2), bulk("1")]));
    assert_eq!(a.read_reply().unwrap(), arr(&["tx", "2"]));
    // LMOVE into a waited-on key.
    a.send(&["BLMPOP", "0", "1", "dst", "RIGHT", "COUNT", "5"])
        .unwrap();
    wait_blocked(&mut p, 1);
    p.call(&["RPUSH", "srcl", "m"]).unwrap();
    p.call(&["LMOVE", "srcl", "dst", "LEFT", "LEFT"]).unwrap();
    assert_eq!(
        a.read_reply().unwrap(),
        Reply::Array(vec![bulk("dst"), arr(&["m"])])
    );
}

fn entries_of(r: &Reply) -> usize {
    // [[key, [[id, [f, v]], ...]], ...] → number of entries of the first key
    match r {
        Reply::Array(keys) => match &keys[0] {
            Reply::Array(kv) => match &kv[1] {
                Reply::Array(es) => es.len(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        },
        other => panic!("not an XREAD reply: {other:?}"),
    }
}

#[test]
fn xread_block_serves_every_reader_and_only_new_entries() {
    let srv = KvikServer::start(&[]);
    let mut r1 = conn(&srv);
    let mut r2 = conn(&srv);
    let mut p = conn(&srv);
    p.call(&["XADD", "s", "1-1", "f", "old"]).unwrap();
    r1.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])
        .unwrap();
    r2.send(&[
        "XREAD", "COUNT", "5", "BLOCK", "5000", "STREAMS", "other", "s", "0-0", "1-1",
    ])
    .unwrap();
    wait_blocked(&mut p, 2);
    p.call(&["XADD", "s", "2-1", "f", "new"]).unwrap();
    let a = r1.read_reply().unwrap();
    let b = r2.read_reply().unwrap();
    assert_eq!(entries_of(&a), 1, "{a:?}");
    assert_eq!(a, b);
    // Timeout: a null array.
    assert_eq!(
        p.call(&["XREAD", "BLOCK", "30", "STREAMS", "s", "$"])
            .unwrap(),
        Reply::NullArray
    );
    // Inside MULTI a blocking XREAD answers at once.
    p.call(&["MULTI"]).unwrap();
    p.call(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])
        .unwrap();
    assert_eq!(
        p.call(&["EXEC"]).unwrap(),
        Reply::Array(vec![Reply::NullArray])
    );
}

/// Sends a blocking `XREADGROUP GROUP g <consumer> ... STREAMS js >`.
fn group_read(c: &mut RespConn, consumer: &str) {
    c.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        consumer,
        "BLOCK",
        "0",
        "STREAMS",
        "js",
        ">",
    ])
    .unwrap();
}

/// Reads an error reply starting with `prefix`.
fn expect_error(c: &mut RespConn, prefix: &str) {
    match c.read_reply().unwrap() {
        Reply::Error(e) => assert!(
            e.starts_with(prefix.as_bytes()),
            "{}",
            String::from_utf8_lossy(&e)
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn xreadgroup_block_consumers_share_entries_and_see_deletion() {
    let srv = KvikServer::start(&[]);
    let mut c1 = conn(&srv);
    let mut c2 = conn(&srv);
    let mut p = conn(&srv);
    p.call(&["XGROUP", "CREATE", "js", "g", "$", "MKSTREAM"])
        .unwrap();
    group_read(&mut c1, "c1");
    group_read(&mut c2, "c2");
    wait_blocked(&mut p, 2);
    p.call(&["XADD", "js", "5-1", "job", "1"]).unwrap();
    // The first consumer gets the entry; the second keeps waiting.
    assert_eq!(entries_of(&c1.read_reply().unwrap()), 1);
    wait_blocked(&mut p, 1);
    p.call(&["XADD", "js", "5-2", "job", "2"]).unwrap();
    assert_eq!(entries_of(&c2.read_reply().unwrap()), 1);
    // Deleting the stream fails a waiting XREADGROUP with NOGROUP;
    // replacing it with a string gives WRONGTYPE.
    group_read(&mut c1, "c1");
    wait_blocked(&mut p, 1);
    p.call(&["DEL", "js"]).unwrap();
    expect_error(&mut c1, "NOGROUP");
    p.call(&["XGROUP", "CREATE", "js", "g", "$", "MKSTREAM"])
        .unwrap();
    group_read(&mut c1, "c1");
    wait_blocked(&mut p, 1);
    p.call(&["SET", "js", "x"]).unwrap();
    expect_error(&mut c1, "WRONGTYPE");
    // A plain XREAD keeps waiting when its stream is deleted.
    p.call(&["DEL", "js"]).unwrap();
    p.call(&["XADD", "js", "1-1", "a", "b"]).unwrap();
    c2.send(&["XREAD", "BLOCK", "0", "STREAMS", "js", "$"])
        .unwrap();
    wait_blocked(&mut p, 1);
    p.call(&["DEL", "js"]).unwrap();
    p.call(&["XADD", "js", "9-1", "a", "b"]).unwrap();
    assert_eq!(entries_of(&c2.read_reply().unwrap()), 1);
}

/// A blocking command is counted once in INFO commandstats whether it is
/// served at once, after blocking, on timeout or by CLIENT UNBLOCK.
#[test]
fn blocked_commands_are_counted_once() {
    let srv = KvikServer::start(&[]);
    let mut a = conn(&srv);
    let mut p = conn(&srv);
    p.call(&["RPUSH", "q", "now"]).unwrap();
    a.call(&["BLPOP", "q", "0"]).unwrap(); // served at once
    a.send(&["BLPOP", "q", "0"]).unwrap(); // served after blocking
    wait_blocked(&mut p, 1);
    p.call(&["RPUSH", "q", "later"]).unwrap();
    a.read_reply().unwrap();
    a.call(&["BLPOP", "q", "0.01"]).unwrap(); // timeout
    let id = match a.call(&["CLIENT", "ID"]).unwrap() {
        Reply::Integer(n) => n.to_string(),
        other => panic!("{other:?}"),
    };
    a.send(&["BLPOP", "q", "0"]).unwrap(); // unblocked
    wait_blocked(&mut p, 1);
    p.call(&["CLIENT", "UNBLOCK", &id]).unwrap();
    a.read_reply().unwrap();
    let info = match p.call(&["INFO", "commandstats"]).unwrap() {
        Reply::Bulk(b) | Reply::Verbatim(_, b) => String::from_utf8_lossy(&b).to_string(),
        other => panic!("{other:?}"),
    };
    let line = info
        .lines()
        .find(|l| l.starts_with("cmdstat_blpop:"))
        .unwrap_or_else(|| panic!("no blpop stats in {info}"));
    assert!(line.starts_with("cmdstat_blpop:calls=4,"), "{line}");
}

/// A blocked client that keeps sending is bounded by
/// client-query-buffer-limit like any other: it is closed, not buffered
/// without end.
#[test]
fn blocked_client_sending_too_much_is_closed() {
    let srv = KvikServer::start(&["--client-query-buffer-limit", "1mb"]);
    let mut a = conn(&srv);
    let mut p = conn(&srv);
    a.send(&["BLPOP", "q", "0"]).unwrap();
    wait_blocked(&mut p, 1);
    // An unfinished 4 MB argument: the parser keeps it all pending.
    let mut big = b"*2\r\n$3\r\nSET\r\n$4194304\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 << 20));
    let _ = a.send_raw(&big);
    wait_blocked(&mut p, 0);
    assert!(a.read_reply().is_err(), "the connection is closed");
    // Nothing was popped on its behalf.
    p.call(&["RPUSH", "q", "v"]).unwrap();
    assert_eq!(p.call(&["LLEN", "q"]).unwrap(), Reply::Integer(1));
}
