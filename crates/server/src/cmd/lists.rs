//! List commands (Redis's `t_list.c`): pushes, pops, ranges, LINSERT,
//! LSET, LREM, LTRIM, LPOS, LMOVE/RPOPLPUSH and LMPOP. The blocking
//! variants are not here yet; pops and pushes go through
//! [`kvik_core::list::List`] functions taking `&mut List`, so a blocked
//! client can later be served from the write path with the same code.
//!
//! Arguments are checked in Redis's order (some commands parse numbers
//! before looking the key up, others after), and encoding conversions
//! happen at the same points as in Redis: the listpack → quicklist check
//! before adding, the quicklist → listpack check after removing.

use crate::db::Keyspace;
use crate::dispatch::{err, CommandTable, Ctx};
use crate::util::notify::{GENERIC, LIST};
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::list::{Elem, End, Item, List, Needle};
use kvik_core::object::Object;
use kvik_protocol::reply::Aggregate;
use kvik_protocol::ReplyBuf;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("lpush", lpush);
    t.add("rpush", rpush);
    t.add("lpushx", lpushx);
    t.add("rpushx", rpushx);
    t.add("lpop", lpop);
    t.add("rpop", rpop);
    t.add("llen", llen);
    t.add("lrange", lrange);
    t.add("lindex", lindex);
    t.add("lset", lset);
    t.add("linsert", linsert);
    t.add("lrem", lrem);
    t.add("ltrim", ltrim);
    t.add("lpos", lpos);
    t.add("lmove", lmove);
    t.add("rpoplpush", rpoplpush);
    t.add("lmpop", lmpop);
}

/// `getPositiveLongFromObjectOrReply`'s default error.
const ERR_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// The list at `key` for writing: `Ok(None)` when the key is missing.
pub fn write_list<'k>(
    ks: &'k mut Keyspace<'_>,
    key: &[u8],
) -> Result<Option<&'k mut List>, WrongTypeError> {
    match ks.lookup_write(key) {
        None => Ok(None),
        Some(e) => match e.object_mut() {
            Some(Object::List(l)) => Ok(Some(l)),
            _ => Err(WrongTypeError),
        },
    }
}

/// The list at `key` for reading (counts keyspace hits and misses).
pub fn read_list<'k>(
    ks: &'k mut Keyspace<'_>,
    key: &[u8],
) -> Result<Option<&'k List>, WrongTypeError> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => {
            let e: &'k Entry = e;
            match e.value() {
                ValueRef::Obj(Object::List(l)) => Ok(Some(l)),
                _ => Err(WrongTypeError),
            }
        }
    }
}

/// Error of [`write_list`] / [`read_list`]: the key holds another type
/// (reply [`err::WRONGTYPE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongTypeError;

/// `list-max-listpack-size`.
pub fn list_fill(ctx: &Ctx<'_>) -> i64 {
    ctx.srv.tun.list_max_listpack_size.load(Ordering::Relaxed)
}

/// Writes an element as a bulk reply.
pub fn reply_elem(out: &mut ReplyBuf, e: Elem<'_>) {
    match e {
        Elem::Str(s) => out.bulk(s),
        Elem::Int(v) => out.bulk_i64(v),
    }
}

/// Writes `n` elements from one end of `l` as an array, in pop order
/// (Redis's `addListRangeReply` for a counted pop).
pub fn reply_end_range(out: &mut ReplyBuf, l: &List, end: End, n: usize) {
    out.array(n);
    if n == 0 {
        return;
    }
    let it = match end {
        End::Head => l.iter_from(0),
        End::Tail => l.iter_rev_from(l.len() - 1),
    };
    for e in it.take(n) {
        reply_elem(out, e);
    }
}

/// After elements left the list at `key`: deletes an emptied list, or
/// gives it the chance to turn back into a listpack (Redis's
/// `listElementsRemoved`). The command's own event must already be out:
/// the `del` of an emptied list follows it.
pub fn after_removal(ctx: &mut Ctx<'_>, key: &[u8], now_empty: bool) {
    if now_empty {
        ctx.ks.remove(key);
        ctx.ks.notify(GENERIC, "del", key);
    } else {
        let fill = list_fill(ctx);
        if let Ok(Some(l)) = write_list(&mut ctx.ks, key) {
            l.shrink_for(fill);
        }
        ctx.ks.modified(key);
    }
}

