//! Set commands (Redis 7.2's `t_set.c`): SADD, SREM, SCARD, SISMEMBER,
//! SMISMEMBER, SMEMBERS, SPOP, SRANDMEMBER, SMOVE, SINTER, SINTERCARD,
//! SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE and SSCAN.
//!
//! The structure and its encodings are in [`kvik_core::set`]; this file
//! follows Redis's argument checks in Redis's order and builds results the
//! way Redis does, so that the encodings of stored results (and the order
//! of members in compact encodings) match: SUNIONSTORE and SDIFFSTORE start
//! from an empty intset, SINTERSTORE from an intset or a listpack and turns
//! an all-integer result into an intset, and SPOP of most of a set rebuilds
//! the remaining members into a fresh set.

use super::c_str;
use super::keys::{parse_cursor, parse_scan_options, reply_scan, ScanOptions};
use super::{arg_i64, is};
use crate::db::{fast_rand, Keyspace};
use crate::dispatch::{err, CommandTable, Ctx};
use crate::util::notify::{GENERIC, SET};
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::glob::glob_match;
use kvik_core::object::Object;
use kvik_core::set::{Limits, Member, Set};
use kvik_protocol::reply::Aggregate;
use kvik_protocol::ReplyBuf;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("sadd", sadd);
    t.add("srem", srem);
    t.add("scard", scard);
    t.add("sismember", sismember);
    t.add("smismember", smismember);
    t.add("smembers", smembers);
    t.add("spop", spop);
    t.add("srandmember", srandmember);
    t.add("smove", smove);
    t.add("sinter", sinter);
    t.add("sintercard", sintercard);
    t.add("sinterstore", sinterstore);
    t.add("sunion", sunion);
    t.add("sunionstore", sunionstore);
    t.add("sdiff", sdiff);
    t.add("sdiffstore", sdiffstore);
    t.add("sscan", sscan);
}

/// Redis's error for SPOP counts that are negative or not integers.
const ERR_POSITIVE: &str = "ERR value is out of range, must be positive";
/// Redis's error for an SRANDMEMBER count of -2^63 (it accepts
/// -LONG_MAX..=LONG_MAX).
const ERR_RANDOM_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
/// Largest reply SRANDMEMBER with a negative count may build. Redis streams
/// such replies until the client's output limit closes it; kvik builds a
/// reply in memory first, so it refuses counts whose reply would pass this
/// size instead of exhausting memory.
const MAX_RANDOM_REPLY_BYTES: usize = 1 << 30;
/// Error for a refused SRANDMEMBER count.
const ERR_REPLY_TOO_LARGE: &str = "ERR reply too large (SRANDMEMBER count)";

/// The current encoding thresholds.
pub fn limits(ctx: &Ctx<'_>) -> Limits {
    let t = &ctx.srv.tun;
    Limits::new(
        t.set_max_intset_entries.load(Ordering::Relaxed),
        t.set_max_listpack_entries.load(Ordering::Relaxed),
        t.set_max_listpack_value.load(Ordering::Relaxed),
    )
}

/// Writes a member as a bulk string.
pub fn reply_member(out: &mut ReplyBuf, m: &Member<'_>) {
    match m {
        Member::Int(v) => out.bulk_i64(*v),
        other => {
            let mut buf = [0u8; 20];
            out.bulk(other.bytes(&mut buf));
        }
    }
}

/// The set at `key` for reading: Ok(None) when the key is missing, Err
/// after replying WRONGTYPE when it holds another type.
fn read_set<'k>(
    ks: &'k mut Keyspace<'_>,
    out: &mut ReplyBuf,
    key: &[u8],
) -> Result<Option<&'k Set>, ()> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => match e.value() {
            ValueRef::Obj(Object::Set(s)) => Ok(Some(s)),
            _ => {
                out.error(err::WRONGTYPE);
                Err(())
            }
        },
    }
}

/// The set at `key` for writing (see [`read_set`]).
fn write_set<'k>(
    ks: &'k mut Keyspace<'_>,
    out: &mut ReplyBuf,
    key: &[u8],
) -> Result<Option<&'k mut Set>, ()> {
    match ks.lookup_write(key) {
        None => Ok(None),
        Some(e) => match e.object_mut() {
            Some(Object::Set(s)) => Ok(Some(s)),
            _ => {
                out.error(err::WRONGTYPE);
                Err(())
            }
        },
    }
}

