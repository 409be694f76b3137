//! Stream integration tests with the real binary and the `redis` crate: a
//! job queue on a consumer group (producers, competing consumers, a
//! consumer that dies mid-job and whose jobs are reclaimed with
//! XAUTOCLAIM), and the Redis 7.2 behaviours the 7.0 oracle of the
//! differential tests cannot check.

mod support;

use redis::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::KvikServer;

fn client(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// Runs the command `cmd` (name first) and returns its typed reply.
fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, cmd: &[&str]) -> T {
    redis::cmd(cmd[0]).arg(&cmd[1..]).query(c).unwrap()
}

/// Runs the command `cmd` (name first), which must fail, and returns the error.
fn q_err(c: &mut redis::Connection, cmd: &[&str]) -> redis::RedisError {
    redis::cmd(cmd[0])
        .arg(&cmd[1..])
        .query::<Value>(c)
        .unwrap_err()
}

fn bulk(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        other => panic!("not a string: {other:?}"),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

/// A job: (entry ID, job number from its `n` field).
fn parse_entries(v: &Value) -> Vec<(String, u64)> {
    array(v)
        .iter()
        .map(|e| {
            let e = array(e);
            let id = String::from_utf8(bulk(&e[0])).unwrap();
            let fields = array(&e[1]);
            assert_eq!(bulk(&fields[0]), b"n");
            let n = String::from_utf8(bulk(&fields[1]))
                .unwrap()
                .parse()
                .unwrap();
            (id, n)
        })
        .collect()
}

/// XREADGROUP reply → jobs of the single stream read (empty on nil).
fn read_jobs(v: &Value) -> Vec<(String, u64)> {
    match v {
        Value::Nil => Vec::new(),
        Value::Array(streams) => {
            assert_eq!(streams.len(), 1);
            let s = array(&streams[0]);
            assert_eq!(bulk(&s[0]), b"jobs");
            parse_entries(&s[1])
        }
        other => panic!("unexpected XREADGROUP reply {other:?}"),
    }
}

/// The value of `field` in a flat RESP2 map reply.
fn field<'a>(map: &'a [Value], name: &str) -> &'a Value {
    let i = map
        .iter()
        .step_by(2)
        .position(|k| bulk(k) == name.as_bytes())
        .unwrap_or_else(|| panic!("no field {name} in {map:?}"));
    &map[2 * i + 1]
}

