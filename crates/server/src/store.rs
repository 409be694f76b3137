//! The keyspace: databases × shards. A key lives in shard
//! `key_hash_slot(key) % shards` (Redis Cluster's slot function, so keys
//! sharing a `{hash tag}` share a shard). Each shard is one mutex over the
//! tables of all databases for that shard.
//!
//! Locking rules (see docs/architecture.md): a command locks the shards of
//! its keys in ascending order; keyless commands (KEYS, SCAN, DBSIZE,
//! FLUSHALL, RANDOMKEY, SWAPDB) lock all shards in order. No code locks a
//! shard while holding a higher-numbered one, so there is no deadlock.

use kvik_core::crc16::key_hash_slot;
use kvik_core::hash::NOT_QUEUED;
use kvik_core::object::Object;
use kvik_core::table::Table;
use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One shard: a table per database.
#[derive(Debug)]
pub struct Shard {
    /// Tables indexed by database number.
    pub dbs: Vec<Table>,
    /// Active-expiry resume position per database.
    pub expire_pos: Vec<usize>,
    /// Hashes with field expiries, per database (see [`FieldExpiryQueue`]).
    pub hfe: Vec<FieldExpiryQueue>,
    /// Keys of this shard that clients WATCH (see `crate::multi`).
    pub watches: crate::multi::WatchMap,
    /// Clients blocked on keys of this shard (see `crate::blocking`).
    pub blocked: crate::blocking::BlockMap,
}

/// Hash fields reclaimed because their expiry passed (lazily or by the
/// active cycle): Redis 7.4's `expired_subkeys` stat.
pub static EXPIRED_SUBKEYS: AtomicU64 = AtomicU64::new(0);

/// Set once any hash field got an expiry; until then the active cycle does
/// no field-expiry work at all.
pub static FIELD_EXPIRY_USED: AtomicBool = AtomicBool::new(false);

/// The keys of one database whose hashes have field expiries, ordered by
/// the time their next field expires, like Redis's `db->hexpires`.
///
/// Each entry is `(time, key)`; the hash itself remembers the time it is
/// queued at ([`kvik_core::hash::Hash::queued_at`]), so an entry is live
/// only while the key holds a hash stamped with that time. Entries are
/// validated lazily, so the queue tolerates keys that were deleted,
/// overwritten or flushed behind its back: they are dropped when met. A
/// hash that moved to another key (RENAME, MOVE, COPY, SWAPDB, RESTORE)
/// without [`Shard::hfe_track`] being called for it is found again by a
/// slow background walk of the keyspace (see `expire.rs`).
#[derive(Debug, Default)]
pub struct FieldExpiryQueue {
    /// `(time of the next field expiry, key)`.
    pub due: BTreeSet<(i64, Box<[u8]>)>,
    /// Resume point of the walk that drops stale entries.
    pub check_from: Option<(i64, Box<[u8]>)>,
    /// Resume cursor of the keyspace walk that finds unqueued hashes.
    pub scan_cursor: u64,
}

impl Shard {
    /// Queues (or re-queues) the hash at `key` in `db` for active field
    /// expiry when it has field expiries and is not queued right. Call it
    /// after giving a hash field an expiry, and after a hash with field
    /// expiries appears under a new key (RENAME, MOVE, COPY, RESTORE).
    pub fn hfe_track(&mut self, db: usize, key: &[u8]) {
        let Some(e) = self.dbs[db].get_mut(key) else {
            return;
        };
        let Some(Object::Hash(h)) = e.object_mut() else {
            return;
        };
        let Some(min) = h.min_expire() else {
            return;
        };
        FIELD_EXPIRY_USED.store(true, Ordering::Relaxed);
        let q = &mut self.hfe[db];
        let at = h.queued_at();
        if at != NOT_QUEUED {
            let entry = (at, Box::<[u8]>::from(key));
            // Queued early enough: the cycle will re-queue it when due.
            if at <= min && q.due.contains(&entry) {
                return;
            }
            q.due.remove(&entry);
        }
        q.due.insert((min, key.into()));
        h.set_queued_at(min);
    }

    /// Forgets the field-expiry queue of `db` (FLUSHDB, FLUSHALL).
    pub fn hfe_clear(&mut self, db: usize) {
        self.hfe[db] = FieldExpiryQueue::default();
    }

    /// Swaps all per-database state of `a` and `b` (SWAPDB): tables,
    /// expiry positions and field-expiry queues.
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
        self.expire_pos.swap(a, b);
        self.hfe.swap(a, b);
    }
}

/// All shards.
#[derive(Debug)]
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    databases: usize,
}

