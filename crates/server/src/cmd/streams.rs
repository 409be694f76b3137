//! Stream commands (Redis's `t_stream.c`): XADD, XRANGE / XREVRANGE,
//! XLEN, XDEL, XTRIM, XREAD, XSETID, XINFO, and consumer groups (XGROUP,
//! XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM).
//!
//! Arguments are checked in Redis's order, IDs are parsed as Redis parses
//! them (C strings, `strtoull` fallbacks included), and group bookkeeping
//! (read counters, lag, consumer times) follows Redis 7.2.

use crate::blocking::{BlockRequest, Kind};
use crate::cmd::{c_str, is};
use crate::db::Keyspace;
use crate::dispatch::{err, CommandTable, Ctx};
use crate::util::notify::STREAM;
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::object::Object;
use kvik_core::stream::{Entry as SEntry, Group, NodeLimits, Stream, StreamId, Trim, TrimStrategy};
use kvik_protocol::reply::Aggregate;
use kvik_protocol::ReplyBuf;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("xadd", xadd);
    t.add("xrange", xrange);
    t.add("xrevrange", xrevrange);
    t.add("xlen", xlen);
    t.add("xdel", xdel);
    t.add("xtrim", xtrim);
    t.add("xread", xread);
    t.add("xreadgroup", xread);
    t.add("xsetid", xsetid);
    t.add("xack", xack);
    t.add("xpending", xpending);
    t.add("xclaim", xclaim);
    t.add("xautoclaim", xautoclaim);
    t.add("xgroup|create", xgroup);
    t.add("xgroup|setid", xgroup);
    t.add("xgroup|destroy", xgroup);
    t.add("xgroup|createconsumer", xgroup);
    t.add("xgroup|delconsumer", xgroup);
    t.add("xgroup|help", xgroup_help);
    t.add("xinfo|stream", xinfo);
    t.add("xinfo|groups", xinfo);
    t.add("xinfo|consumers", xinfo);
    t.add("xinfo|help", xinfo_help);
}

/// Invalid ID argument.
const ERR_ID: &str = "ERR Invalid stream ID specified as stream command argument";
/// XAUTOCLAIM COUNT above which Redis's up-front allocation of COUNT IDs
/// (16 bytes each) fails on a 47-bit address space.
const AUTOCLAIM_MAX_COUNT: i64 = (1 << 47) / 16;
/// XADD with an ID not above the top item.
const ERR_ID_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Option keyword test on the C-string view of an argument.
fn kw(arg: &[u8], word: &str) -> bool {
    is(c_str(arg), word)
}

/// The stream at `key` for writing: Err on another type.
fn stream_mut<'k>(ks: &'k mut Keyspace<'_>, key: &[u8]) -> Result<Option<&'k mut Stream>, ()> {
    match ks.lookup_write(key) {
        None => Ok(None),
        Some(e) => match e.object_mut() {
            Some(Object::Stream(s)) => Ok(Some(s)),
            _ => Err(()),
        },
    }
}

/// The stream at `key` for reading (counts hits and misses).
fn stream_ref<'k>(ks: &'k mut Keyspace<'_>, key: &[u8]) -> Result<Option<&'k Stream>, ()> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => {
            let e: &'k Entry = e;
            match e.value() {
                ValueRef::Obj(Object::Stream(s)) => Ok(Some(s)),
                _ => Err(()),
            }
        }
    }
}

/// The stream of a lookup, or None after the WRONGTYPE reply or, for a
/// missing key, the reply `absent` writes.
fn found<T>(
    r: Result<Option<T>, ()>,
    out: &mut ReplyBuf,
    absent: impl FnOnce(&mut ReplyBuf),
) -> Option<T> {
    match r {
        Err(()) => {
            out.error(err::WRONGTYPE);
            None
        }
        Ok(None) => {
            absent(out);
            None
        }
        Ok(s) => s,
    }
}

/// Node limits from the configuration.
fn limits(ctx: &Ctx<'_>) -> NodeLimits {
    let cfg = ctx.srv.config.read();
    NodeLimits {
        max_bytes: cfg.get_i64("stream-node-max-bytes").max(0) as u64,
        max_entries: cfg.get_i64("stream-node-max-entries").max(0) as u64,
    }
}

