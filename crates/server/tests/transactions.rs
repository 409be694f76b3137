//! Transaction integration tests: EXEC atomicity across worker threads and
//! WATCH-based optimistic locking under contention.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{KvikServer, Reply, RespConn};

fn conn(srv: &KvikServer) -> RespConn {
    RespConn::connect(srv.port(), Duration::from_secs(10)).expect("connect")
}

fn int_of(r: &Reply) -> i64 {
    match r {
        Reply::NullBulk => 0,
        Reply::Bulk(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
        Reply::Integer(n) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

/// `MULTI; INCR a; INCR b; EXEC` in a loop while readers run `MGET a b`:
/// no reader ever sees the two counters differ. `a` and `b` hash to
/// different slots, so the transaction spans two shards.
#[test]
fn exec_is_atomic_for_concurrent_readers() {
    let srv = KvikServer::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = conn(&srv);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = c.call(&["MGET", "a", "b"]).expect("mget");
                    let Reply::Array(v) = r else {
                        panic!("MGET reply {r:?}")
                    };
                    let (a, b) = (int_of(&v[0]), int_of(&v[1]));
                    assert_eq!(a, b, "reader saw a half-applied transaction");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut w = conn(&srv);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < deadline {
        assert_eq!(w.call(&["MULTI"]).unwrap(), Reply::Simple(b"OK".to_vec()));
        assert_eq!(
            w.call(&["INCR", "a"]).unwrap(),
            Reply::Simple(b"QUEUED".to_vec())
        );
        assert_eq!(
            w.call(&["INCR", "b"]).unwrap(),
            Reply::Simple(b"QUEUED".to_vec())
        );
        n += 1;
        assert_eq!(
            w.call(&["EXEC"]).unwrap(),
            Reply::Array(vec![Reply::Integer(n), Reply::Integer(n)])
        );
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader panicked") > 0);
    }
}

/// Several clients increment one counter with WATCH/GET/MULTI/SET/EXEC,
/// retrying on a null EXEC: the final value equals the number of
/// successful EXECs, and some EXECs did fail under contention.
#[test]
fn watch_optimistic_counter() {
    let srv = KvikServer::start(&[]);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = conn(&srv);
            std::thread::spawn(move || {
                let (mut ok, mut aborted) = (0i64, 0i64);
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline && ok < 300 {
                    c.call(&["WATCH", "counter"]).unwrap();
                    let v = int_of(&c.call(&["GET", "counter"]).unwrap());
                    c.call(&["MULTI"]).unwrap();
                    c.call(&["SET", "counter", &(v + 1).to_string()]).unwrap();
                    match c.call(&["EXEC"]).unwrap() {
                        Reply::Array(_) => ok += 1,
                        Reply::NullArray => aborted += 1,
                        other => panic!("EXEC reply {other:?}"),
                    }
                }
                (ok, aborted)
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        let (ok, _aborted) = w.join().expect("worker panicked");
        total += ok;
    }
    let mut c = conn(&srv);
    assert_eq!(int_of(&c.call(&["GET", "counter"]).unwrap()), total);
    assert!(total > 0);
}

/// A watched key expiring, or being flushed, aborts EXEC; a flush of a
/// watched key that did not exist does not.
#[test]
fn watch_expiry_and_flush() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    let null = Reply::NullArray;
    c.call(&["SET", "k", "v", "PX", "50"]).unwrap();
    c.call(&["WATCH", "k"]).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    c.call(&["MULTI"]).unwrap();
    c.call(&["PING"]).unwrap();
    assert_eq!(c.call(&["EXEC"]).unwrap(), null);

    c.call(&["SET", "k", "v"]).unwrap();
    c.call(&["WATCH", "k", "missing"]).unwrap();
    let mut other = conn(&srv);
    other.call(&["FLUSHALL"]).unwrap();
    c.call(&["MULTI"]).unwrap();
    c.call(&["PING"]).unwrap();
    assert_eq!(c.call(&["EXEC"]).unwrap(), null);

    c.call(&["WATCH", "missing"]).unwrap();
    other.call(&["FLUSHDB"]).unwrap();
    c.call(&["MULTI"]).unwrap();
    c.call(&["PING"]).unwrap();
    assert_eq!(
        c.call(&["EXEC"]).unwrap(),
        Reply::Array(vec![Reply::Simple(b"PONG".to_vec())])
    );
}
