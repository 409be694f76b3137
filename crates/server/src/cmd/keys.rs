//! Generic keyspace commands (Redis's `db.c` and `expire.c`): DEL, UNLINK,
//! EXISTS, TYPE, RENAME, RENAMENX, COPY, MOVE, KEYS, SCAN, RANDOMKEY, TOUCH,
//! OBJECT, the EXPIRE family, TTL family and PERSIST, plus the
//! whole-keyspace server commands DBSIZE, FLUSHDB, FLUSHALL and SWAPDB.
//!
//! Expired keys are never visible: single-key lookups expire lazily through
//! [`Keyspace`]; commands that walk whole tables (KEYS, SCAN, RANDOMKEY)
//! filter with [`Entry::is_expired`] themselves. DBSIZE, like Redis's
//! `dictSize`, counts keys whose TTL passed but that were not reclaimed yet.
//!
//! # SCAN cursors
//!
//! Each shard has its own [`Table`] per database, and a table's SCAN cursor
//! (Redis's reverse-binary cursor over home buckets) is always below the
//! table's capacity. A kvik cursor is the composite
//!
//! ```text
//! cursor = (table_cursor << shard_bits) | shard_index
//! shard_bits = ceil(log2(shard_count))
//! ```
//!
//! A scan walks shard 0's table to completion, then shard 1's, and so on;
//! when a table's cursor wraps to 0 the composite cursor moves to
//! `(0, shard + 1)`, and the scan ends (cursor 0) after the last shard.
//! Within a shard the table cursor keeps Redis's guarantee across growth
//! and shrinking between calls, and a shard is left only after its table
//! was scanned completely, so every key present for the whole scan is
//! returned at least once. Composite cursors are nonzero until the end: a
//! cursor with table part 0 names a shard > 0.

use super::{arg_i64, is};
use crate::db::{lfu_decayed, lru_clock, Keyspace};
use crate::dispatch::{err, CommandTable, Ctx};
use crate::util::notify::GENERIC;
use kvik_core::entry::{Entry, ValueRef, LRU_MAX};
use kvik_core::glob::glob_match;
use kvik_core::table::Table;
use kvik_protocol::reply::Aggregate;
use kvik_protocol::ReplyBuf;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("del", del);
    t.add("unlink", del);
    t.add("exists", exists);
    t.add("type", type_cmd);
    t.add("rename", rename);
    t.add("renamenx", renamenx);
    t.add("copy", copy);
    t.add("move", move_cmd);
    t.add("keys", keys);
    t.add("scan", scan);
    t.add("randomkey", randomkey);
    t.add("touch", touch);
    t.add("object|encoding", object_encoding);
    t.add("object|freq", object_freq);
    t.add("object|idletime", object_idletime);
    t.add("object|refcount", object_refcount);
    t.add("object|help", object_help);
    t.add("expire", expire);
    t.add("pexpire", pexpire);
    t.add("expireat", expireat);
    t.add("pexpireat", pexpireat);
    t.add("ttl", ttl);
    t.add("pttl", pttl);
    t.add("expiretime", expiretime);
    t.add("pexpiretime", pexpiretime);
    t.add("persist", persist);
    t.add("dbsize", dbsize);
    t.add("flushdb", flushdb);
    t.add("flushall", flushall);
    t.add("swapdb", swapdb);
}

// ---------------------------------------------------------------------------
// Shared helpers

/// The Redis type name of an entry's value (`TYPE`, `SCAN ... TYPE`).
pub fn type_name(e: &Entry) -> &'static str {
    match e.value() {
        ValueRef::Str(_) | ValueRef::Int(_) => "string",
        ValueRef::Obj(o) => o.type_name(),
    }
}

/// The Redis encoding name of an entry's value (`OBJECT ENCODING`).
pub fn encoding_name(e: &Entry) -> &'static str {
    match e.value() {
        ValueRef::Str(_) => "embstr",
        ValueRef::Int(_) => "int",
        ValueRef::Obj(o) => o.encoding(),
    }
}

/// Looks a key up in the client's database like Redis's
/// `lookupKeyReadWithFlags(LOOKUP_NOTOUCH)`: lazy expiry and hit/miss
/// statistics, but no LRU/LFU update.
pub fn lookup_notouch<'k>(ks: &'k mut Keyspace<'_>, key: &[u8]) -> Option<&'k Entry> {
    lookup_notouch_notify(ks, key, true)
}

