//! Sorted set commands (Redis's `t_zset.c`).
//!
//! This file has the single-key commands; [`range`] has the ZRANGE family
//! and ZRANGESTORE, [`setops`] ZUNION/ZINTER/ZDIFF (and their STORE forms)
//! and ZINTERCARD. Argument checks happen in Redis's order, which decides
//! the error a client sees when several things are wrong (e.g. ZADD parses
//! every score before looking at the key, so a bad score beats WRONGTYPE).
//!
//! Not here: BZPOPMIN, BZPOPMAX and BZMPOP (they need the blocking
//! machinery).

mod range;
mod setops;

use super::{arg_i64, is};
use crate::db::{fast_rand, Keyspace};
use crate::dispatch::{err, CommandTable, Ctx};
use crate::util::notify::{GENERIC, ZSET};
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::num;
use kvik_core::object::Object;
use kvik_core::zset::{AddFlags, AddOutcome, LexRange, Limits, ScoreRange, ZSet};
use kvik_protocol::ReplyBuf;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("zadd", zadd);
    t.add("zincrby", zincrby);
    t.add("zscore", zscore);
    t.add("zmscore", zmscore);
    t.add("zcard", zcard);
    t.add("zcount", zcount);
    t.add("zlexcount", zlexcount);
    t.add("zrank", zrank);
    t.add("zrevrank", zrevrank);
    t.add("zrem", zrem);
    t.add("zremrangebyrank", zremrangebyrank);
    t.add("zremrangebyscore", zremrangebyscore);
    t.add("zremrangebylex", zremrangebylex);
    t.add("zpopmin", zpopmin);
    t.add("zpopmax", zpopmax);
    t.add("zmpop", zmpop);
    t.add("zrandmember", zrandmember);
    t.add("zscan", zscan);
    range::register(t);
    setops::register(t);
}

/// `ERR min or max is not a float`
pub const ERR_MINMAX_FLOAT: &str = "ERR min or max is not a float";
/// `ERR min or max not valid string range item`
pub const ERR_MINMAX_LEX: &str = "ERR min or max not valid string range item";
const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
const ERR_POSITIVE: &str = "ERR value is out of range, must be positive";

/// The encoding thresholds in effect.
pub fn limits(ctx: &Ctx<'_>) -> Limits {
    let t = &ctx.srv.tun;
    Limits::new(
        t.zset_max_listpack_entries.load(Ordering::Relaxed),
        t.zset_max_listpack_value.load(Ordering::Relaxed),
    )
}

/// Writes a score as Redis 7.2's `addReplyDouble` does (a RESP3 double, a
/// bulk string in RESP2, shortest round-trip digits).
pub fn reply_score(out: &mut ReplyBuf, v: f64) {
    let mut buf = Vec::with_capacity(24);
    num::append_double(&mut buf, v);
    out.double_text(&buf);
}

/// Header of a member list that may carry scores: a flat array in RESP2,
/// an array of [member, score] pairs in RESP3.
pub fn reply_pairs_header(out: &mut ReplyBuf, n: usize, withscores: bool) {
    if withscores && !out.resp3() {
        out.array(n * 2);
    } else {
        out.array(n);
    }
}

/// One element of a [`reply_pairs_header`] list.
pub fn reply_pair(out: &mut ReplyBuf, member: &[u8], score: f64, withscores: bool) {
    if withscores {
        if out.resp3() {
            out.array(2);
        }
        out.bulk(member);
        reply_score(out, score);
    } else {
        out.bulk(member);
    }
}

/// The key holds a value of another type (reply WRONGTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// The sorted set at `key` for reading: `Ok(None)` when missing, `Err`
/// when the key holds another type.
pub fn read_zset<'a>(ks: &'a mut Keyspace<'_>, key: &[u8]) -> Result<Option<&'a ZSet>, WrongType> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => {
            let e: &'a Entry = e;
            match e.value() {
                ValueRef::Obj(Object::ZSet(z)) => Ok(Some(z)),
                _ => Err(WrongType),
            }
        }
    }
}

