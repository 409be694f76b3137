//! Hash commands: the Redis 7.2 family (HSET ... HSCAN) and hash field
//! expiration from Redis 7.4/8.0 (HEXPIRE, HPEXPIRE, HEXPIREAT,
//! HPEXPIREAT, HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME, HPERSIST, HGETDEL,
//! HGETEX, HSETEX), with Redis's argument order quirks and error texts.
//!
//! Every access purges the hash's expired fields first (a peek when none
//! is due), so no command ever sees one; a hash left empty is deleted at
//! the end of the command. Hashes that get field expiries are queued in
//! their shard's [`FieldExpiryQueue`](crate::store::FieldExpiryQueue) for
//! the active expiry cycle.

use super::keys::{parse_scan_options, reply_scan, ScanOptions};
use crate::cmd::{arg_i64, is};
use crate::dispatch::{err, CommandTable, Ctx};
use crate::store::EXPIRED_SUBKEYS;
use crate::util::notify::{GENERIC, HASH};
use kvik_core::entry::{Entry, NewValue};
use kvik_core::glob::glob_match;
use kvik_core::hash::{FieldState, Hash, Limits};
use kvik_core::num;
use kvik_core::object::Object;
use kvik_protocol::ReplyBuf;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("hset", hset);
    t.add("hmset", hset);
    t.add("hsetnx", hsetnx);
    t.add("hget", hget);
    t.add("hmget", hmget);
    t.add("hdel", hdel);
    t.add("hlen", hlen);
    t.add("hstrlen", hstrlen);
    t.add("hexists", hexists);
    t.add("hkeys", hkeys);
    t.add("hvals", hvals);
    t.add("hgetall", hgetall);
    t.add("hincrby", hincrby);
    t.add("hincrbyfloat", hincrbyfloat);
    t.add("hrandfield", hrandfield);
    t.add("hscan", hscan);
    t.add("hexpire", hexpire);
    t.add("hpexpire", hpexpire);
    t.add("hexpireat", hexpireat);
    t.add("hpexpireat", hpexpireat);
    t.add("httl", httl);
    t.add("hpttl", hpttl);
    t.add("hexpiretime", hexpiretime);
    t.add("hpexpiretime", hpexpiretime);
    t.add("hpersist", hpersist);
    t.add("hgetdel", hgetdel);
    t.add("hgetex", hgetex);
    t.add("hsetex", hsetex);
}

/// Largest field expiry Redis accepts (`EB_EXPIRE_TIME_MAX >> 2`, in Unix
/// milliseconds).
pub const MAX_FIELD_EXPIRE_MS: i64 = ((1i64 << 48) - 1) >> 2;

/// Bytes a reply of repeated random fields may take before HRANDFIELD
/// refuses it (Redis would try to build it and run out of memory).
const MAX_RANDOM_REPLY_BYTES: u128 = 512 << 20;

fn limits(ctx: &Ctx<'_>) -> Limits {
    Limits::new(
        ctx.srv
            .tun
            .hash_max_listpack_entries
            .load(Ordering::Relaxed),
        ctx.srv.tun.hash_max_listpack_value.load(Ordering::Relaxed),
    )
}

/// The hash held by `e` with its expired fields purged, or None when `e`
/// holds another type.
pub fn hash_of(e: &mut Entry, now: i64) -> Option<&mut Hash> {
    hash_of_counted(e, now).map(|(h, _)| h)
}

/// [`hash_of`], also returning how many expired fields it purged.
fn hash_of_counted(e: &mut Entry, now: i64) -> Option<(&mut Hash, usize)> {
    match e.object_mut() {
        Some(Object::Hash(h)) => {
            let n = h.purge_expired(now);
            if n > 0 {
                EXPIRED_SUBKEYS.fetch_add(n as u64, Ordering::Relaxed);
            }
            Some((h, n))
        }
        _ => None,
    }
}

/// Runs `f` on the hash at `key` for reading: `None` when the key is
/// missing (or every field had expired). Replies WRONGTYPE for other
/// types. A hash emptied by expiry is deleted afterwards.
fn read_hash(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(Option<&Hash>, &mut ReplyBuf)) {
    let now = ctx.ks.now_ms;
    let (emptied, purged) = match ctx.ks.lookup_read(key) {
        None => {
            f(None, ctx.out);
            return;
        }
        Some(e) => match hash_of_counted(e, now) {
            None => {
                ctx.out.error(err::WRONGTYPE);
                return;
            }
            Some((h, n)) if h.is_empty() => {
                f(None, ctx.out);
                (true, n)
            }
            Some((h, n)) => {
                f(Some(h), ctx.out);
                (false, n)
            }
        },
    };
    if purged > 0 {
        ctx.ks.notify(HASH, "hexpired", key);
    }
    if emptied {
        ctx.ks.remove(key);
        ctx.ks.notify(GENERIC, "del", key);
    }
}

