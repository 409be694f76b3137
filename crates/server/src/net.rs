//! Listeners and connections. Each connection is one task on the tokio
//! multi-thread runtime (one worker thread per core): it reads whatever the
//! socket has, runs every complete request in that read as one batch, and
//! writes all their replies with one write.

use crate::client::{Client, ClientShared};
use crate::dispatch;
use crate::server::Server;
use kvik_protocol::request::Parsed;
use kvik_protocol::{Limits, ReplyBuf, RequestParser};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

/// Bytes read per `read` call at least.
const READ_CHUNK: usize = 16 * 1024;

/// Pending reply bytes at which a batch stops to write them out.
const OUTPUT_FLUSH_BYTES: usize = 4 * 1024 * 1024;

/// Accept loop for a TCP listener.
pub async fn accept_tcp(srv: Arc<Server>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("Accepting client connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let loopback = peer.ip().is_loopback();
        let srv = srv.clone();
        tokio::spawn(async move {
            serve(srv, stream, peer.to_string(), local, false, loopback).await;
        });
    }
}

/// Accept loop for a unix socket listener.
pub async fn accept_unix(srv: Arc<Server>, listener: UnixListener, path: String) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("Accepting client connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Redis shows unix-socket peers as `<path>:0`.
        let addr = format!("{path}:0");
        let srv = srv.clone();
        tokio::spawn(async move {
            serve(srv, stream, addr.clone(), addr, true, true).await;
        });
    }
}

/// Whether a new connection must be refused by protected mode.
fn protected_refusal(srv: &Server, loopback: bool) -> bool {
    !loopback
        && srv.tun.protected_mode.load(Ordering::Relaxed)
        && srv.config.read().get("requirepass").is_empty()
}

const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

