//! Client-side caching (CLIENT TRACKING) over raw RESP connections, so the
//! framing of invalidation pushes and `__redis__:invalidate` messages is
//! checked exactly: default mode, NOLOOP, OPTIN/OPTOUT with CLIENT CACHING,
//! BCAST prefixes, RESP2 redirection, flush and expiry invalidations, the
//! bounded tracking table, and the introspection commands.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{KvikServer, Reply, RespConn};

fn conn(srv: &KvikServer) -> RespConn {
    RespConn::connect(srv.port(), Duration::from_secs(10)).expect("connect")
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn ok() -> Reply {
    Reply::Simple(b"OK".to_vec())
}

fn call(c: &mut RespConn, args: &[&str]) -> Reply {
    c.call(args).expect("call")
}

/// A RESP3 connection with tracking turned on with `opts`.
fn tracker(srv: &KvikServer, opts: &[&str]) -> RespConn {
    let mut c = conn(srv);
    assert!(matches!(call(&mut c, &["HELLO", "3"]), Reply::Map(_)));
    let mut args = vec!["CLIENT", "TRACKING", "ON"];
    args.extend_from_slice(opts);
    assert_eq!(call(&mut c, &args), ok());
    c
}

/// The RESP3 invalidation push for `keys`.
fn invalidate(keys: &[&str]) -> Reply {
    Reply::Push(vec![
        bulk("invalidate"),
        Reply::Array(keys.iter().map(|k| bulk(k)).collect()),
    ])
}

/// Asserts nothing is pending for `c`: its next reply is the PONG.
/// Invalidations are queued before the modifying command replies, so a
/// missing message would show up ahead of the PONG.
fn assert_quiet(c: &mut RespConn) {
    assert_eq!(call(c, &["PING"]), Reply::Simple(b"PONG".to_vec()));
}

fn client_id(c: &mut RespConn) -> i64 {
    match call(c, &["CLIENT", "ID"]) {
        Reply::Integer(i) => i,
        other => panic!("CLIENT ID: {other:?}"),
    }
}

fn info_field(c: &mut RespConn, field: &str) -> String {
    let text = match call(c, &["INFO", "all"]) {
        Reply::Bulk(b) | Reply::Verbatim(_, b) => String::from_utf8(b).unwrap(),
        other => panic!("INFO: {other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

/// Reads from a raw socket until `want` bytes arrived (or 5 s passed).
fn read_exact_bytes(s: &mut TcpStream, want: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => continue,
        }
    }
    got
}

#[test]
fn default_mode_invalidates_keys_read_by_the_client() {
    let srv = KvikServer::start(&[]);
    let mut t = tracker(&srv, &[]);
    let mut w = conn(&srv);
    assert_eq!(call(&mut t, &["GET", "k1"]), Reply::Null);
    assert_eq!(
        call(&mut t, &["MGET", "k2", "k3"]),
        Reply::Array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(call(&mut w, &["SET", "k1", "v"]), ok());
    assert_eq!(t.read_reply().unwrap(), invalidate(&["k1"]));
    // The key was forgotten with its invalidation.
    assert_eq!(call(&mut w, &["SET", "k1", "v2"]), ok());
    assert_quiet(&mut t);
    // One message per key, as Redis sends them.
    assert_eq!(call(&mut w, &["MSET", "k2", "a", "k3", "b"]), ok());
    assert_eq!(t.read_reply().unwrap(), invalidate(&["k2"]));
    assert_eq!(t.read_reply().unwrap(), invalidate(&["k3"]));
    // Writes are not tracked.
    assert_eq!(call(&mut t, &["SET", "w", "1"]), ok());
    assert_eq!(call(&mut w, &["SET", "w", "2"]), ok());
    assert_quiet(&mut t);
    // The client's own change: the message follows its reply.
    assert_eq!(call(&mut t, &["GET", "k1"]), bulk("v2"));
    assert_eq!(call(&mut t, &["APPEND", "k1", "x"]), Reply::Integer(3));
    assert_eq!(t.read_reply().unwrap(), invalidate(&["k1"]));
    assert_eq!(call(&mut t, &["GET", "n"]), Reply::Null);
    assert_eq!(call(&mut t, &["SET", "n", "1"]), ok());
    assert_eq!(t.read_reply().unwrap(), invalidate(&["n"]));
    // Other databases share the table: the key name alone is sent.
    assert_eq!(call(&mut t, &["GET", "shared"]), Reply::Null);
    assert_eq!(call(&mut w, &["SELECT", "3"]), ok());
    assert_eq!(call(&mut w, &["SET", "shared", "1"]), ok());
    assert_eq!(t.read_reply().unwrap(), invalidate(&["shared"]));
    assert_quiet(&mut t);
    // With replies off the client still gets its own invalidations.
    assert_eq!(call(&mut t, &["GET", "q"]), Reply::Null);
    t.send(&["CLIENT", "REPLY", "OFF"]).unwrap();
    t.send(&["SET", "q", "1"]).unwrap();
    assert_eq!(t.read_reply().unwrap(), invalidate(&["q"]));
    assert_eq!(call(&mut t, &["CLIENT", "REPLY", "ON"]), ok());
    assert_quiet(&mut t);
}

#[test]
fn push_framing_is_exact() {
    let srv = KvikServer::start(&[]);
    let mut raw = TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
    raw.write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n").unwrap();
    let _ = read_exact_bytes(&mut raw, 1);
    std::thread::sleep(Duration::from_millis(100));
    let _ = read_exact_bytes(&mut raw, 1 << 20);
    raw.write_all(
        b"*3\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\non\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
    )
    .unwrap();
    assert_eq!(read_exact_bytes(&mut raw, 8), b"+OK\r\n_\r\n");
    let mut w = conn(&srv);
    assert_eq!(call(&mut w, &["SET", "key", "1"]), ok());
    let want = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n";
    assert_eq!(read_exact_bytes(&mut raw, want.len()), want);
    assert_eq!(call(&mut w, &["FLUSHALL"]), ok());
    let want = b">2\r\n$10\r\ninvalidate\r\n_\r\n";
    assert_eq!(read_exact_bytes(&mut raw, want.len()), want);
}

#[test]
fn noloop_skips_own_changes() {
    let srv = KvikServer::start(&[]);
    let mut t = tracker(&srv, &["NOLOOP"]);
    let mut w = conn(&srv);
    assert_eq!(call(&mut t, &["GET", "a"]), Reply::Null);
    assert_eq!(call(&mut t, &["GET", "b"]), Reply::Null);
    assert_eq!(call(&mut t, &["SET", "a", "1"]), ok());
    assert_quiet(&mut t);
    // Others' changes still arrive.
    assert_eq!(call(&mut w, &["SET", "b", "1"]), ok());
    assert_eq!(t.read_reply().unwrap(), invalidate(&["b"]));
    // `a` was forgotten when the client changed it itself.
    assert_eq!(call(&mut w, &["SET", "a", "2"]), ok());
    assert_quiet(&mut t);
}

#[test]
fn optin_and_optout_with_caching() {
    let srv = KvikServer::start(&[]);
    let mut w = conn(&srv);

    let mut t = tracker(&srv, &["OPTIN"]);
    assert_eq!(call(&mut t, &["GET", "o1"]), Reply::Null);
    assert_eq!(call(&mut t, &["CLIENT", "CACHING", "YES"]), ok());
    // Other CLIENT subcommands keep the pending CACHING.
    assert!(matches!(call(&mut t, &["CLIENT", "ID"]), Reply::Integer(_)));
    assert_eq!(call(&mut t, &["GET", "o2"]), Reply::Null);
    // It covered only that one command.
    assert_eq!(call(&mut t, &["GET", "o3"]), Reply::Null);
    assert_eq!(
        call(&mut w, &["MSET", "o1", "1", "o2", "2", "o3", "3"]),
        ok()
    );
    assert_eq!(t.read_reply().unwrap(), invalidate(&["o2"]));
    assert_quiet(&mut t);
    // A rejected command (unknown, wrong arity) still uses it up.
    assert_eq!(call(&mut t, &["CLIENT", "CACHING", "YES"]), ok());
    assert!(call(&mut t, &["NOSUCHCOMMAND"]).is_error());
    assert_eq!(call(&mut t, &["GET", "r1"]), Reply::Null);
    assert_eq!(call(&mut t, &["CLIENT", "CACHING", "YES"]), ok());
    assert!(call(&mut t, &["GET"]).is_error());
    assert_eq!(call(&mut t, &["GET", "r2"]), Reply::Null);
    assert_eq!(call(&mut w, &["MSET", "r1", "1", "r2", "2"]), ok());
    assert_quiet(&mut t);
    // CACHING YES before MULTI covers the whole transaction.
    assert_eq!(call(&mut t, &["CLIENT", "CACHING", "YES"]), ok());
    assert_eq!(call(&mut t, &["MULTI"]), ok());
    assert_eq!(
        call(&mut t, &["GET", "m1"]),
        Reply::Simple(b"QUEUED".to_vec())
    );
    assert_eq!(
        call(&mut t, &["GET", "m2"]),
        Reply::Simple(b"QUEUED".to_vec())
    );
    assert_eq!(
        call(&mut t, &["EXEC"]),
        Reply::Array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(call(&mut w, &["MSET", "m1", "1", "m2", "2"]), ok());
    assert_eq!(t.read_reply().unwrap(), invalidate(&["m1"]));
    assert_eq!(t.read_reply().unwrap(), invalidate(&["m2"]));

    let mut t = tracker(&srv, &["OPTOUT"]);
    assert_eq!(call(&mut t, &["CLIENT", "CACHING", "NO"]), ok());
    assert_eq!(call(&mut t, &["GET", "x1"]), Reply::Null);
    assert_eq!(call(&mut t, &["GET", "x2"]), Reply::Null);
    assert_eq!(call(&mut w, &["MSET", "x1", "1", "x2", "2"]), ok());
    assert_eq!(t.read_reply().unwrap(), invalidate(&["x2"]));
    assert_quiet(&mut t);
}

#[test]
fn bcast_prefixes_batch_keys_per_prefix() {
    let srv = KvikServer::start(&[]);
    let mut w = conn(&srv);
    let mut t = tracker(&srv, &["BCAST", "PREFIX", "p:", "PREFIX", "q:"]);
    let mut all = tracker(&srv, &["BCAST", "NOLOOP"]);
    assert_eq!(
        call(
            &mut w,
            &["MSET", "p:2", "1", "p:1", "1", "q:1", "x", "z", "1"]
        ),
        ok()
    );
    // One message per prefix with the command's keys in byte order.
    assert_eq!(t.read_reply().unwrap(), invalidate(&["p:1", "p:2"]));
    assert_eq!(t.read_reply().unwrap(), invalidate(&["q:1"]));
    assert_quiet(&mut t);
    assert_eq!(
        all.read_reply().unwrap(),
        invalidate(&["p:1", "p:2", "q:1", "z"])
    );
    assert_quiet(&mut all);
    // NOLOOP: the client's own changes are left out.
    assert_eq!(call(&mut all, &["SET", "p:3", "1"]), ok());
    assert_quiet(&mut all);
    assert_eq!(t.read_reply().unwrap(), invalidate(&["p:3"]));
    // Without NOLOOP the client hears about its own change after the reply.
    assert_eq!(call(&mut t, &["DEL", "q:1"]), Reply::Integer(1));
    assert_eq!(t.read_reply().unwrap(), invalidate(&["q:1"]));
    assert_eq!(all.read_reply().unwrap(), invalidate(&["q:1"]));
    // Reads are not tracked in BCAST mode.
    assert_eq!(call(&mut t, &["GET", "zz"]), Reply::Null);
    assert_eq!(call(&mut w, &["SET", "zz", "1"]), ok());
    assert_quiet(&mut t);
    assert_eq!(all.read_reply().unwrap(), invalidate(&["zz"]));
    assert_eq!(info_field(&mut w, "tracking_total_prefixes"), "3");
    assert_eq!(call(&mut t, &["CLIENT", "TRACKING", "OFF"]), ok());
    assert_eq!(info_field(&mut w, "tracking_total_prefixes"), "1");
}

#[test]
fn resp2_redirect_through_invalidate_channel() {
    let srv = KvikServer::start(&[]);
    let mut r = conn(&srv);
    let rid = client_id(&mut r);
    assert_eq!(
        call(&mut r, &["SUBSCRIBE", "__redis__:invalidate"]),
        Reply::Array(vec![
            bulk("subscribe"),
            bulk("__redis__:invalidate"),
            Reply::Integer(1)
        ])
    );
    let mut t = conn(&srv);
    let rid_s = rid.to_string();
    assert_eq!(
        call(&mut t, &["CLIENT", "TRACKING", "ON", "REDIRECT", &rid_s]),
        ok()
    );
    assert_eq!(call(&mut t, &["CLIENT", "GETREDIR"]), Reply::Integer(rid));
    assert_eq!(call(&mut t, &["GET", "k"]), Reply::NullBulk);
    let mut w = conn(&srv);
    assert_eq!(call(&mut w, &["SET", "k", "1"]), ok());
    let message =
        |value: Reply| Reply::Array(vec![bulk("message"), bulk("__redis__:invalidate"), value]);
    assert_eq!(
        r.read_reply().unwrap(),
        message(Reply::Array(vec![bulk("k")]))
    );
    // FLUSHALL: the tracking client's (RESP2) null, as a message.
    assert_eq!(call(&mut w, &["FLUSHALL"]), ok());
    assert_eq!(r.read_reply().unwrap(), message(Reply::NullBulk));
    // The tracking client's own change goes to the redirect client too.
    assert_eq!(call(&mut t, &["GET", "k"]), Reply::NullBulk);
    assert_eq!(call(&mut t, &["SET", "k", "2"]), ok());
    assert_eq!(
        r.read_reply().unwrap(),
        message(Reply::Array(vec![bulk("k")]))
    );
    let list = match call(&mut w, &["CLIENT", "LIST"]) {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    let tid = client_id(&mut t);
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={tid} ")))
        .unwrap();
    assert!(line.contains(" flags=t "), "{line}");
    assert!(line.contains(&format!(" redir={rid} ")), "{line}");

    // The redirect client goes away: a RESP3 tracking client is told.
    assert!(!call(&mut t, &["HELLO", "3"]).is_error());
    assert_eq!(call(&mut t, &["GET", "k"]), bulk("2"));
    r.shutdown();
    drop(r);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(call(&mut w, &["SET", "k", "3"]), ok());
    assert_eq!(
        t.read_reply().unwrap(),
        Reply::Push(vec![bulk("tracking-redir-broken"), Reply::Integer(rid)])
    );
    let info = match call(&mut t, &["CLIENT", "INFO"]) {
        Reply::Verbatim(_, b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains(" flags=tR "), "{info}");
    assert!(matches!(
        call(&mut t, &["CLIENT", "TRACKINGINFO"]),
        Reply::Map(m) if m[0].1 == Reply::Set(vec![bulk("on"), bulk("broken_redirect")])
    ));
}

#[test]
fn resp3_redirect_target_gets_pushes() {
    let srv = KvikServer::start(&[]);
    let mut r = conn(&srv);
    assert!(matches!(call(&mut r, &["HELLO", "3"]), Reply::Map(_)));
    let rid = client_id(&mut r).to_string();
    let mut t = conn(&srv);
    assert_eq!(
        call(&mut t, &["CLIENT", "TRACKING", "ON", "REDIRECT", &rid]),
        ok()
    );
    assert_eq!(call(&mut t, &["GET", "k"]), Reply::NullBulk);
    let mut w = conn(&srv);
    assert_eq!(call(&mut w, &["SET", "k", "1"]), ok());
    // Delivered while the target sits idle, without it sending anything.
    assert_eq!(r.read_reply().unwrap(), invalidate(&["k"]));
}

#[test]
fn flush_sends_null_invalidation() {
    let srv = KvikServer::start(&[]);
    let mut t = tracker(&srv, &[]);
    let mut b = tracker(&srv, &["BCAST"]);
    let mut w = conn(&srv);
    assert_eq!(call(&mut t, &["GET", "a"]), Reply::Null);
    assert_eq!(call(&mut w, &["FLUSHDB"]), ok());
    let null = Reply::Push(vec![bulk("invalidate"), Reply::Null]);
    assert_eq!(t.read_reply().unwrap(), null);
    assert_eq!(b.read_reply().unwrap(), null);
    assert_eq!(info_field(&mut w, "tracking_total_keys"), "0");
    // The flusher's own message follows its reply.
    assert_eq!(call(&mut t, &["FLUSHALL"]), ok());
    assert_eq!(t.read_reply().unwrap(), null);
    assert_eq!(b.read_reply().unwrap(), null);
    assert_quiet(&mut t);
}

#[test]
fn expiry_invalidates() {
    let srv = KvikServer::start(&[]);
    let mut t = tracker(&srv, &[]);
    let mut w = conn(&srv);
    assert_eq!(call(&mut w, &["SET", "e", "1", "PX", "100"]), ok());
    assert_eq!(call(&mut t, &["GET", "e"]), bulk("1"));
    // The active expiry cycle removes it and tells the client.
    assert_eq!(t.read_reply().unwrap(), invalidate(&["e"]));
    // Lazy expiry by another client's read.
    assert_eq!(call(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), ok());
    assert_eq!(call(&mut w, &["SET", "l", "1", "PX", "50"]), ok());
    assert_eq!(call(&mut t, &["GET", "l"]), bulk("1"));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(call(&mut w, &["GET", "l"]), Reply::NullBulk);
    assert_eq!(t.read_reply().unwrap(), invalidate(&["l"]));
    assert_eq!(call(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), ok());
}

#[test]
fn table_is_bounded_by_max_keys() {
    let srv = KvikServer::start(&[]);
    let mut w = conn(&srv);
    assert_eq!(
        call(&mut w, &["CONFIG", "SET", "tracking-table-max-keys", "3"]),
        ok()
    );
    let mut t = tracker(&srv, &[]);
    let mut evicted = Vec::new();
    for i in 0..10 {
        let key = format!("k{i}");
        assert_eq!(call(&mut t, &["GET", &key]), Reply::Null);
        // Over the limit: a key is forgotten, with its invalidation,
        // right after the reply.
        if i >= 3 {
            match t.read_reply().unwrap() {
                Reply::Push(v) if v.len() == 2 && v[0] == bulk("invalidate") => {
                    evicted.push(v[1].clone())
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(evicted.len(), 7);
    assert_eq!(info_field(&mut w, "tracking_total_keys"), "3");
    assert_eq!(info_field(&mut w, "tracking_total_items"), "3");
    assert_eq!(info_field(&mut w, "tracking_clients"), "1");
    assert_quiet(&mut t);
}

#[test]
fn introspection_and_reset() {
    let srv = KvikServer::start(&[]);
    let mut t = conn(&srv);
    assert_eq!(call(&mut t, &["CLIENT", "GETREDIR"]), Reply::Integer(-1));
    assert_eq!(
        call(
            &mut t,
            &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b", "PREFIX", "a"]
        ),
        ok()
    );
    assert_eq!(call(&mut t, &["CLIENT", "GETREDIR"]), Reply::Integer(0));
    assert_eq!(
        call(&mut t, &["CLIENT", "TRACKINGINFO"]),
        Reply::Array(vec![
            bulk("flags"),
            Reply::Array(vec![bulk("on"), bulk("bcast")]),
            bulk("redirect"),
            Reply::Integer(0),
            bulk("prefixes"),
            Reply::Array(vec![bulk("a"), bulk("b")]),
        ])
    );
    let info = match call(&mut t, &["CLIENT", "INFO"]) {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains(" flags=tB "), "{info}");
    assert!(info.contains(" redir=0 "), "{info}");
    let mut w = conn(&srv);
    assert_eq!(info_field(&mut w, "tracking_clients"), "1");
    assert_eq!(call(&mut t, &["RESET"]), Reply::Simple(b"RESET".to_vec()));
    assert_eq!(info_field(&mut w, "tracking_clients"), "0");
    assert_eq!(info_field(&mut w, "tracking_total_prefixes"), "0");
    assert_eq!(call(&mut t, &["CLIENT", "GETREDIR"]), Reply::Integer(-1));
    // A disconnect turns tracking off too.
    let mut d = tracker(&srv, &[]);
    assert_eq!(call(&mut d, &["GET", "x"]), Reply::Null);
    assert_eq!(info_field(&mut w, "tracking_clients"), "1");
    d.shutdown();
    drop(d);
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(&mut w, "tracking_clients") != "0" {
        assert!(Instant::now() < deadline, "tracking client not released");
        std::thread::sleep(Duration::from_millis(20));
    }
    // With no tracking client left the table is emptied.
    assert_eq!(info_field(&mut w, "tracking_total_keys"), "0");
    assert_eq!(info_field(&mut w, "tracking_total_items"), "0");
}