/// Runs `f` on the hash at `key` for writing. A missing key gets a new
/// empty hash when `create` (stored only if `f` leaves it non-empty), else
/// `f` sees None. Replies WRONGTYPE for other types (returning None). A
/// hash left empty is deleted. Returns `f`'s result.
///
/// `f` lists the keyspace events it caused (class, name) in its last
/// argument; they are published after it, followed by `del` when the
/// hash was emptied.
fn write_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    create: bool,
    f: impl FnOnce(Option<&mut Hash>, &mut ReplyBuf, &mut Events) -> R,
) -> Option<R> {
    let now = ctx.ks.now_ms;
    let mut ev = Events::new();
    let (r, empty) = match ctx.ks.lookup_write(key) {
        Some(e) => {
            let Some((h, purged)) = hash_of_counted(e, now) else {
                ctx.out.error(err::WRONGTYPE);
                return None;
            };
            if purged > 0 {
                ev.push((HASH, "hexpired"));
            }
            let r = f(Some(&mut *h), ctx.out, &mut ev);
            (r, h.is_empty())
        }
        None if create => {
            let mut h = Hash::new();
            let r = f(Some(&mut h), ctx.out, &mut ev);
            let created = !h.is_empty();
            if created {
                ctx.ks
                    .insert(Entry::new(key, NewValue::Obj(Object::Hash(h)), None));
            } else if !ev.is_empty() {
                // Created and emptied by the same command (HSETEX with a
                // time in the past): Redis adds, then deletes the key.
                ctx.ks.notify(crate::util::notify::NEW, "new", key);
            }
            for &(class, event) in &ev {
                ctx.ks.notify(class, event, key);
            }
            if !created && !ev.is_empty() {
                ctx.ks.notify(GENERIC, "del", key);
            }
            return Some(r);
        }
        None => return Some(f(None, ctx.out, &mut ev)),
    };
    for (class, event) in ev {
        ctx.ks.notify(class, event, key);
    }
    if empty {
        ctx.ks.remove(key);
        ctx.ks.notify(GENERIC, "del", key);
    } else {
        ctx.ks.modified(key);
    }
    Some(r)
}

/// Keyspace events a hash write caused: (class, event name), in order.
type Events = Vec<(u64, &'static str)>;

/// Queues the hash at `key` for active field expiry if it has any.
fn track_expiry(ctx: &mut Ctx<'_>, key: &[u8]) {
    let db = ctx.ks.db;
    let shard = ctx.ks.shard_of(key);
    if let Some(s) = ctx.ks.locks.shard(shard) {
        s.hfe_track(db, key);
    }
}

// ---------------------------------------------------------------------------
// Redis 7.2 commands

fn hset(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() % 2 == 1 {
        let msg = format!(
            "ERR wrong number of arguments for '{}' command",
            ctx.cmd.spec.name
        );
        ctx.error(&msg);
        return;
    }
    let lim = limits(ctx);
    let hmset = args[0].eq_ignore_ascii_case(b"hmset");
    write_hash(ctx, args[1], true, |h, out, ev| {
        let h = h.expect("created");
        let pairs = &args[2..];
        h.try_conversion(pairs.len() / 2, pairs.iter().map(|a| a.len()), lim);
        let created = pairs
            .chunks_exact(2)
            .filter(|p| h.set(p[0], p[1], false, lim))
            .count();
        ev.push((HASH, "hset"));
        if hmset {
            out.ok();
        } else {
            out.int(created as i64);
        }
    });
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let lim = limits(ctx);
    write_hash(ctx, args[1], true, |h, out, ev| {
        let h = h.expect("created");
        if h.get(args[2]).is_some() {
            out.int(0);
        } else {
            h.try_conversion(1, [args[2].len(), args[3].len()], lim);
            h.set(args[2], args[3], false, lim);
            ev.push((HASH, "hset"));
            out.int(1);
        }
    });
}

fn hget(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    read_hash(ctx, args[1], |h, out| {
        match h.and_then(|h| h.get(args[2])) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    });
}

fn hmget(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    read_hash(ctx, args[1], |h, out| {
        out.array(args.len() - 2);
        for f in &args[2..] {
            match h.and_then(|h| h.get(f)) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
    });
}

fn hdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    write_hash(ctx, args[1], false, |h, out, ev| {
        let deleted = match h {
            // Stop once the hash is empty, as Redis does (it deletes the
            // key at that point).
            Some(h) => {
                let mut n = 0;
                for f in &args[2..] {
                    if h.is_empty() {
                        break;
                    }
                    n += h.remove(f) as usize;
                }
                n
            }
            None => 0,
        };
        if deleted > 0 {
            ev.push((HASH, "hdel"));
        }
        out.int(deleted as i64);
    });
}

fn hlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    read_hash(ctx, args[1], |h, out| {
        out.int(h.map_or(0, Hash::len) as i64)
    });
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    read_hash(ctx, args[1], |h, out| {
        out.int(h.and_then(|h| h.get(args[2])).map_or(0, <[u8]>::len) as i64)
    });
}

fn hexists(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    read_hash(ctx, args[1], |h, out| {
        out.int(h.is_some_and(|h| h.get(args[2]).is_some()) as i64)
    });
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    hgetall_generic(ctx, args[1], true, false);
}

fn hvals(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    hgetall_generic(ctx, args[1], false, true);
}

fn hgetall(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    hgetall_generic(ctx, args[1], true, true);
}

/// HKEYS, HVALS and HGETALL (a map in RESP3, as Redis's
/// genericHgetallCommand replies when both are asked for).
fn hgetall_generic(ctx: &mut Ctx<'_>, key: &[u8], keys: bool, vals: bool) {
    read_hash(ctx, key, |h, out| {
        let len = h.map_or(0, |h| h.len());
        if keys && vals {
            out.map(len);
        } else {
            out.array(len);
        }
        for (k, v) in h.iter().flat_map(|h| h.iter()) {
            if keys {
                out.bulk(k);
            }
            if vals {
                out.bulk(v);
            }
        }
    });
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    // The increment is checked before the key, as in Redis.
    let Some(incr) = arg_i64(ctx, args[3]) else {
        return;
    };
    let lim = limits(ctx);
    write_hash(ctx, args[1], true, |h, out, ev| {
        let h = h.expect("created");
        let current = match h.get(args[2]) {
            None => 0,
            Some(v) => match num::parse_i64(v) {
                Some(n) => n,
                None => {
                    out.error("ERR hash value is not an integer");
                    return;
                }
            },
        };
        let Some(value) = current.checked_add(incr) else {
            out.error("ERR increment or decrement would overflow");
            return;
        };
        let mut buf = [0u8; num::MAX_INT_LEN];
        h.set(args[2], num::format_i64(value, &mut buf), true, lim);
        ev.push((HASH, "hincrby"));
        out.int(value);
    });
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let incr = match num::parse_hincr_increment(args[3]) {
        Ok(v) => v,
        Err(e) => {
            ctx.error(&format!("ERR {}", e.message()));
            return;
        }
    };
    let lim = limits(ctx);
    write_hash(ctx, args[1], true, |h, out, ev| {
        let h = h.expect("created");
        match num::hincr_by_float(h.get(args[2]), incr) {
            Ok(v) => {
                h.set(args[2], &v, true, lim);
                ev.push((HASH, "hincrbyfloat"));
                out.bulk(&v);
            }
            Err(e) => out.error(&format!("ERR {}", e.message())),
        }
    });
}

