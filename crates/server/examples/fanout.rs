//! Pub/Sub fan-out load generator: N subscribers on one channel, one
//! publisher pipelining PUBLISH of small fixed-size messages for a fixed
//! time, and the number of messages all subscribers received per second.
//!
//! ```text
//! cargo run --release --example fanout -p kvik-server -- \
//!     --port 6380 --subscribers 1000 --seconds 5 --size 16 --pipeline 16
//! ```
//!
//! Every message has the same size, so a subscriber counts messages by
//! dividing the bytes it read by the size of one frame. Output is one line
//! of `key=value` pairs (see the end of `main`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Opts {
    host: String,
    port: u16,
    subscribers: usize,
    seconds: f64,
    size: usize,
    pipeline: usize,
    threads: usize,
    channel: String,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        host: "127.0.0.1".into(),
        port: 6379,
        subscribers: 1000,
        seconds: 5.0,
        size: 16,
        pipeline: 16,
        threads: 1,
        channel: "fanout".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--host" => o.host = v,
            "--port" => o.port = v.parse().expect("--port"),
            "--subscribers" => o.subscribers = v.parse().expect("--subscribers"),
            "--seconds" => o.seconds = v.parse().expect("--seconds"),
            "--size" => o.size = v.parse().expect("--size"),
            "--pipeline" => o.pipeline = v.parse::<usize>().expect("--pipeline").max(1),
            "--threads" => o.threads = v.parse::<usize>().expect("--threads").max(1),
            "--channel" => o.channel = v,
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    o
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Reads until the bytes read so far contain `needle` (setup replies
/// only).
async fn read_until(stream: &mut TcpStream, needle: &[u8]) -> std::io::Result<()> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

async fn subscriber(
    mut s: TcpStream,
    frame: usize,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let n = match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => continue,
        };
        carry += n;
        let msgs = carry / frame;
        carry %= frame;
        if msgs > 0 {
            received.fetch_add(msgs as u64, Ordering::Relaxed);
        }
    }
}

async fn run(o: Opts) -> std::io::Result<()> {
    let addr = format!("{}:{}", o.host, o.port);
    let payload = vec![b'x'; o.size];
    let chan = o.channel.as_bytes();
    // `*3 $7 message $<n> <chan> $<m> <payload>` as RESP2 frames it.
    let frame = command(&[b"message", chan, &payload]).len();
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sub_cmd = command(&[b"SUBSCRIBE", chan]);
    let mut tasks = Vec::with_capacity(o.subscribers);
    for _ in 0..o.subscribers {
        let mut s = TcpStream::connect(&addr).await?;
        s.set_nodelay(true)?;
        s.write_all(&sub_cmd).await?;
        read_until(&mut s, b":1\r\n").await?;
        tasks.push(tokio::spawn(subscriber(
            s,
            frame,
            received.clone(),
            stop.clone(),
        )));
    }
    let mut publisher = TcpStream::connect(&addr).await?;
    publisher.set_nodelay(true)?;
    // Every subscriber is registered before the first message.
    let numsub = command(&[b"PUBSUB", b"NUMSUB", chan]);
    publisher.write_all(&numsub).await?;
    read_until(&mut publisher, format!(":{}\r\n", o.subscribers).as_bytes()).await?;

    let one = command(&[b"PUBLISH", chan, &payload]);
    let batch: Vec<u8> = one.repeat(o.pipeline);
    let mut replies = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.seconds);
    let mut published: u64 = 0;
    while Instant::now() < deadline {
        publisher.write_all(&batch).await?;
        // Each reply is one `:<receivers>\r\n` line.
        let mut lines = 0;
        while lines < o.pipeline {
            let n = publisher.read(&mut replies).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            lines += replies[..n].iter().filter(|&&c| c == b'\n').count();
        }
        published += o.pipeline as u64;
    }
    let publish_secs = start.elapsed().as_secs_f64();
    let expected = published * o.subscribers as u64;
    // Wait for the subscribers to drain (bounded).
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    let mut last = received.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while last < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let total_secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let delivered = received.load(Ordering::Relaxed);
    println!(
        "subscribers={} published={} expected={} delivered={} publish_secs={:.3} total_secs={:.3} publish_per_sec={:.0} delivered_per_sec={:.0}",
        o.subscribers,
        published,
        expected,
        delivered,
        publish_secs,
        total_secs,
        published as f64 / total_secs,
        delivered as f64 / total_secs,
    );
    Ok(())
}

fn main() {
    let o = parse_opts();
    let rt = if o.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(o.threads)
            .enable_all()
            .build()
    };
    let rt = rt.expect("runtime");
    if let Err(e) = rt.block_on(run(o)) {
        eprintln!("fanout: {e}");
        std::process::exit(1);
    }
}
