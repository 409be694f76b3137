//! Keyspace access for handlers: lookups that apply lazy expiry and update
//! LRU/LFU bits, inserts, deletes and expiry changes, all inside the shards
//! the dispatcher locked. An expired key is removed on first touch and is
//! never visible to a command.

use crate::server::Server;
use crate::store::Locked;
use kvik_core::entry::{Entry, ValueRef, LRU_MAX};
use kvik_core::object::Object;
use kvik_core::table::{Lookup, Table};
use std::sync::atomic::Ordering;

/// Redis's LRU clock: seconds, 24 bits.
pub fn lru_clock(now_ms: i64) -> u32 {
    ((now_ms / 1000) as u32) & LRU_MAX
}

/// Initial LFU counter for new keys (Redis's LFU_INIT_VAL).
pub const LFU_INIT_VAL: u32 = 5;

/// LFU: minutes clock in the high 16 bits, log counter in the low 8.
fn lfu_minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xffff
}

/// The locked part of the keyspace a command works on.
pub struct Keyspace<'a> {
    /// Server (for stats and tunables).
    pub srv: &'a Server,
    /// Shards locked for this command.
    pub locks: Locked<'a>,
    /// The client's selected database.
    pub db: usize,
    /// Clock for this command (frozen while it runs).
    pub now_ms: i64,
    /// CLIENT NO-TOUCH in effect (and the command is not TOUCH).
    pub no_touch: bool,
    /// Name of the running command (for diagnostics).
    pub cmd_name: &'static str,
    /// The client running the command (tracking's NOLOOP); 0 for the
    /// server itself.
    pub client_id: u64,
    /// Keys some client is blocked on that this command created, appended
    /// to or deleted: (db, key), served by `crate::blocking::serve_ready`.
    pub ready: Vec<(usize, Box<[u8]>)>,
}

impl<'a> Keyspace<'a> {
    /// Locks every shard (keyless commands that read or write the whole
    /// keyspace). Locks held before are released first, so the ascending
    /// order rule holds.
    pub fn lock_all(&mut self) {
        if !self.locks.is_all() {
            self.locks.release();
            self.locks = self.srv.store.lock_all();
        }
    }

    fn table_for(&mut self, db: usize, key: &[u8]) -> &mut Table {
        let shard = self.shard_of(key);
        self.table_in(shard, db)
    }

    fn table_in(&mut self, shard: usize, db: usize) -> &mut Table {
        match self.locks.shard(shard) {
            Some(s) => &mut s.dbs[db],
            None => panic!(
                "command '{}' touched a key in shard {shard} it did not lock",
                self.cmd_name
            ),
        }
    }

    /// One probe of `key` in `db` with lazy expiry applied (expired keys
    /// are removed here and counted).
    fn probe(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now_ms;
        let srv = self.srv;
        let stats = &srv.stats;
        let shard = self.shard_of(key);
        let t = match self.locks.shard(shard) {
            Some(s) => &mut s.dbs[db],
            None => panic!(
                "command '{}' touched a key in shard {shard} it did not lock",
                self.cmd_name
            ),
        };
        match t.lookup(key, now) {
            Lookup::Found(e) => Some(e),
            Lookup::Missing => None,
            Lookup::Expired => {
                stats.expired_keys.fetch_add(1, Ordering::Relaxed);
                key_expired(srv, db, key);
                None
            }
        }
    }

