//! Integration tests: the real `kvik-server` binary on a free port, driven by
//! the `redis` crate and by raw sockets where the bytes on the wire matter.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{KvikServer, Reply};

fn client(srv: &KvikServer) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", srv.port()))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// Sends raw bytes and reads until the server closes the connection or
/// `timeout` passes. Returns (bytes, closed_by_server).
fn raw_exchange(port: u16, bytes: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(bytes).expect("write");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

#[test]
fn set_get_with_the_redis_crate() {
    let srv = KvikServer::start(&[]);
    let mut c = client(&srv);
    let _: () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    let v: String = redis::cmd("GET").arg("greeting").query(&mut c).unwrap();
    assert_eq!(v, "hello");
    let missing: Option<String> = redis::cmd("GET").arg("nope").query(&mut c).unwrap();
    assert_eq!(missing, None);
}

#[test]
fn pipelined_replies_arrive_in_order() {
    let srv = KvikServer::start(&[]);
    let mut c = client(&srv);
    let mut p = redis::pipe();
    for i in 0..5000 {
        p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    for i in 0..5000 {
        p.cmd("GET").arg(format!("k{i}"));
    }
    let got: Vec<i64> = p.query(&mut c).unwrap();
    assert_eq!(got, (0..5000).collect::<Vec<i64>>());
}

#[test]
fn protocol_error_replies_then_closes() {
    let srv = KvikServer::start(&[]);
    let (bytes, closed) = raw_exchange(srv.port(), b"*1\r\n$-5\r\n", Duration::from_secs(3));
    assert_eq!(bytes, b"-ERR Protocol error: invalid bulk length\r\n");
    assert!(closed);
    let (bytes, closed) = raw_exchange(srv.port(), b"PING\r\n*1\r\n+x\r\n", Duration::from_secs(3));
    assert_eq!(
        bytes,
        b"+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n"
    );
    assert!(closed);
}

#[test]
fn http_probe_is_dropped_without_reply() {
    let srv = KvikServer::start(&[]);
    let (bytes, closed) = raw_exchange(
        srv.port(),
        b"POST / HTTP/1.1\r\nHost: example\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(
        bytes.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(closed);
}

#[test]
fn inline_commands_with_quotes() {
    let srv = KvikServer::start(&[]);
    let (bytes, _) = raw_exchange(
        srv.port(),
        b"SET \"a key\" 'it''s'\r\nSET k \"v\\x41\"\r\nGET k\r\nPING\nQUIT\r\n",
        Duration::from_secs(3),
    );
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    let (bytes, closed) = raw_exchange(
        srv.port(),
        b"SET k \"v\\x41\"\r\nGET k\r\nPING\nQUIT\r\n",
        Duration::from_secs(3),
    );
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        "+OK\r\n$2\r\nvA\r\n+PONG\r\n+OK\r\n"
    );
    assert!(closed, "QUIT closes the connection");
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let srv = KvikServer::start(&["--client-query-buffer-limit", "1mb"]);
    let mut req = b"*2\r\n$4\r\nECHO\r\n$4000000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    let (bytes, closed) = raw_exchange(srv.port(), &req, Duration::from_secs(5));
    assert!(bytes.is_empty());
    assert!(
        closed,
        "a client over client-query-buffer-limit is disconnected"
    );
    // The server is still healthy.
    let (bytes, _) = raw_exchange(srv.port(), b"PING\r\nQUIT\r\n", Duration::from_secs(3));
    assert_eq!(bytes, b"+PONG\r\n+OK\r\n");
}

#[test]
fn oversized_bulk_is_rejected_before_reading_it() {
    let srv = KvikServer::start(&["--proto-max-bulk-len", "1mb"]);
    let (bytes, closed) = raw_exchange(
        srv.port(),
        b"*2\r\n$4\r\nECHO\r\n$2000000\r\n",
        Duration::from_secs(3),
    );
    assert_eq!(bytes, b"-ERR Protocol error: invalid bulk length\r\n");
    assert!(closed);
}

#[test]
fn concurrent_increments_are_atomic() {
    let srv = KvikServer::start(&[]);
    let port = srv.port();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                for _ in 0..500 {
                    let _: i64 = redis::cmd("INCR").arg("counter").query(&mut c).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = client(&srv);
    let v: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
    assert_eq!(v, 4000);
}

#[test]
fn requirepass_demands_auth() {
    let srv = KvikServer::start(&["--requirepass", "s3cret"]);
    let mut conn = srv.connect().unwrap();
    let r = conn.call(&["GET", "k"]).unwrap();
    assert_eq!(r, Reply::Error(b"NOAUTH Authentication required.".to_vec()));
    let r = conn.call(&["AUTH", "wrong"]).unwrap();
    assert_eq!(
        r,
        Reply::Error(b"WRONGPASS invalid username-password pair or user is disabled.".to_vec())
    );
    assert_eq!(
        conn.call(&["AUTH", "s3cret"]).unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
    assert_eq!(conn.call(&["GET", "k"]).unwrap(), Reply::NullBulk);
    // Before authentication, big requests are refused as Redis does.
    let (bytes, closed) = raw_exchange(srv.port(), b"*11\r\n", Duration::from_secs(3));
    assert_eq!(
        bytes,
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    assert!(closed);
}

#[test]
fn active_expiry_reclaims_keys_nobody_reads() {
    let srv = KvikServer::start(&["--hz", "50"]);
    let mut c = client(&srv);
    let mut p = redis::pipe();
    for i in 0..2000 {
        p.cmd("SET")
            .arg(format!("t{i}"))
            .arg("v")
            .arg("PX")
            .arg(50)
            .ignore();
    }
    p.cmd("SET").arg("keep").arg("v").ignore();
    let _: () = p.query(&mut c).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "still {n} keys after 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(info.contains("expired_keys:2000"), "{info}");
}

#[test]
fn resp3_after_hello() {
    let srv = KvikServer::start(&[]);
    let mut conn = srv.connect().unwrap();
    let hello = conn.call(&["HELLO", "3"]).unwrap();
    match hello {
        Reply::Map(pairs) => {
            assert!(pairs.contains(&(
                Reply::Bulk(b"version".to_vec()),
                Reply::Bulk(b"7.2.4".to_vec())
            )));
            assert!(pairs.contains(&(Reply::Bulk(b"proto".to_vec()), Reply::Integer(3))));
        }
        other => panic!("HELLO 3 must answer a map, got {other:?}"),
    }
    assert_eq!(conn.call(&["GET", "missing"]).unwrap(), Reply::Null);
}

#[test]
fn unix_socket_listener() {
    let dir = support::TempDir::new("kvik-unix").unwrap();
    let path = dir.path().join("kvik.sock");
    let path_s = path.display().to_string();
    let _srv = KvikServer::start(&["--unixsocket", &path_s, "--unixsocketperm", "700"]);
    let mut s = std::os::unix::net::UnixStream::connect(&path).expect("unix socket");
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

#[test]
fn maxclients_refuses_extra_connections() {
    let srv = KvikServer::start(&["--maxclients", "2"]);
    // Let the start-up probe connection be torn down first.
    std::thread::sleep(Duration::from_millis(300));
    let mut a = srv.connect().unwrap();
    let mut b = srv.connect().unwrap();
    assert_eq!(a.call(&["PING"]).unwrap(), Reply::Simple(b"PONG".to_vec()));
    assert_eq!(b.call(&["PING"]).unwrap(), Reply::Simple(b"PONG".to_vec()));
    let (bytes, closed) = raw_exchange(srv.port(), b"PING\r\n", Duration::from_secs(3));
    assert_eq!(bytes, b"-ERR max number of clients reached\r\n");
    assert!(closed);
}

#[test]
fn version_flag_matches_redis_server_format() {
    let out = Command::new(KvikServer::binary())
        .arg("-v")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains(" v=7.2.4 "), "{text}");
}

#[test]
fn unknown_directive_fails_start_up_like_redis() {
    let out = Command::new(KvikServer::binary())
        .args(["--port", "0", "--no-such-option", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("*** FATAL CONFIG FILE ERROR"), "{text}");
    assert!(
        text.contains("Bad directive or wrong number of arguments"),
        "{text}"
    );
}

/// Kills a child process on drop.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn config_file_and_flags_combine() {
    let dir = support::TempDir::new("kvik-conf").unwrap();
    let conf = dir.path().join("kvik.conf");
    let port = support::free_port().unwrap();
    std::fs::write(
        &conf,
        format!("# a comment\nport {port}\nbind 127.0.0.1\ndatabases 4\nsave \"\"\n"),
    )
    .unwrap();
    let child = Command::new(KvikServer::binary())
        .arg(&conf)
        .args(["--hz", "30"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match support::RespConn::connect(port, Duration::from_secs(1)) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "kvik did not start: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(
        conn.call(&["SELECT", "4"]).unwrap(),
        Reply::Error(b"ERR DB index is out of range".to_vec())
    );
    assert_eq!(
        conn.call(&["SELECT", "3"]).unwrap(),
        Reply::Simple(b"OK".to_vec())
    );
}

#[test]
fn shutdown_stops_the_process() {
    let mut srv = KvikServer::start(&[]);
    let mut conn = srv.connect().unwrap();
    let _ = conn.send(&["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.check_running().is_ok() {
        assert!(
            Instant::now() < deadline,
            "server still running after SHUTDOWN"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn large_pipelined_replies_are_streamed_in_order() {
    let srv = KvikServer::start(&[]);
    let mut c = client(&srv);
    let big = vec![b'x'; 1 << 20];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut c)
        .unwrap();
    // 64 MB of replies from one pipeline: the server writes them out in
    // pieces as it goes instead of buffering them all.
    let mut p = redis::pipe();
    for i in 0..64 {
        p.cmd("GET").arg("big");
        p.cmd("ECHO").arg(i);
    }
    let got: Vec<Vec<u8>> = p.query(&mut c).unwrap();
    assert_eq!(got.len(), 128);
    for (i, pair) in got.chunks(2).enumerate() {
        assert_eq!(pair[0].len(), 1 << 20);
        assert_eq!(pair[1], i.to_string().into_bytes());
    }
}
