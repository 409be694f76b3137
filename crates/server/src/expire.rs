//! Active expiry: like Redis's `activeExpireCycle`, a background pass
//! `hz` times per second reclaims keys whose TTL passed, even if nobody
//! reads them again. Each pass visits the shards in turn; in each shard and
//! database with volatile keys it sweeps a window of table slots, and
//! repeats on the same table while more than 10% of the volatile keys it
//! met had expired (Redis's "acceptable stale" default), bounded by a CPU
//! budget of 25% of the pass interval (more with `active-expire-effort`).

use crate::server::Server;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Slots swept per step.
const SLOTS_PER_STEP: usize = 256;

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
    for shard_id in 0..srv.store.shard_count() {
        let mut shard = srv.store.lock(shard_id);
        let shard = &mut *shard;
        for db in 0..shard.dbs.len() {
            let table = &mut shard.dbs[db];
            if table.volatile_len() == 0 {
                continue;
            }
            loop {
                let pos = shard.expire_pos[db];
                let mut seen_volatile = 0usize;
                let (next, removed) = table.sweep(pos, SLOTS_PER_STEP, |e| match e.expire() {
                    Some(t) => {
                        seen_volatile += 1;
                        t <= now
                    }
                    None => false,
                });
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