/// Writes one field (and value) of an HRANDFIELD reply.
fn rand_item(out: &mut ReplyBuf, k: &[u8], v: &[u8], withvalues: bool) {
    if withvalues && out.resp3() {
        out.array(2);
    }
    out.bulk(k);
    if withvalues {
        out.bulk(v);
    }
}

fn hrandfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() == 2 {
        read_hash(ctx, args[1], |h, out| {
            let mut rand = crate::db::fast_rand;
            match h.and_then(|h| h.random(&mut rand)) {
                Some((k, _)) => out.bulk(k),
                None => out.null(),
            }
        });
        return;
    }
    let Some(l) = arg_i64(ctx, args[2]) else {
        return;
    };
    if l == i64::MIN {
        ctx.error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
        return;
    }
    if args.len() > 4 || (args.len() == 4 && !is(args[3], "withvalues")) {
        ctx.error(err::SYNTAX);
        return;
    }
    let withvalues = args.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        ctx.error("ERR value is out of range");
        return;
    }
    let count = l.unsigned_abs();
    let unique = l >= 0;
    read_hash(ctx, args[1], |h, out| {
        let Some(h) = h else {
            out.array(0);
            return;
        };
        let mut rand = crate::db::fast_rand;
        let size = h.len() as u64;
        if count == 0 {
            out.array(0);
        } else if !unique || count == 1 {
            // Each pick stands alone (repeats allowed): the reply is as
            // long as asked, so refuse what cannot be built.
            let per_item = (h.heap_size() as u128 / size as u128 + 16) * (1 + withvalues as u128);
            if count as u128 * per_item > MAX_RANDOM_REPLY_BYTES {
                out.error("ERR value is out of range");
                return;
            }
            out.array(if withvalues && !out.resp3() {
                count as usize * 2
            } else {
                count as usize
            });
            h.random_many(count, &mut rand, &mut |k, v| {
                rand_item(out, k, v, withvalues)
            });
        } else {
            let n = count.min(size) as usize;
            out.array(if withvalues && !out.resp3() { n * 2 } else { n });
            if count >= size {
                for (k, v) in h.iter() {
                    rand_item(out, k, v, withvalues);
                }
            } else {
                h.random_distinct(n, &mut rand, &mut |k, v| rand_item(out, k, v, withvalues));
            }
        }
    });
}

fn hscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(cursor) = crate::cmd::keys::parse_cursor(args[2]) else {
        ctx.error("ERR invalid cursor");
        return;
    };
    let now = ctx.ks.now_ms;
    // Redis looks the key up before reading the options: a missing key
    // answers an empty scan whatever follows.
    let exists = match ctx.ks.lookup_read(args[1]) {
        None => false,
        Some(e) => match hash_of(e, now) {
            None => {
                ctx.error(err::WRONGTYPE);
                return;
            }
            Some(h) => !h.is_empty(),
        },
    };
    if !exists {
        ctx.ks.remove(args[1]);
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return;
    }
    let ScanOptions {
        count,
        pattern,
        novalues,
        ..
    } = match parse_scan_options(args, 3, false, true) {
        Ok(o) => o,
        Err(e) => return ctx.error(e),
    };
    let Some(e) = ctx.ks.lookup_write(args[1]) else {
        return;
    };
    let Some(h) = hash_of(e, now) else {
        return;
    };
    // Elements go to a scratch buffer: the cursor comes first.
    let mut body = ReplyBuf::new();
    body.set_resp3(ctx.out.resp3());
    let mut n = 0usize;
    let next = h.scan(cursor, count, &mut |k, v, _| {
        if pattern.is_some_and(|p| !glob_match(p, k, false)) {
            return;
        }
        body.bulk(k);
        n += 1;
        if !novalues {
            body.bulk(v);
            n += 1;
        }
    });
    reply_scan(ctx.out, next, n, &body);
}

// ---------------------------------------------------------------------------
// Field expiration (Redis 7.4 / 8.0)

const FIELDS_MISSING: &str =
    "ERR Mandatory argument FIELDS is missing or not at the right position";
const NUMFIELDS_MISMATCH: &str = "ERR The `numfields` parameter must match the number of arguments";
const NUMFIELDS_POSITIVE: &str = "ERR Number of fields must be a positive integer";

/// Parses `FIELDS numfields field...` with the keyword at `args[at]`;
/// returns the fields, or replies an error (`bad_count` when numfields is
/// not a positive integer).
fn parse_fields<'a>(
    ctx: &mut Ctx<'_>,
    args: &'a [&'a [u8]],
    at: usize,
    bad_count: &str,
) -> Option<&'a [&'a [u8]]> {
    if !args.get(at).is_some_and(|a| is(a, "fields")) {
        ctx.error(FIELDS_MISSING);
        return None;
    }
    let n = match args.get(at + 1).and_then(|a| num::parse_i64(a)) {
        Some(n) if n >= 1 => n as u64,
        _ => {
            ctx.error(bad_count);
            return None;
        }
    };
    if n != (args.len() - at - 2) as u64 {
        ctx.error(NUMFIELDS_MISMATCH);
        return None;
    }
    Some(&args[at + 2..])
}