/// Stores `set` at `key` (replacing any value and its expiry, as Redis's
/// setKey), or deletes `key` when the set is empty; replies with the size
/// and publishes `event` (or `del` when an old value was deleted).
fn store_result(ctx: &mut Ctx<'_>, key: &[u8], set: Set, event: &'static str) {
    let n = set.len();
    if n == 0 {
        if ctx.ks.remove(key).is_some() {
            ctx.ks.notify(GENERIC, "del", key);
        }
    } else {
        ctx.ks
            .insert(Entry::new(key, NewValue::Obj(Object::Set(set)), None));
        ctx.ks.notify(SET, event, key);
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// Single-key commands

fn sadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let lim = limits(ctx);
    let key = args[1];
    let members = &args[2..];
    let added = match write_set(&mut ctx.ks, ctx.out, key) {
        Err(()) => return,
        Ok(Some(s)) => {
            s.maybe_convert(members.len(), &lim);
            members.iter().filter(|m| s.add(m, &lim)).count()
        }
        Ok(None) => {
            let mut s = Set::create_for(members[0], members.len(), &lim);
            let added = members.iter().filter(|m| s.add(m, &lim)).count();
            ctx.ks
                .insert(Entry::new(key, NewValue::Obj(Object::Set(s)), None));
            ctx.ks.notify(SET, "sadd", key);
            ctx.out.int(added as i64);
            return;
        }
    };
    if added > 0 {
        ctx.ks.modified(key);
        ctx.ks.notify(SET, "sadd", key);
    }
    ctx.out.int(added as i64);
}

fn srem(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let (deleted, emptied) = match write_set(&mut ctx.ks, ctx.out, key) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.int(0);
            return;
        }
        Ok(Some(s)) => {
            let mut deleted = 0;
            for m in &args[2..] {
                if s.remove(m) {
                    deleted += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            (deleted, s.is_empty())
        }
    };
    if deleted > 0 {
        ctx.ks.notify(SET, "srem", key);
    }
    if emptied {
        ctx.ks.remove(key);
        ctx.ks.notify(GENERIC, "del", key);
    } else if deleted > 0 {
        ctx.ks.modified(key);
    }
    ctx.out.int(deleted);
}

fn scard(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_set(&mut ctx.ks, ctx.out, args[1]) {
        Err(()) => {}
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => ctx.out.int(s.len() as i64),
    }
}

fn sismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_set(&mut ctx.ks, ctx.out, args[1]) {
        Err(()) => {}
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => ctx.out.int(s.contains(args[2]) as i64),
    }
}

fn smismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Ok(set) = read_set(&mut ctx.ks, ctx.out, args[1]) else {
        return;
    };
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        ctx.out.int(set.is_some_and(|s| s.contains(m)) as i64);
    }
}

fn smembers(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_set(&mut ctx.ks, ctx.out, args[1]) {
        Err(()) => {}
        Ok(None) => ctx.out.set(0),
        Ok(Some(s)) => {
            ctx.out.set(s.len());
            for m in s.iter() {
                reply_member(ctx.out, &m);
            }
        }
    }
}

fn spop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() == 3 {
        return spop_count(ctx, args);
    }
    if args.len() > 3 {
        ctx.error(err::SYNTAX);
        return;
    }
    let key = args[1];
    let mut rng = fast_rand;
    let emptied = match write_set(&mut ctx.ks, ctx.out, key) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.null();
            return;
        }
        Ok(Some(s)) => {
            s.pop_random(&mut rng, |m| reply_member(ctx.out, &m));
            s.is_empty()
        }
    };
    ctx.ks.notify(SET, "spop", key);
    if emptied {
        ctx.ks.remove(key);
        ctx.ks.notify(GENERIC, "del", key);
    } else {
        ctx.ks.modified(key);
    }
}

fn spop_count(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let count = match crate::util::parse_i64(args[2]) {
        Some(c) if c >= 0 => c as u64,
        _ => {
            ctx.error(ERR_POSITIVE);
            return;
        }
    };
    let key = args[1];
    let lim = limits(ctx);
    let mut rng = fast_rand;
    let whole = match write_set(&mut ctx.ks, ctx.out, key) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.set(0);
            return;
        }
        Ok(Some(_)) if count == 0 => {
            ctx.out.set(0);
            return;
        }
        Ok(Some(s)) if count >= s.len() as u64 => {
            reply_whole_set(ctx.out, s, &lim);
            true
        }
        Ok(Some(s)) => {
            ctx.out.set(count as usize);
            s.pop_many(count as usize, &lim, &mut rng, |m| {
                reply_member(ctx.out, &m)
            });
            false
        }
    };
    ctx.ks.notify(SET, "spop", key);
    if whole {
        ctx.ks.remove(key);
        ctx.ks.notify(GENERIC, "del", key);
    } else {
        ctx.ks.modified(key);
    }
}