impl Store {
    /// A store with `shards` shards of `databases` databases each.
    pub fn new(shards: usize, databases: usize) -> Store {
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard {
                    dbs: (0..databases).map(|_| Table::new()).collect(),
                    expire_pos: vec![0; databases],
                    hfe: (0..databases)
                        .map(|_| FieldExpiryQueue::default())
                        .collect(),
                    watches: Default::default(),
                    blocked: Default::default(),
                })
            })
            .collect();
        Store { shards, databases }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// The shard a key belongs to.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        key_hash_slot(key) as usize % self.shards.len()
    }

    /// Locks one shard.
    pub fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock()
    }

    /// Locks one shard as a [`Locked`] set.
    pub fn lock_one(&self, id: usize) -> Locked<'_> {
        let mut guards = Guards::new();
        guards.push((id, self.shards[id].lock()));
        Locked { guards, all: false }
    }

    /// Locks the given shards (any order, duplicates allowed) in ascending
    /// order.
    pub fn lock_set(&self, ids: &mut [usize]) -> Locked<'_> {
        ids.sort_unstable();
        let mut guards = Guards::new();
        let mut last = usize::MAX;
        for &i in ids.iter() {
            if i != last {
                guards.push((i, self.shards[i].lock()));
                last = i;
            }
        }
        Locked { guards, all: false }
    }

    /// Locks every shard in ascending order.
    pub fn lock_all(&self) -> Locked<'_> {
        let guards = (0..self.shards.len())
            .map(|i| (i, self.shards[i].lock()))
            .collect();
        Locked { guards, all: true }
    }

    /// Number of keys in `db` (locks shard by shard; not a snapshot).
    pub fn db_len(&self, db: usize) -> usize {
        self.shards.iter().map(|s| s.lock().dbs[db].len()).sum()
    }
}

/// Held guards; inline for the usual one to four shards.
type Guards<'a> = smallvec::SmallVec<[(usize, MutexGuard<'a, Shard>); 4]>;

/// A set of locked shards.
pub struct Locked<'a> {
    guards: Guards<'a>,
    all: bool,
}

impl<'a> Locked<'a> {
    /// Holds no shard (keyless commands that touch no data).
    pub fn none() -> Locked<'a> {
        Locked {
            guards: Guards::new(),
            all: false,
        }
    }

    /// Whether every shard is held.
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// The one shard held, when exactly one is (single-key commands).
    pub fn single(&self) -> Option<usize> {
        match self.guards.as_slice() {
            [(id, _)] if !self.all => Some(*id),
            _ => None,
        }
    }

    /// The locked shard `id`, if held.
    pub fn shard(&mut self, id: usize) -> Option<&mut Shard> {
        if self.all {
            return self.guards.get_mut(id).map(|(_, g)| &mut **g);
        }
        self.guards
            .iter_mut()
            .find(|(i, _)| *i == id)
            .map(|(_, g)| &mut **g)
    }

    /// Read access to the locked shard `id`, if held.
    pub fn shard_ref(&self, id: usize) -> Option<&Shard> {
        if self.all {
            return self.guards.get(id).map(|(_, g)| &**g);
        }
        self.guards
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, g)| &**g)
    }

    /// All held shards in ascending order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        self.guards.iter_mut().map(|(_, g)| &mut **g)
    }

    /// All held shards in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = &Shard> + use<'_, 'a> {
        self.guards.iter().map(|(_, g)| &**g)
    }

    /// (keys, volatile keys) per database over the held shards (INFO
    /// keyspace, with every shard held).
    pub fn keyspace_counts(&self, databases: usize) -> Vec<(usize, usize)> {
        let mut out = vec![(0, 0); databases];
        for shard in self.iter() {
            for (i, t) in shard.dbs.iter().enumerate() {
                out[i].0 += t.len();
                out[i].1 += t.volatile_len();
            }
        }
        out
    }

    /// Adds the shards `ids` not held yet, without waiting: either all are
    /// acquired (true) or none is (false). Never blocks, so it may be used
    /// while holding shards out of the ascending order.
    pub fn try_extend(&mut self, store: &'a Store, ids: &[usize]) -> bool {
        if self.all {
            return true;
        }
        let before = self.guards.len();
        for &id in ids {
            if self.guards.iter().any(|(i, _)| *i == id) {
                continue;
            }
            match store.shards[id].try_lock() {
                Some(g) => self.guards.push((id, g)),
                None => {
                    self.guards.truncate(before);
                    return false;
                }
            }
        }
        self.guards.sort_unstable_by_key(|(i, _)| *i);
        true
    }

    /// Whether shard `id` is held.
    pub fn holds(&self, id: usize) -> bool {
        self.all || self.guards.iter().any(|(i, _)| *i == id)
    }

    /// Releases every lock.
    pub fn release(&mut self) {
        self.guards.clear();
        self.all = false;
    }
}