/// Counts a change that Redis does not signal to WATCH or tracking
/// (consumer group bookkeeping, XSETID): `server.dirty++` only.
fn dirty(ctx: &Ctx<'_>) {
    ctx.srv
        .stats
        .dirty
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn max_entries_cfg(ctx: &Ctx<'_>) -> i64 {
    ctx.srv.config.read().get_i64("stream-node-max-entries")
}

/// C's `strtoull` on a whole string as Redis's `string2ull` uses it.
fn strtoull(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if let Some(v) = crate::util::parse_i64(s) {
        return if v < 0 { None } else { Some(v as u64) };
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add((s[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start || i != s.len() {
        return None;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Result of parsing an ID: the ID and whether its sequence was given
/// (false for XADD's `ms-*`).
#[derive(Clone, Copy)]
struct ParsedId {
    id: StreamId,
    seq_given: bool,
}

/// Redis's `streamGenericParseIDOrReply`.
fn parse_id_generic(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_star: bool,
) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    let s = c_str(arg);
    if strict && (s == b"-" || s == b"+") {
        return None;
    }
    if s == b"-" {
        return Some(ParsedId {
            id: StreamId::MIN,
            seq_given: true,
        });
    }
    if s == b"+" {
        return Some(ParsedId {
            id: StreamId::MAX,
            seq_given: true,
        });
    }
    match s.iter().position(|&b| b == b'-') {
        None => Some(ParsedId {
            id: StreamId::new(strtoull(s)?, missing_seq),
            seq_given: true,
        }),
        Some(p) => {
            let ms = strtoull(&s[..p])?;
            let rest = &s[p + 1..];
            if allow_star && rest == b"*" {
                Some(ParsedId {
                    id: StreamId::new(ms, 0),
                    seq_given: false,
                })
            } else {
                Some(ParsedId {
                    id: StreamId::new(ms, strtoull(rest)?),
                    seq_given: true,
                })
            }
        }
    }
}

/// A strict ID (`-` and `+` rejected), or the error reply.
fn strict_id(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<StreamId> {
    match parse_id_generic(arg, 0, true, false) {
        Some(p) => Some(p.id),
        None => {
            ctx.error(ERR_ID);
            None
        }
    }
}

/// Strict IDs for all of `args`, or the error reply for the first bad one.
fn strict_ids(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Option<Vec<StreamId>> {
    args.iter().map(|a| strict_id(ctx, a)).collect()
}

/// An interval bound (`(` for exclusive), as `streamParseIntervalIDOrReply`.
fn interval_id(ctx: &mut Ctx<'_>, arg: &[u8], missing_seq: u64) -> Option<(StreamId, bool)> {
    let ex = arg.len() > 1 && arg[0] == b'(';
    let r = if ex {
        parse_id_generic(&arg[1..], missing_seq, true, false)
    } else {
        parse_id_generic(arg, missing_seq, false, false)
    };
    match r {
        Some(p) => Some((p.id, ex)),
        None => {
            ctx.error(ERR_ID);
            None
        }
    }
}

/// The start of an interval: an exclusive bound moves past its ID.
fn interval_start(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<StreamId> {
    interval_bound(ctx, arg, false)
}

/// The end of an interval: an exclusive bound moves before its ID.
fn interval_end(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<StreamId> {
    interval_bound(ctx, arg, true)
}

/// An interval start or `end` with an exclusive bound moved inwards, or
/// the error reply.
fn interval_bound(ctx: &mut Ctx<'_>, arg: &[u8], end: bool) -> Option<StreamId> {
    let (missing_seq, which) = if end { (u64::MAX, "end") } else { (0, "start") };
    let (id, ex) = interval_id(ctx, arg, missing_seq)?;
    if !ex {
        return Some(id);
    }
    let moved = if end { id.decr() } else { id.incr() };
    if moved.is_none() {
        ctx.error(&format!("ERR invalid {which} ID for the interval"));
    }
    moved
}

/// Redis's `streamIncrID`, which wraps to 0-0 after the largest ID.
fn incr_wrap(id: StreamId) -> StreamId {
    id.incr().unwrap_or(StreamId::MIN)
}

/// Formats an ID into `buf`, returning the used part.
fn fmt_id(id: StreamId, buf: &mut [u8; 42]) -> &[u8] {
    fn put(mut v: u64, out: &mut [u8]) -> usize {
        let mut tmp = [0u8; 20];
        let mut n = 0;
        loop {
            tmp[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in 0..n {
            out[i] = tmp[n - 1 - i];
        }
        n
    }
    let a = put(id.ms, &mut buf[..]);
    buf[a] = b'-';
    let b = put(id.seq, &mut buf[a + 1..]);
    &buf[..a + 1 + b]
}

fn reply_id(out: &mut ReplyBuf, id: StreamId) {
    let mut b = [0u8; 42];
    out.bulk(fmt_id(id, &mut b));
}

fn reply_entry(out: &mut ReplyBuf, e: &SEntry<'_>) {
    out.array(2);
    reply_id(out, e.id);
    out.array(e.fields.len());
    for f in &e.fields {
        out.bulk(f);
    }
}

/// Writes an entry range (`streamReplyWithRange` without a group).
fn reply_range(
    out: &mut ReplyBuf,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: usize,
) -> usize {
    let d = out.begin_deferred();
    let mut n = 0;
    s.for_range(start, end, rev, count, |e| {
        reply_entry(out, &e);
        n += 1;
        true
    });
    out.end_deferred(d, Aggregate::Array, n);
    n
}

fn nogroup_msg(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    for p in parts {
        m.extend_from_slice(c_str(p));
    }
    m
}

/// The NOGROUP error naming the key first (XPENDING, XCLAIM, XAUTOCLAIM).
fn reply_nogroup_key(out: &mut ReplyBuf, key: &[u8], group: &[u8]) {
    let m = nogroup_msg(&[
        b"NOGROUP No such key '",
        key,
        b"' or consumer group '",
        group,
        b"'",
    ]);
    out.error_bytes(&m);
}

/// The NOGROUP error naming the group first (XGROUP, XINFO).
fn reply_nogroup_group(out: &mut ReplyBuf, group: &[u8], key: &[u8]) {
    let m = nogroup_msg(&[
        b"NOGROUP No such consumer group '",
        group,
        b"' for key name '",
        key,
        b"'",
    ]);
    out.error_bytes(&m);
}

/// Whether the stream at `key` has group `group` (false when there is no
/// key); None after the WRONGTYPE reply.
fn has_group(ctx: &mut Ctx<'_>, key: &[u8], group: &[u8]) -> Option<bool> {
    match stream_mut(&mut ctx.ks, key) {
        Err(()) => {
            ctx.error(err::WRONGTYPE);
            None
        }
        Ok(None) => Some(false),
        Ok(Some(s)) => Some(s.groups.contains_key(group)),
    }
}

/// Like [`has_group`], replying NOGROUP when the group is missing: true
/// only when the command may go on.
fn require_group(ctx: &mut Ctx<'_>, key: &[u8], group: &[u8]) -> bool {
    match has_group(ctx, key, group) {
        None => false,
        Some(true) => true,
        Some(false) => {
            reply_nogroup_key(ctx.out, key, group);
            false
        }
    }
}

// ---------------------------------------------------------------------------
// XADD / XTRIM
// ---------------------------------------------------------------------------

struct AddTrimArgs {
    trim: Option<Trim>,
    id: Option<ParsedId>,
    nomkstream: bool,
    /// Index of the ID argument (XADD).
    idpos: usize,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(ctx: &mut Ctx<'_>, args: &[&[u8]], xadd: bool) -> Option<AddTrimArgs> {
    let mut strategy: Option<TrimStrategy> = None;
    let mut approx = false;
    let mut limit: i64 = 0;
    let mut limit_given = false;
    let mut nomkstream = false;
    let mut id = None;
    let argc = args.len();
    let mut i = 2;
    while i < argc {
        let moreargs = argc - 1 - i;
        let opt = args[i];
        if xadd && c_str(opt) == b"*" {
            break;
        } else if (kw(opt, "maxlen") || kw(opt, "minid")) && moreargs > 0 {
            if strategy.is_some() {
                ctx.error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            approx = false;
            let next = c_str(args[i + 1]);
            if moreargs >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if moreargs >= 2 && next == b"=" {
                i += 1;
            }
            strategy = Some(if kw(opt, "maxlen") {
                let v = crate::cmd::arg_i64(ctx, args[i + 1])?;
                if v < 0 {
                    ctx.error("ERR The MAXLEN argument must be >= 0.");
                    return None;
                }
                TrimStrategy::MaxLen(v as u64)
            } else {
                TrimStrategy::MinId(strict_id(ctx, args[i + 1])?)
            });
            i += 1;
        } else if kw(opt, "limit") && moreargs > 0 {
            let v = crate::cmd::arg_i64(ctx, args[i + 1])?;
            if v < 0 {
                ctx.error("ERR The LIMIT argument must be >= 0.");
                return None;
            }
            limit = v;
            limit_given = true;
            i += 1;
        } else if xadd && kw(opt, "nomkstream") {
            nomkstream = true;
        } else if xadd {
            match parse_id_generic(opt, 0, true, true) {
                Some(p) => id = Some(p),
                None => {
                    ctx.error(ERR_ID);
                    return None;
                }
            }
            break;
        } else {
            ctx.error(err::SYNTAX);
            return None;
        }
        i += 1;
    }
    if limit != 0 && strategy.is_none() {
        ctx.error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && strategy.is_none() {
        ctx.error("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if limit_given {
        if !approx {
            ctx.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
    } else if approx {
        limit = 100 * max_entries_cfg(ctx);
        if limit <= 0 || limit > 10000 {
            limit = 10000;
        }
    } else {
        limit = 0;
    }
    Some(AddTrimArgs {
        trim: strategy.map(|strategy| Trim {
            strategy,
            approx,
            limit: limit as u64,
        }),
        id,
        nomkstream,
        idpos: i,
    })
}

fn xadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(p) = parse_add_trim(ctx, args, true) else {
        return;
    };
    let field_pos = p.idpos + 1;
    let nf = args.len().saturating_sub(field_pos);
    if field_pos > args.len() || nf < 2 || !nf.is_multiple_of(2) {
        ctx.error("ERR wrong number of arguments for 'xadd' command");
        return;
    }
    if let Some(pid) = p.id {
        if pid.seq_given && pid.id.is_zero() {
            ctx.error("ERR The ID specified in XADD must be greater than 0-0");
            return;
        }
    }
    let key = args[1];
    let lim = limits(ctx);
    let now = ctx.now_ms() as u64;
    let pairs = &args[field_pos..];
    let created;
    let mut fresh;
    let s: &mut Stream = match stream_mut(&mut ctx.ks, key) {
        Err(()) => {
            ctx.error(err::WRONGTYPE);
            return;
        }
        Ok(None) => {
            if p.nomkstream {
                ctx.out.null();
                return;
            }
            created = true;
            fresh = Stream::new();
            &mut fresh
        }
        Ok(Some(s)) => {
            created = false;
            s
        }
    };
    if s.last_id == StreamId::MAX {
        ctx.error("ERR The stream has exhausted the last possible ID, unable to add more items");
        return;
    }
    let id = match p.id {
        None => {
            if now > s.last_id.ms {
                StreamId::new(now, 0)
            } else {
                match s.last_id.incr() {
                    Some(i) => i,
                    None => {
                        ctx.error(ERR_ID_SMALL);
                        return;
                    }
                }
            }
        }
        Some(pid) if pid.seq_given => pid.id,
        Some(pid) => {
            if s.last_id.ms == pid.id.ms {
                if s.last_id.seq == u64::MAX {
                    ctx.error(ERR_ID_SMALL);
                    return;
                }
                StreamId::new(pid.id.ms, s.last_id.seq + 1)
            } else {
                pid.id
            }
        }
    };
    if id <= s.last_id {
        ctx.error(ERR_ID_SMALL);
        return;
    }
    let tot: u64 = pairs.iter().map(|a| a.len() as u64).sum();
    if tot > (1 << 30) {
        ctx.error("ERR Elements are too large to be stored");
        return;
    }
    s.append(id, pairs, lim);
    let trimmed = match p.trim {
        Some(t) => s.trim(t),
        None => 0,
    };
    if created {
        let s = std::mem::take(s);
        ctx.ks.insert(Entry::new(
            key,
            NewValue::Obj(Object::Stream(Box::new(s))),
            None,
        ));
    } else {
        ctx.ks.modified(key);
    }
    reply_id(ctx.out, id);
    ctx.ks.notify(STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.ks.notify(STREAM, "xtrim", key);
    }
    if !created {
        ctx.ks.signal_ready(key);
    }
}

fn xtrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(p) = parse_add_trim(ctx, args, false) else {
        return;
    };
    let key = args[1];
    let Some(t) = p.trim else {
        return;
    };
    let Some(s) = found(stream_mut(&mut ctx.ks, key), ctx.out, |o| o.int(0)) else {
        return;
    };
    let n = s.trim(t);
    if n > 0 {
        ctx.ks.modified(key);
        ctx.ks.notify(STREAM, "xtrim", key);
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// XRANGE / XREVRANGE / XLEN / XDEL / XSETID
// ---------------------------------------------------------------------------

fn range_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) {
    let (sarg, earg) = if rev {
        (args[3], args[2])
    } else {
        (args[2], args[3])
    };
    let Some(start) = interval_start(ctx, sarg) else {
        return;
    };
    let Some(end) = interval_end(ctx, earg) else {
        return;
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        let additional = args.len() - j - 1;
        if kw(args[j], "count") && additional >= 1 {
            let Some(v) = crate::cmd::arg_i64(ctx, args[j + 1]) else {
                return;
            };
            count = v.max(0);
            j += 1;
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
        j += 1;
    }
    let out = &mut *ctx.out;
    match stream_ref(&mut ctx.ks, args[1]) {
        Err(()) => out.error(err::WRONGTYPE),
        Ok(None) => out.array(0),
        Ok(Some(s)) => {
            if count == 0 {
                out.null_array();
            } else {
                let c = if count < 0 { 0 } else { count as usize };
                reply_range(out, s, start, end, rev, c);
            }
        }
    }
}

fn xrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    range_generic(ctx, args, false);
}

fn xrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    range_generic(ctx, args, true);
}

fn xlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match stream_ref(&mut ctx.ks, args[1]) {
        Err(()) => ctx.out.error(err::WRONGTYPE),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => ctx.out.int(s.len() as i64),
    }
}

fn xdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    if found(stream_mut(&mut ctx.ks, key), ctx.out, |o| o.int(0)).is_none() {
        return;
    }
    let Some(ids) = strict_ids(ctx, &args[2..]) else {
        return;
    };
    let mut deleted = 0;
    if let Ok(Some(s)) = stream_mut(&mut ctx.ks, key) {
        for id in ids {
            if s.delete(id) {
                deleted += 1;
            }
        }
    }
    if deleted > 0 {
        ctx.ks.modified(key);
        ctx.ks.notify(STREAM, "xdel", key);
    }
    ctx.out.int(deleted);
}

fn xsetid(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(id) = strict_id(ctx, args[2]) else {
        return;
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let moreargs = args.len() - 1 - i;
        if kw(args[i], "entriesadded") && moreargs > 0 {
            let Some(v) = crate::cmd::arg_i64(ctx, args[i + 1]) else {
                return;
            };
            if v < 0 {
                ctx.error("ERR entries_added must be positive");
                return;
            }
            entries_added = v;
            i += 2;
        } else if kw(args[i], "maxdeletedid") && moreargs > 0 {
            let Some(m) = strict_id(ctx, args[i + 1]) else {
                return;
            };
            if id < m {
                ctx.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
                return;
            }
            max_xdel = m;
            i += 2;
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
    }
    let key = args[1];
    let no_key = |o: &mut ReplyBuf| o.error(err::NO_KEY);
    let Some(s) = found(stream_mut(&mut ctx.ks, key), ctx.out, no_key) else {
        return;
    };
    if id < s.max_deleted_id {
        ctx.error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
        return;
    }
    if !s.is_empty() {
        let maxid = s.edge_id(false).unwrap_or(s.last_id);
        if id < maxid {
            ctx.error("ERR The ID specified in XSETID is smaller than the target stream top item");
            return;
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            ctx.error("ERR The entries_added specified in XSETID is smaller than the target stream length");
            return;
        }
    }
    s.set_id(
        id,
        (entries_added != -1).then_some(entries_added as u64),
        (!max_xdel.is_zero()).then_some(max_xdel),
    );
    dirty(ctx);
    ctx.out.ok();
    ctx.ks.notify(STREAM, "xsetid", key);
}

// ---------------------------------------------------------------------------
// XREAD / XREADGROUP
// ---------------------------------------------------------------------------

fn xread(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let xreadgroup = args[0].len() == 10;
    let mut deadline: Option<i64> = None;
    let mut count: i64 = 0;
    let mut streams_arg = 0;
    let mut streams_count = 0;
    let mut noack = false;
    let mut group: Option<(&[u8], &[u8])> = None;
    let argc = args.len();
    let mut i = 1;
    while i < argc {
        let moreargs = argc - i - 1;
        let o = args[i];
        if kw(o, "block") && moreargs > 0 {
            if ctx.client.in_script {
                let name = String::from_utf8_lossy(args[0]);
                return ctx.error(&format!(
                    "ERR {name} command is not allowed with BLOCK option from scripts"
                ));
            }
            i += 1;
            match crate::blocking::parse_timeout(ctx, args[i], true) {
                Some(d) => deadline = Some(d),
                None => return,
            }
        } else if kw(o, "count") && moreargs > 0 {
            i += 1;
            let Some(v) = crate::cmd::arg_i64(ctx, args[i]) else {
                return;
            };
            count = v.max(0);
        } else if kw(o, "streams") && moreargs > 0 {
            streams_arg = i + 1;
            let n = argc - streams_arg;
            if !n.is_multiple_of(2) {
                let sym = if xreadgroup { '>' } else { '$' };
                let name = if xreadgroup { "xreadgroup" } else { "xread" };
                ctx.error(&format!(
                    "ERR Unbalanced '{name}' list of streams: for each stream key an ID or '{sym}' must be specified."
                ));
                return;
            }
            streams_count = n / 2;
            break;
        } else if kw(o, "group") && moreargs >= 2 {
            if !xreadgroup {
                ctx.error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
                return;
            }
            group = Some((args[i + 1], args[i + 2]));
            i += 2;
        } else if kw(o, "noack") {
            if !xreadgroup {
                ctx.error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
                return;
            }
            noack = true;
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
        i += 1;
    }
    if streams_arg == 0 {
        ctx.error(err::SYNTAX);
        return;
    }
    if xreadgroup && group.is_none() {
        ctx.error("ERR Missing GROUP option for XREADGROUP");
        return;
    }
    let keys = &args[streams_arg..streams_arg + streams_count];
    let idargs = &args[streams_arg + streams_count..];
    // None = ">" (new messages for the group).
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(streams_count);
    for (k, a) in keys.iter().zip(idargs) {
        let (exists, last) = match stream_ref(&mut ctx.ks, k) {
            Err(()) => {
                ctx.error(err::WRONGTYPE);
                return;
            }
            Ok(None) => (false, StreamId::MIN),
            Ok(Some(s)) => {
                if let Some((g, _)) = group {
                    if !s.groups.contains_key(g) {
                        (false, s.last_id)
                    } else {
                        (true, s.last_id)
                    }
                } else {
                    (true, s.last_id)
                }
            }
        };
        if let Some((g, _)) = group {
            if !exists {
                let m = nogroup_msg(&[
                    b"NOGROUP No such key '",
                    k,
                    b"' or consumer group '",
                    g,
                    b"' in XREADGROUP with GROUP option",
                ]);
                ctx.out.error_bytes(&m);
                return;
            }
        }
        let a0 = c_str(a);
        if a0 == b"$" {
            if xreadgroup {
                ctx.error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
                return;
            }
            ids.push(Some(last));
            continue;
        } else if a0 == b">" {
            if !xreadgroup {
                ctx.error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
                return;
            }
            ids.push(None);
            continue;
        }
        let Some(id) = strict_id(ctx, a) else {
            return;
        };
        // The largest ID doubles as the `>` marker, as in Redis.
        ids.push(if xreadgroup && id == StreamId::MAX {
            None
        } else {
            Some(id)
        });
    }

    let now = ctx.now_ms();
    let resp3 = ctx.out.resp3();
    let top = ctx.out.begin_deferred();
    let mut served = 0usize;
    for (idx, key) in keys.iter().enumerate() {
        if let Some((gname, cname)) = group {
            let mut created_consumer = false;
            let Ok(Some(s)) = stream_mut(&mut ctx.ks, key) else {
                continue;
            };
            let glast = s.groups.get(gname).map(|g| g.last_id).unwrap_or_default();
            let (history, gt) = match ids[idx] {
                Some(id) => (true, Some(id)),
                None => {
                    let maxid = if s.is_empty() { None } else { s.edge_id(false) };
                    match maxid {
                        Some(m) if m > glast => (false, Some(glast)),
                        _ => (false, None),
                    }
                }
            };
            {
                let g = s.groups.get_mut(gname).expect("group checked");
                let (c, created) = g.consumer_or_create(cname, now);
                c.seen_time = now;
                created_consumer |= created;
            }
            if let Some(gt) = gt {
                served += 1;
                if !resp3 {
                    ctx.out.array(2);
                }
                ctx.out.bulk(key);
                let start = incr_wrap(gt);
                if history {
                    reply_consumer_pel(ctx.out, s, gname, cname, start, count as usize, now);
                } else {
                    deliver_new(ctx.out, s, gname, cname, start, count as usize, now, noack);
                }
            }
            if created_consumer {
                ctx.ks.notify(STREAM, "xgroup-createconsumer", key);
            }
            if gt.is_some() {
                dirty(ctx);
            }
        } else {
            let Ok(Some(s)) = stream_ref(&mut ctx.ks, key) else {
                continue;
            };
            let gt = ids[idx].unwrap_or_default();
            if s.is_empty() {
                continue;
            }
            match s.edge_id(false) {
                Some(m) if m > gt => {}
                _ => continue,
            }
            served += 1;
            if !resp3 {
                ctx.out.array(2);
            }
            ctx.out.bulk(key);
            reply_range(
                ctx.out,
                s,
                incr_wrap(gt),
                StreamId::MAX,
                false,
                count as usize,
            );
        }
    }
    if served > 0 {
        let kind = if resp3 {
            Aggregate::Map
        } else {
            Aggregate::Array
        };
        ctx.out.end_deferred(top, kind, served);
        return;
    }
    if let Some(deadline_ms) = deadline {
        let mut rerun: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        if !xreadgroup {
            for (idx, a) in idargs.iter().enumerate() {
                if c_str(a) == b"$" {
                    let mut b = [0u8; 42];
                    rerun[streams_arg + streams_count + idx] =
                        fmt_id(ids[idx].unwrap_or_default(), &mut b).to_vec();
                }
            }
        }
        crate::blocking::block(
            ctx,
            BlockRequest {
                keys: keys.iter().map(|k| k.to_vec()).collect(),
                kind: Kind::Stream,
                deadline_ms,
                args: rerun,
                unblock_on_nokey: xreadgroup,
                null_bulk: false,
            },
        );
        return;
    }
    ctx.out.null_array();
}

/// XREADGROUP with `>`: delivers entries after `start`, advancing the
/// group and adding them to the PELs unless NOACK.
#[allow(clippy::too_many_arguments)]
fn deliver_new(
    out: &mut ReplyBuf,
    s: &mut Stream,
    gname: &[u8],
    cname: &[u8],
    start: StreamId,
    count: usize,
    now: i64,
    noack: bool,
) {
    let ids: Vec<StreamId> = {
        let d = out.begin_deferred();
        let mut v = Vec::new();
        s.for_range(start, StreamId::MAX, false, count, |e| {
            reply_entry(out, &e);
            v.push(e.id);
            true
        });
        out.end_deferred(d, Aggregate::Array, v.len());
        v
    };
    for id in &ids {
        s.advance_group(gname, *id);
    }
    let g = s.groups.get_mut(gname).expect("group");
    if !noack {
        for id in &ids {
            g.deliver_new(*id, cname, now);
        }
    }
    if !noack && !ids.is_empty() {
        if let Some(c) = g.consumers.get_mut(cname) {
            c.active_time = now;
        }
    }
}

/// XREADGROUP with an ID: the consumer's own pending entries from
/// `start` (deleted entries as `[id, nil]`).
fn reply_consumer_pel(
    out: &mut ReplyBuf,
    s: &mut Stream,
    gname: &[u8],
    cname: &[u8],
    start: StreamId,
    count: usize,
    now: i64,
) {
    let ids: Vec<StreamId> = {
        let g = &s.groups[gname];
        let c = &g.consumers[cname];
        let it = c.pel.range(start..).copied();
        if count > 0 {
            it.take(count).collect()
        } else {
            it.collect()
        }
    };
    out.array(ids.len());
    let mut found = Vec::with_capacity(ids.len());
    for id in &ids {
        match s.get(*id) {
            Some(e) => {
                reply_entry(out, &e);
                found.push(*id);
            }
            None => {
                out.array(2);
                reply_id(out, *id);
                out.null_array();
            }
        }
    }
    let g = s.groups.get_mut(gname).expect("group");
    for id in found {
        if let Some(pe) = g.pel.get_mut(&id) {
            pe.delivery_time = now;
            pe.delivery_count += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// XGROUP
// ---------------------------------------------------------------------------

fn xgroup_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    crate::cmd::server::reply_help(
        ctx.out,
        args[0],
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
}

/// The ENTRIESREAD value of XGROUP CREATE / SETID (-1 or more), or the
/// error reply.
fn entries_read_arg(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<i64> {
    let v = crate::cmd::arg_i64(ctx, arg)?;
    if v < -1 {
        ctx.error("ERR value for ENTRIESREAD must be positive or -1");
        return None;
    }
    Some(v)
}

fn xgroup(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let opt = args[1];
    let argc = args.len();
    let key = args[2];
    let grp = args[3];
    let mut mkstream = false;
    let mut entries_read: i64 = -1;
    if kw(opt, "create") && argc > 5 {
        let mut i = 5;
        while i < argc {
            if kw(args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if kw(args[i], "entriesread") && i + 1 < argc {
                let Some(v) = entries_read_arg(ctx, args[i + 1]) else {
                    return;
                };
                entries_read = v;
                i += 2;
            } else {
                crate::cmd::server::subcommand_syntax_error(ctx, args);
                return;
            }
        }
    }
    let (exists, has_group, last_id) = match stream_mut(&mut ctx.ks, key) {
        Err(()) => {
            ctx.error(err::WRONGTYPE);
            return;
        }
        Ok(None) => (false, false, StreamId::MIN),
        Ok(Some(s)) => (true, s.groups.contains_key(grp), s.last_id),
    };
    if !mkstream {
        if !exists {
            ctx.error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
            return;
        }
        if !has_group && (kw(opt, "setid") || kw(opt, "createconsumer") || kw(opt, "delconsumer")) {
            reply_nogroup_group(ctx.out, grp, key);
            return;
        }
    }
    let now = ctx.now_ms();
    if kw(opt, "create") && (5..=8).contains(&argc) {
        let id = if c_str(args[4]) == b"$" {
            last_id
        } else {
            match strict_id(ctx, args[4]) {
                Some(i) => i,
                None => return,
            }
        };
        if !exists {
            ctx.ks.insert(Entry::new(
                key,
                NewValue::Obj(Object::Stream(Box::default())),
                None,
            ));
        }
        let Ok(Some(s)) = stream_mut(&mut ctx.ks, key) else {
            return;
        };
        if s.groups.contains_key(grp) {
            ctx.error("BUSYGROUP Consumer Group name already exists");
            return;
        }
        s.groups.insert(
            grp.into(),
            Group::new(id, (entries_read >= 0).then_some(entries_read as u64)),
        );
        dirty(ctx);
        ctx.out.ok();
        ctx.ks.notify(STREAM, "xgroup-create", key);
    } else if kw(opt, "setid") && (argc == 5 || argc == 7) {
        let id = if c_str(args[4]) == b"$" {
            last_id
        } else {
            match parse_id_generic(args[4], 0, false, false) {
                Some(p) => p.id,
                None => {
                    ctx.error(ERR_ID);
                    return;
                }
            }
        };
        if argc == 7 {
            if !kw(args[5], "entriesread") {
                crate::cmd::server::subcommand_syntax_error(ctx, args);
                return;
            }
            let Some(v) = entries_read_arg(ctx, args[6]) else {
                return;
            };
            entries_read = v;
        }
        if let Ok(Some(s)) = stream_mut(&mut ctx.ks, key) {
            if let Some(g) = s.groups.get_mut(grp) {
                g.last_id = id;
                g.entries_read = (entries_read >= 0).then_some(entries_read as u64);
            }
        }
        dirty(ctx);
        ctx.out.ok();
        ctx.ks.notify(STREAM, "xgroup-setid", key);
    } else if kw(opt, "destroy") && argc == 4 {
        let removed = match stream_mut(&mut ctx.ks, key) {
            Ok(Some(s)) => s.groups.remove(grp).is_some(),
            _ => false,
        };
        if removed {
            dirty(ctx);
            ctx.out.int(1);
            ctx.ks.notify(STREAM, "xgroup-destroy", key);
            ctx.ks.signal_ready(key);
        } else {
            ctx.out.int(0);
        }
    } else if kw(opt, "createconsumer") && argc == 5 {
        let created = match stream_mut(&mut ctx.ks, key) {
            Ok(Some(s)) => match s.groups.get_mut(grp) {
                Some(g) => g.consumer_or_create(args[4], now).1,
                None => false,
            },
            _ => false,
        };
        if created {
            dirty(ctx);
            ctx.ks.notify(STREAM, "xgroup-createconsumer", key);
        }
        ctx.out.int(created as i64);
    } else if kw(opt, "delconsumer") && argc == 5 {
        let pending = match stream_mut(&mut ctx.ks, key) {
            Ok(Some(s)) => s
                .groups
                .get_mut(grp)
                .and_then(|g| g.delete_consumer(args[4])),
            _ => None,
        };
        if pending.is_some() {
            dirty(ctx);
            ctx.ks.notify(STREAM, "xgroup-delconsumer", key);
        }
        ctx.out.int(pending.unwrap_or(0) as i64);
    } else {
        crate::cmd::server::subcommand_syntax_error(ctx, args);
    }
}

// ---------------------------------------------------------------------------
// XACK / XPENDING / XCLAIM / XAUTOCLAIM
// ---------------------------------------------------------------------------

fn xack(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let Some(has) = has_group(ctx, key, args[2]) else {
        return;
    };
    if !has {
        ctx.out.int(0);
        return;
    }
    let Some(ids) = strict_ids(ctx, &args[3..]) else {
        return;
    };
    let mut n = 0;
    if let Ok(Some(s)) = stream_mut(&mut ctx.ks, key) {
        if let Some(g) = s.groups.get_mut(args[2]) {
            for id in ids {
                if g.ack(id) {
                    n += 1;
                }
            }
        }
    }
    if n > 0 {
        dirty(ctx);
    }
    ctx.out.int(n);
}

fn xpending(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let argc = args.len();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        ctx.error(err::SYNTAX);
        return;
    }
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut count: i64 = 0;
    let mut minidle: i64 = 0;
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut startidx = 3;
        if kw(args[3], "idle") {
            let Some(v) = crate::cmd::arg_i64(ctx, args[4]) else {
                return;
            };
            minidle = v;
            if argc < 8 {
                ctx.error(err::SYNTAX);
                return;
            }
            startidx += 2;
        }
        let Some(c) = crate::cmd::arg_i64(ctx, args[startidx + 2]) else {
            return;
        };
        count = c.max(0);
        let Some(s) = interval_start(ctx, args[startidx]) else {
            return;
        };
        start = s;
        let Some(e) = interval_end(ctx, args[startidx + 1]) else {
            return;
        };
        end = e;
        if startidx + 3 < argc {
            consumer = Some(args[startidx + 3]);
        }
    }
    let now = ctx.now_ms();
    let out = &mut *ctx.out;
    let s = match stream_ref(&mut ctx.ks, args[1]) {
        Err(()) => {
            out.error(err::WRONGTYPE);
            return;
        }
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(args[2])) else {
        reply_nogroup_key(out, args[1], args[2]);
        return;
    };
    if justinfo {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
        } else {
            reply_id(out, *g.pel.keys().next().expect("pel"));
            reply_id(out, *g.pel.keys().next_back().expect("pel"));
            let with: Vec<(&Box<[u8]>, usize)> = g
                .consumers
                .iter()
                .filter(|(_, c)| !c.pel.is_empty())
                .map(|(n, c)| (n, c.pel.len()))
                .collect();
            out.array(with.len());
            for (n, l) in with {
                out.array(2);
                out.bulk(n);
                out.bulk_i64(l as i64);
            }
        }
        return;
    }
    let ids: Vec<StreamId> = match consumer {
        Some(cn) => match g.consumers.get(cn) {
            None => {
                out.array(0);
                return;
            }
            Some(c) => {
                if start > end {
                    Vec::new()
                } else {
                    c.pel.range(start..=end).copied().collect()
                }
            }
        },
        None => {
            if start > end {
                Vec::new()
            } else {
                g.pel.range(start..=end).map(|(k, _)| *k).collect()
            }
        }
    };
    let d = out.begin_deferred();
    let mut n = 0usize;
    for id in ids {
        if count == 0 {
            break;
        }
        let pe = &g.pel[&id];
        if minidle != 0 {
            let idle = now - pe.delivery_time;
            if idle < minidle {
                continue;
            }
        }
        n += 1;
        count -= 1;
        out.array(4);
        reply_id(out, id);
        out.bulk(&pe.consumer);
        out.int((now - pe.delivery_time).max(0));
        out.int(pe.delivery_count as i64);
    }
    out.end_deferred(d, Aggregate::Array, n);
}

/// `min-idle-time` of XCLAIM / XAUTOCLAIM (negative counts as 0), or the
/// error reply naming `cmd`.
fn parse_min_idle(ctx: &mut Ctx<'_>, arg: &[u8], cmd: &str) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        Some(v) => Some(v.max(0)),
        None => {
            ctx.error(&format!("ERR Invalid min-idle-time argument for {cmd}"));
            None
        }
    }
}

/// Ownership changes shared by XCLAIM and XAUTOCLAIM.
struct Claimer<'a> {
    /// The claiming consumer.
    cname: &'a [u8],
    now: i64,
    /// The consumer has been looked up (and created when missing).
    have_consumer: bool,
    /// This command created the consumer.
    created: bool,
    /// Something in the group changed.
    changed: bool,
}

impl<'a> Claimer<'a> {
    fn new(cname: &'a [u8], now: i64) -> Self {
        Claimer {
            cname,
            now,
            have_consumer: false,
            created: false,
            changed: false,
        }
    }

    /// Gives pending entry `id` to the claiming consumer. `old_owner` is
    /// None for an entry FORCE has just added to the PEL; a negative
    /// `retrycount` bumps the delivery count unless `justid`.
    fn claim(
        &mut self,
        g: &mut Group,
        id: StreamId,
        old_owner: Option<&[u8]>,
        delivery_time: i64,
        retrycount: i64,
        justid: bool,
    ) {
        let (cname, now) = (self.cname, self.now);
        if !self.have_consumer {
            let (c, cr) = g.consumer_or_create(cname, now);
            c.seen_time = now;
            self.created |= cr;
            self.have_consumer = true;
        }
        if old_owner != Some(cname) {
            if let Some(c) = old_owner.and_then(|o| g.consumers.get_mut(o)) {
                c.pel.remove(&id);
            }
            if let Some(c) = g.consumers.get_mut(cname) {
                c.pel.insert(id);
            }
        }
        let pe = g.pel.get_mut(&id).expect("pending");
        pe.consumer = cname.into();
        pe.delivery_time = delivery_time;
        if retrycount >= 0 {
            pe.delivery_count = retrycount as u64;
        } else if !justid {
            pe.delivery_count += 1;
        }
        if let Some(c) = g.consumers.get_mut(cname) {
            c.active_time = now;
        }
        self.changed = true;
    }

    /// Counts the change (`dirty` as well when `dirty`) and signals a
    /// consumer the command created.
    fn finish(self, ctx: &mut Ctx<'_>, key: &[u8], dirty_too: bool) {
        if self.changed || dirty_too {
            dirty(ctx);
        }
        if self.created {
            ctx.ks.notify(STREAM, "xgroup-createconsumer", key);
        }
    }
}

/// A claimed entry: its ID under JUSTID, else the entry itself.
fn reply_claimed(out: &mut ReplyBuf, s: &Stream, id: StreamId, justid: bool) {
    if justid {
        reply_id(out, id);
    } else if let Some(e) = s.get(id) {
        reply_entry(out, &e);
    } else {
        out.null();
    }
}

/// An integer option argument of XCLAIM, or its error reply.
fn xclaim_int(ctx: &mut Ctx<'_>, arg: &[u8], opt: &str) -> Option<i64> {
    let v = crate::util::parse_i64(arg);
    if v.is_none() {
        ctx.error(&format!("ERR Invalid {opt} option argument for XCLAIM"));
    }
    v
}

fn xclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    if !require_group(ctx, key, args[2]) {
        return;
    }
    let Some(minidle) = parse_min_idle(ctx, args[4], "XCLAIM") else {
        return;
    };
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_id_generic(args[j], 0, true, false) {
            Some(p) => ids.push(p.id),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now_ms();
    let mut deliverytime: i64 = -1;
    let mut retrycount: i64 = -1;
    let mut force = false;
    let mut justid = false;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let moreargs = args.len() - 1 - j;
        let opt = args[j];
        if kw(opt, "force") {
            force = true;
        } else if kw(opt, "justid") {
            justid = true;
        } else if kw(opt, "idle") && moreargs > 0 {
            j += 1;
            let Some(v) = xclaim_int(ctx, args[j], "IDLE") else {
                return;
            };
            deliverytime = now.wrapping_sub(v);
        } else if kw(opt, "time") && moreargs > 0 {
            j += 1;
            let Some(v) = xclaim_int(ctx, args[j], "TIME") else {
                return;
            };
            deliverytime = v;
        } else if kw(opt, "retrycount") && moreargs > 0 {
            j += 1;
            let Some(v) = xclaim_int(ctx, args[j], "RETRYCOUNT") else {
                return;
            };
            retrycount = v;
        } else if kw(opt, "lastid") && moreargs > 0 {
            j += 1;
            let Some(l) = strict_id(ctx, args[j]) else {
                return;
            };
            last_id = l;
        } else {
            let mut m = b"ERR Unrecognized XCLAIM option '".to_vec();
            m.extend_from_slice(c_str(opt));
            m.push(b'\'');
            ctx.out.error_bytes(&m);
            return;
        }
        j += 1;
    }
    if deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    let out = &mut *ctx.out;
    let Ok(Some(s)) = stream_mut(&mut ctx.ks, key) else {
        return;
    };
    {
        let g = s.groups.get_mut(args[2]).expect("group");
        if last_id > g.last_id {
            g.last_id = last_id;
        }
    }
    let mut claimer = Claimer::new(args[3], now);
    let d = out.begin_deferred();
    let mut n = 0usize;
    for id in ids {
        let exists = s.get(id).is_some();
        let g = s.groups.get_mut(args[2]).expect("group");
        if !exists {
            if g.ack(id) {
                claimer.changed = true;
            }
            continue;
        }
        let mut fresh = false;
        if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                kvik_core::stream::PendingEntry {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: Box::default(),
                },
            );
            fresh = true;
        }
        let Some((dtime, old_owner)) = g
            .pel
            .get(&id)
            .map(|p| (p.delivery_time, p.consumer.clone()))
        else {
            continue;
        };
        if !fresh && minidle != 0 && now - dtime < minidle {
            continue;
        }
        let old_owner = (!fresh).then_some(&*old_owner);
        claimer.claim(g, id, old_owner, deliverytime, retrycount, justid);
        reply_claimed(out, s, id, justid);
        n += 1;
    }
    out.end_deferred(d, Aggregate::Array, n);
    claimer.finish(ctx, key, !last_id.is_zero());
}

fn xautoclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let Some(minidle) = parse_min_idle(ctx, args[4], "XAUTOCLAIM") else {
        return;
    };
    let Some(start) = interval_start(ctx, args[5]) else {
        return;
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let moreargs = args.len() - 1 - j;
        if kw(args[j], "count") && moreargs > 0 {
            let max_count = i64::MAX / 16;
            match crate::util::parse_i64(args[j + 1]) {
                Some(v) if (1..=max_count).contains(&v) => count = v,
                _ => {
                    ctx.error("ERR COUNT must be > 0");
                    return;
                }
            }
            // Redis allocates COUNT IDs up front and fails when that
            // cannot be had; a bound on the address space stands in.
            if count > AUTOCLAIM_MAX_COUNT {
                ctx.error(
                    "ERR Insufficient memory, failed allocating transient memory, COUNT too high.",
                );
                return;
            }
            j += 1;
        } else if kw(args[j], "justid") {
            justid = true;
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
        j += 1;
    }
    if !require_group(ctx, key, args[2]) {
        return;
    }
    let now = ctx.now_ms();
    let out = &mut *ctx.out;
    let Ok(Some(s)) = stream_mut(&mut ctx.ks, key) else {
        return;
    };
    let mut attempts = count.saturating_mul(10);
    let mut deleted: Vec<StreamId> = Vec::new();
    let mut claimed = 0usize;
    let mut claimer = Claimer::new(args[3], now);
    let mut cursor = start;
    let mut last_examined: Option<StreamId> = None;
    let mut eof = false;
    out.array(3);
    let mut body = ReplyBuf::new();
    body.set_resp3(out.resp3());
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let next = {
            let g = &s.groups[args[2]];
            g.pel.range(cursor..).next().map(|(k, _)| *k)
        };
        let Some(id) = next else {
            eof = true;
            break;
        };
        last_examined = Some(id);
        // Nothing can follow the largest ID.
        cursor = id.incr().unwrap_or(StreamId::MAX);
        let exists = s.get(id).is_some();
        let g = s.groups.get_mut(args[2]).expect("group");
        if !exists {
            g.ack(id);
            deleted.push(id);
            count -= 1;
            claimer.changed = true;
        } else {
            let (dtime, owner) = {
                let pe = &g.pel[&id];
                (pe.delivery_time, pe.consumer.clone())
            };
            if minidle == 0 || now - dtime >= minidle {
                claimer.claim(g, id, Some(&owner[..]), now, -1, justid);
                reply_claimed(&mut body, s, id, justid);
                claimed += 1;
                count -= 1;
            }
        }
        if id == StreamId::MAX {
            eof = true;
            break;
        }
    }
    let next_cursor = if eof {
        StreamId::MIN
    } else {
        let g = &s.groups[args[2]];
        match last_examined {
            Some(l) => g
                .pel
                .range((std::ops::Bound::Excluded(l), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, _)| *k)
                .unwrap_or(StreamId::MIN),
            None => StreamId::MIN,
        }
    };
    reply_id(out, next_cursor);
    out.array(claimed);
    out.raw(body.as_bytes());
    out.array(deleted.len());
    for id in deleted {
        reply_id(out, id);
    }
    claimer.finish(ctx, key, false);
}

// ---------------------------------------------------------------------------
// XINFO
// ---------------------------------------------------------------------------

fn xinfo_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    crate::cmd::server::reply_help(
        ctx.out,
        args[0],
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
}

/// The `last-delivered-id`, `entries-read` and `lag` fields of a group.
fn reply_group_position(out: &mut ReplyBuf, s: &Stream, g: &Group) {
    out.bulk(b"last-delivered-id");
    reply_id(out, g.last_id);
    out.bulk(b"entries-read");
    match g.entries_read {
        Some(n) => out.int(n as i64),
        None => out.null(),
    }
    out.bulk(b"lag");
    match s.group_lag(g) {
        Some(l) => out.int(l as i64),
        None => out.null(),
    }
}

/// XINFO STREAM FULL: the `pel-count` field and the head of `pending`
/// (at most `count` entries, 0 = all); returns how many follow.
fn reply_pel_head(out: &mut ReplyBuf, len: usize, count: usize) -> usize {
    out.bulk(b"pel-count");
    out.int(len as i64);
    out.bulk(b"pending");
    let n = if count == 0 { len } else { len.min(count) };
    out.array(n);
    n
}

fn xinfo(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let opt = args[1];
    let key = args[2];
    let now = ctx.now_ms();
    let out = &mut *ctx.out;
    let no_key = |o: &mut ReplyBuf| o.error(err::NO_KEY);
    let Some(s) = found(stream_ref(&mut ctx.ks, key), out, no_key) else {
        return;
    };
    if kw(opt, "consumers") && args.len() == 4 {
        let Some(g) = s.groups.get(args[3]) else {
            reply_nogroup_group(out, args[3], key);
            return;
        };
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"pending");
            out.int(c.pel.len() as i64);
            out.bulk(b"idle");
            out.int((now - c.seen_time).max(0));
            out.bulk(b"inactive");
            out.int(if c.active_time != -1 {
                (now - c.active_time).max(0)
            } else {
                -1
            });
        }
    } else if kw(opt, "groups") && args.len() == 3 {
        out.array(s.groups.len());
        for (name, g) in &s.groups {
            out.map(6);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"consumers");
            out.int(g.consumers.len() as i64);
            out.bulk(b"pending");
            out.int(g.pel.len() as i64);
            reply_group_position(out, s, g);
        }
    } else if kw(opt, "stream") {
        let optv = &args[3..];
        let mut full = true;
        let mut count: i64 = 10;
        if optv.is_empty() {
            full = false;
        } else {
            if optv.len() != 1 && optv.len() != 3 {
                crate::cmd::server::subcommand_syntax_error(ctx, args);
                return;
            }
            if !kw(optv[0], "full") {
                crate::cmd::server::subcommand_syntax_error(ctx, args);
                return;
            }
            if optv.len() == 3 {
                if !kw(optv[1], "count") {
                    crate::cmd::server::subcommand_syntax_error(ctx, args);
                    return;
                }
                match crate::util::parse_i64(optv[2]) {
                    Some(v) => count = if v < 0 { 10 } else { v },
                    None => {
                        out.error(err::NOT_INT);
                        return;
                    }
                }
            }
        }
        out.map(if full { 9 } else { 10 });
        out.bulk(b"length");
        out.int(s.len() as i64);
        out.bulk(b"radix-tree-keys");
        out.int(s.node_count() as i64);
        out.bulk(b"radix-tree-nodes");
        out.int(s.rax_nodes() as i64);
        out.bulk(b"last-generated-id");
        reply_id(out, s.last_id);
        out.bulk(b"max-deleted-entry-id");
        reply_id(out, s.max_deleted_id);
        out.bulk(b"entries-added");
        out.int(s.entries_added as i64);
        out.bulk(b"recorded-first-entry-id");
        reply_id(out, s.first_id);
        if !full {
            out.bulk(b"groups");
            out.int(s.groups.len() as i64);
            out.bulk(b"first-entry");
            match s.range(StreamId::MIN, StreamId::MAX, false, 1).first() {
                Some(e) => reply_entry(out, e),
                None => out.null(),
            }
            out.bulk(b"last-entry");
            match s.last_entry() {
                Some(e) => reply_entry(out, &e),
                None => out.null(),
            }
        } else {
            let count = count as usize;
            out.bulk(b"entries");
            reply_range(out, s, StreamId::MIN, StreamId::MAX, false, count);
            out.bulk(b"groups");
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(7);
                out.bulk(b"name");
                out.bulk(name);
                reply_group_position(out, s, g);
                let n = reply_pel_head(out, g.pel.len(), count);
                for (id, pe) in g.pel.iter().take(n) {
                    out.array(4);
                    reply_id(out, *id);
                    out.bulk(&pe.consumer);
                    out.int(pe.delivery_time);
                    out.int(pe.delivery_count as i64);
                }
                out.bulk(b"consumers");
                out.array(g.consumers.len());
                for (cname, c) in &g.consumers {
                    out.map(5);
                    out.bulk(b"name");
                    out.bulk(cname);
                    out.bulk(b"seen-time");
                    out.int(c.seen_time);
                    out.bulk(b"active-time");
                    out.int(c.active_time);
                    let n = reply_pel_head(out, c.pel.len(), count);
                    for id in c.pel.iter().take(n) {
                        let pe = &g.pel[id];
                        out.array(3);
                        reply_id(out, *id);
                        out.int(pe.delivery_time);
                        out.int(pe.delivery_count as i64);
                    }
                }
            }
        }
    } else {
        crate::cmd::server::subcommand_syntax_error(ctx, args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_like_c() {
        assert_eq!(strtoull(b"12"), Some(12));
        assert_eq!(strtoull(b"+5"), Some(5));
        assert_eq!(strtoull(b" 7"), Some(7));
        assert_eq!(strtoull(b"-0"), Some(0));
        assert_eq!(strtoull(b"-1"), None);
        assert_eq!(strtoull(b""), None);
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(strtoull(b"1x"), None);
    }

    #[test]
    fn ids_parse() {
        let p = parse_id_generic(b"5", 7, false, false).unwrap();
        assert_eq!(p.id, StreamId::new(5, 7));
        assert!(parse_id_generic(b"-", 0, true, false).is_none());
        assert_eq!(
            parse_id_generic(b"+", 0, false, false).unwrap().id,
            StreamId::MAX
        );
        let p = parse_id_generic(b"5-*", 0, true, true).unwrap();
        assert!(!p.seq_given);
        assert!(parse_id_generic(b"5-*", 0, true, false).is_none());
        assert!(parse_id_generic(&[b'1'; 128], 0, true, false).is_none());
        let mut b = [0u8; 42];
        assert_eq!(
            fmt_id(StreamId::MAX, &mut b),
            b"18446744073709551615-18446744073709551615"
        );
    }
}