/// Redis's `parseExpireTime`: a non-negative integer in `seconds` or
/// milliseconds, relative to `base` (0 for absolute times), at most
/// [`MAX_FIELD_EXPIRE_MS`]. Replies the error on failure.
fn parse_expire_time(ctx: &mut Ctx<'_>, arg: &[u8], seconds: bool, base: i64) -> Option<i64> {
    let v = arg_i64(ctx, arg)?;
    if v < 0 {
        ctx.error("ERR invalid expire time, must be >= 0");
        return None;
    }
    let too_big = |ctx: &mut Ctx<'_>| {
        let msg = format!("ERR invalid expire time in '{}' command", ctx.cmd.spec.name);
        ctx.error(&msg);
    };
    let ms = if seconds {
        if v > MAX_FIELD_EXPIRE_MS / 1000 {
            too_big(ctx);
            return None;
        }
        v * 1000
    } else {
        v
    };
    if ms > MAX_FIELD_EXPIRE_MS - base {
        too_big(ctx);
        return None;
    }
    Some(ms + base)
}

/// NX / XX / GT / LT of the HEXPIRE family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    None,
    Nx,
    Xx,
    Gt,
    Lt,
}

/// Whether a field whose expiry is `prev` may get expiry `new` under
/// `cond` (a persistent field counts as an infinite TTL).
fn cond_allows(cond: Cond, prev: Option<i64>, new: i64) -> bool {
    match (cond, prev) {
        (Cond::None, _) => true,
        (Cond::Nx, p) => p.is_none(),
        (Cond::Xx, p) => p.is_some(),
        (Cond::Gt, None) => false,
        (Cond::Gt, Some(p)) => new > p,
        (Cond::Lt, None) => true,
        (Cond::Lt, Some(p)) => new < p,
    }
}

/// HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT.
fn hexpire_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], seconds: bool, relative: bool) {
    let now = ctx.ks.now_ms;
    let key = args[1];
    // Redis checks the key's type before anything else.
    let exists = match ctx.ks.lookup_write(key) {
        None => false,
        Some(e) => {
            if hash_of(e, now).is_none() {
                ctx.error(err::WRONGTYPE);
                return;
            }
            true
        }
    };
    let base = if relative { now } else { 0 };
    let Some(when) = parse_expire_time(ctx, args[2], seconds, base) else {
        return;
    };
    let cond = match args[3] {
        a if is(a, "nx") => Cond::Nx,
        a if is(a, "xx") => Cond::Xx,
        a if is(a, "gt") => Cond::Gt,
        a if is(a, "lt") => Cond::Lt,
        _ => Cond::None,
    };
    let at = if cond == Cond::None { 3 } else { 4 };
    let Some(fields) = parse_fields(
        ctx,
        args,
        at,
        "ERR Parameter `numFields` should be greater than 0",
    ) else {
        return;
    };
    if !exists {
        reply_all(ctx.out, fields.len(), -2);
        return;
    }
    write_hash(ctx, key, false, |h, out, ev| {
        let Some(h) = h else {
            reply_all(out, fields.len(), -2);
            return;
        };
        h.enable_expiry();
        out.array(fields.len());
        let (mut updated, mut deleted) = (false, false);
        for f in fields {
            let code = match h.field_info(f) {
                FieldState::Missing => -2,
                FieldState::Present(prev) if !cond_allows(cond, prev, when) => 0,
                FieldState::Present(_) if when <= now => {
                    h.remove(f);
                    EXPIRED_SUBKEYS.fetch_add(1, Ordering::Relaxed);
                    deleted = true;
                    2
                }
                FieldState::Present(_) => {
                    h.set_expire(f, Some(when));
                    updated = true;
                    1
                }
            };
            out.int(code);
        }
        // One event, as Redis's hashTypeSetExDone: `hdel` when a time in
        // the past deleted fields, else `hexpire`.
        if deleted {
            ev.push((HASH, "hdel"));
        } else if updated {
            ev.push((HASH, "hexpire"));
        }
    });
    track_expiry(ctx, key);
}

fn reply_all(out: &mut ReplyBuf, n: usize, code: i64) {
    out.array(n);
    for _ in 0..n {
        out.int(code);
    }
}

fn hexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    hexpire_generic(ctx, args, true, true);
}

fn hpexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    hexpire_generic(ctx, args, false, true);
}

fn hexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    hexpire_generic(ctx, args, true, false);
}

fn hpexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    hexpire_generic(ctx, args, false, false);
}

/// HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME.
fn httl_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], seconds: bool, relative: bool) {
    let now = ctx.ks.now_ms;
    let exists = match ctx.ks.lookup_read(args[1]) {
        None => false,
        Some(e) => {
            if hash_of(e, now).is_none() {
                ctx.error(err::WRONGTYPE);
                return;
            }
            true
        }
    };
    let Some(fields) = parse_fields(ctx, args, 2, NUMFIELDS_POSITIVE) else {
        return;
    };
    if !exists {
        reply_all(ctx.out, fields.len(), -2);
        return;
    }
    let base = if relative { now } else { 0 };
    read_hash(ctx, args[1], |h, out| {
        out.array(fields.len());
        for f in fields {
            let state = h.map_or(FieldState::Missing, |h| h.field_info(f));
            out.int(match state {
                FieldState::Missing => -2,
                FieldState::Present(None) => -1,
                // Seconds round up, as Redis's `(expire + 999 - base) / 1000`.
                FieldState::Present(Some(t)) if seconds => (t + 999 - base) / 1000,
                FieldState::Present(Some(t)) => t - base,
            });
        }
    });
}

fn httl(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    httl_generic(ctx, args, true, true);
}

fn hpttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    httl_generic(ctx, args, false, true);
}

fn hexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    httl_generic(ctx, args, true, false);
}

fn hpexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    httl_generic(ctx, args, false, false);
}