/// The sorted set at `key` for writing (see [`read_zset`]).
pub fn write_zset<'a>(
    ks: &'a mut Keyspace<'_>,
    key: &[u8],
) -> Result<Option<&'a mut ZSet>, WrongType> {
    match ks.lookup_write(key) {
        None => Ok(None),
        Some(e) => match e.object_mut() {
            Some(Object::ZSet(z)) => Ok(Some(z)),
            _ => Err(WrongType),
        },
    }
}

/// After a write: publishes `event`, then deletes the key when the set
/// became empty (as Redis does, with a `del` event), else records the
/// modification.
fn after_write(ks: &mut Keyspace<'_>, key: &[u8], empty: bool, event: &str) {
    ks.notify(ZSET, event, key);
    if empty {
        ks.remove(key);
        ks.notify(GENERIC, "del", key);
    } else {
        ks.modified(key);
    }
}

/// Stores a result set at `dst` (replacing any value and its TTL) and
/// publishes `event`, or deletes `dst` when the result is empty (with a
/// `del` event if there was a value).
pub fn store_result(ks: &mut Keyspace<'_>, dst: &[u8], z: ZSet, event: &str) {
    if z.is_empty() {
        if ks.remove(dst).is_some() {
            ks.notify(GENERIC, "del", dst);
        }
    } else {
        ks.insert(Entry::new(dst, NewValue::Obj(Object::ZSet(z)), None));
        ks.notify(ZSET, event, dst);
    }
}

/// Parses an integer with Redis's `getPositiveLongFromObjectOrReply`
/// (the given message both for non-integers and negatives).
fn arg_positive(ctx: &mut Ctx<'_>, arg: &[u8], msg: &str) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        Some(v) if v >= 0 => Some(v),
        _ => {
            ctx.out.error(msg);
            None
        }
    }
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY
// ---------------------------------------------------------------------------

fn zadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zadd_generic(ctx, args, false);
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zadd_generic(ctx, args, true);
}