/// Replies with every member of `s` as a set, in the order Redis's SPOP
/// gives them (it passes the set through SUNION: an intset stays sorted, a
/// listpack goes through an intset first).
fn reply_whole_set(out: &mut ReplyBuf, s: &Set, lim: &Limits) {
    out.set(s.len());
    if s.encoding() == "hashtable" {
        for m in s.iter() {
            reply_member(out, &m);
        }
        return;
    }
    let mut u = Set::new_intset();
    let mut buf = [0u8; 20];
    for m in s.iter() {
        u.add(m.bytes(&mut buf), lim);
    }
    for m in u.iter() {
        reply_member(out, &m);
    }
}

fn srandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() == 3 {
        return srandmember_count(ctx, args);
    }
    if args.len() > 3 {
        ctx.error(err::SYNTAX);
        return;
    }
    let mut rng = fast_rand;
    match read_set(&mut ctx.ks, ctx.out, args[1]) {
        Err(()) => {}
        Ok(None) => ctx.out.null(),
        Ok(Some(s)) => reply_member(ctx.out, &s.random(&mut rng)),
    }
}

fn srandmember_count(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(l) = arg_i64(ctx, args[2]) else {
        return;
    };
    if l == i64::MIN {
        ctx.error(ERR_RANDOM_RANGE);
        return;
    }
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    let mut rng = fast_rand;
    let start = ctx.out.len();
    let s = match read_set(&mut ctx.ks, ctx.out, args[1]) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.array(0);
            return;
        }
        Ok(Some(s)) => s,
    };
    if count == 0 {
        ctx.out.array(0);
        return;
    }
    let size = s.len() as u64;
    if !uniq || count == 1 {
        // Each element takes at least 6 bytes (`$0\r\n\r\n`).
        if count.saturating_mul(6) > MAX_RANDOM_REPLY_BYTES as u64 {
            ctx.out.error(ERR_REPLY_TOO_LARGE);
            return;
        }
        ctx.out.array(count as usize);
        let mut drawn = 0u64;
        let mut too_large = false;
        s.random_repeat(count, &mut rng, |m| {
            reply_member(ctx.out, &m);
            drawn += 1;
            too_large =
                drawn.is_multiple_of(1024) && ctx.out.len() - start > MAX_RANDOM_REPLY_BYTES;
            !too_large
        });
        if too_large {
            ctx.out.truncate(start);
            ctx.out.error(ERR_REPLY_TOO_LARGE);
        }
    } else if count >= size {
        ctx.out.array(size as usize);
        for m in s.iter() {
            reply_member(ctx.out, &m);
        }
    } else {
        ctx.out.array(count as usize);
        s.random_distinct(count as usize, &mut rng, |m| reply_member(ctx.out, &m));
    }
}

fn smove(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let (src, dst, member) = (args[1], args[2], args[3]);
    let lim = limits(ctx);
    match write_set(&mut ctx.ks, ctx.out, src) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.int(0);
            return;
        }
        Ok(Some(_)) => {}
    }
    if write_set(&mut ctx.ks, ctx.out, dst).is_err() {
        return;
    }
    if src == dst {
        let found = match write_set(&mut ctx.ks, ctx.out, src) {
            Ok(Some(s)) => s.contains(member),
            _ => false,
        };
        ctx.out.int(found as i64);
        return;
    }
    let emptied = match write_set(&mut ctx.ks, ctx.out, src) {
        Ok(Some(s)) => {
            if !s.remove(member) {
                ctx.out.int(0);
                return;
            }
            s.is_empty()
        }
        _ => {
            ctx.out.int(0);
            return;
        }
    };
    ctx.ks.notify(SET, "srem", src);
    if emptied {
        ctx.ks.remove(src);
        ctx.ks.notify(GENERIC, "del", src);
    } else {
        ctx.ks.modified(src);
    }
    match write_set(&mut ctx.ks, ctx.out, dst) {
        Ok(Some(d)) => {
            if d.add(member, &lim) {
                ctx.ks.modified(dst);
                ctx.ks.notify(SET, "sadd", dst);
            }
        }
        Err(()) => return,
        Ok(None) => {
            let mut d = Set::create_for(member, 1, &lim);
            d.add(member, &lim);
            ctx.ks
                .insert(Entry::new(dst, NewValue::Obj(Object::Set(d)), None));
            ctx.ks.notify(SET, "sadd", dst);
        }
    }
    ctx.out.int(1);
}