/// Parses LEFT / RIGHT (Redis's `getListPositionFromObjectOrReply`).
pub fn parse_end(arg: &[u8]) -> Option<End> {
    if arg.eq_ignore_ascii_case(b"left") {
        Some(End::Head)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Some(End::Tail)
    } else {
        None
    }
}

/// Redis's `getRangeLongFromObjectOrReply(min, max, msg)`: `msg` (or the
/// default wording) on a non-integer and on a value out of range.
fn parse_range(arg: &[u8], min: i64, max: i64, msg: Option<&'static str>) -> Result<i64, String> {
    match crate::util::parse_i64(arg) {
        None => Err(msg.unwrap_or(err::NOT_INT).to_string()),
        Some(v) if v < min || v > max => Err(match msg {
            Some(m) => m.to_string(),
            None => format!("ERR value is out of range, value must between {min} and {max}"),
        }),
        Some(v) => Ok(v),
    }
}

// ---------------------------------------------------------------------------
// Pushes
// ---------------------------------------------------------------------------

fn push_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End, only_existing: bool) {
    let fill = list_fill(ctx);
    let key = args[1];
    match write_list(&mut ctx.ks, key) {
        Err(_) => ctx.out.error(err::WRONGTYPE),
        Ok(Some(l)) => {
            let n = l.push_all(end, &args[2..], fill);
            ctx.out.int(n as i64);
            ctx.ks.modified(key);
            ctx.ks.notify(LIST, push_event(end), key);
        }
        Ok(None) if only_existing => ctx.out.int(0),
        Ok(None) => {
            let mut l = List::new();
            let n = l.push_all(end, &args[2..], fill);
            ctx.ks
                .insert(Entry::new(key, NewValue::Obj(Object::List(l)), None));
            ctx.ks.notify(LIST, push_event(end), key);
            ctx.out.int(n as i64);
        }
    }
}

/// The event of a push at `end`.
pub fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

/// The event of a pop at `end`.
pub fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

fn lpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    push_generic(ctx, args, End::Head, false);
}

fn rpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    push_generic(ctx, args, End::Tail, false);
}

fn lpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    push_generic(ctx, args, End::Head, true);
}

fn rpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    push_generic(ctx, args, End::Tail, true);
}

// ---------------------------------------------------------------------------
// Pops
// ---------------------------------------------------------------------------

fn pop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End) {
    if args.len() > 3 {
        let name = ctx.cmd.spec.name;
        ctx.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
        return;
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_range(a, 0, i64::MAX, Some(ERR_NOT_POSITIVE)) {
            Ok(c) => Some(c as u64),
            Err(e) => return ctx.error(&e),
        },
    };
    let key = args[1];
    let now_empty = match write_list(&mut ctx.ks, key) {
        Err(_) => return ctx.out.error(err::WRONGTYPE),
        Ok(None) => {
            return match count {
                Some(_) => ctx.out.null_array(),
                None => ctx.out.null(),
            }
        }
        Ok(Some(l)) => match count {
            Some(0) => return ctx.out.array(0),
            None => {
                match l.pop(end) {
                    Some(item) => reply_item(ctx.out, &item),
                    None => ctx.out.null(),
                }
                l.is_empty()
            }
            Some(c) => {
                let n = usize::try_from(c).unwrap_or(usize::MAX).min(l.len());
                reply_end_range(ctx.out, l, end, n);
                l.pop_range(end, n);
                l.is_empty()
            }
        },
    };
    ctx.ks.notify(LIST, pop_event(end), key);
    after_removal(ctx, key, now_empty);
}

/// Writes a popped value as a bulk reply.
pub fn reply_item(out: &mut ReplyBuf, item: &Item) {
    reply_elem(out, item.as_elem());
}

fn lpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    pop_generic(ctx, args, End::Head);
}

fn rpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    pop_generic(ctx, args, End::Tail);
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn lmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some((keys, end, count)) = mpop_parse(ctx, args, 1) else {
        return;
    };
    for &key in &args[keys] {
        match write_list(&mut ctx.ks, key) {
            Err(_) => return ctx.out.error(err::WRONGTYPE),
            Ok(Some(l)) if !l.is_empty() => return mpop_from(ctx, key, end, count),
            _ => {}
        }
    }
    ctx.out.null_array();
}

