//! Transactions: the per-client MULTI queue and WATCH state, and the
//! watched-key registry kept in each shard.
//!
//! A watch is a weak reference to the watching client's "dirty" flag,
//! registered under the key in the shard that owns it. Every keyspace
//! mutation path ([`crate::db::Keyspace`]'s insert/remove/expire/modified)
//! calls [`touch`], which sets the flags of the key's watchers; the flag is
//! set and read under the shard's lock, so EXEC (which locks the shards of
//! all watched keys) sees every modification that happened before it.
//! While nobody watches anything, [`touch`] is one relaxed atomic load.
//!
//! Deletions that bypass those paths (lazy and active expiry, eviction,
//! FLUSHDB/FLUSHALL) are caught at EXEC time instead: each watch records
//! whether the key existed when it was watched, and EXEC aborts when that
//! changed. This is exactly Redis 7's rule for expired watched keys, and it
//! makes a flush of a watched key that did not exist a no-op, as in Redis.

use crate::store::{Locked, Shard, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// Number of (client, key) watches registered in the process: zero lets
/// [`touch`] skip the registry lookup.
static WATCHES: AtomicUsize = AtomicUsize::new(0);

/// Keys watched by clients that disconnected while watching.
static ORPHANS: std::sync::Mutex<Vec<Box<[u8]>>> = std::sync::Mutex::new(Vec::new());

/// Whether [`ORPHANS`] may be non-empty (checked without the mutex).
static HAS_ORPHANS: AtomicBool = AtomicBool::new(false);

/// Removes the registry entries of disconnected clients. Call it with no
/// shard locked; it locks the shards of the orphaned keys one at a time.
pub fn prune_orphans(store: &Store) {
    if !HAS_ORPHANS.swap(false, Ordering::Acquire) {
        return;
    }
    let keys = std::mem::take(&mut *ORPHANS.lock().unwrap_or_else(|e| e.into_inner()));
    for key in keys {
        let mut s = store.lock(store.shard_of(&key));
        if let Some(list) = s.watches.get_mut(&key) {
            list.retain(|(_, f)| f.strong_count() > 0);
            if list.is_empty() {
                s.watches.remove(&key);
            }
        }
    }
}

/// Per-shard registry: key → watchers as (database, client dirty flag).
pub type WatchMap = HashMap<Box<[u8]>, Vec<(usize, Weak<AtomicBool>)>>;

/// One key a client watches.
#[derive(Debug)]
struct Watched {
    db: usize,
    key: Box<[u8]>,
    /// Whether the key existed (and had not expired) at WATCH time.
    existed: bool,
}

/// A client's transaction state.
#[derive(Debug, Default)]
pub struct TxState {
    /// Queued commands while in MULTI (`None` outside MULTI).
    queue: Option<Vec<Vec<Vec<u8>>>>,
    /// A command was rejected while queuing: EXEC must abort.
    errored: bool,
    /// Set by [`touch`] when a watched key is modified.
    dirty: Arc<AtomicBool>,
    /// Keys watched, in WATCH order.
    watched: Vec<Watched>,
}

impl TxState {
    /// Whether the client is inside MULTI.
    pub fn in_multi(&self) -> bool {
        self.queue.is_some()
    }

    /// Enters MULTI.
    pub fn begin(&mut self) {
        self.queue = Some(Vec::new());
        self.errored = false;
    }

    /// Queues a command (the caller checked it may be queued).
    pub fn push(&mut self, args: &[&[u8]]) {
        if let Some(q) = &mut self.queue {
            q.push(args.iter().map(|a| a.to_vec()).collect());
        }
    }

    /// Marks the transaction as failed (Redis's `flagTransaction`); no-op
    /// outside MULTI.
    pub fn flag_error(&mut self) {
        if self.queue.is_some() {
            self.errored = true;
        }
    }

    /// Leaves MULTI, returning the queue and whether it must be aborted
    /// because of queuing errors; `None` when not in MULTI.
    pub fn take(&mut self) -> Option<(Vec<Vec<Vec<u8>>>, bool)> {
        let q = self.queue.take()?;
        Some((q, std::mem::take(&mut self.errored)))
    }

    /// Whether the client watches anything.
    pub fn watching(&self) -> bool {
        !self.watched.is_empty()
    }

    /// Shards of the watched keys.
    pub fn watched_shards<'s>(&'s self, store: &'s Store) -> impl Iterator<Item = usize> + 's {
        self.watched.iter().map(move |w| store.shard_of(&w.key))
    }
}

impl Drop for TxState {
    /// A client that disconnects while watching leaves dead entries in the
    /// shard registries (no store is at hand here): the count is fixed now
    /// and the keys are queued for [`prune_orphans`].
    fn drop(&mut self) {
        if !self.watched.is_empty() {
            WATCHES.fetch_sub(self.watched.len(), Ordering::Relaxed);
            let mut o = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
            o.extend(self.watched.drain(..).map(|w| w.key));
            HAS_ORPHANS.store(true, Ordering::Release);
        }
    }
}

/// Signals a modification of `key` in `db` to its watchers. The caller
/// holds the lock of `shard` (the key's shard).
#[inline]
pub fn touch(shard: &mut Shard, db: usize, key: &[u8]) {
    if WATCHES.load(Ordering::Relaxed) == 0 {
        return;
    }
    touch_slow(shard, db, key);
}

#[cold]
fn touch_slow(shard: &mut Shard, db: usize, key: &[u8]) {
    if let Some(list) = shard.watches.get_mut(key) {
        list.retain(|(d, flag)| match flag.upgrade() {
            Some(f) => {
                if *d == db {
                    f.store(true, Ordering::Relaxed);
                }
                true
            }
            // The client disconnected without UNWATCH.
            None => false,
        });
        if list.is_empty() {
            shard.watches.remove(key);
        }
    }
}

/// SWAPDB `a` `b`: every watcher of a key that exists in either database
/// sees its key's value change (Redis's `touchAllWatchedKeysInDb` for both
/// databases). Needs every shard locked.
pub fn touch_swapdb(locks: &mut Locked<'_>, a: usize, b: usize, now_ms: i64) {
    if WATCHES.load(Ordering::Relaxed) == 0 {
        return;
    }
    for shard in locks.iter_mut() {
        let live = |shard: &Shard, db: usize, key: &[u8]| {
            shard.dbs[db]
                .get(key)
                .is_some_and(|e| !e.is_expired(now_ms))
        };
        for (key, list) in &shard.watches {
            let hit = live(shard, a, key) || live(shard, b, key);
            if !hit {
                continue;
            }
            for (d, flag) in list {
                if *d == a || *d == b {
                    if let Some(f) = flag.upgrade() {
                        f.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// WATCH `key` in `db` for `tx`; `existed` tells whether the key is live
/// now. The caller holds the key's shard lock.
pub fn watch(tx: &mut TxState, shard: &mut Shard, db: usize, key: &[u8], existed: bool) {
    if tx.watched.iter().any(|w| w.db == db && *w.key == *key) {
        return;
    }
    let list = shard.watches.entry(key.into()).or_default();
    // Drop watches of clients that disconnected without UNWATCH (their
    // count was given back when their state was dropped).
    list.retain(|(_, f)| f.strong_count() > 0);
    list.push((db, Arc::downgrade(&tx.dirty)));
    WATCHES.fetch_add(1, Ordering::Relaxed);
    tx.watched.push(Watched {
        db,
        key: key.into(),
        existed,
    });
}

fn forget(shard: &mut Shard, tx_flag: &Arc<AtomicBool>, w: &Watched) {
    if let Some(list) = shard.watches.get_mut(&*w.key) {
        let before = list.len();
        list.retain(|(d, f)| !(*d == w.db && std::ptr::eq(f.as_ptr(), Arc::as_ptr(tx_flag))));
        WATCHES.fetch_sub(before - list.len(), Ordering::Relaxed);
        if list.is_empty() {
            shard.watches.remove(&*w.key);
        }
    }
}

/// UNWATCH with no shard locked: locks the shards of the watched keys one
/// at a time.
pub fn unwatch(tx: &mut TxState, store: &Store) {
    prune_orphans(store);
    for w in std::mem::take(&mut tx.watched) {
        let mut g = store.lock(store.shard_of(&w.key));
        forget(&mut g, &tx.dirty, &w);
    }
    tx.dirty.store(false, Ordering::Relaxed);
}

/// UNWATCH while holding (at least) the shards of every watched key.
pub fn unwatch_locked(tx: &mut TxState, store: &Store, locks: &mut Locked<'_>) {
    for w in std::mem::take(&mut tx.watched) {
        if let Some(s) = locks.shard(store.shard_of(&w.key)) {
            forget(s, &tx.dirty, &w);
        }
    }
    tx.dirty.store(false, Ordering::Relaxed);
}

/// Whether EXEC must fail because a watched key changed: touched, or its
/// existence differs from WATCH time (expired, flushed, evicted). The
/// caller holds the shards of every watched key.
pub fn watch_failed(tx: &TxState, store: &Store, locks: &Locked<'_>, now_ms: i64) -> bool {
    if tx.dirty.load(Ordering::Relaxed) {
        return true;
    }
    tx.watched.iter().any(|w| {
        let live = locks
            .shard_ref(store.shard_of(&w.key))
            .and_then(|s| s.dbs[w.db].get(&w.key))
            .is_some_and(|e| !e.is_expired(now_ms));
        live != w.existed
    })
}

/// Drops the client's transaction and watches (RESET, disconnect).
pub fn reset(tx: &mut TxState, store: &Store) {
    tx.queue = None;
    tx.errored = false;
    unwatch(tx, store);
}

/// A rejected EXEC (arity, NOAUTH): Redis's `execCommandAbort` discards
/// the transaction, unwatches and wraps the error. `msg` has no code
/// prefix for ERR errors (`wrong number of arguments ...`), as Redis's.
pub fn exec_abort(tx: &mut TxState, store: &Store, out: &mut kvik_protocol::ReplyBuf, msg: &str) {
    tx.queue = None;
    tx.errored = false;
    unwatch(tx, store);
    out.error(&format!(
        "EXECABORT Transaction discarded because of: {msg}"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_marks_watchers_of_the_same_db_only() {
        let store = Store::new(1, 2);
        let mut tx = TxState::default();
        let mut other_db = TxState::default();
        {
            let mut s = store.lock(0);
            watch(&mut tx, &mut s, 0, b"k", false);
            watch(&mut tx, &mut s, 0, b"k", false); // duplicate: ignored
            watch(&mut other_db, &mut s, 1, b"k", false);
            assert_eq!(s.watches.get(&b"k"[..]).map(Vec::len), Some(2));
            touch(&mut s, 0, b"k");
            touch(&mut s, 0, b"unwatched");
        }
        assert!(tx.dirty.load(Ordering::Relaxed));
        assert!(!other_db.dirty.load(Ordering::Relaxed));
        let locks = store.lock_all();
        assert!(watch_failed(&tx, &store, &locks, 0));
        assert!(!watch_failed(&other_db, &store, &locks, 0));
        drop(locks);
        unwatch(&mut tx, &store);
        assert!(!tx.dirty.load(Ordering::Relaxed));
        assert!(!tx.watching());
        // A dropped client's entry is pruned later.
        drop(other_db);
        prune_orphans(&store);
        assert!(store.lock(0).watches.is_empty());
    }

    #[test]
    fn queue_and_error_flag() {
        let mut tx = TxState::default();
        tx.flag_error(); // outside MULTI: no effect
        assert!(tx.take().is_none());
        tx.begin();
        tx.push(&[b"SET", b"a", b"1"]);
        tx.flag_error();
        let (q, errored) = tx.take().expect("in MULTI");
        assert_eq!(q.len(), 1);
        assert!(errored);
        assert!(!tx.in_multi());
    }
}