// ---------------------------------------------------------------------------
// Multi-key commands

/// The sets at `keys` (None for missing keys), as raw pointers because
/// several entries of the keyspace are read at once. Replies WRONGTYPE and
/// returns None when a key holds another type.
///
/// The pointers stay valid until the keyspace is next modified: they point
/// to the heap objects of live entries, which lookups of other keys do not
/// move or free (a lookup only removes the key it looks up, and only when
/// that key has expired; a key met twice was live the first time under the
/// same frozen clock). Callers turn them into references for a computation
/// that ends before any insert or remove.
fn source_sets(ctx: &mut Ctx<'_>, keys: &[&[u8]]) -> Option<Vec<Option<*const Set>>> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        match read_set(&mut ctx.ks, ctx.out, key) {
            Err(()) => return None,
            Ok(s) => out.push(s.map(|s| s as *const Set)),
        }
    }
    Some(out)
}

/// Turns the pointers of [`source_sets`] into references.
///
/// # Safety
/// The keyspace must not be modified while the references live.
unsafe fn deref_sets<'a>(ptrs: &[Option<*const Set>]) -> Vec<Option<&'a Set>> {
    // SAFETY: per the contract and source_sets' reasoning.
    ptrs.iter().map(|p| p.map(|p| unsafe { &*p })).collect()
}

/// What an intersection produces.
#[derive(Clone, Copy)]
enum InterOut<'a> {
    /// SINTER: reply with the members.
    Reply,
    /// SINTERCARD: reply with the count, stopping at `limit` (0: none).
    Card(usize),
    /// SINTERSTORE: store at this key.
    Store(&'a [u8]),
}

fn sinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    inter_generic(ctx, &args[1..], InterOut::Reply);
}

fn sinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    inter_generic(ctx, &args[2..], InterOut::Store(args[1]));
}

fn sintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = match crate::util::parse_i64(args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => {
            ctx.error(ERR_NUMKEYS);
            return;
        }
    };
    if numkeys > (args.len() - 2) as u64 {
        ctx.error("ERR Number of keys can't be greater than number of args");
        return;
    }
    let numkeys = numkeys as usize;
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(c_str(args[j]), "limit") && more > 0 {
            j += 1;
            match crate::util::parse_i64(args[j]) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => {
                    ctx.error("ERR LIMIT can't be negative");
                    return;
                }
            }
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
        j += 1;
    }
    inter_generic(ctx, &args[2..2 + numkeys], InterOut::Card(limit));
}

/// SINTER, SINTERCARD and SINTERSTORE (Redis's `sinterGenericCommand`).
fn inter_generic(ctx: &mut Ctx<'_>, keys: &[&[u8]], mode: InterOut<'_>) {
    let Some(ptrs) = source_sets(ctx, keys) else {
        return;
    };
    if ptrs.iter().any(Option::is_none) {
        // Intersection with an empty set.
        match mode {
            InterOut::Store(dst) => store_result(ctx, dst, Set::new_intset(), "sinterstore"),
            InterOut::Card(_) => ctx.out.int(0),
            InterOut::Reply => ctx.out.set(0),
        }
        return;
    }
    let lim = limits(ctx);
    let result = {
        // SAFETY: nothing modifies the keyspace in this block.
        let mut sets: Vec<&Set> = unsafe { deref_sets(&ptrs) }.into_iter().flatten().collect();
        // Smallest first (stable, so equal sizes keep the argument order).
        sets.sort_by_key(|s| s.len());
        let (first, rest) = (sets[0], &sets[1..]);
        let in_all = |m: &Member<'_>| {
            rest.iter()
                .all(|s| std::ptr::eq(*s, first) || s.contains_member(m))
        };
        match mode {
            InterOut::Card(limit) => {
                let mut n = 0usize;
                for m in first.iter() {
                    if in_all(&m) {
                        n += 1;
                        if limit != 0 && n >= limit {
                            break;
                        }
                    }
                }
                ctx.out.int(n as i64);
                return;
            }
            InterOut::Reply => {
                let d = ctx.out.begin_deferred();
                let mut n = 0;
                for m in first.iter().filter(|m| in_all(m)) {
                    reply_member(ctx.out, &m);
                    n += 1;
                }
                ctx.out.end_deferred(d, Aggregate::Set, n);
                return;
            }
            InterOut::Store(_) => {
                let mut dst = if first.encoding() == "intset" {
                    Set::new_intset()
                } else {
                    Set::new_listpack()
                };
                let mut only_integers = true;
                let mut buf = [0u8; 20];
                for m in first.iter().filter(|m| in_all(m)) {
                    let bytes = m.bytes(&mut buf);
                    if only_integers && !matches!(m, Member::Int(_)) {
                        only_integers = kvik_core::num::parse_i64(bytes).is_some();
                    }
                    dst.add(bytes, &lim);
                }
                if only_integers {
                    dst.convert_to_intset_if_fits(&lim);
                }
                dst
            }
        }
    };
    if let InterOut::Store(key) = mode {
        store_result(ctx, key, result, "sinterstore");
    }
}

