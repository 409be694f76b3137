//! Pub/Sub integration tests: RESP2 through the `redis` crate, RESP3 push
//! interleaving over raw sockets, cleanup on disconnect, and the pubsub
//! output buffer limit bounding a subscriber that never reads.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{KvikServer, Reply, RespConn};

fn client(srv: &KvikServer) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", srv.port()))
        .expect("client")
        .get_connection()
        .expect("connect")
}

fn conn(srv: &KvikServer) -> RespConn {
    RespConn::connect(srv.port(), Duration::from_secs(10)).expect("connect")
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

/// Polls `f` until it is true or `timeout` passes.
fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn resp2_channels_and_patterns_with_redis_crate() {
    let srv = KvikServer::start(&[]);
    let mut sub_conn = client(&srv);
    let mut publisher = client(&srv);
    let mut ps = sub_conn.as_pubsub();
    ps.subscribe("news").unwrap();
    ps.psubscribe("n*").unwrap();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    // One channel subscription plus one matching pattern.
    assert_eq!(receivers, 2);
    ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let m1 = ps.get_message().unwrap();
    assert_eq!(m1.get_channel_name(), "news");
    assert_eq!(m1.get_payload::<String>().unwrap(), "hello");
    assert!(!m1.from_pattern());
    let m2 = ps.get_message().unwrap();
    assert!(m2.from_pattern());
    assert_eq!(m2.get_pattern::<String>().unwrap(), "n*");
    assert_eq!(m2.get_payload::<String>().unwrap(), "hello");

    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .arg("other")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(numsub.len(), 4);
    assert_eq!(redis::from_redis_value::<i64>(&numsub[1]).unwrap(), 1);
    assert_eq!(redis::from_redis_value::<i64>(&numsub[3]).unwrap(), 0);
    let numpat: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(numpat, 1);
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("ne*")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(channels, vec!["news".to_string()]);

    ps.unsubscribe("news").unwrap();
    ps.punsubscribe("n*").unwrap();
    drop(ps);
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("again")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(receivers, 0);
}

#[test]
fn resp2_subscribed_mode_restrictions() {
    let srv = KvikServer::start(&[]);
    let mut c = conn(&srv);
    assert_eq!(
        c.call(&["UNSUBSCRIBE"]).unwrap(),
        Reply::Array(vec![
            bulk("unsubscribe"),
            Reply::NullBulk,
            Reply::Integer(0)
        ])
    );
    c.send(&["SUBSCRIBE", "a", "b"]).unwrap();
    assert_eq!(
        c.read_reply().unwrap(),
        Reply::Array(vec![bulk("subscribe"), bulk("a"), Reply::Integer(1)])
    );
    assert_eq!(
        c.read_reply().unwrap(),
        Reply::Array(vec![bulk("subscribe"), bulk("b"), Reply::Integer(2)])
    );
    assert_eq!(
        c.call(&["GET", "x"]).unwrap(),
        Reply::Error(
            b"ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".to_vec()
        )
    );
    assert_eq!(
        c.call(&["PING"]).unwrap(),
        Reply::Array(vec![bulk("pong"), bulk("")])
    );
    assert_eq!(
        c.call(&["PING", "hi"]).unwrap(),
        Reply::Array(vec![bulk("pong"), bulk("hi")])
    );
    // RESET leaves subscribed mode.
    assert_eq!(
        c.call(&["RESET"]).unwrap(),
        Reply::Simple(b"RESET".to_vec())
    );
    assert_eq!(c.call(&["PING"]).unwrap(), Reply::Simple(b"PONG".to_vec()));
    assert_eq!(c.call(&["PUBLISH", "a", "x"]).unwrap(), Reply::Integer(0));
}

#[test]
fn resp3_pushes_interleave_with_replies() {
    let srv = KvikServer::start(&[]);
    let mut sub = conn(&srv);
    let mut publisher = conn(&srv);
    assert!(matches!(sub.call(&["HELLO", "3"]).unwrap(), Reply::Map(_)));
    let confirm = sub.call(&["SUBSCRIBE", "ch"]).unwrap();
    assert_eq!(
        confirm,
        Reply::Push(vec![bulk("subscribe"), bulk("ch"), Reply::Integer(1)])
    );
    // Any command may run while subscribed in RESP3.
    assert_eq!(
        sub.call(&["SET", "k", "v"]).unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
    assert_eq!(
        publisher.call(&["PUBLISH", "ch", "m1"]).unwrap(),
        Reply::Integer(1)
    );
    // The push was queued before GET arrived, so it precedes the reply.
    sub.send(&["GET", "k"]).unwrap();
    assert_eq!(
        sub.read_reply().unwrap(),
        Reply::Push(vec![bulk("message"), bulk("ch"), bulk("m1")])
    );
    assert_eq!(sub.read_reply().unwrap(), bulk("v"));
    // A message to oneself arrives before the PUBLISH reply, as in Redis.
    sub.send(&["PUBLISH", "ch", "self"]).unwrap();
    assert_eq!(
        sub.read_reply().unwrap(),
        Reply::Push(vec![bulk("message"), bulk("ch"), bulk("self")])
    );
    assert_eq!(sub.read_reply().unwrap(), Reply::Integer(1));
    assert_eq!(
        sub.call(&["UNSUBSCRIBE"]).unwrap(),
        Reply::Push(vec![bulk("unsubscribe"), bulk("ch"), Reply::Integer(0)])
    );
    assert_eq!(
        sub.call(&["UNSUBSCRIBE"]).unwrap(),
        Reply::Push(vec![bulk("unsubscribe"), Reply::Null, Reply::Integer(0)])
    );
    // Shard channels.
    sub.call(&["SSUBSCRIBE", "s"]).unwrap();
    assert_eq!(
        publisher.call(&["SPUBLISH", "s", "x"]).unwrap(),
        Reply::Integer(1)
    );
    assert_eq!(
        sub.read_reply().unwrap(),
        Reply::Push(vec![bulk("smessage"), bulk("s"), bulk("x")])
    );
}

#[test]
fn subscriptions_are_dropped_on_disconnect() {
    let srv = KvikServer::start(&[]);
    let mut publisher = conn(&srv);
    {
        let mut sub = conn(&srv);
        sub.call(&["SUBSCRIBE", "gone"]).unwrap();
        sub.call(&["PSUBSCRIBE", "g*"]).unwrap();
        assert_eq!(
            publisher.call(&["PUBLISH", "gone", "x"]).unwrap(),
            Reply::Integer(2)
        );
        sub.shutdown();
    }
    assert!(wait_for(Duration::from_secs(5), || {
        publisher.call(&["PUBLISH", "gone", "x"]).unwrap() == Reply::Integer(0)
    }));
    assert_eq!(
        publisher.call(&["PUBSUB", "NUMPAT"]).unwrap(),
        Reply::Integer(0)
    );
}

#[test]
fn subscribers_are_the_pubsub_client_type() {
    let srv = KvikServer::start(&[]);
    let mut admin = conn(&srv);
    let mut sub = conn(&srv);
    sub.call(&["SUBSCRIBE", "news"]).unwrap();
    let reply = admin.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).unwrap();
    let Reply::Bulk(list) = reply else {
        panic!("CLIENT LIST answered {reply:?}");
    };
    let list = String::from_utf8(list).unwrap();
    assert_eq!(list.lines().count(), 1, "exactly the subscriber: {list}");
    assert!(list.contains("sub=1"), "{list}");
    assert_eq!(
        admin.call(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap(),
        Reply::Integer(1)
    );
    assert!(wait_for(Duration::from_secs(5), || {
        admin.call(&["PUBLISH", "news", "x"]).unwrap() == Reply::Integer(0)
    }));
}

/// The peak resident set size of the server process, in bytes.
fn server_peak_rss(c: &mut RespConn) -> u64 {
    let Reply::Bulk(info) = c.call(&["INFO", "server"]).unwrap() else {
        panic!("INFO reply");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("process_id")
        .trim()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .expect("VmHWM")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmHWM number");
    kb * 1024
}

#[test]
fn slow_subscriber_is_disconnected_and_memory_stays_bounded() {
    let srv = KvikServer::start(&[]);
    let mut publisher = conn(&srv);
    let mut sub = TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
    sub.write_all(b"SUBSCRIBE flood\r\n").unwrap();
    let mut buf = [0u8; 64];
    let mut got = 0;
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while got < b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n".len() {
        got += sub.read(&mut buf[got..]).unwrap();
    }
    // From now on the subscriber never reads. Publish up to 1 GB in 1 MB
    // messages (bounded in time); the server must drop the subscriber once
    // its backlog passes the 32 MB pubsub hard limit.
    let payload = vec![b'x'; 1 << 20];
    let started = Instant::now();
    let mut sent = 0;
    let mut dropped_after = None;
    while sent < 1024 && started.elapsed() < Duration::from_secs(20) {
        let n = publisher
            .call(&[b"PUBLISH".as_slice(), b"flood", &payload])
            .unwrap();
        sent += 1;
        // Keep publishing after the drop: the whole ~1 GB must pass
        // through without the server's memory following it.
        if n == Reply::Integer(0) && dropped_after.is_none() {
            dropped_after = Some(sent);
        }
    }
    let dropped_after = dropped_after.expect("the subscriber was never disconnected");
    assert!(
        dropped_after < 200,
        "disconnected only after {dropped_after} MB"
    );
    let peak = server_peak_rss(&mut publisher);
    eprintln!(
        "subscriber dropped after {dropped_after} MB published ({sent} MB in all); server peak RSS {} MB",
        peak >> 20
    );
    assert!(peak < 400 << 20, "server peak RSS {peak} bytes");
    // The subscriber's socket is closed by the server: draining it ends.
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = vec![0u8; 1 << 20];
    let closed = loop {
        match sub.read(&mut sink) {
            Ok(0) | Err(_) => break true,
            Ok(_) => {
                if started.elapsed() > Duration::from_secs(28) {
                    break false;
                }
            }
        }
    };
    assert!(closed, "subscriber connection still open");
}

#[test]
fn soft_output_limit_disconnects_after_its_time() {
    let srv = KvikServer::start(&[]);
    let mut publisher = conn(&srv);
    assert_eq!(
        publisher
            .call(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 0 2mb 1"
            ])
            .unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
    let mut sub = TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
    sub.write_all(b"SUBSCRIBE slow\r\n").unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        publisher.call(&["PUBSUB", "NUMSUB", "slow"]).unwrap()
            == Reply::Array(vec![bulk("slow"), Reply::Integer(1)])
    }));
    let payload = vec![b'y'; 1 << 20];
    let started = Instant::now();
    let mut disconnected = false;
    // Keep the backlog over the soft limit for more than a second.
    while started.elapsed() < Duration::from_secs(10) {
        let n = publisher
            .call(&[b"PUBLISH".as_slice(), b"slow", &payload])
            .unwrap();
        if n == Reply::Integer(0) {
            disconnected = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(disconnected, "soft limit never enforced");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