/// ZADD and ZINCRBY (which is ZADD with INCR: its options are parsed the
/// same way, so `ZINCRBY key nx member` is a syntax error, as in Redis).
fn zadd_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], zincrby: bool) {
    let key = args[1];
    let mut f = AddFlags {
        incr: zincrby,
        ..AddFlags::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let a = args[idx];
        if is(a, "nx") {
            f.nx = true;
        } else if is(a, "xx") {
            f.xx = true;
        } else if is(a, "ch") {
            ch = true;
        } else if is(a, "incr") {
            f.incr = true;
        } else if is(a, "gt") {
            f.gt = true;
        } else if is(a, "lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let rest = args.len() - idx;
    if rest == 0 || !rest.is_multiple_of(2) {
        ctx.out.error(err::SYNTAX);
        return;
    }
    let elements = rest / 2;
    if f.nx && f.xx {
        ctx.out
            .error("ERR XX and NX options at the same time are not compatible");
        return;
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        ctx.out
            .error("ERR GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    if f.incr && elements > 1 {
        ctx.out
            .error("ERR INCR option supports a single increment-element pair");
        return;
    }
    let mut scores = Vec::with_capacity(elements);
    for j in 0..elements {
        match num::parse_f64(args[idx + 2 * j]) {
            Some(s) => scores.push(s),
            None => {
                ctx.out.error(err::NOT_FLOAT);
                return;
            }
        }
    }
    let limits = limits(ctx);
    let mut added = 0i64;
    let mut updated = 0i64;
    let mut processed = 0;
    let mut last = 0.0;
    let mut nan = false;
    let mut apply = |z: &mut ZSet| {
        for (j, &score) in scores.iter().enumerate() {
            match z.add(args[idx + 2 * j + 1], score, f, limits) {
                AddOutcome::Nan => {
                    nan = true;
                    return;
                }
                AddOutcome::Skipped => {}
                AddOutcome::Added(s) => {
                    added += 1;
                    processed += 1;
                    last = s;
                }
                AddOutcome::Updated(s) => {
                    updated += 1;
                    processed += 1;
                    last = s;
                }
                AddOutcome::Unchanged(s) => {
                    processed += 1;
                    last = s;
                }
            }
        }
    };
    match write_zset(&mut ctx.ks, key) {
        Err(WrongType) => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
        Ok(Some(z)) => {
            z.maybe_convert(elements, limits);
            apply(z);
            if added + updated > 0 {
                ctx.ks.modified(key);
                ctx.ks
                    .notify(ZSET, if f.incr { "zincr" } else { "zadd" }, key);
            }
        }
        Ok(None) => {
            if !f.xx {
                let mut z = ZSet::with_hint(elements, args[idx + 1].len(), limits);
                apply(&mut z);
                if !z.is_empty() {
                    ctx.ks
                        .insert(Entry::new(key, NewValue::Obj(Object::ZSet(z)), None));
                }
                if added + updated > 0 {
                    ctx.ks
                        .notify(ZSET, if f.incr { "zincr" } else { "zadd" }, key);
                }
            }
        }
    }
    if nan {
        ctx.out.error(ERR_NAN);
    } else if f.incr {
        if processed > 0 {
            reply_score(ctx.out, last);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

fn zscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_zset(&mut ctx.ks, args[1]) {
        Err(WrongType) => ctx.out.error(err::WRONGTYPE),
        Ok(z) => match z.and_then(|z| z.score(args[2])) {
            Some(s) => reply_score(ctx.out, s),
            None => ctx.out.null(),
        },
    }
}

fn zmscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_zset(&mut ctx.ks, args[1]) {
        Err(WrongType) => ctx.out.error(err::WRONGTYPE),
        Ok(z) => {
            ctx.out.array(args.len() - 2);
            for m in &args[2..] {
                match z.and_then(|z| z.score(m)) {
                    Some(s) => reply_score(ctx.out, s),
                    None => ctx.out.null(),
                }
            }
        }
    }
}

fn zcard(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_zset(&mut ctx.ks, args[1]) {
        Err(WrongType) => ctx.out.error(err::WRONGTYPE),
        Ok(z) => ctx.out.int(z.map_or(0, |z| z.len() as i64)),
    }
}

fn zcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(range) = ScoreRange::parse(args[2], args[3]) else {
        ctx.out.error(ERR_MINMAX_FLOAT);
        return;
    };
    count_range(ctx, args[1], |z| z.score_range_ranks(&range));
}

fn zlexcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(range) = LexRange::parse(args[2], args[3]) else {
        ctx.out.error(ERR_MINMAX_LEX);
        return;
    };
    count_range(ctx, args[1], |z| z.lex_range_ranks(&range));
}

/// Replies the number of members of the sorted set at `key` between the
/// ranks `ranks` finds (ZCOUNT, ZLEXCOUNT).
fn count_range(ctx: &mut Ctx<'_>, key: &[u8], ranks: impl Fn(&ZSet) -> (usize, usize)) {
    match read_zset(&mut ctx.ks, key) {
        Err(WrongType) => ctx.out.error(err::WRONGTYPE),
        Ok(z) => {
            let n = z.map_or(0, |z| {
                let (lo, hi) = ranks(z);
                hi - lo
            });
            ctx.out.int(n as i64);
        }
    }
}

fn zrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrank_generic(ctx, args, false);
}

fn zrevrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrank_generic(ctx, args, true);
}