fn sunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    union_diff(ctx, &args[1..], None, false);
}

fn sunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    union_diff(ctx, &args[2..], Some(args[1]), false);
}

fn sdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    union_diff(ctx, &args[1..], None, true);
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    union_diff(ctx, &args[2..], Some(args[1]), true);
}

/// SUNION, SUNIONSTORE, SDIFF and SDIFFSTORE (Redis's
/// `sunionDiffGenericCommand`). The result starts as an empty intset and
/// converts as members arrive, so stored results get Redis's encodings.
fn union_diff(ctx: &mut Ctx<'_>, keys: &[&[u8]], dst: Option<&[u8]>, diff: bool) {
    let Some(ptrs) = source_sets(ctx, keys) else {
        return;
    };
    let lim = limits(ctx);
    let mut result = Set::new_intset();
    {
        // SAFETY: nothing modifies the keyspace in this block.
        let sets = unsafe { deref_sets(&ptrs) };
        let mut buf = [0u8; 20];
        if !diff {
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    result.add(m.bytes(&mut buf), &lim);
                }
            }
        } else if let Some(first) = sets[0] {
            // A later key naming the first set empties the difference.
            let same = sets[1..].iter().flatten().any(|s| std::ptr::eq(*s, first));
            let others: Vec<&Set> = sets[1..].iter().flatten().copied().collect();
            if !same {
                // Redis picks the algorithm by estimated work; it matters
                // here because algorithm 2 adds every member of the first
                // set before removing, which can convert the result.
                let present = 1 + others.len();
                let algo_one = (first.len() * present) / 2;
                let algo_two: usize = first.len() + others.iter().map(|s| s.len()).sum::<usize>();
                if algo_one <= algo_two {
                    for m in first.iter() {
                        if !others.iter().any(|s| s.contains_member(&m)) {
                            result.add(m.bytes(&mut buf), &lim);
                        }
                    }
                } else {
                    for m in first.iter() {
                        result.add(m.bytes(&mut buf), &lim);
                    }
                    'outer: for s in &others {
                        for m in s.iter() {
                            result.remove(m.bytes(&mut buf));
                        }
                        if result.is_empty() {
                            break 'outer;
                        }
                    }
                }
            }
        }
    }
    match dst {
        Some(key) => {
            let event = if diff { "sdiffstore" } else { "sunionstore" };
            store_result(ctx, key, result, event)
        }
        None => {
            ctx.out.set(result.len());
            for m in result.iter() {
                reply_member(ctx.out, &m);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// SSCAN

fn sscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(cursor) = parse_cursor(args[2]) else {
        ctx.error("ERR invalid cursor");
        return;
    };
    // Options are parsed only once the key is known to be a set.
    let set = match read_set(&mut ctx.ks, ctx.out, args[1]) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.array(2);
            ctx.out.bulk(b"0");
            ctx.out.array(0);
            return;
        }
        Ok(Some(s)) => s,
    };
    let ScanOptions { count, pattern, .. } = match parse_scan_options(args, 3, false, false) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let mut body = ReplyBuf::new();
    body.set_resp3(ctx.out.resp3());
    let mut n = 0usize;
    let mut buf = [0u8; 20];
    let next = set.scan(cursor, count, |m| {
        let bytes = m.bytes(&mut buf);
        if pattern.is_none_or(|p| glob_match(p, bytes, false)) {
            body.bulk(bytes);
            n += 1;
        }
    });
    reply_scan(ctx.out, next, n, &body);
}