/// Looks `key` up for writing and checks it is a hash (purging expired
/// fields); replies WRONGTYPE and returns None otherwise. Some(false):
/// no such key.
fn check_hash_write(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<bool> {
    let now = ctx.ks.now_ms;
    match ctx.ks.lookup_write(key) {
        None => Some(false),
        Some(e) => {
            if hash_of(e, now).is_none() {
                ctx.error(err::WRONGTYPE);
                return None;
            }
            Some(true)
        }
    }
}

fn hpersist(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(exists) = check_hash_write(ctx, args[1]) else {
        return;
    };
    let Some(fields) = parse_fields(ctx, args, 2, NUMFIELDS_POSITIVE) else {
        return;
    };
    if !exists {
        reply_all(ctx.out, fields.len(), -2);
        return;
    }
    write_hash(ctx, args[1], false, |mut h, out, ev| {
        out.array(fields.len());
        for f in fields {
            let state = h
                .as_deref()
                .map_or(FieldState::Missing, |h| h.field_info(f));
            out.int(match state {
                FieldState::Missing => -2,
                FieldState::Present(None) => -1,
                FieldState::Present(Some(_)) => {
                    if let Some(h) = h.as_deref_mut() {
                        h.set_expire(f, None);
                    }
                    if !ev.contains(&(HASH, "hpersist")) {
                        ev.push((HASH, "hpersist"));
                    }
                    1
                }
            });
        }
    });
}

fn hgetdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(exists) = check_hash_write(ctx, args[1]) else {
        return;
    };
    let Some(fields) = parse_fields(ctx, args, 2, NUMFIELDS_POSITIVE) else {
        return;
    };
    write_hash(ctx, args[1], false, |h, out, ev| {
        out.array(fields.len());
        let mut h = h.filter(|_| exists);
        for f in fields {
            match h.as_deref_mut() {
                Some(h) => match h.get(f) {
                    Some(v) => {
                        out.bulk(v);
                        h.remove(f);
                        if !ev.contains(&(HASH, "hdel")) {
                            ev.push((HASH, "hdel"));
                        }
                    }
                    None => out.null(),
                },
                None => out.null(),
            }
        }
    });
}

/// HGETEX's optional expiry argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GetExOpt {
    None,
    Persist,
    At(i64),
}

fn hgetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let now = ctx.ks.now_ms;
    let Some(exists) = check_hash_write(ctx, args[1]) else {
        return;
    };
    let kind = args[2];
    let (opt, at) = if is(kind, "persist") {
        (GetExOpt::Persist, 3)
    } else if ["ex", "px", "exat", "pxat"].iter().any(|k| is(kind, k)) {
        let seconds = is(kind, "ex") || is(kind, "exat");
        let base = if is(kind, "ex") || is(kind, "px") {
            now
        } else {
            0
        };
        let Some(t) = parse_expire_time(ctx, args[3], seconds, base) else {
            return;
        };
        (GetExOpt::At(t), 4)
    } else {
        (GetExOpt::None, 2)
    };
    let Some(fields) = parse_fields(ctx, args, at, NUMFIELDS_POSITIVE) else {
        return;
    };
    if !exists {
        ctx.out.array(fields.len());
        for _ in fields {
            ctx.out.null();
        }
        return;
    }
    write_hash(ctx, args[1], false, |h, out, ev| {
        out.array(fields.len());
        let Some(h) = h else {
            for _ in fields {
                out.null();
            }
            return;
        };
        if opt != GetExOpt::None {
            h.enable_expiry();
        }
        for f in fields {
            let Some(v) = h.get(f) else {
                out.null();
                continue;
            };
            out.bulk(v);
            let event = match opt {
                GetExOpt::None => None,
                GetExOpt::Persist => {
                    let had_ttl = matches!(h.field_info(f), FieldState::Present(Some(_)));
                    h.set_expire(f, None);
                    had_ttl.then_some("hpersist")
                }
                GetExOpt::At(t) if t <= now => {
                    h.remove(f);
                    EXPIRED_SUBKEYS.fetch_add(1, Ordering::Relaxed);
                    Some("hdel")
                }
                GetExOpt::At(t) => {
                    h.set_expire(f, Some(t));
                    Some("hexpire")
                }
            };
            if let Some(event) = event {
                if !ev.iter().any(|&(_, e)| e == event) {
                    ev.push((HASH, event));
                }
            }
        }
    });
    if matches!(opt, GetExOpt::At(_)) {
        track_expiry(ctx, args[1]);
    }
}

/// HSETEX's expiry argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetExOpt {
    None,
    KeepTtl,
    At(i64),
}