async fn serve<S: AsyncRead + AsyncWrite + Unpin + std::os::fd::AsRawFd>(
    srv: Arc<Server>,
    mut stream: S,
    addr: String,
    laddr: String,
    unix: bool,
    loopback: bool,
) {
    srv.stats
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    if protected_refusal(&srv, loopback) {
        let _ = stream.write_all(DENIED.as_bytes()).await;
        return;
    }
    let maxclients = srv.tun.maxclients.load(Ordering::Relaxed) as usize;
    if srv.stats.connected_clients.load(Ordering::Relaxed) >= maxclients {
        srv.stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    let id = srv.next_client_id.fetch_add(1, Ordering::Relaxed);
    let shared = ClientShared::new(id, addr, laddr, unix, crate::util::now_ms());
    shared.set_fd(stream.as_raw_fd());
    srv.clients.lock().insert(id, shared.clone());
    srv.stats.connected_clients.fetch_add(1, Ordering::Relaxed);
    let authenticated = srv.config.read().get("requirepass").is_empty();
    let mut client = Client::new(shared.clone(), authenticated);
    let mut conn = Conn {
        rbuf: Vec::with_capacity(READ_CHUNK),
        parser: RequestParser::new(),
        out: ReplyBuf::new(),
    };
    let result = conn.run(&srv, &mut client, &mut stream).await;
    if let Err(e) = result {
        tracing::debug!("client {id} closed: {e}");
    }
    let _ = stream.shutdown().await;
    crate::pubsub::cleanup(&srv, &mut client);
    crate::tracking::disconnect(&mut client);
    // Drop the transaction and this client's watches now, while the store
    // is at hand.
    crate::multi::reset(&mut client.tx, &srv.store);
    shared.clear_fd();
    if shared.monitor.swap(false, Ordering::Relaxed) {
        srv.monitors.fetch_sub(1, Ordering::Relaxed);
    }
    srv.clients.lock().remove(&id);
    srv.stats.connected_clients.fetch_sub(1, Ordering::Relaxed);
}

/// Buffers of one connection.
struct Conn {
    rbuf: Vec<u8>,
    parser: RequestParser,
    out: ReplyBuf,
}

/// What processing the buffered requests ended with.
enum Batch {
    /// Everything complete was run; wait for more bytes.
    More,
    /// Close after writing the replies.
    Close,
    /// Close at once without writing (HTTP probe).
    Abort,
    /// Clients are paused; retry later.
    Paused,
    /// The replies so far are large: write them, then go on.
    Yield,
    /// A command blocked the client: wait for its reply, then go on.
    Blocked,
}

impl Conn {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        srv: &Server,
        client: &mut Client,
        stream: &mut S,
    ) -> std::io::Result<()> {
        let shared = client.shared.clone();
        loop {
            if shared.killed.load(Ordering::Relaxed) {
                return Ok(());
            }
            // `reserve` at least doubles, so a large argument arriving in
            // pieces costs amortised O(1) copies per byte.
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK {
                self.rbuf.reserve(READ_CHUNK);
            }
            let timeout = srv.tun.timeout.load(Ordering::Relaxed);
            let wakeups = shared.wants_wakeups();
            if timeout == 0 && !wakeups {
                // The common case: nothing but the socket can wake us (a
                // kill shuts the socket down).
                if !self.read(srv, stream).await? {
                    return Ok(());
                }
            } else {
                let idle = async {
                    if timeout > 0 && !wakeups {
                        tokio::time::sleep(std::time::Duration::from_secs(timeout as u64)).await
                    } else {
                        std::future::pending::<()>().await
                    }
                };
                tokio::select! {
                    r = self.read(srv, stream) => {
                        if !r? {
                            return Ok(());
                        }
                    }
                    _ = shared.wake.notified() => {}
                    _ = idle => {
                        return Ok(());
                    }
                }
                if shared.killed.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            if let Some(pushed) = shared.take_pushed() {
                self.out.raw(&pushed);
            }
            let mut outcome = self.process(srv, client);
            loop {
                match outcome {
                    Batch::Paused => {
                        self.flush(srv, stream).await?;
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    // Replies of a long pipeline leave before the rest runs,
                    // so a client that does not read stalls itself, not
                    // the server's memory.
                    Batch::Yield => self.flush(srv, stream).await?,
                    Batch::Blocked => {
                        self.flush(srv, stream).await?;
                        if !self.wait_unblocked(srv, client, stream).await? {
                            return Ok(());
                        }
                    }
                    _ => break,
                }
                if shared.killed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                outcome = self.process(srv, client);
            }
            if self.over_query_limit(srv, client) {
                return Ok(());
            }
            shared.qbuf.store(self.rbuf.len() as u64, Ordering::Relaxed);
            match outcome {
                Batch::Abort => return Ok(()),
                Batch::Close => {
                    self.flush(srv, stream).await?;
                    return Ok(());
                }
                _ => self.flush(srv, stream).await?,
            }
            if self.rbuf.is_empty() && self.rbuf.capacity() > 4 * READ_CHUNK {
                self.rbuf = Vec::with_capacity(READ_CHUNK);
            }
        }
    }

    /// Waits until the blocked command of `client` is served, times out, is
    /// unblocked, or the client goes away (false: close). The reply is
    /// appended to the output buffer. Requests arriving meanwhile are read
    /// but run only afterwards, as Redis does.
    async fn wait_unblocked<S: AsyncRead + Unpin>(
        &mut self,
        srv: &Server,
        client: &mut Client,
        stream: &mut S,
    ) -> std::io::Result<bool> {
        let Some(w) = client.blocked.take() else {
            return Ok(true);
        };
        let shared = client.shared.clone();
        let deadline = w.req.deadline_ms;
        let mut open = true;
        let reply = loop {
            if shared.killed.load(Ordering::Relaxed) {
                open = false;
                break Vec::new();
            }
            if !w.is_waiting() {
                break w.finish(Vec::new());
            }
            let sleep = async {
                if deadline > 0 {
                    let left = (deadline - crate::util::now_ms()).max(0) as u64;
                    tokio::time::sleep(std::time::Duration::from_millis(left)).await
                } else {
                    std::future::pending::<()>().await
                }
            };
            let reading = async {
                if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK {
                    self.rbuf.reserve(READ_CHUNK);
                }
                self.read(srv, stream).await
            };
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = sleep => {
                    let timeout = w.timeout_bytes();
                    let reply = w.finish(timeout.clone());
                    if reply == timeout {
                        crate::blocking::count_call(srv, &w);
                    }
                    break reply;
                }
                r = reading => {
                    // A blocked client keeps sending: its requests wait,
                    // bounded by the query buffer limit like any other.
                    if !r? || self.over_query_limit(srv, client) {
                        open = false;
                        break Vec::new();
                    }
                    client.shared.qbuf.store(self.rbuf.len() as u64, Ordering::Relaxed);
                }
            }
        };
        // Anything not taken by the served reply ends the wait now.
        let _ = w.finish(Vec::new());
        crate::blocking::deregister(srv, &w);
        if !open {
            return Ok(false);
        }
        self.out.raw(&reply);
        Ok(true)
    }

    /// Whether the pending request data passed `client-query-buffer-limit`
    /// (then the client is closed, with Redis's log line).
    fn over_query_limit(&self, srv: &Server, client: &Client) -> bool {
        let limit = srv.tun.client_query_buffer_limit.load(Ordering::Relaxed) as usize;
        if self.rbuf.len() + self.parser.overhead() <= limit {
            return false;
        }
        tracing::warn!(
            "Closing client that reached max query buffer length: id={} addr={} (qbuf initial bytes: {:?})",
            client.id(),
            client.shared.addr,
            String::from_utf8_lossy(&self.rbuf[..self.rbuf.len().min(64)])
        );
        true
    }

    /// Reads what the socket has; false at end of stream.
    async fn read<S: AsyncRead + Unpin>(
        &mut self,
        srv: &Server,
        stream: &mut S,
    ) -> std::io::Result<bool> {
        let n = stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Ok(false);
        }
        srv.stats
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(true)
    }

    async fn flush<S: AsyncWrite + Unpin>(
        &mut self,
        srv: &Server,
        stream: &mut S,
    ) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        stream.write_all(self.out.as_bytes()).await?;
        srv.stats
            .net_output_bytes
            .fetch_add(self.out.len() as u64, Ordering::Relaxed);
        if self.out.raw_mut().capacity() > 1 << 20 {
            *self.out.raw_mut() = Vec::with_capacity(READ_CHUNK);
        } else {
            self.out.clear();
        }
        Ok(())
    }

    /// Runs every complete request in the read buffer.
    fn process(&mut self, srv: &Server, client: &mut Client) -> Batch {
        let limits = Limits {
            max_bulk_len: srv.tun.proto_max_bulk_len.load(Ordering::Relaxed),
            max_multibulk_len: i32::MAX as u64,
            unauthenticated: !client.authenticated,
        };
        let mut start = 0;
        let mut result = Batch::More;
        let mut clock = dispatch::BatchClock::new();
        while start < self.rbuf.len() {
            let buf = &self.rbuf[start..];
            match self.parser.parse(buf, &limits) {
                Ok(Parsed::Request(n)) => {
                    let argv: smallvec::SmallVec<[&[u8]; 8]> = (0..self.parser.argc())
                        .map(|i| self.parser.arg(buf, i))
                        .collect();
                    if crate::cmd::connection::paused_for(srv, &argv) {
                        // Re-parse this request when the pause ends.
                        result = Batch::Paused;
                        break;
                    }
                    let keep = dispatch::execute(srv, client, &mut self.out, &argv, &mut clock);
                    start += n;
                    if !keep {
                        result = Batch::Abort;
                        break;
                    }
                    if client.blocked.is_some() {
                        result = Batch::Blocked;
                        break;
                    }
                    if client.close_after_reply {
                        result = Batch::Close;
                        break;
                    }
                    if self.out.len() >= OUTPUT_FLUSH_BYTES {
                        result = Batch::Yield;
                        break;
                    }
                }
                Ok(Parsed::Empty(n)) => start += n,
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => {
                    tracing::debug!("Protocol error ({e}) from client id={}", client.id());
                    self.out.error(&format!("ERR {e}"));
                    srv.count_error("ERR");
                    result = Batch::Close;
                    break;
                }
            }
        }
        if start > 0 {
            self.rbuf.drain(..start);
        }
        if let Batch::Paused = result {
            // The parser must start again at the paused request.
            self.parser = RequestParser::new();
        }
        client
            .shared
            .resp
            .store(if self.out.resp3() { 3 } else { 2 }, Ordering::Relaxed);
        result
    }
}