/// Parses `numkeys key [key ...] LEFT|RIGHT [COUNT count]` starting at
/// `args[numkeys_idx]` (LMPOP, BLMPOP), as Redis's `lmpopGenericCommand`:
/// returns the range of key arguments, the end and the count, or replies
/// with the error.
pub fn mpop_parse(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    numkeys_idx: usize,
) -> Option<(std::ops::Range<usize>, End, usize)> {
    const NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = match parse_range(args[numkeys_idx], 1, i64::MAX, Some(NUMKEYS)) {
        Ok(n) => n as u64,
        Err(e) => {
            ctx.error(&e);
            return None;
        }
    };
    // Index of LEFT|RIGHT.
    let where_idx = match usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1))
    {
        Some(i) if i < args.len() => i,
        _ => {
            ctx.error(err::SYNTAX);
            return None;
        }
    };
    let Some(end) = parse_end(args[where_idx]) else {
        ctx.error(err::SYNTAX);
        return None;
    };
    let mut count: Option<i64> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            match parse_range(
                args[j + 1],
                1,
                i64::MAX,
                Some("ERR count should be greater than 0"),
            ) {
                Ok(c) => count = Some(c),
                Err(e) => {
                    ctx.error(&e);
                    return None;
                }
            }
            j += 2;
        } else {
            ctx.error(err::SYNTAX);
            return None;
        }
    }
    let count = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
    Some((numkeys_idx + 1..where_idx, end, count))
}

/// Pops up to `count` elements at `end` of the non-empty list at `key`,
/// replying `[key, [elements]]` (LMPOP, BLMPOP).
pub fn mpop_from(ctx: &mut Ctx<'_>, key: &[u8], end: End, count: usize) {
    let now_empty = match write_list(&mut ctx.ks, key) {
        Ok(Some(l)) if !l.is_empty() => {
            let n = count.min(l.len());
            ctx.out.array(2);
            ctx.out.bulk(key);
            reply_end_range(ctx.out, l, end, n);
            l.pop_range(end, n);
            l.is_empty()
        }
        _ => return ctx.out.null_array(),
    };
    ctx.ks.notify(LIST, pop_event(end), key);
    after_removal(ctx, key, now_empty);
}

// ---------------------------------------------------------------------------
// LMOVE / RPOPLPUSH
// ---------------------------------------------------------------------------

fn lmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(from) = parse_end(args[3]) else {
        return ctx.error(err::SYNTAX);
    };
    let Some(to) = parse_end(args[4]) else {
        return ctx.error(err::SYNTAX);
    };
    move_generic(ctx, args[1], args[2], from, to);
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    move_generic(ctx, args[1], args[2], End::Tail, End::Head);
}

/// Pops from `src` at `from` and pushes onto `dst` at `to`, replying the
/// moved value (nil when `src` is missing). Shared with the blocking
/// variant to come.
pub fn move_generic(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) {
    let fill = list_fill(ctx);
    match write_list(&mut ctx.ks, src) {
        Err(_) => return ctx.out.error(err::WRONGTYPE),
        Ok(None) => return ctx.out.null(),
        Ok(Some(l)) if l.is_empty() => return ctx.out.null(),
        Ok(Some(_)) => {}
    }
    if src == dst {
        // Rotation: pop, push back (with the growth check), then the
        // shrinking check, in Redis's order.
        if let Ok(Some(l)) = write_list(&mut ctx.ks, src) {
            if let Some(item) = l.pop(from) {
                l.grow_for(fill, item.growth_bytes(), 1);
                l.push_item(to, &item);
                l.shrink_for(fill);
                reply_item(ctx.out, &item);
            }
        }
        ctx.ks.modified(src);
        ctx.ks.notify(LIST, push_event(to), src);
        ctx.ks.notify(LIST, pop_event(from), src);
        return;
    }
    if write_list(&mut ctx.ks, dst).is_err() {
        return ctx.out.error(err::WRONGTYPE);
    }
    let (item, src_empty) = match write_list(&mut ctx.ks, src) {
        Ok(Some(l)) => match l.pop(from) {
            Some(item) => (item, l.is_empty()),
            None => return ctx.out.null(),
        },
        _ => return ctx.out.null(),
    };
    match write_list(&mut ctx.ks, dst) {
        Ok(Some(l)) => {
            l.grow_for(fill, item.growth_bytes(), 1);
            l.push_item(to, &item);
            ctx.ks.modified(dst);
        }
        _ => {
            let mut l = List::new();
            l.grow_for(fill, item.growth_bytes(), 1);
            l.push_item(to, &item);
            ctx.ks
                .insert(Entry::new(dst, NewValue::Obj(Object::List(l)), None));
        }
    }
    ctx.ks.notify(LIST, push_event(to), dst);
    reply_item(ctx.out, &item);
    ctx.ks.notify(LIST, pop_event(from), src);
    after_removal(ctx, src, src_empty);
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

fn llen(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_list(&mut ctx.ks, args[1]) {
        Err(_) => ctx.out.error(err::WRONGTYPE),
        Ok(None) => ctx.out.int(0),
        Ok(Some(l)) => ctx.out.int(l.len() as i64),
    }
}

/// LRANGE/LTRIM index normalisation: the inclusive range, if not empty.
fn norm_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut e = if stop < 0 {
        len.saturating_add(stop)
    } else {
        stop
    };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize))
}

