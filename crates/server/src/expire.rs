//! Active expiry: like Redis's `activeExpireCycle`, a background pass
//! `hz` times per second reclaims keys whose TTL passed, even if nobody
//! reads them again. Each pass visits the shards in turn; in each shard and
//! database with volatile keys it sweeps a window of table slots, and
//! repeats on the same table while more than 10% of the volatile keys it
//! met had expired (Redis's "acceptable stale" default), bounded by a CPU
//! budget of 25% of the pass interval (more with `active-expire-effort`).
//!
//! Hash fields with an expiry are reclaimed too (Redis 7.4's hash field
//! expiration): each shard keeps, per database, the hashes that have field
//! expiries ordered by their next one ([`FieldExpiryQueue`]); the cycle
//! pops the due ones, deletes their expired fields (and the key if the
//! hash empties) and re-queues them at their next expiry. Two slow walks
//! keep that queue honest without hooks in generic code: one drops
//! entries whose key was deleted or replaced, one finds hashes that moved
//! to another key (RENAME, COPY, ...) and queues them.

use crate::server::Server;
use crate::store::{FieldExpiryQueue, Shard, EXPIRED_SUBKEYS, FIELD_EXPIRY_USED};
use crate::util::notify::{GENERIC, HASH};
use kvik_core::object::Object;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Slots swept per step.
const SLOTS_PER_STEP: usize = 256;

/// Fields a single hash may lose per visit before the cycle moves on (it
/// is re-queued at once and visited again while time remains).
const FIELDS_PER_HASH_STEP: usize = 1000;

/// Queue entries checked for staleness per database and pass.
const QUEUE_CHECKS_PER_PASS: usize = 64;

/// Keyspace buckets walked per database and pass looking for hashes with
/// field expiries that are not queued.
const ORPHAN_BUCKETS_PER_PASS: usize = 64;

/// Runs the active expiry loop until shutdown.
pub fn run(srv: std::sync::Arc<Server>) {
    while !srv.shutting_down.load(Ordering::Relaxed) {
        let hz = srv.tun.hz.load(Ordering::Relaxed).max(1) as u64;
        let period = Duration::from_micros(1_000_000 / hz);
        let started = Instant::now();
        if srv.active_expire.load(Ordering::Relaxed) {
            let effort = srv
                .tun
                .active_expire_effort
                .load(Ordering::Relaxed)
                .clamp(1, 10) as u32;
            let budget = period * (25 + 2 * (effort - 1)) / 100;
            cycle(&srv, started + budget);
        }
        let spent = started.elapsed();
        std::thread::sleep(period.saturating_sub(spent).max(Duration::from_millis(1)));
    }
}

/// One pass over all shards, stopping at `deadline`. Returns the number of
/// keys reclaimed.
pub fn cycle(srv: &Server, deadline: Instant) -> usize {
    let now = crate::util::now_ms();
    let mut total = 0;
    let fields = FIELD_EXPIRY_USED.load(Ordering::Relaxed);
    for shard_id in 0..srv.store.shard_count() {
        let mut shard = srv.store.lock(shard_id);
        let shard = &mut *shard;
        if fields {
            for db in 0..shard.dbs.len() {
                let keys = expire_fields(srv, shard, db, now, deadline);
                total += keys;
                if Instant::now() >= deadline {
                    return total;
                }
            }
        }
        for db in 0..shard.dbs.len() {
            let table = &mut shard.dbs[db];
            if table.volatile_len() == 0 {
                continue;
            }
            loop {
                let pos = shard.expire_pos[db];
                let mut seen_volatile = 0usize;
                let (next, removed) = table.sweep(
                    pos,
                    SLOTS_PER_STEP,
                    |e| match e.expire() {
                        Some(t) => {
                            seen_volatile += 1;
                            t <= now
                        }
                        None => false,
                    },
                    |e| crate::db::key_expired(srv, db, e.key()),
                );
                shard.expire_pos[db] = next;
                total += removed;
                if removed > 0 {
                    srv.stats
                        .expired_keys
                        .fetch_add(removed as u64, Ordering::Relaxed);
                    srv.stats.dirty.fetch_add(removed as u64, Ordering::Relaxed);
                }
                if Instant::now() >= deadline {
                    table.maybe_shrink();
                    srv.stats
                        .expire_cycle_cap_reached
                        .fetch_add(1, Ordering::Relaxed);
                    return total;
                }
                let worth_repeating = seen_volatile > 0 && removed * 10 > seen_volatile;
                if !worth_repeating || table.volatile_len() == 0 {
                    break;
                }
            }
            table.maybe_shrink();
        }
    }
    total
}