fn hsetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let now = ctx.ks.now_ms;
    let arity = || "ERR wrong number of arguments for 'hsetex' command";
    let mut fnx = false;
    let mut fxx = false;
    let mut opt = SetExOpt::None;
    let mut pairs: Option<&[&[u8]]> = None;
    let mut i = 2;
    while i < args.len() {
        let a = args[i];
        if is(a, "fields") {
            if i + 3 >= args.len() {
                ctx.error(arity());
                return;
            }
            let n = match num::parse_i64(args[i + 1]) {
                Some(n) if (1..=i32::MAX as i64).contains(&n) => n as usize,
                _ => {
                    ctx.error("ERR invalid number of fields");
                    return;
                }
            };
            let rest = args.len() - i - 2;
            if !rest.is_multiple_of(2) || n != rest / 2 {
                ctx.error(arity());
                return;
            }
            pairs = Some(&args[i + 2..]);
            break;
        } else if ["ex", "px", "exat", "pxat", "keepttl"]
            .iter()
            .any(|k| is(a, k))
        {
            if opt != SetExOpt::None {
                ctx.error(
                    "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
                );
                return;
            }
            if is(a, "keepttl") {
                opt = SetExOpt::KeepTtl;
                i += 1;
                continue;
            }
            if i + 1 >= args.len() {
                ctx.error("ERR missing expire time");
                return;
            }
            let seconds = is(a, "ex") || is(a, "exat");
            let base = if is(a, "ex") || is(a, "px") { now } else { 0 };
            let Some(t) = parse_expire_time(ctx, args[i + 1], seconds, base) else {
                return;
            };
            opt = SetExOpt::At(t);
            i += 2;
        } else if is(a, "fnx") || is(a, "fxx") {
            if fnx || fxx {
                ctx.error("ERR Only one of FXX or FNX arguments can be specified");
                return;
            }
            fnx = is(a, "fnx");
            fxx = !fnx;
            i += 1;
        } else {
            let msg = format!("ERR unknown argument: {}", String::from_utf8_lossy(a));
            ctx.error(&msg);
            return;
        }
    }
    let Some(pairs) = pairs else {
        ctx.error(err::SYNTAX);
        return;
    };
    let lim = limits(ctx);
    let key = args[1];
    let done = write_hash(ctx, key, !fxx, |h, out, ev| {
        let Some(h) = h else {
            // FXX on a missing key sets nothing.
            out.int(0);
            return false;
        };
        if fnx || fxx {
            let mut names = pairs.chunks_exact(2).map(|p| p[0]);
            let ok = if fnx {
                names.all(|f| h.get(f).is_none())
            } else {
                names.all(|f| h.get(f).is_some())
            };
            if !ok {
                out.int(0);
                return false;
            }
        }
        h.try_conversion(pairs.len() / 2, pairs.iter().map(|a| a.len()), lim);
        if let SetExOpt::At(_) = opt {
            h.enable_expiry();
        }
        for p in pairs.chunks_exact(2) {
            h.set(p[0], p[1], opt != SetExOpt::None, lim);
            if let SetExOpt::At(t) = opt {
                if t <= now {
                    h.remove(p[0]);
                    EXPIRED_SUBKEYS.fetch_add(1, Ordering::Relaxed);
                } else {
                    h.set_expire(p[0], Some(t));
                }
            }
        }
        ev.push((HASH, "hset"));
        if let SetExOpt::At(t) = opt {
            ev.push((HASH, if t <= now { "hdel" } else { "hexpire" }));
        }
        out.int(1);
        true
    });
    if done == Some(true) && matches!(opt, SetExOpt::At(_)) {
        track_expiry(ctx, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Client, ClientShared};
    use crate::config::Config;
    use crate::dispatch::{execute, BatchClock};
    use crate::server::Server;
    use std::sync::Arc;

    /// A server and one client, talking RESP2.
    struct T {
        srv: Arc<Server>,
        client: Client,
    }

    impl T {
        fn new() -> T {
            let srv = Server::new(Config::default());
            let shared = ClientShared::new(1, "127.0.0.1:1".into(), "127.0.0.1:2".into(), false, 0);
            T {
                srv,
                client: Client::new(shared, true),
            }
        }

        /// Runs a command (arguments split on spaces) and returns the raw
        /// reply with CRLF shown as `|`.
        fn run(&mut self, cmd: &str) -> String {
            let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
            let mut out = ReplyBuf::new();
            let mut clock = BatchClock::new();
            execute(&self.srv, &mut self.client, &mut out, &args, &mut clock);
            String::from_utf8_lossy(out.as_bytes()).replace("\r\n", "|")
        }

        fn ints(&mut self, cmd: &str) -> Vec<i64> {
            let r = self.run(cmd);
            r.split('|')
                .filter(|s| s.starts_with(':'))
                .map(|s| s[1..].parse().unwrap())
                .collect()
        }
    }

    fn now() -> i64 {
        crate::util::now_ms()
    }

    #[test]
    fn basics_and_encodings() {
        let mut t = T::new();
        assert_eq!(t.run("HSET h a 1 b 2"), ":2|");
        assert_eq!(
            t.run("HSET h a 1 b"),
            "-ERR wrong number of arguments for 'hset' command|"
        );
        assert_eq!(t.run("HMSET h c 3"), "+OK|");
        assert_eq!(t.run("HGETALL h"), "*6|$1|a|$1|1|$1|b|$1|2|$1|c|$1|3|");
        assert_eq!(t.run("HINCRBY h a 41"), ":42|");
        assert_eq!(
            t.run("HINCRBY h a x"),
            "-ERR value is not an integer or out of range|"
        );
        assert_eq!(t.run("HINCRBYFLOAT h b 0.5"), "$3|2.5|");
        assert_eq!(t.run("HINCRBY h b 1"), "-ERR hash value is not an integer|");
        assert_eq!(t.run("OBJECT ENCODING h"), "$8|listpack|");
        let long = "x".repeat(65);
        t.run(&format!("HSETNX h c {long}"));
        assert_eq!(t.run("OBJECT ENCODING h"), "$8|listpack|");
        t.run(&format!("HSETNX h d {long}"));
        assert_eq!(t.run("OBJECT ENCODING h"), "$9|hashtable|");
        assert_eq!(t.run("HSTRLEN h d"), ":65|");
        assert_eq!(t.run("HDEL h a b c d e"), ":4|");
        assert_eq!(t.run("EXISTS h"), ":0|");
        t.run("SET s x");
        assert!(t.run("HGET s a").starts_with("-WRONGTYPE"));
        assert_eq!(
            t.run("HRANDFIELD h -9223372036854770000 WITHVALUES"),
            "-ERR value is out of range|"
        );
        t.run("HSET h a 1");
        assert_eq!(
            t.run("HRANDFIELD h -9223372036854770000"),
            "-ERR value is out of range|"
        );
        assert_eq!(t.run("HRANDFIELD h -3"), "*3|$1|a|$1|a|$1|a|");
    }

    #[test]
    fn hexpire_codes_and_conditions() {
        let mut t = T::new();
        t.run("HSET h a 1 b 2 c 3");
        assert_eq!(t.ints("HEXPIRE h 100 FIELDS 2 a zz"), [1, -2]);
        assert_eq!(t.run("OBJECT ENCODING h"), "$10|listpackex|");
        assert_eq!(t.ints("HEXPIRE h 200 NX FIELDS 2 a b"), [0, 1]);
        assert_eq!(t.ints("HEXPIRE h 300 XX FIELDS 2 a c"), [1, 0]);
        assert_eq!(t.ints("HEXPIRE h 400 GT FIELDS 2 a c"), [1, 0]);
        assert_eq!(t.ints("HEXPIRE h 50 LT FIELDS 2 a c"), [1, 1]);
        assert_eq!(t.ints("HEXPIRE h 60 GT FIELDS 1 a"), [1]);
        assert_eq!(t.ints("HTTL h FIELDS 4 a b c zz"), [60, 200, 50, -2]);
        // Fields are ordered by expiry in a listpackex, as in Redis.
        assert_eq!(t.run("HKEYS h"), "*3|$1|c|$1|a|$1|b|");
        assert_eq!(t.ints("HPERSIST h FIELDS 3 a a zz"), [1, -1, -2]);
        assert_eq!(t.ints("HTTL h FIELDS 1 a"), [-1]);
        assert_eq!(t.ints("HPEXPIREAT h 1 FIELDS 2 b b"), [2, -2]);
        assert_eq!(t.run("HLEN h"), ":2|");
        let at = now() / 1000 + 1000;
        assert_eq!(t.ints(&format!("HEXPIREAT h {at} FIELDS 1 a")), [1]);
        assert_eq!(t.ints("HEXPIRETIME h FIELDS 1 a"), [at]);
        assert_eq!(t.ints("HPEXPIRETIME h FIELDS 1 a"), [at * 1000]);
        let pttl = t.ints("HPTTL h FIELDS 1 a")[0];
        assert!(pttl > 990_000 && pttl <= 1_000_000, "{pttl}");
        assert_eq!(t.ints("HEXPIRE nokey 10 FIELDS 2 a b"), [-2, -2]);
        assert_eq!(t.ints("HTTL nokey FIELDS 1 a"), [-2]);
        assert_eq!(t.ints("HPERSIST nokey FIELDS 1 a"), [-2]);
        // Every field expiring at once deletes the key.
        assert_eq!(t.ints("HPEXPIRE h 0 FIELDS 2 a c"), [2, 2]);
        assert_eq!(t.run("EXISTS h"), ":0|");
    }

    #[test]
    fn field_expiry_errors() {
        let mut t = T::new();
        t.run("SET s x");
        t.run("HSET h a 1");
        let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value|";
        assert_eq!(t.run("HEXPIRE s x FIELDS 1 a"), wrong);
        assert_eq!(t.run("HTTL s FIELDS x a"), wrong);
        assert_eq!(
            t.run("HEXPIRE h x FIELDS 1 a"),
            "-ERR value is not an integer or out of range|"
        );
        assert_eq!(
            t.run("HEXPIRE h -1 FIELDS 1 a"),
            "-ERR invalid expire time, must be >= 0|"
        );
        assert_eq!(
            t.run("HEXPIRE h 70368744177664 FIELDS 1 a"),
            "-ERR invalid expire time in 'hexpire' command|"
        );
        assert_eq!(
            t.run("HPEXPIREAT h 70368744177664 FIELDS 1 a"),
            "-ERR invalid expire time in 'hpexpireat' command|"
        );
        assert_eq!(
            t.run("HEXPIRE h 10 NX NX 1 a"),
            "-ERR Mandatory argument FIELDS is missing or not at the right position|"
        );
        assert_eq!(
            t.run("HEXPIRE h 10 FIELDS 0 a"),
            "-ERR Parameter `numFields` should be greater than 0|"
        );
        assert_eq!(
            t.run("HEXPIRE h 10 FIELDS 2 a"),
            "-ERR The `numfields` parameter must match the number of arguments|"
        );
        assert_eq!(
            t.run("HTTL h FIELDS -1 a"),
            "-ERR Number of fields must be a positive integer|"
        );
        assert_eq!(
            t.run("HTTL h FIELD 1 a"),
            "-ERR Mandatory argument FIELDS is missing or not at the right position|"
        );
        assert_eq!(
            t.run("HEXPIRE h 10 FIELDS 1"),
            "-ERR wrong number of arguments for 'hexpire' command|"
        );
        assert_eq!(
            t.run("HGETEX h EX -5 FIELDS 1 a"),
            "-ERR invalid expire time, must be >= 0|"
        );
        assert_eq!(
            t.run("HGETEX h PERSIST FIELDS 2 a"),
            "-ERR The `numfields` parameter must match the number of arguments|"
        );
        let arity = "-ERR wrong number of arguments for 'hsetex' command|";
        let excl = "-ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified|";
        let fcl = "-ERR Only one of FXX or FNX arguments can be specified|";
        for (cmd, want) in [
            ("HSETEX h EX 10 PX 10 FIELDS 1 a b", excl),
            ("HSETEX h FNX FXX FIELDS 1 a b", fcl),
            ("HSETEX h FIELDS 2 a b", arity),
            ("HSETEX h FIELDS 0 a b", "-ERR invalid number of fields|"),
            (
                "HSETEX h FXX FIELDS x a b",
                "-ERR invalid number of fields|",
            ),
            ("HSETEX h FOO 1 a b", "-ERR unknown argument: FOO|"),
            ("HSETEX h KEEPTTL EX 1 x", excl),
            ("HSETEX h FXX FNX EX 1", fcl),
            ("HSETEX h EX 1 FNX FIELDS", arity),
            ("HSETEX h FNX KEEPTTL FIELDS x", arity),
            ("HSETEX h FNX FIELDS 1 a PX", ":0|"),
            ("HSETEX h FNX KEEPTTL PX 1", excl),
            ("HSETEX h FNX a b PX", "-ERR unknown argument: a|"),
            ("HSETEX h PX 1 FXX EX", excl),
            (
                "HSETEX h FXX PX x FIELDS 1 a b",
                "-ERR value is not an integer or out of range|",
            ),
            (
                "HSETEX h PX -1 FIELDS 1 a b",
                "-ERR invalid expire time, must be >= 0|",
            ),
            (
                "HSETEX h EXAT 70368744177664 FIELDS 1 a b",
                "-ERR invalid expire time in 'hsetex' command|",
            ),
            ("HSETEX h FXX EXAT 1 FXX 1 a b", fcl),
            ("HSETEX h FNX FNX x y z", fcl),
            ("HSETEX h FNX KEEPTTL x y", "-ERR unknown argument: x|"),
            ("HSETEX h PX 5 FNX x y", "-ERR unknown argument: x|"),
        ] {
            assert_eq!(t.run(cmd), want, "{cmd}");
        }
        assert_eq!(t.run("HSETEX s FIELDS 1 a b"), wrong);
    }

    #[test]
    fn hgetdel_hgetex_hsetex() {
        let mut t = T::new();
        t.run("HSET h a 1 b 2 c 3");
        assert_eq!(t.run("HGETDEL h FIELDS 2 a zz"), "*2|$1|1|$-1|");
        assert_eq!(t.run("HGETEX h EX 100 FIELDS 2 b zz"), "*2|$1|2|$-1|");
        assert_eq!(t.ints("HTTL h FIELDS 2 b c"), [100, -1]);
        assert_eq!(t.run("HGETEX h PERSIST FIELDS 1 b"), "*1|$1|2|");
        assert_eq!(t.ints("HTTL h FIELDS 1 b"), [-1]);
        assert_eq!(t.run("HGETEX h PXAT 1 FIELDS 1 b"), "*1|$1|2|");
        assert_eq!(t.run("HGETEX h FIELDS 1 b"), "*1|$-1|");
        assert_eq!(t.run("HGETEX nokey EX 1 FIELDS 2 a b"), "*2|$-1|$-1|");
        assert_eq!(t.run("HGETDEL h FIELDS 1 c"), "*1|$1|3|");
        assert_eq!(t.run("EXISTS h"), ":0|");
        // HSETEX: FNX / FXX, KEEPTTL, expiry.
        assert_eq!(t.run("HSETEX h FXX FIELDS 1 a 1"), ":0|");
        assert_eq!(t.run("EXISTS h"), ":0|");
        assert_eq!(t.run("HSETEX h FNX EX 100 FIELDS 2 a 1 b 2"), ":1|");
        assert_eq!(t.ints("HTTL h FIELDS 2 a b"), [100, 100]);
        assert_eq!(t.run("HSETEX h FNX FIELDS 2 a 1 c 3"), ":0|");
        assert_eq!(t.run("HSETEX h FXX KEEPTTL FIELDS 1 a 9"), ":1|");
        assert_eq!(t.ints("HTTL h FIELDS 1 a"), [100]);
        assert_eq!(t.run("HSET h a 10"), ":0|");
        assert_eq!(t.ints("HTTL h FIELDS 1 a"), [-1]);
        assert_eq!(t.run("HSETEX h PX 0 FIELDS 2 a 1 b 2"), ":1|");
        assert_eq!(t.run("EXISTS h"), ":0|");
        // Big hashes keep expiries through the conversion.
        for i in 0..600 {
            t.run(&format!("HSET big f{i} v"));
        }
        assert_eq!(t.ints("HEXPIRE big 100 FIELDS 2 f1 f2"), [1, 1]);
        assert_eq!(t.run("OBJECT ENCODING big"), "$9|hashtable|");
        t.run("HSET small a 1");
        t.run("HEXPIRE small 100 FIELDS 1 a");
        let long = "y".repeat(100);
        t.run(&format!("HSET small b {long}"));
        assert_eq!(t.run("OBJECT ENCODING small"), "$9|hashtable|");
        assert_eq!(t.ints("HTTL small FIELDS 2 a b"), [100, -1]);
    }

    #[test]
    fn expired_fields_are_never_seen_and_reclaimed_actively() {
        let mut t = T::new();
        t.run("HSET h a 1 b 2");
        t.run("HSET gone a 1");
        t.run("HSET moved a 1 b 2");
        for i in 0..300 {
            t.run(&format!("HSET big f{i} v"));
        }
        assert_eq!(t.ints("HPEXPIRE h 20 FIELDS 1 a"), [1]);
        assert_eq!(t.ints("HPEXPIRE gone 20 FIELDS 1 a"), [1]);
        assert_eq!(t.ints("HPEXPIRE moved 20 FIELDS 1 a"), [1]);
        let mut cmd = String::from("HPEXPIRE big 20 FIELDS 250");
        for i in 0..250 {
            cmd.push_str(&format!(" f{i}"));
        }
        assert_eq!(t.ints(&cmd).len(), 250);
        t.run("RENAME moved moved2");
        std::thread::sleep(std::time::Duration::from_millis(40));
        // Lazily: never visible.
        assert_eq!(t.run("HGETALL h"), "*2|$1|b|$1|2|");
        // Actively: keys and fields reclaimed without being touched.
        for _ in 0..400 {
            crate::expire::cycle(
                &t.srv,
                std::time::Instant::now() + std::time::Duration::from_millis(50),
            );
        }
        assert_eq!(t.run("DBSIZE"), ":3|");
        let db0 = |srv: &Server, key: &[u8]| {
            let mut s = srv.store.lock(srv.store.shard_of(key));
            match s.dbs[0].get_mut(key).and_then(|e| e.object_mut()) {
                Some(Object::Hash(h)) => h.len(),
                _ => 0,
            }
        };
        assert_eq!(db0(&t.srv, b"big"), 50);
        assert_eq!(db0(&t.srv, b"moved2"), 1);
        assert_eq!(t.run("HLEN big"), ":50|");
    }
}
