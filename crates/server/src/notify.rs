//! Keyspace notifications (`notify-keyspace-events`): every keyspace change
//! a command makes is published as `__keyspace@<db>__:<key>` (message: the
//! event name) and `__keyevent@<db>__:<event>` (message: the key), as
//! Redis's `notifyKeyspaceEvent` does.
//!
//! Handlers call [`crate::db::Keyspace::notify`]; expiry and eviction call
//! [`emit`] directly.

use crate::server::Server;
use crate::util::notify::{KEYEVENT, KEYSPACE};
use std::sync::atomic::Ordering;

/// Publishes the notification of `event` (class `class`, one of
/// `crate::util::notify`'s bits) on `key` in `db`, if the configured
/// classes ask for it.
#[inline]
pub fn emit(srv: &Server, class: u64, event: &str, key: &[u8], db: usize) {
    let flags = srv.tun.notify_flags.load(Ordering::Relaxed);
    if flags & class == 0 || flags & (KEYSPACE | KEYEVENT) == 0 {
        return;
    }
    emit_slow(srv, flags, event, key, db);
}

/// Whether an event of class `class` would be published at all (lets
/// callers skip building what [`emit`] needs).
#[inline]
pub fn wants(srv: &Server, class: u64) -> bool {
    let flags = srv.tun.notify_flags.load(Ordering::Relaxed);
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

#[cold]
fn emit_slow(srv: &Server, flags: u64, event: &str, key: &[u8], db: usize) {
    if flags & KEYSPACE != 0 {
        let mut chan = Vec::with_capacity(key.len() + 20);
        chan.extend_from_slice(format!("__keyspace@{db}__:").as_bytes());
        chan.extend_from_slice(key);
        srv.pubsub.publish_server(srv, &chan, event.as_bytes());
    }
    if flags & KEYEVENT != 0 {
        let chan = format!("__keyevent@{db}__:{event}");
        srv.pubsub.publish_server(srv, chan.as_bytes(), key);
    }
}