/// Reclaims the expired hash fields of `db` in `shard`; returns the number
/// of keys deleted because their hash emptied.
pub fn expire_fields(
    srv: &Server,
    shard: &mut Shard,
    db: usize,
    now: i64,
    deadline: Instant,
) -> usize {
    let mut keys = 0;
    let mut fields = 0;
    while let Some(first) = shard.hfe[db].due.first() {
        if first.0 > now || Instant::now() >= deadline {
            break;
        }
        let Some((t, key)) = shard.hfe[db].due.pop_first() else {
            break;
        };
        let table = &mut shard.dbs[db];
        let Some(e) = table.get_mut(&key) else {
            continue;
        };
        let Some(Object::Hash(h)) = e.object_mut() else {
            continue;
        };
        // Another stamp: the entry is stale (the hash is queued under a
        // newer entry, or is a different value that moved here).
        if h.queued_at() != t {
            continue;
        }
        let n = h.purge_expired_max(now, FIELDS_PER_HASH_STEP);
        fields += n;
        if n > 0 {
            crate::notify::emit(srv, HASH, "hexpired", &key, db);
        }
        if h.is_empty() {
            table.remove(&key);
            keys += 1;
            crate::notify::emit(srv, GENERIC, "del", &key, db);
            crate::tracking::invalidate_key(srv, &key, 0);
        } else if let Some(next) = h.min_expire() {
            h.set_queued_at(next);
            shard.hfe[db].due.insert((next, key));
        } else {
            h.set_queued_at(kvik_core::hash::NOT_QUEUED);
        }
    }
    if fields > 0 {
        EXPIRED_SUBKEYS.fetch_add(fields as u64, Ordering::Relaxed);
        srv.stats.dirty.fetch_add(fields as u64, Ordering::Relaxed);
    }
    drop_stale_entries(shard, db);
    queue_orphans(shard, db);
    keys
}

/// Walks a few queue entries from where the last pass stopped and drops
/// those whose key no longer holds the hash they were queued for (keys
/// deleted, overwritten, flushed or renamed away).
fn drop_stale_entries(shard: &mut Shard, db: usize) {
    let q: &mut FieldExpiryQueue = &mut shard.hfe[db];
    if q.due.is_empty() {
        q.check_from = None;
        return;
    }
    let start = q.check_from.take();
    let batch: Vec<(i64, Box<[u8]>)> = match &start {
        Some(from) => q
            .due
            .range((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
            .take(QUEUE_CHECKS_PER_PASS)
            .cloned()
            .collect(),
        None => q.due.iter().take(QUEUE_CHECKS_PER_PASS).cloned().collect(),
    };
    let table = &mut shard.dbs[db];
    for entry in &batch {
        let live = match table.get_mut(&entry.1).and_then(|e| e.object_mut()) {
            Some(Object::Hash(h)) => h.queued_at() == entry.0,
            _ => false,
        };
        if !live {
            q.due.remove(entry);
        }
    }
    // Resume after the last entry seen; start over once the end is reached.
    q.check_from = if batch.len() == QUEUE_CHECKS_PER_PASS {
        batch.last().cloned()
    } else {
        None
    };
}

/// Walks a few buckets of the keyspace and queues the hashes with field
/// expiries that are not queued under their current key.
fn queue_orphans(shard: &mut Shard, db: usize) {
    let table = &shard.dbs[db];
    if table.is_empty() {
        return;
    }
    let q = &shard.hfe[db];
    let mut cursor = q.scan_cursor;
    let mut found: Vec<Vec<u8>> = Vec::new();
    for _ in 0..ORPHAN_BUCKETS_PER_PASS {
        cursor = table.scan(cursor, |e| {
            if let kvik_core::entry::ValueRef::Obj(Object::Hash(h)) = e.value() {
                if h.min_expire().is_some()
                    && !q.due.contains(&(h.queued_at(), Box::<[u8]>::from(e.key())))
                {
                    found.push(e.key().to_vec());
                }
            }
        });
        if cursor == 0 {
            break;
        }
    }
    shard.hfe[db].scan_cursor = cursor;
    for key in found {
        if let Some(Object::Hash(h)) = shard.dbs[db].get_mut(&key).and_then(|e| e.object_mut()) {
            // Forget a stale stamp so tracking queues it afresh.
            h.set_queued_at(kvik_core::hash::NOT_QUEUED);
        }
        shard.hfe_track(db, &key);
    }
}