/// [`lookup_notouch`] without the `keymiss` event (OBJECT's
/// `LOOKUP_NONOTIFY`).
fn lookup_object<'k>(ks: &'k mut Keyspace<'_>, key: &[u8]) -> Option<&'k Entry> {
    lookup_notouch_notify(ks, key, false)
}

fn lookup_notouch_notify<'k>(
    ks: &'k mut Keyspace<'_>,
    key: &[u8],
    notify: bool,
) -> Option<&'k Entry> {
    if !exists_notouch(ks, key, notify) {
        return None;
    }
    // Lazy expiry already ran: read the table directly.
    let (db, shard) = (ks.db, ks.shard_of(key));
    ks.shard_table(shard, db).get(key)
}

/// Whether a key exists, with the lazy expiry and statistics of
/// [`lookup_notouch`] (and its `keymiss` event when `notify`).
fn exists_notouch(ks: &mut Keyspace<'_>, key: &[u8], notify: bool) -> bool {
    let db = ks.db;
    let hit = ks.exists_in(db, key);
    let stat = if hit {
        &ks.srv.stats.keyspace_hits
    } else {
        if notify {
            ks.notify(crate::util::notify::KEY_MISS, "keymiss", key);
        }
        &ks.srv.stats.keyspace_misses
    };
    stat.fetch_add(1, Ordering::Relaxed);
    hit
}

/// Writes an error reply made of `prefix` followed by user bytes (CR/LF
/// become spaces, as Redis's `addReplyErrorFormat` does), so non-UTF-8
/// arguments are echoed byte for byte.
fn error_with_arg(out: &mut ReplyBuf, prefix: &str, arg: &[u8]) {
    let raw = out.raw_mut();
    raw.push(b'-');
    raw.extend_from_slice(prefix.as_bytes());
    raw.extend(
        arg.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    raw.extend_from_slice(b"\r\n");
}

/// Parses an `int` argument as Redis's `getIntFromObjectOrReply`: `msg`
/// (a full error, with code) replaces both the "not an integer" and the
/// "out of range" errors when given.
fn arg_int(ctx: &mut Ctx<'_>, arg: &[u8], msg: Option<&str>) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        None => {
            ctx.error(msg.unwrap_or(err::NOT_INT));
            None
        }
        Some(v) if v < i32::MIN as i64 || v > i32::MAX as i64 => {
            ctx.error(msg.unwrap_or(
                "ERR value is out of range, value must between -2147483648 and 2147483647",
            ));
            None
        }
        Some(v) => Some(v),
    }
}

/// Parses a database index argument (MOVE, COPY ... DB): an `int`, then a
/// range check against `databases`.
fn arg_db(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<usize> {
    let id = arg_int(ctx, arg, None)?;
    if id < 0 || id as usize >= ctx.srv.databases() {
        ctx.error(err::DB_RANGE);
        return None;
    }
    Some(id as usize)
}

/// Sets the raw LRU/LFU field of a stored key without any other effect
/// (RENAME and MOVE keep the value's access history, as Redis moves the
/// object itself).
fn restore_lru(ks: &mut Keyspace<'_>, db: usize, key: &[u8], lru: u32) {
    let shard = ks.shard_of(key);
    if let Some(e) = ks.shard_table(shard, db).get_mut(key) {
        e.set_lru(lru);
    }
}

// ---------------------------------------------------------------------------
// DEL, UNLINK, EXISTS, TYPE, TOUCH

/// DEL and UNLINK (values are freed inline; an entry and its object are
/// released in one step either way).
fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut n = 0;
    for key in &args[1..] {
        if ctx.ks.remove(key).is_some() {
            ctx.ks.notify(GENERIC, "del", key);
            n += 1;
        }
    }
    ctx.out.int(n);
}

fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut n = 0;
    for key in &args[1..] {
        if exists_notouch(&mut ctx.ks, key, true) {
            n += 1;
        }
    }
    ctx.out.int(n);
}

fn type_cmd(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let name = lookup_notouch(&mut ctx.ks, args[1]).map_or("none", type_name);
    ctx.out.simple(name);
}