fn lrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(start) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    let Some(stop) = super::arg_i64(ctx, args[3]) else {
        return;
    };
    match read_list(&mut ctx.ks, args[1]) {
        Err(_) => ctx.out.error(err::WRONGTYPE),
        Ok(None) => ctx.out.array(0),
        Ok(Some(l)) => match norm_range(l.len(), start, stop) {
            None => ctx.out.array(0),
            Some((s, e)) => {
                let n = e - s + 1;
                ctx.out.array(n);
                for el in l.iter_from(s).take(n) {
                    reply_elem(ctx.out, el);
                }
            }
        },
    }
}

fn lindex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match read_list(&mut ctx.ks, args[1]) {
        Err(_) => return ctx.out.error(err::WRONGTYPE),
        Ok(None) => return ctx.out.null(),
        Ok(Some(_)) => {}
    }
    let Some(index) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    // Looked up again: the first borrow ended to let arg_i64 reply.
    match ctx.ks.peek(args[1]).map(Entry::value) {
        Some(ValueRef::Obj(Object::List(l))) => match l.get(index) {
            Some(e) => reply_elem(ctx.out, e),
            None => ctx.out.null(),
        },
        _ => ctx.out.null(),
    }
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut rank: i64 = 1;
    let mut count: Option<u64> = None;
    let mut maxlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args[j];
        let more = j + 1 < args.len();
        if more && opt.eq_ignore_ascii_case(b"rank") {
            match parse_range(args[j + 1], -i64::MAX, i64::MAX, None) {
                Ok(0) => {
                    return ctx.error(
                        "ERR RANK can't be zero: use 1 to start from the first match, \
                         2 from the second ... or use negative to start from the end of the list",
                    )
                }
                Ok(r) => rank = r,
                Err(e) => return ctx.error(&e),
            }
        } else if more && opt.eq_ignore_ascii_case(b"count") {
            match parse_range(
                args[j + 1],
                0,
                i64::MAX,
                Some("ERR COUNT can't be negative"),
            ) {
                Ok(c) => count = Some(c as u64),
                Err(e) => return ctx.error(&e),
            }
        } else if more && opt.eq_ignore_ascii_case(b"maxlen") {
            match parse_range(
                args[j + 1],
                0,
                i64::MAX,
                Some("ERR MAXLEN can't be negative"),
            ) {
                Ok(m) => maxlen = m as u64,
                Err(e) => return ctx.error(&e),
            }
        } else {
            return ctx.error(err::SYNTAX);
        }
        j += 2;
    }
    let rev = rank < 0;
    let rank = rank.unsigned_abs();
    let l = match read_list(&mut ctx.ks, args[1]) {
        Err(_) => return ctx.out.error(err::WRONGTYPE),
        Ok(None) => {
            return match count {
                Some(_) => ctx.out.array(0),
                None => ctx.out.null(),
            }
        }
        Ok(Some(l)) => l,
    };
    let needle = Needle::new(args[2]);
    let len = l.len();
    let iter = if rev {
        l.iter_rev_from(len.saturating_sub(1))
    } else {
        l.iter_from(0)
    };
    let deferred = count.map(|_| ctx.out.begin_deferred());
    let mut emitted = 0usize;
    let mut matches = 0u64;
    let mut found = None;
    for (index, e) in iter.enumerate() {
        if maxlen != 0 && index as u64 >= maxlen {
            break;
        }
        if !needle.matches(e) {
            continue;
        }
        matches += 1;
        let pos = if rev { len - index - 1 } else { index };
        if matches >= rank {
            match count {
                Some(c) => {
                    emitted += 1;
                    ctx.out.int(pos as i64);
                    if c != 0 && matches - rank + 1 >= c {
                        break;
                    }
                }
                None => {
                    found = Some(pos);
                    break;
                }
            }
        }
    }
    match deferred {
        Some(d) => ctx.out.end_deferred(d, Aggregate::Array, emitted),
        None => match found {
            Some(p) => ctx.out.int(p as i64),
            None => ctx.out.null(),
        },
    }
}