#[test]
fn job_queue_with_crash_and_autoclaim() {
    const PRODUCERS: u64 = 3;
    const PER_PRODUCER: u64 = 200;
    const TOTAL: u64 = PRODUCERS * PER_PRODUCER;
    let srv = KvikServer::start(&[]);
    let port = srv.port();
    let mut admin = client(port);
    let _: () = q(
        &mut admin,
        &["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"],
    );

    // Producers.
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = client(port);
                for i in 0..PER_PRODUCER {
                    let n = p * PER_PRODUCER + i;
                    let id: String = q(&mut c, &["XADD", "jobs", "*", "n", &n.to_string()]);
                    assert!(id.contains('-'));
                }
            })
        })
        .collect();

    // A consumer that takes jobs and dies before acknowledging them.
    let crashed: Vec<(String, u64)> = {
        let mut c = client(port);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.is_empty() && Instant::now() < deadline {
            let v: Value = q(
                &mut c,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "workers",
                    "crasher",
                    "COUNT",
                    "10",
                    "STREAMS",
                    "jobs",
                    ">",
                ],
            );
            got = read_jobs(&v);
            if got.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(!got.is_empty(), "the crashing consumer never got a job");
        got
        // The connection drops here without XACK.
    };

    // Competing consumers.
    let done = Arc::new(Mutex::new(Vec::<u64>::new()));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut c = client(port);
                let name = format!("worker-{w}");
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut idle_rounds = 0;
                while Instant::now() < deadline {
                    let v: Value = q(
                        &mut c,
                        &[
                            "XREADGROUP",
                            "GROUP",
                            "workers",
                            &name,
                            "COUNT",
                            "7",
                            "BLOCK",
                            "100",
                            "STREAMS",
                            "jobs",
                            ">",
                        ],
                    );
                    let jobs = read_jobs(&v);
                    if jobs.is_empty() {
                        // Nothing for 100 ms (the BLOCK timeout) several
                        // times in a row: the producers are done.
                        idle_rounds += 1;
                        if idle_rounds > 5 {
                            break;
                        }
                        continue;
                    }
                    idle_rounds = 0;
                    for (id, n) in jobs {
                        done.lock().unwrap().push(n);
                        let acked: i64 = q(&mut c, &["XACK", "jobs", "workers", &id]);
                        assert_eq!(acked, 1, "job {id} acknowledged twice");
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    for w in workers {
        w.join().unwrap();
    }

    // The crashed consumer's jobs are still pending, only for it.
    let summary: Value = q(&mut admin, &["XPENDING", "jobs", "workers"]);
    let s = array(&summary);
    assert_eq!(s[0], Value::Int(crashed.len() as i64));
    let owners = array(&s[3]);
    assert_eq!(owners.len(), 1);
    assert_eq!(bulk(&array(&owners[0])[0]), b"crasher");

    // A rescuer reclaims them with XAUTOCLAIM, a few at a time.
    let mut rescuer = client(port);
    let mut cursor = "0-0".to_string();
    let mut reclaimed = Vec::new();
    loop {
        let v: Value = q(
            &mut rescuer,
            &[
                "XAUTOCLAIM",
                "jobs",
                "workers",
                "rescuer",
                "0",
                &cursor,
                "COUNT",
                "3",
            ],
        );
        let parts = array(&v);
        assert_eq!(parts.len(), 3);
        assert!(array(&parts[2]).is_empty(), "no job was deleted");
        for (id, n) in parse_entries(&parts[1]) {
            reclaimed.push(n);
            done.lock().unwrap().push(n);
            let acked: i64 = q(&mut rescuer, &["XACK", "jobs", "workers", &id]);
            assert_eq!(acked, 1);
        }
        cursor = String::from_utf8(bulk(&parts[0])).unwrap();
        if cursor == "0-0" {
            break;
        }
    }
    let mut want: Vec<u64> = crashed.iter().map(|(_, n)| *n).collect();
    want.sort_unstable();
    reclaimed.sort_unstable();
    assert_eq!(reclaimed, want);

    // Every job was processed, and nothing is pending.
    let done = done.lock().unwrap();
    let seen: HashSet<u64> = done.iter().copied().collect();
    assert_eq!(seen.len() as u64, TOTAL);
    assert!((0..TOTAL).all(|n| seen.contains(&n)));
    let summary: Value = q(&mut admin, &["XPENDING", "jobs", "workers"]);
    assert_eq!(array(&summary)[0], Value::Int(0));
    assert_eq!(array(&summary)[3], Value::Nil);
    let len: i64 = q(&mut admin, &["XLEN", "jobs"]);
    assert_eq!(len as u64, TOTAL);
    let groups: Value = q(&mut admin, &["XINFO", "GROUPS", "jobs"]);
    let g = array(&array(&groups)[0]);
    assert_eq!(field(g, "pending"), &Value::Int(0));
    assert_eq!(field(g, "entries-read"), &Value::Int(TOTAL as i64));
    assert_eq!(field(g, "lag"), &Value::Int(0));
}

/// Redis 7.2 behaviours that differ from the 7.0 oracle.
#[test]
fn redis_7_2_specifics() {
    let srv = KvikServer::start(&[]);
    let mut c = client(srv.port());
    let _: String = q(&mut c, &["XADD", "s", "5-0", "a", "1"]);
    let _: i64 = q(&mut c, &["XDEL", "s", "5-0"]);
    // XSETID below max-deleted-entry-id is refused.
    let e = q_err(&mut c, &["XSETID", "s", "4-0"]);
    assert!(
        e.to_string()
            .contains("The ID specified in XSETID is smaller than current max_deleted_entry_id"),
        "{e}"
    );
    let _: () = q(&mut c, &["XSETID", "s", "6-0"]);

    // The unbalanced STREAMS error quotes the lower-case command name.
    let e = q_err(&mut c, &["XREAD", "STREAMS", "a", "b", "c"]);
    assert!(
        e.to_string().contains(
            "Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."
        ),
        "{e}"
    );

    // XINFO CONSUMERS reports `inactive` (-1 before any read).
    let _: String = q(&mut c, &["XADD", "s", "7-0", "a", "1"]);
    let _: () = q(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let _: i64 = q(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "idle"]);
    let _: Value = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "busy", "STREAMS", "s", ">"],
    );
    let v: Value = q(&mut c, &["XINFO", "CONSUMERS", "s", "g"]);
    let consumers = array(&v);
    assert_eq!(consumers.len(), 2);
    let busy = array(&consumers[0]);
    assert_eq!(bulk(field(busy, "name")), b"busy");
    assert!(matches!(field(busy, "inactive"), Value::Int(n) if *n >= 0));
    let idle = array(&consumers[1]);
    assert_eq!(field(idle, "inactive"), &Value::Int(-1));
    assert_eq!(busy.len(), 8);

    // XINFO STREAM FULL consumers carry active-time.
    let v: Value = q(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
    let groups = array(field(array(&v), "groups"));
    let cons = array(field(array(&groups[0]), "consumers"));
    assert_eq!(field(array(&cons[1]), "active-time"), &Value::Int(-1));
    assert!(matches!(field(array(&cons[0]), "active-time"), Value::Int(n) if *n > 0));
}

/// XREAD BLOCK with `$` only returns entries added after it blocked, and
/// XREADGROUP BLOCK wakes for a new entry.
#[test]
fn blocking_reads_wake_on_xadd() {
    let srv = KvikServer::start(&[]);
    let port = srv.port();
    let mut c = client(port);
    let _: String = q(&mut c, &["XADD", "s", "1-0", "old", "1"]);
    let _: () = q(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]);
    let reader = std::thread::spawn(move || {
        let mut r = client(port);
        let v: Value = q(&mut r, &["XREAD", "BLOCK", "5000", "STREAMS", "s", "$"]);
        v
    });
    let group_reader = std::thread::spawn(move || {
        let mut r = client(port);
        let v: Value = q(
            &mut r,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "5000",
                "STREAMS",
                "s",
                ">",
            ],
        );
        v
    });
    std::thread::sleep(Duration::from_millis(300));
    let _: String = q(&mut c, &["XADD", "s", "2-0", "new", "2"]);
    for v in [reader.join().unwrap(), group_reader.join().unwrap()] {
        let streams = array(&v);
        let s = array(&streams[0]);
        let entries = parse_entries_raw(&s[1]);
        assert_eq!(entries, vec!["2-0".to_string()]);
    }
    let pending: Value = q(&mut c, &["XPENDING", "s", "g"]);
    assert_eq!(array(&pending)[0], Value::Int(1));
    // A timeout replies nil.
    let v: Value = q(&mut c, &["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]);
    assert_eq!(v, Value::Nil);
}

/// Entry IDs of an entries array.
fn parse_entries_raw(v: &Value) -> Vec<String> {
    array(v)
        .iter()
        .map(|e| String::from_utf8(bulk(&array(e)[0])).unwrap())
        .collect()
}