fn touch(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut n = 0;
    for key in &args[1..] {
        if ctx.ks.lookup_read(key).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
}

// ---------------------------------------------------------------------------
// RENAME, RENAMENX, COPY, MOVE

fn rename(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    rename_generic(ctx, args, false);
}

fn renamenx(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    rename_generic(ctx, args, true);
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], nx: bool) {
    let (src, dst) = (args[1], args[2]);
    if ctx.ks.lookup_write(src).is_none() {
        ctx.error(err::NO_KEY);
        return;
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return;
    }
    if nx && ctx.ks.lookup_write(dst).is_some() {
        ctx.out.int(0);
        return;
    }
    let Some(entry) = ctx.ks.remove(src) else {
        // Checked live just above, under the same locks.
        ctx.error(err::NO_KEY);
        return;
    };
    let lru = entry.lru();
    // The entry keeps its expiry and replaces dst and its TTL (dst is
    // deleted first, so the new key is announced as Redis does).
    ctx.ks.remove(dst);
    ctx.ks.insert(entry.rekey(dst));
    let db = ctx.ks.db;
    restore_lru(&mut ctx.ks, db, dst, lru);
    ctx.ks.notify(GENERIC, "rename_from", src);
    ctx.ks.notify(GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
}

fn copy(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let src_db = ctx.ks.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if is(args[j], "replace") {
            replace = true;
        } else if is(args[j], "db") && j + 1 < args.len() {
            let Some(db) = arg_db(ctx, args[j + 1]) else {
                return;
            };
            dst_db = db;
            j += 1;
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
        j += 1;
    }
    let (key, newkey) = (args[1], args[2]);
    if src_db == dst_db && key == newkey {
        ctx.error("ERR source and destination objects are the same");
        return;
    }
    let copied = match ctx.ks.lookup_read(key) {
        None => {
            ctx.out.int(0);
            return;
        }
        Some(e) => e.duplicate(newkey, e.expire()),
    };
    if ctx.ks.lookup_db(dst_db, newkey).is_some() && !replace {
        ctx.out.int(0);
        return;
    }
    ctx.ks.remove_db(dst_db, newkey);
    ctx.ks.insert_db(dst_db, copied);
    ctx.ks.notify_db(GENERIC, "copy_to", newkey, dst_db);
    ctx.out.int(1);
}

fn move_cmd(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let Some(dst_db) = arg_db(ctx, args[2]) else {
        return;
    };
    let src_db = ctx.ks.db;
    if dst_db == src_db {
        ctx.error("ERR source and destination objects are the same");
        return;
    }
    if ctx.ks.lookup_write(key).is_none() || ctx.ks.lookup_db(dst_db, key).is_some() {
        ctx.out.int(0);
        return;
    }
    let Some(entry) = ctx.ks.remove_db(src_db, key) else {
        ctx.out.int(0);
        return;
    };
    let lru = entry.lru();
    ctx.ks.insert_db(dst_db, entry);
    restore_lru(&mut ctx.ks, dst_db, key, lru);
    ctx.ks.notify_db(GENERIC, "move_from", key, src_db);
    ctx.ks.notify_db(GENERIC, "move_to", key, dst_db);
    ctx.out.int(1);
}

// ---------------------------------------------------------------------------
// KEYS, SCAN, RANDOMKEY

fn keys(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let pattern = args[1];
    let allkeys = pattern == b"*";
    ctx.ks.lock_all();
    let db = ctx.ks.db;
    let now = ctx.ks.now_ms;
    let out = &mut *ctx.out;
    let d = out.begin_deferred();
    let mut n = 0;
    for shard in ctx.ks.locks.iter() {
        for e in shard.dbs[db].iter() {
            let key = e.key();
            if (allkeys || glob_match(pattern, key, false)) && !e.is_expired(now) {
                out.bulk(key);
                n += 1;
            }
        }
    }
    out.end_deferred(d, Aggregate::Array, n);
}

/// Number of low cursor bits that hold the shard index.
pub fn shard_bits(shards: usize) -> u32 {
    if shards <= 1 {
        0
    } else {
        usize::BITS - (shards - 1).leading_zeros()
    }
}

/// Builds a composite SCAN cursor (see the module docs).
pub fn encode_cursor(shard: usize, table_cursor: u64, bits: u32) -> u64 {
    (table_cursor << bits) | shard as u64
}

/// Splits a composite SCAN cursor into (shard index, table cursor).
pub fn decode_cursor(cursor: u64, bits: u32) -> (usize, u64) {
    let mask = (1u64 << bits) - 1;
    ((cursor & mask) as usize, cursor >> bits)
}

/// One SCAN call over the per-shard tables of a database: visits buckets
/// from `cursor` until at least `count` entries were seen or `count * 10`
/// buckets were visited (Redis's bound for sparse tables), and returns the
/// next composite cursor (0 when the scan is complete). Empty tables are
/// skipped without using the budget.
pub fn scan_tables(
    tables: &[&Table],
    cursor: u64,
    count: usize,
    mut visit: impl FnMut(&Entry),
) -> u64 {
    let n = tables.len();
    let bits = shard_bits(n);
    let (mut shard, mut tcur) = decode_cursor(cursor, bits);
    if shard >= n {
        // Not a cursor kvik returned: nothing to continue.
        return 0;
    }
    let mut seen = 0usize;
    let mut budget = count.saturating_mul(10).max(1);
    loop {
        let t = tables[shard];
        if t.is_empty() {
            tcur = 0;
        } else {
            tcur = t.scan(tcur, |e| {
                seen += 1;
                visit(e);
            });
            budget -= 1;
        }
        if tcur == 0 {
            shard += 1;
            if shard == n {
                return 0;
            }
        }
        if seen >= count || budget == 0 {
            return encode_cursor(shard, tcur, bits);
        }
    }
}

/// Parses a SCAN cursor as Redis does with `strtoul`: an optional sign
/// (a negative value wraps), decimal digits, nothing after; a leading
/// blank, trailing garbage or overflow is an error, and the empty string is
/// cursor 0. Like a C string, the argument ends at its first NUL byte.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = match arg.iter().position(|&c| c == 0) {
        Some(i) => &arg[..i],
        None => arg,
    };
    if s.is_empty() {
        return Some(0);
    }
    if matches!(s[0], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Options of the SCAN family, as Redis's `scanGenericCommand` parses them.
#[derive(Debug, Default)]
pub struct ScanOptions<'a> {
    /// COUNT (default 10).
    pub count: usize,
    /// MATCH pattern; None for none or `*` (which matches everything).
    pub pattern: Option<&'a [u8]>,
    /// TYPE (SCAN only).
    pub typename: Option<&'a [u8]>,
    /// NOVALUES (HSCAN only).
    pub novalues: bool,
}