/// ZRANK / ZREVRANK key member [WITHSCORE] (WITHSCORE is Redis 7.2).
fn zrank_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) {
    if args.len() > 4 {
        let name = if rev { "zrevrank" } else { "zrank" };
        ctx.out.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
        return;
    }
    let withscore = args.len() == 4;
    if withscore && !is(args[3], "withscore") {
        ctx.out.error(err::SYNTAX);
        return;
    }
    let found = match read_zset(&mut ctx.ks, args[1]) {
        Err(WrongType) => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
        Ok(z) => z.and_then(|z| {
            z.rank(args[2])
                .map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s))
        }),
    };
    match found {
        Some((rank, score)) => {
            if withscore {
                ctx.out.array(2);
                ctx.out.int(rank as i64);
                reply_score(ctx.out, score);
            } else {
                ctx.out.int(rank as i64);
            }
        }
        None if withscore => ctx.out.null_array(),
        None => ctx.out.null(),
    }
}

// ---------------------------------------------------------------------------
// Removal
// ---------------------------------------------------------------------------

fn zrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let (n, empty) = match write_zset(&mut ctx.ks, key) {
        Err(WrongType) => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
        Ok(None) => (0, false),
        Ok(Some(z)) => {
            let mut n = 0;
            for m in &args[2..] {
                if z.remove(m) {
                    n += 1;
                    if z.is_empty() {
                        break;
                    }
                }
            }
            (n, z.is_empty())
        }
    };
    if n > 0 {
        after_write(&mut ctx.ks, key, empty, "zrem");
    }
    ctx.out.int(n);
}

/// What a ZREMRANGEBY* command removes.
enum RemRange<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(start) = arg_i64(ctx, args[2]) else {
        return;
    };
    let Some(end) = arg_i64(ctx, args[3]) else {
        return;
    };
    zremrange(ctx, args[1], RemRange::Rank(start, end));
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(r) = ScoreRange::parse(args[2], args[3]) else {
        ctx.out.error(ERR_MINMAX_FLOAT);
        return;
    };
    zremrange(ctx, args[1], RemRange::Score(r));
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(r) = LexRange::parse(args[2], args[3]) else {
        ctx.out.error(ERR_MINMAX_LEX);
        return;
    };
    zremrange(ctx, args[1], RemRange::Lex(r));
}

/// Sanitizes a rank range like Redis (negative indexes from the end);
/// returns the ascending ranks `lo..hi` (empty when out of range).
pub fn rank_range(start: i64, end: i64, len: usize) -> (usize, usize) {
    let llen = len as i64;
    let mut start = if start < 0 {
        llen.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        llen.saturating_add(end)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return (0, 0);
    }
    if end >= llen {
        end = llen - 1;
    }
    (start as usize, end as usize + 1)
}

fn zremrange(ctx: &mut Ctx<'_>, key: &[u8], what: RemRange<'_>) {
    let (n, empty) = match write_zset(&mut ctx.ks, key) {
        Err(WrongType) => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
        Ok(None) => (0, false),
        Ok(Some(z)) => {
            let (lo, hi) = match &what {
                RemRange::Rank(s, e) => rank_range(*s, *e, z.len()),
                RemRange::Score(r) => z.score_range_ranks(r),
                RemRange::Lex(r) => z.lex_range_ranks(r),
            };
            (z.remove_range(lo, hi), z.is_empty())
        }
    };
    if n > 0 {
        let event = match what {
            RemRange::Rank(..) => "zremrangebyrank",
            RemRange::Score(_) => "zremrangebyscore",
            RemRange::Lex(_) => "zremrangebylex",
        };
        after_write(&mut ctx.ks, key, empty, event);
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// ZPOPMIN / ZPOPMAX / ZMPOP
// ---------------------------------------------------------------------------

fn zpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zpop_command(ctx, args, false);
}

fn zpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zpop_command(ctx, args, true);
}