    /// Removes `key` from `db` if it has expired; returns whether it did.
    fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        let now = self.now_ms;
        let t = self.table_for(db, key);
        match t.lookup(key, now) {
            Lookup::Expired => {
                self.srv.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
                key_expired(self.srv, db, key);
                true
            }
            _ => false,
        }
    }

    /// Looks `key` up in database `db` for a write (no hit/miss stats).
    pub fn lookup_db(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now_ms;
        let skip_touch = self.no_touch;
        let tun = &self.srv.tun;
        let lfu = tun.lfu.load(Ordering::Relaxed);
        let e = self.probe(db, key)?;
        if !skip_touch {
            if lfu {
                e.set_lru(lfu_touch(e.lru(), now, tun));
            } else {
                e.set_lru(lru_clock(now));
            }
        }
        Some(e)
    }

    /// Looks `key` up in the client's database for reading, counting
    /// keyspace hits and misses.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let srv = self.srv;
        let stats = &srv.stats;
        let db = self.db;
        let found = self.lookup_db(db, key);
        let stat = if found.is_some() {
            &stats.keyspace_hits
        } else {
            crate::notify::emit(srv, crate::util::notify::KEY_MISS, "keymiss", key, db);
            &stats.keyspace_misses
        };
        stat.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Looks `key` up in the client's database for writing.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.db;
        self.lookup_db(db, key)
    }

    /// Whether `key` exists in `db` (after lazy expiry), without touching
    /// its LRU bits.
    pub fn exists_in(&mut self, db: usize, key: &[u8]) -> bool {
        self.probe(db, key).is_some()
    }

    /// Peeks at a key without expiry side effects or LRU update (OBJECT,
    /// DEBUG). Expired keys are still reported absent.
    pub fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        let db = self.db;
        self.probe(db, key).map(|e| &*e)
    }

    /// Stores `entry` in the client's database, replacing any value (and
    /// its expiry) under the same key. Returns the replaced entry.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let db = self.db;
        self.insert_db(db, entry)
    }

    /// Stores `entry` in database `db`.
    pub fn insert_db(&mut self, db: usize, mut entry: Entry) -> Option<Entry> {
        if self.srv.tun.lfu.load(Ordering::Relaxed) {
            entry.set_lru((lfu_minutes(self.now_ms) << 8) | LFU_INIT_VAL);
        } else {
            entry.set_lru(lru_clock(self.now_ms));
        }
        self.srv.stats.dirty.fetch_add(1, Ordering::Relaxed);
        let shard = self.shard_of(entry.key());
        // A hash with field expiries joins the active field-expiry queue
        // under its (possibly new) key: covers RENAME, MOVE and COPY too.
        let track_fields = match entry.value() {
            ValueRef::Obj(Object::Hash(h)) if h.min_expire().is_some() => {
                Some(entry.key().to_vec())
            }
            _ => None,
        };
        let client_id = self.client_id;
        let new_key =
            crate::notify::wants(self.srv, crate::util::notify::NEW).then(|| entry.key().to_vec());
        if let Some(s) = self.locks.shard(shard) {
            crate::multi::touch(s, db, entry.key());
            if crate::blocking::BLOCKED.load(Ordering::Relaxed) > 0 {
                crate::blocking::note_ready(s, &mut self.ready, db, entry.key());
            }
        }
        crate::tracking::invalidate_key(self.srv, entry.key(), client_id);
        let old = self.table_in(shard, db).insert(entry);
        if let Some(key) = track_fields {
            if let Some(s) = self.locks.shard(shard) {
                s.hfe_track(db, &key);
            }
        }
        let old = match old {
            // The replaced value had expired: it is reclaimed here, as
            // Redis's lookupKeyWrite would have done first.
            Some(o) if o.is_expired(self.now_ms) => {
                self.srv.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
                crate::notify::emit(
                    self.srv,
                    crate::util::notify::EXPIRED,
                    "expired",
                    o.key(),
                    db,
                );
                None
            }
            other => other,
        };
        if let (None, Some(key)) = (&old, new_key) {
            crate::notify::emit(self.srv, crate::util::notify::NEW, "new", &key, db);
        }
        old
    }

    /// Deletes `key` from the client's database; returns whether a live key
    /// was removed.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let db = self.db;
        self.remove_db(db, key)
    }

    /// Deletes `key` from `db`.
    pub fn remove_db(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        if self.expire_if_needed(db, key) {
            return None;
        }
        let e = self.table_for(db, key).remove(key);
        if e.is_some() {
            self.srv.stats.dirty.fetch_add(1, Ordering::Relaxed);
            self.touch_watched(db, key);
            if crate::blocking::BLOCKED.load(Ordering::Relaxed) > 0 {
                self.signal_ready_db(db, key);
            }
        }
        e
    }

    /// Records that `key` (in the client's database) may now serve clients
    /// blocked on it: XADD to an existing stream, XGROUP changes. Keys
    /// created through [`Keyspace::insert`] are recorded automatically.
    pub fn signal_ready(&mut self, key: &[u8]) {
        let db = self.db;
        self.signal_ready_db(db, key);
    }

    fn signal_ready_db(&mut self, db: usize, key: &[u8]) {
        if crate::blocking::BLOCKED.load(Ordering::Relaxed) == 0 {
            return;
        }
        let shard = self.shard_of(key);
        if let Some(s) = self.locks.shard(shard) {
            crate::blocking::note_ready(s, &mut self.ready, db, key);
        }
    }

    /// Publishes keyspace notification `event` of class `class` (a
    /// `crate::util::notify` bit) for `key` in the client's database.
    #[inline]
    pub fn notify(&self, class: u64, event: &str, key: &[u8]) {
        crate::notify::emit(self.srv, class, event, key, self.db);
    }

    /// [`Keyspace::notify`] for database `db`.
    #[inline]
    pub fn notify_db(&self, class: u64, event: &str, key: &[u8], db: usize) {
        crate::notify::emit(self.srv, class, event, key, db);
    }

    /// Sets or clears the expiry of a live key in the client's database.
    pub fn set_expire(&mut self, key: &[u8], expire_ms: Option<i64>) -> bool {
        let db = self.db;
        if self.expire_if_needed(db, key) {
            return false;
        }
        let ok = self.table_for(db, key).set_expire(key, expire_ms);
        if ok {
            self.srv.stats.dirty.fetch_add(1, Ordering::Relaxed);
            self.touch_watched(db, key);
        }
        ok
    }

    /// Records a modification that did not go through insert/remove (an
    /// in-place change such as APPEND or INCR).
    pub fn modified(&mut self, key: &[u8]) {
        self.srv.stats.dirty.fetch_add(1, Ordering::Relaxed);
        let db = self.db;
        self.touch_watched(db, key);
    }

    /// Signals a change of `key` in `db` to clients that WATCH it.
    #[inline]
    fn touch_watched(&mut self, db: usize, key: &[u8]) {
        let shard = self.shard_of(key);
        if let Some(s) = self.locks.shard(shard) {
            crate::multi::touch(s, db, key);
        }
        crate::tracking::invalidate_key(self.srv, key, self.client_id);
    }

    /// The table of database `db` in locked shard `shard` (whole-keyspace
    /// commands iterate shards with this).
    pub fn shard_table(&mut self, shard: usize, db: usize) -> &mut Table {
        match self.locks.shard(shard) {
            Some(s) => &mut s.dbs[db],
            None => panic!("shard {shard} not locked"),
        }
    }

    /// The shard of `key`. A command that holds a single shard can only
    /// touch keys of that shard (the dispatcher locked the shards of all
    /// its keys), so the slot hash is not computed again; debug builds
    /// check it.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        match self.locks.single() {
            Some(id) => {
                debug_assert_eq!(
                    id,
                    self.srv.store.shard_of(key),
                    "command '{}' touched a key outside its locked shard",
                    self.cmd_name
                );
                id
            }
            None => self.srv.store.shard_of(key),
        }
    }
}