// ---------------------------------------------------------------------------
// In-place changes
// ---------------------------------------------------------------------------

fn lset(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    match write_list(&mut ctx.ks, key) {
        Err(_) => return ctx.out.error(err::WRONGTYPE),
        Ok(None) => return ctx.error(err::NO_KEY),
        Ok(Some(_)) => {}
    }
    let Some(index) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    let fill = list_fill(ctx);
    let value = args[3];
    let Ok(Some(l)) = write_list(&mut ctx.ks, key) else {
        return ctx.error(err::NO_KEY);
    };
    // Redis converts before knowing whether the index is valid.
    l.grow_for(fill, value.len(), 1);
    // Note: Redis 7.2 truncates the index to 32 bits here (LSET k 4294967296
    // overwrites element 0); kvik answers out of range, as later Redis does.
    if l.set(index, value) {
        l.shrink_for(fill);
        ctx.out.ok();
        ctx.ks.modified(key);
        ctx.ks.notify(LIST, "lset", key);
    } else {
        ctx.error(err::OUT_OF_RANGE);
    }
}

fn linsert(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return ctx.error(err::SYNTAX);
    };
    let fill = list_fill(ctx);
    let key = args[1];
    match write_list(&mut ctx.ks, key) {
        Err(_) => ctx.out.error(err::WRONGTYPE),
        Ok(None) => ctx.out.int(0),
        Ok(Some(l)) => {
            // Redis converts before searching the pivot, found or not.
            l.grow_for(fill, args[4].len(), 1);
            if l.insert(args[3], args[4], after) {
                ctx.out.int(l.len() as i64);
                ctx.ks.modified(key);
                ctx.ks.notify(LIST, "linsert", key);
            } else {
                ctx.out.int(-1);
            }
        }
    }
}

fn lrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(count) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    let key = args[1];
    let (removed, now_empty) = match write_list(&mut ctx.ks, key) {
        Err(_) => return ctx.out.error(err::WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => (l.remove(args[3], count), l.is_empty()),
    };
    ctx.out.int(removed as i64);
    if removed > 0 {
        ctx.ks.notify(LIST, "lrem", key);
        after_removal(ctx, key, now_empty);
    }
}

fn ltrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(start) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    let Some(stop) = super::arg_i64(ctx, args[3]) else {
        return;
    };
    let key = args[1];
    let now_empty = match write_list(&mut ctx.ks, key) {
        Err(_) => return ctx.out.error(err::WRONGTYPE),
        Ok(None) => return ctx.out.ok(),
        Ok(Some(l)) => {
            let len = l.len();
            let (ltrim, rtrim) = match norm_range(len, start, stop) {
                Some((s, e)) => (s, len - e - 1),
                None => (len, 0),
            };
            l.pop_range(End::Head, ltrim);
            l.pop_range(End::Tail, rtrim);
            l.is_empty()
        }
    };
    ctx.out.ok();
    ctx.ks.notify(LIST, "ltrim", key);
    after_removal(ctx, key, now_empty);
}

#[cfg(test)]
mod tests {
    use super::norm_range;

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(norm_range(5, 0, -1), Some((0, 4)));
        assert_eq!(norm_range(5, -100, 100), Some((0, 4)));
        assert_eq!(norm_range(5, 3, 1), None);
        assert_eq!(norm_range(5, 5, 10), None);
        assert_eq!(norm_range(5, i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(norm_range(5, -1, -1), Some((4, 4)));
        assert_eq!(norm_range(0, 0, -1), None);
    }
}