fn zpop_command(ctx: &mut Ctx<'_>, args: &[&[u8]], max: bool) {
    if args.len() > 3 {
        ctx.out.error(err::SYNTAX);
        return;
    }
    let mut count = None;
    if args.len() == 3 {
        let Some(c) = arg_positive(ctx, args[2], ERR_POSITIVE) else {
            return;
        };
        count = Some(c);
    }
    // In RESP3 a COUNT gives an array of [member, score] pairs; otherwise
    // the reply is flat.
    let nested = ctx.out.resp3() && count.is_some();
    zpop_generic(ctx, &args[1..2], max, count, Pop::Plain { nested });
}

/// Reply shapes of the pop commands.
#[derive(Clone, Copy)]
pub enum Pop {
    /// ZPOPMIN/ZPOPMAX: flat [m, s, ...] or nested pairs; empty array when
    /// nothing to pop.
    Plain { nested: bool },
    /// ZMPOP: [key, [[m, s], ...]]; null when nothing to pop.
    Multi,
    /// BZPOPMIN/BZPOPMAX: [key, member, score]; null when nothing to pop.
    Blocking,
}

/// Redis's `genericZpopCommand`: pops up to `count` (default 1) members
/// from the first non-empty key of `keys`.
pub fn zpop_generic(ctx: &mut Ctx<'_>, keys: &[&[u8]], max: bool, count: Option<i64>, shape: Pop) {
    let mut found = None;
    for key in keys {
        match write_zset(&mut ctx.ks, key) {
            Err(WrongType) => {
                ctx.out.error(err::WRONGTYPE);
                return;
            }
            Ok(None) => continue,
            Ok(Some(_)) => {
                found = Some(*key);
                break;
            }
        }
    }
    let Some(key) = found else {
        match shape {
            Pop::Plain { .. } => ctx.out.array(0),
            Pop::Multi | Pop::Blocking => ctx.out.null_array(),
        }
        return;
    };
    if count == Some(0) {
        ctx.out.array(0);
        return;
    }
    let count = count.unwrap_or(1).max(1) as u64;
    let mut popped = Vec::new();
    let empty = match write_zset(&mut ctx.ks, key) {
        Ok(Some(z)) => {
            let n = (z.len() as u64).min(count) as usize;
            popped.reserve(n);
            for _ in 0..n {
                match z.pop(max) {
                    Some(e) => popped.push(e),
                    None => break,
                }
            }
            z.is_empty()
        }
        _ => false,
    };
    after_write(
        &mut ctx.ks,
        key,
        empty,
        if max { "zpopmax" } else { "zpopmin" },
    );
    let out = &mut *ctx.out;
    match shape {
        Pop::Plain { nested: false } => {
            out.array(popped.len() * 2);
            for (m, s) in &popped {
                out.bulk(m);
                reply_score(out, *s);
            }
        }
        Pop::Plain { nested: true } => {
            out.array(popped.len());
            for (m, s) in &popped {
                out.array(2);
                out.bulk(m);
                reply_score(out, *s);
            }
        }
        Pop::Blocking => match popped.first() {
            Some((m, s)) => {
                out.array(3);
                out.bulk(key);
                out.bulk(m);
                reply_score(out, *s);
            }
            None => out.null_array(),
        },
        Pop::Multi => {
            out.array(2);
            out.bulk(key);
            out.array(popped.len());
            for (m, s) in &popped {
                out.array(2);
                out.bulk(m);
                reply_score(out, *s);
            }
        }
    }
}

/// Parses an integer in `1..=i64::MAX` with Redis's
/// `getRangeLongFromObjectOrReply` and a custom message (used for both
/// non-integers and values out of range).
fn arg_at_least_one(ctx: &mut Ctx<'_>, arg: &[u8], msg: &str) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        Some(v) if v >= 1 => Some(v),
        _ => {
            ctx.out.error(msg);
            None
        }
    }
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
fn zmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some((keys, max, count)) = zmpop_parse(ctx, args, 1) else {
        return;
    };
    zpop_generic(ctx, &args[keys], max, Some(count), Pop::Multi);
}

/// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` starting at
/// `args[numkeys_idx]` (ZMPOP, BZMPOP): the range of key arguments, MAX or
/// not, and the count; or replies with the error.
pub fn zmpop_parse(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    numkeys_idx: usize,
) -> Option<(std::ops::Range<usize>, bool, i64)> {
    let numkeys = arg_at_least_one(
        ctx,
        args[numkeys_idx],
        "ERR numkeys should be greater than 0",
    )?;
    let where_idx = match usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1))
    {
        Some(i) if i < args.len() => i,
        _ => {
            ctx.out.error(err::SYNTAX);
            return None;
        }
    };
    let max = if is(args[where_idx], "min") {
        false
    } else if is(args[where_idx], "max") {
        true
    } else {
        ctx.out.error(err::SYNTAX);
        return None;
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(args[j], "count") && j + 1 < args.len() {
            count = Some(arg_at_least_one(
                ctx,
                args[j + 1],
                "ERR count should be greater than 0",
            )?);
            j += 2;
        } else {
            ctx.out.error(err::SYNTAX);
            return None;
        }
    }
    Some((numkeys_idx + 1..where_idx, max, count.unwrap_or(1)))
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------

/// Upper bound on the estimated size of a ZRANDMEMBER reply with a
/// negative count. Redis streams such replies into an unbounded output
/// buffer; kvik builds replies in memory, so a count whose reply could not
/// reasonably be built is refused with Redis's range error instead of
/// exhausting memory.
const RANDMEMBER_REPLY_BUDGET: u128 = 1 << 30;

fn zrandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() >= 3 {
        let Some(l) = arg_i64(ctx, args[2]) else {
            return;
        };
        if l == i64::MIN {
            ctx.out.error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
            return;
        }
        let mut withscores = false;
        if args.len() > 4 || (args.len() == 4 && !is(args[3], "withscores")) {
            ctx.out.error(err::SYNTAX);
            return;
        } else if args.len() == 4 {
            withscores = true;
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
                ctx.out.error("ERR value is out of range");
                return;
            }
        }
        zrandmember_count(ctx, args[1], l, withscores);
        return;
    }
    match read_zset(&mut ctx.ks, args[1]) {
        Err(WrongType) => ctx.out.error(err::WRONGTYPE),
        Ok(None) => ctx.out.null(),
        Ok(Some(z)) => {
            let i = (fast_rand() % z.len().max(1) as u64) as usize;
            match z.get(i) {
                Some((m, _)) => ctx.out.bulk(m),
                None => ctx.out.null(),
            }
        }
    }
}