/// Side effects of reclaiming an expired key (lazily or by the active
/// cycle): the `expired` event and tracking invalidation, as Redis's
/// `deleteExpiredKeyAndPropagate`.
pub fn key_expired(srv: &Server, db: usize, key: &[u8]) {
    crate::notify::emit(srv, crate::util::notify::EXPIRED, "expired", key, db);
    crate::tracking::invalidate_key(srv, key, 0);
}

/// Redis's LFU update: decay by elapsed minutes, then a logarithmic
/// increment.
pub fn lfu_touch(field: u32, now_ms: i64, tun: &crate::config::Tunables) -> u32 {
    let mut counter = lfu_decayed(field, now_ms, tun);
    if counter < 255 {
        let factor = tun.lfu_log_factor.load(Ordering::Relaxed) as f64;
        let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let p = 1.0 / (base * factor + 1.0);
        if fast_rand_unit() < p {
            counter += 1;
        }
    }
    (lfu_minutes(now_ms) << 8) | counter
}

/// LFU counter with decay applied, without incrementing (OBJECT FREQ):
/// one point per `lfu-decay-time` minutes since the last access, on
/// Redis's 16-bit minutes clock.
pub fn lfu_decayed(field: u32, now_ms: i64, tun: &crate::config::Tunables) -> u32 {
    let ldt = field >> 8;
    let counter = field & 0xff;
    let now_min = lfu_minutes(now_ms);
    let elapsed = if now_min >= ldt {
        now_min - ldt
    } else {
        65535 - ldt + now_min
    };
    let decay_time = tun.lfu_decay_time.load(Ordering::Relaxed);
    if decay_time > 0 {
        let periods = (elapsed as i64 / decay_time) as u32;
        counter.saturating_sub(periods)
    } else {
        counter
    }
}

/// A uniform value in [0, 1) from a thread-local xorshift generator.
pub fn fast_rand_unit() -> f64 {
    (fast_rand() >> 11) as f64 / (1u64 << 53) as f64
}

/// A thread-local xorshift64* random number.
pub fn fast_rand() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    fn seed() -> u64 {
        let t = crate::util::now_us() as u64;
        let addr = &t as *const u64 as u64;
        (t ^ addr.rotate_left(29)) | 1
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}
