//! kvik-server: a Redis-compatible in-memory data store.
//!
//! Floors, top to bottom (data flows downward only): [`net`] (listeners and
//! connections) → [`dispatch`] (lookup, checks, locking) → [`cmd`] (one
//! file per command family) → [`db`] / [`store`] (the sharded keyspace) →
//! `kvik_core` (entries, tables, pure data operations). Beside them:
//! [`config`], [`expire`] (active expiry), [`logging`].

pub mod alloc;
pub mod blocking;
pub mod client;
pub mod cmd;
pub mod commands;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod expire;
pub mod logging;
pub mod lua;
pub mod multi;
pub mod net;
pub mod notify;
pub mod pubsub;
pub mod server;
pub mod store;
pub mod tracking;
pub mod util;

use config::Config;
use server::Server;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Binds the listeners and serves until SHUTDOWN or a signal. Returns the
/// process exit code.
pub async fn run(config: Config, threads: usize) -> i32 {
    let port = config.get_i64("port");
    let bind = config.get("bind").to_string();
    let unixsocket = config.get("unixsocket").to_string();
    let unixperm = u32::from_str_radix(config.get("unixsocketperm"), 8).unwrap_or(0);
    let persistence_asked = !config.get("save").is_empty() || config.get_bool("appendonly");
    let srv = Server::new(config);
    tracing::info!(
        "kvik {} (Redis {} compatible) starting, pid={}, {} worker threads, {} shards",
        server::KVIK_VERSION,
        server::REDIS_VERSION,
        std::process::id(),
        threads,
        srv.store.shard_count()
    );
    if persistence_asked {
        tracing::warn!(
            "Persistence is not implemented yet: 'save' and 'appendonly' are accepted, but nothing is written to disk and all data is lost when the server stops."
        );
    }
    let mut bound_any = false;
    if port > 0 {
        for addr in bind.split_whitespace() {
            let (optional, host) = match addr.strip_prefix('-') {
                Some(h) => (true, h),
                None => (false, addr),
            };
            let host = if host == "*" { "0.0.0.0" } else { host };
            let sockaddr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            match tokio::net::TcpListener::bind(&sockaddr).await {
                Ok(l) => {
                    if let Ok(a) = l.local_addr() {
                        srv.bound_port.store(a.port() as i64, Ordering::Relaxed);
                    }
                    tokio::spawn(net::accept_tcp(srv.clone(), l));
                    bound_any = true;
                }
                Err(e) if optional => {
                    tracing::debug!("Skipping optional bind address {sockaddr}: {e}");
                }
                Err(e) => {
                    tracing::warn!(
                        "Warning: Could not create server TCP listening socket {sockaddr}: {e}"
                    );
                    tracing::warn!("Failed listening on port {port} (tcp), aborting.");
                    return 1;
                }
            }
        }
    }
    if !unixsocket.is_empty() {
        let _ = std::fs::remove_file(&unixsocket);
        match tokio::net::UnixListener::bind(&unixsocket) {
            Ok(l) => {
                if unixperm > 0 {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(
                        &unixsocket,
                        std::fs::Permissions::from_mode(unixperm),
                    );
                }
                tokio::spawn(net::accept_unix(srv.clone(), l, unixsocket.clone()));
                bound_any = true;
            }
            Err(e) => {
                tracing::warn!("Failed opening Unix socket: {e}");
                return 1;
            }
        }
    }
    if !bound_any {
        tracing::warn!("Configured to not listen anywhere, exiting.");
        return 1;
    }
    {
        let srv = srv.clone();
        std::thread::Builder::new()
            .name("kvik-expire".into())
            .spawn(move || expire::run(srv))
            .expect("spawn the active expiry thread");
    }
    tracing::info!("Server initialized");
    tracing::info!("Ready to accept connections tcp");
    wait_for_shutdown(&srv).await;
    srv.shutting_down.store(true, Ordering::SeqCst);
    for c in srv.clients.lock().values() {
        c.kill();
    }
    if !unixsocket.is_empty() {
        let _ = std::fs::remove_file(&unixsocket);
    }
    tracing::info!("Redis is now ready to exit, bye bye...");
    0
}

async fn wait_for_shutdown(srv: &Arc<Server>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let term_fut = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let int_fut = async {
        match int.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term_fut => tracing::warn!("Received SIGTERM scheduling shutdown..."),
        _ = int_fut => tracing::warn!("Received SIGINT scheduling shutdown..."),
        _ = srv.shutdown_notify.notified() => {}
    }
    tracing::warn!("User requested shutdown...");
}