fn zrandmember_count(ctx: &mut Ctx<'_>, key: &[u8], l: i64, withscores: bool) {
    let z = match read_zset(&mut ctx.ks, key) {
        Err(WrongType) => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
        Ok(None) => {
            ctx.out.array(0);
            return;
        }
        Ok(Some(z)) => z,
    };
    let out = &mut *ctx.out;
    let size = z.len();
    let count = l.unsigned_abs();
    if count == 0 || size == 0 {
        out.array(0);
        return;
    }
    let sampler = z.sampler();
    // Case 1: negative count, members may repeat (and come in random
    // order); also a count of 1.
    if l < 0 || count == 1 {
        let per_member =
            (z.heap_size() / size.max(1)) as u128 + 16 + if withscores { 24 } else { 0 };
        if count as u128 * per_member > RANDMEMBER_REPLY_BUDGET {
            out.error("ERR value is out of range");
            return;
        }
        let count = count as usize;
        reply_pairs_header(out, count, withscores);
        for _ in 0..count {
            let i = (fast_rand() % size as u64) as usize;
            if let Some((m, s)) = sampler.get(i) {
                reply_pair(out, m, s, withscores);
            }
        }
        return;
    }
    // Case 2: at least the whole set, in Redis's iteration order for
    // sorted sets (from the highest score down).
    if count >= size as u64 {
        reply_pairs_header(out, size, withscores);
        for (m, s) in z.iter_range(size - 1, size, true) {
            reply_pair(out, m, s, withscores);
        }
        return;
    }
    // Cases 3 and 4: `count` distinct members, in random order. Sample
    // distinct ranks with a partial Fisher-Yates shuffle when the count is
    // a large share of the set, by rejection otherwise.
    let count = count as usize;
    let ranks: Vec<usize> = if count * 3 > size {
        let mut all: Vec<usize> = (0..size).collect();
        for i in 0..count {
            let j = i + (fast_rand() % (size - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count);
        all
    } else {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut v = Vec::with_capacity(count);
        while v.len() < count {
            let i = (fast_rand() % size as u64) as usize;
            if seen.insert(i) {
                v.push(i);
            }
        }
        v
    };
    reply_pairs_header(out, count, withscores);
    for i in ranks {
        if let Some((m, s)) = sampler.get(i) {
            reply_pair(out, m, s, withscores);
        }
    }
}

// ---------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------

fn zscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(cursor) = super::keys::parse_cursor(args[2]) else {
        ctx.out.error("ERR invalid cursor");
        return;
    };
    // The key is checked before the options, as in Redis's zscanCommand
    // (a missing key answers an empty scan whatever the options are).
    match read_zset(&mut ctx.ks, args[1]) {
        Err(WrongType) => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
        Ok(None) => {
            ctx.out.array(2);
            ctx.out.bulk(b"0");
            ctx.out.array(0);
            return;
        }
        Ok(Some(_)) => {}
    }
    let super::keys::ScanOptions { count, pattern, .. } =
        match super::keys::parse_scan_options(args, 3, false, false) {
            Ok(o) => o,
            Err(e) => return ctx.out.error(e),
        };
    let z = match ctx.ks.peek(args[1]).map(|e| e.value()) {
        Some(ValueRef::Obj(Object::ZSet(z))) => z,
        // Checked above; the key cannot have changed since.
        _ => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
    };
    let listpack = z.is_listpack();
    let mut items: Vec<(&[u8], f64)> = Vec::new();
    let mut cur = cursor;
    let mut budget = count.saturating_mul(10);
    loop {
        cur = z.scan(cur, |m, s| {
            if pattern.is_none_or(|p| kvik_core::glob::glob_match(p, m, false)) {
                items.push((m, s));
            }
        });
        budget = budget.saturating_sub(1);
        if cur == 0 || budget == 0 || items.len() >= count {
            break;
        }
    }
    let out = &mut *ctx.out;
    let mut buf = [0u8; num::MAX_INT_LEN];
    out.array(2);
    out.bulk(num::format_u64(cur, &mut buf));
    out.array(items.len() * 2);
    let mut text = Vec::with_capacity(32);
    for (m, s) in items {
        out.bulk(m);
        // A listpack holds scores as Redis 7.2's d2string wrote them; the
        // skiplist's scan formats them with "%.17Lg".
        text.clear();
        if listpack {
            num::append_double(&mut text, s);
            out.bulk(&text);
        } else {
            out.bulk(num::format_double_g17(s).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rank_range;

    #[test]
    fn rank_ranges_like_redis() {
        assert_eq!(rank_range(0, -1, 5), (0, 5));
        assert_eq!(rank_range(-2, -1, 5), (3, 5));
        assert_eq!(rank_range(-100, 1, 5), (0, 2));
        assert_eq!(rank_range(3, 100, 5), (3, 5));
        assert_eq!(rank_range(4, 2, 5), (0, 0));
        assert_eq!(rank_range(5, 9, 5), (0, 0));
        assert_eq!(rank_range(0, -6, 5), (0, 0));
        assert_eq!(rank_range(i64::MIN, i64::MAX, 5), (0, 5));
        assert_eq!(rank_range(i64::MAX, i64::MIN, 5), (0, 0));
        assert_eq!(rank_range(0, -1, 0), (0, 0));
    }
}