/// Parses `args[start..]` for SCAN (`with_type`), HSCAN (`with_novalues`),
/// SSCAN and ZSCAN. The error is the reply to send.
pub fn parse_scan_options<'a>(
    args: &[&'a [u8]],
    start: usize,
    with_type: bool,
    with_novalues: bool,
) -> Result<ScanOptions<'a>, &'static str> {
    let mut o = ScanOptions {
        count: 10,
        ..ScanOptions::default()
    };
    let mut i = start;
    while i < args.len() {
        let left = args.len() - i;
        let word = super::c_str(args[i]);
        if is(word, "count") && left >= 2 {
            let c = crate::util::parse_i64(args[i + 1]).ok_or(err::NOT_INT)?;
            if c < 1 {
                return Err(err::SYNTAX);
            }
            o.count = usize::try_from(c).unwrap_or(usize::MAX);
            i += 2;
        } else if is(word, "match") && left >= 2 {
            o.pattern = (args[i + 1] != b"*").then_some(args[i + 1]);
            i += 2;
        } else if with_type && is(word, "type") && left >= 2 {
            o.typename = Some(args[i + 1]);
            i += 2;
        } else if with_novalues && is(word, "novalues") {
            o.novalues = true;
            i += 1;
        } else {
            return Err(err::SYNTAX);
        }
    }
    Ok(o)
}

/// Writes a SCAN-family reply: the next cursor, then the `n` elements
/// already encoded in `body`.
pub fn reply_scan(out: &mut ReplyBuf, next: u64, n: usize, body: &ReplyBuf) {
    let mut buf = [0u8; kvik_core::num::MAX_INT_LEN];
    out.array(2);
    out.bulk(kvik_core::num::format_u64(next, &mut buf));
    out.array(n);
    out.raw(body.as_bytes());
}

fn scan(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(cursor) = parse_cursor(args[1]) else {
        ctx.error("ERR invalid cursor");
        return;
    };
    let ScanOptions {
        count,
        pattern,
        typename,
        ..
    } = match parse_scan_options(args, 2, true, false) {
        Ok(o) => o,
        Err(e) => return ctx.error(e),
    };

    ctx.ks.lock_all();
    let db = ctx.ks.db;
    let now = ctx.ks.now_ms;
    // Keys go to a scratch buffer first because the cursor precedes them in
    // the reply; the buffer grows amortised, with nothing per key.
    let mut body = ReplyBuf::new();
    let mut n = 0usize;
    // Expired keys met are reclaimed after the walk, like Redis's SCAN.
    let mut expired: Vec<Vec<u8>> = Vec::new();
    let next = {
        let tables: Vec<&Table> = ctx.ks.locks.iter().map(|s| &s.dbs[db]).collect();
        scan_tables(&tables, cursor, count, |e| {
            let key = e.key();
            if let Some(p) = pattern {
                if !glob_match(p, key, false) {
                    return;
                }
            }
            if let Some(t) = typename {
                if !t.eq_ignore_ascii_case(type_name(e).as_bytes()) {
                    return;
                }
            }
            if e.is_expired(now) {
                expired.push(key.to_vec());
                return;
            }
            body.bulk(key);
            n += 1;
        })
    };
    for key in &expired {
        ctx.ks.exists_in(db, key);
    }
    reply_scan(ctx.out, next, n, &body);
}

/// Random attempts before RANDOMKEY falls back to reclaiming every expired
/// key (only reached when nearly all keys are expired).
const RANDOMKEY_TRIES: usize = 100;

fn randomkey(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    ctx.ks.lock_all();
    let db = ctx.ks.db;
    let now = ctx.ks.now_ms;
    for _ in 0..RANDOMKEY_TRIES {
        match random_entry(&ctx.ks, db) {
            None => {
                ctx.out.null();
                return;
            }
            Some((key, false)) => {
                ctx.out.bulk(&key);
                return;
            }
            Some((key, true)) => {
                // Reclaims the expired key (and counts it), then retries.
                ctx.ks.exists_in(db, &key);
            }
        }
    }
    // Mostly expired keys: sweep every table once, then any survivor is live.
    let mut reclaimed = 0;
    let srv = ctx.srv;
    for shard in ctx.ks.locks.iter_mut() {
        let t = &mut shard.dbs[db];
        if t.volatile_len() > 0 {
            let (_, r) = t.sweep(
                0,
                t.capacity(),
                |e| e.is_expired(now),
                |e| crate::db::key_expired(srv, db, e.key()),
            );
            reclaimed += r;
            t.maybe_shrink();
        }
    }
    let stats = &ctx.srv.stats;
    stats
        .expired_keys
        .fetch_add(reclaimed as u64, Ordering::Relaxed);
    stats.dirty.fetch_add(reclaimed as u64, Ordering::Relaxed);
    match random_entry(&ctx.ks, db) {
        Some((key, _)) => ctx.out.bulk(&key),
        None => ctx.out.null(),
    }
}

/// A random key of `db` (shards weighted by size, then the entry at or
/// after a random slot), with whether it has expired. None when empty.
fn random_entry(ks: &Keyspace<'_>, db: usize) -> Option<(Vec<u8>, bool)> {
    let total: usize = ks.locks.iter().map(|s| s.dbs[db].len()).sum();
    if total == 0 {
        return None;
    }
    let mut r = (crate::db::fast_rand() % total as u64) as usize;
    for shard in ks.locks.iter() {
        let t = &shard.dbs[db];
        if r < t.len() {
            let e = t.entry_near(crate::db::fast_rand() as usize)?;
            return Some((e.key().to_vec(), e.is_expired(ks.now_ms)));
        }
        r -= t.len();
    }
    None
}

// ---------------------------------------------------------------------------
// OBJECT

const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis's refcount of shared integer objects (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Integers below this are shared objects in Redis (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10_000;

fn object_encoding(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match lookup_object(&mut ctx.ks, args[2]) {
        None => ctx.out.null(),
        Some(e) => {
            let enc = encoding_name(e);
            ctx.out.bulk(enc.as_bytes());
        }
    }
}

fn object_freq(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(lru) = lookup_object(&mut ctx.ks, args[2]).map(|e| e.lru()) else {
        ctx.out.null();
        return;
    };
    if !ctx.srv.tun.lfu.load(Ordering::Relaxed) {
        ctx.error(LFU_NOT_SELECTED);
        return;
    }
    let freq = lfu_decayed(lru, ctx.ks.now_ms, &ctx.srv.tun);
    ctx.out.int(freq as i64);
}

fn object_idletime(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(lru) = lookup_object(&mut ctx.ks, args[2]).map(|e| e.lru()) else {
        ctx.out.null();
        return;
    };
    if ctx.srv.tun.lfu.load(Ordering::Relaxed) {
        ctx.error(LFU_SELECTED);
        return;
    }
    ctx.out
        .int(idle_seconds(lru, lru_clock(ctx.ks.now_ms)) as i64);
}

/// Seconds since an LRU stamp, handling the 24-bit clock wrapping as
/// Redis's `estimateObjectIdleTime` does.
pub fn idle_seconds(lru: u32, clock: u32) -> u32 {
    if clock >= lru {
        clock - lru
    } else {
        clock + (LRU_MAX - lru)
    }
}

fn object_refcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let shared = match lookup_object(&mut ctx.ks, args[2]) {
        None => {
            ctx.out.null();
            return;
        }
        Some(e) => {
            !e.is_unshared()
                && matches!(e.value(), ValueRef::Int(n) if (0..SHARED_INTEGERS).contains(&n))
        }
    };
    // Redis stops sharing integers when maxmemory is set with an LRU/LFU
    // policy, since each value then needs its own access bits.
    let shared = shared && {
        let no_limit = ctx.srv.tun.maxmemory.load(Ordering::Relaxed) == 0;
        no_limit || {
            let cfg = ctx.srv.config.read();
            let p = cfg.get("maxmemory-policy");
            !(p.ends_with("lru") || p.ends_with("lfu"))
        }
    };
    ctx.out.int(if shared { SHARED_REFCOUNT } else { 1 });
}

fn object_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    const LINES: &[&str] = &[
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    let name = String::from_utf8_lossy(args[0]).to_ascii_uppercase();
    ctx.out.array(LINES.len() + 1);
    ctx.out.simple(&format!(
        "{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in LINES {
        ctx.out.simple(l);
    }
}

// ---------------------------------------------------------------------------
// EXPIRE family, TTL family, PERSIST

fn expire(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let now = ctx.ks.now_ms;
    expire_generic(ctx, args, now, true);
}

fn pexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let now = ctx.ks.now_ms;
    expire_generic(ctx, args, now, false);
}

fn expireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    expire_generic(ctx, args, 0, true);
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    expire_generic(ctx, args, 0, false);
}

/// Redis's `expireGenericCommand`: options first, then the time (with
/// overflow checks on the unit conversion and the base time), then the key.
fn expire_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], basetime: i64, seconds: bool) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            error_with_arg(ctx.out, "ERR Unsupported option ", opt);
            return;
        }
    }
    if nx && (xx || gt || lt) {
        ctx.error("ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if gt && lt {
        ctx.error("ERR GT and LT options at the same time are not compatible");
        return;
    }
    let Some(mut when) = arg_i64(ctx, args[2]) else {
        return;
    };
    let invalid = format!("ERR invalid expire time in '{}' command", ctx.cmd.spec.name);
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            ctx.error(&invalid);
            return;
        }
        when *= 1000;
    }
    if when > i64::MAX - basetime {
        ctx.error(&invalid);
        return;
    }
    when += basetime;

    let key = args[1];
    let current = match ctx.ks.lookup_write(key) {
        None => {
            ctx.out.int(0);
            return;
        }
        Some(e) => e.expire(),
    };
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        // No TTL counts as infinite: never greater, always less.
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return;
    }
    if when <= ctx.ks.now_ms {
        ctx.ks.remove(key);
        ctx.ks.notify(GENERIC, "del", key);
    } else {
        ctx.ks.set_expire(key, Some(when));
        ctx.ks.notify(GENERIC, "expire", key);
    }
    ctx.out.int(1);
}

fn ttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    ttl_generic(ctx, args, false, false);
}

fn pttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    ttl_generic(ctx, args, true, false);
}

fn expiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    ttl_generic(ctx, args, false, true);
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    ttl_generic(ctx, args, true, true);
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 without
/// expiry, else the remaining (or absolute) time, rounded to the nearest
/// second for the second variants.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], ms: bool, absolute: bool) {
    let now = ctx.ks.now_ms;
    let expire = match lookup_notouch(&mut ctx.ks, args[1]) {
        None => {
            ctx.out.int(-2);
            return;
        }
        Some(e) => e.expire(),
    };
    let Some(t) = expire else {
        ctx.out.int(-1);
        return;
    };
    let v = if absolute { t } else { t.wrapping_sub(now) }.max(0);
    // C's (ttl+500)/1000, wrapping like Redis for times near i64::MAX.
    ctx.out.int(if ms { v } else { v.wrapping_add(500) / 1000 });
}

fn persist(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let has_ttl = match ctx.ks.lookup_write(args[1]) {
        None => false,
        Some(e) => e.expire().is_some(),
    };
    if has_ttl {
        ctx.ks.set_expire(args[1], None);
        ctx.ks.notify(GENERIC, "persist", args[1]);
    }
    ctx.out.int(has_ttl as i64);
}

// ---------------------------------------------------------------------------
// DBSIZE, FLUSHDB, FLUSHALL, SWAPDB

/// Counts keys like Redis's `dictSize`: keys whose TTL passed but that
/// neither lazy nor active expiry reclaimed yet are included.
fn dbsize(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    ctx.ks.lock_all();
    let db = ctx.ks.db;
    let n: usize = ctx.ks.locks.iter().map(|s| s.dbs[db].len()).sum();
    ctx.out.int(n as i64);
}

/// Parses FLUSHDB/FLUSHALL's optional argument; Some(async).
fn flush_mode(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Option<bool> {
    match args.len() {
        1 => Some(ctx.srv.config.read().get_bool("lazyfree-lazy-user-flush")),
        2 if is(args[1], "sync") => Some(false),
        2 if is(args[1], "async") => Some(true),
        _ => {
            ctx.error(err::SYNTAX);
            None
        }
    }
}

/// Below this many keys an ASYNC flush frees inline (as Redis's
/// `LAZYFREE_THRESHOLD`): a thread costs more than the work.
const LAZYFREE_THRESHOLD: usize = 64;

fn flushdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(lazy) = flush_mode(ctx, args) else {
        return;
    };
    let db = ctx.ks.db;
    flush(ctx, db..db + 1, lazy);
}

fn flushall(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(lazy) = flush_mode(ctx, args) else {
        return;
    };
    flush(ctx, 0..ctx.srv.databases(), lazy);
}

/// Empties databases `dbs` in every shard. The old slot arrays are freed
/// after the shard locks are released: on a background thread when `lazy`
/// (FLUSH ... ASYNC), else before replying.
fn flush(ctx: &mut Ctx<'_>, dbs: std::ops::Range<usize>, lazy: bool) {
    ctx.ks.lock_all();
    let mut garbage = Vec::new();
    let mut removed = 0usize;
    for shard in ctx.ks.locks.iter_mut() {
        for db in dbs.clone() {
            let t = &mut shard.dbs[db];
            removed += t.len();
            if t.capacity() > 0 {
                garbage.push(t.clear());
            }
            shard.expire_pos[db] = 0;
            shard.hfe_clear(db);
        }
    }
    ctx.ks.locks.release();
    crate::tracking::flush(ctx.srv, ctx.client.id());
    ctx.srv
        .stats
        .dirty
        .fetch_add(removed as u64, Ordering::Relaxed);
    if lazy && removed > LAZYFREE_THRESHOLD {
        // If no thread can be started the closure (and the data) is dropped
        // right here, which is still correct.
        let _ = std::thread::Builder::new()
            .name("kvik-lazyfree".into())
            .spawn(move || drop(garbage));
    } else {
        drop(garbage);
    }
    ctx.out.ok();
}

fn swapdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(a) = arg_int(ctx, args[1], Some("ERR invalid first DB index")) else {
        return;
    };
    let Some(b) = arg_int(ctx, args[2], Some("ERR invalid second DB index")) else {
        return;
    };
    let dbs = ctx.srv.databases() as i64;
    if a < 0 || a >= dbs || b < 0 || b >= dbs {
        ctx.error(err::DB_RANGE);
        return;
    }
    if a != b {
        let (a, b) = (a as usize, b as usize);
        ctx.ks.lock_all();
        crate::multi::touch_swapdb(&mut ctx.ks.locks, a, b, ctx.ks.now_ms);
        for shard in ctx.ks.locks.iter_mut() {
            shard.swap_dbs(a, b);
        }
        crate::blocking::note_swapped(&mut ctx.ks, a, b);
    }
    ctx.srv.stats.dirty.fetch_add(1, Ordering::Relaxed);
    ctx.out.ok();
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvik_core::entry::NewValue;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn entry(k: u32) -> Entry {
        Entry::new(&k.to_be_bytes(), NewValue::Str(b"v"), None)
    }

    /// Shard of a key in the tests: any deterministic function will do.
    fn shard_of(k: u32, shards: usize) -> usize {
        (k.wrapping_mul(2_654_435_761) >> 7) as usize % shards
    }

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-0"), Some(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1 "), None);
        assert_eq!(parse_cursor(b"1.5"), None);
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"abc"), None);
        assert_eq!(parse_cursor(b"12\x00zz"), Some(12));
    }

    #[test]
    fn cursor_encoding_roundtrips() {
        assert_eq!(shard_bits(1), 0);
        assert_eq!(shard_bits(2), 1);
        assert_eq!(shard_bits(3), 2);
        assert_eq!(shard_bits(64), 6);
        assert_eq!(shard_bits(65), 7);
        for shards in [1usize, 2, 3, 7, 64, 100] {
            let bits = shard_bits(shards);
            for s in 0..shards {
                for t in [0u64, 1, 5, 1 << 40] {
                    assert_eq!(decode_cursor(encode_cursor(s, t, bits), bits), (s, t));
                }
            }
        }
        // Only the very end of a scan is cursor 0.
        assert_ne!(encode_cursor(1, 0, 6), 0);
    }

    fn full_scan(tables: &[&Table], count: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut c = 0;
        loop {
            c = scan_tables(tables, c, count, |e| out.push(e.key().to_vec()));
            if c == 0 {
                return out;
            }
        }
    }

    #[test]
    fn full_scan_returns_every_key_once_when_stable() {
        for shards in [1usize, 3, 8] {
            let mut tables: Vec<Table> = (0..shards).map(|_| Table::new()).collect();
            for k in 0..2000u32 {
                tables[shard_of(k, shards)].insert(entry(k));
            }
            let refs: Vec<&Table> = tables.iter().collect();
            for count in [1usize, 10, 100_000] {
                let got = full_scan(&refs, count);
                let set: BTreeSet<_> = got.iter().cloned().collect();
                assert_eq!(got.len(), 2000);
                assert_eq!(set.len(), 2000);
            }
        }
    }

    #[test]
    fn empty_and_bogus_cursors_end_the_scan() {
        let tables: Vec<Table> = (0..4).map(|_| Table::new()).collect();
        let refs: Vec<&Table> = tables.iter().collect();
        assert_eq!(scan_tables(&refs, 0, 10, |_| panic!("no keys")), 0);
        let refs3: Vec<&Table> = tables.iter().take(3).collect();
        // Shard index 3 does not exist with 3 shards (2 bits).
        assert_eq!(scan_tables(&refs3, 3, 10, |_| panic!("no keys")), 0);
        assert_eq!(scan_tables(&refs3, u64::MAX, 10, |_| panic!("no keys")), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u16),
        Step(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..3000).prop_map(Op::Insert),
            3 => (0u16..3000).prop_map(Op::Remove),
            1 => (1u8..20).prop_map(Op::Step),
        ]
    }

    proptest! {
        /// Keys present for the whole scan are returned even while shard
        /// tables grow and shrink between calls; no key that never existed
        /// shows up.
        #[test]
        fn scan_survives_changes_between_calls(
            shards in 1usize..6,
            ops in proptest::collection::vec(op(), 0..1500),
        ) {
            let mut tables: Vec<Table> = (0..shards).map(|_| Table::new()).collect();
            let stable: BTreeSet<u32> = (0..200u32).map(|k| 100_000 + k).collect();
            for &k in &stable {
                tables[shard_of(k, shards)].insert(entry(k));
            }
            let mut seen = BTreeSet::new();
            let mut cursor = 0u64;
            let mut done = false;
            let step = |tables: &[Table], cursor: &mut u64, count: usize, seen: &mut BTreeSet<Vec<u8>>| {
                let refs: Vec<&Table> = tables.iter().collect();
                *cursor = scan_tables(&refs, *cursor, count, |e| { seen.insert(e.key().to_vec()); });
                *cursor == 0
            };
            for o in ops {
                match o {
                    Op::Insert(k) => {
                        let k = k as u32;
                        tables[shard_of(k, shards)].insert(entry(k));
                    }
                    Op::Remove(k) => {
                        let k = k as u32;
                        tables[shard_of(k, shards)].remove(&k.to_be_bytes());
                    }
                    Op::Step(c) if !done => done = step(&tables, &mut cursor, c as usize, &mut seen),
                    Op::Step(_) => {}
                }
            }
            while !done {
                done = step(&tables, &mut cursor, 7, &mut seen);
            }
            for k in &stable {
                prop_assert!(seen.contains(k.to_be_bytes().as_slice()), "stable key {} missed", k);
            }
            for key in &seen {
                let k = u32::from_be_bytes(key[..4].try_into().unwrap());
                prop_assert!(k < 3000 || stable.contains(&k));
            }
        }
    }
}
