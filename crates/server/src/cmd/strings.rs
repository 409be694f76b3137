//! String commands (Redis's `t_string.c`): SET and its variants, GET and
//! its variants, MGET/MSET, APPEND, STRLEN, GETRANGE/SETRANGE, the INCR
//! family and LCS.
//!
//! Argument checks happen in the same order as in Redis, because that order
//! decides which error a client sees when several things are wrong at once
//! (e.g. GETEX on a missing key with an invalid expire replies nil, while
//! SET with an invalid expire fails before looking at the key).

use super::c_str;
use super::{is_string, reply_str};
use crate::dispatch::{err, CommandTable, Ctx};
use crate::util::notify::{GENERIC, STRING};
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::object::Object;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("get", get);
    t.add("set", set);
    t.add("setnx", setnx);
    t.add("setex", setex);
    t.add("psetex", psetex);
    t.add("getex", getex);
    t.add("getdel", getdel);
    t.add("getset", getset);
    t.add("mget", mget);
    t.add("mset", mset);
    t.add("msetnx", msetnx);
    t.add("append", append);
    t.add("strlen", strlen);
    t.add("getrange", getrange);
    t.add("substr", getrange);
    t.add("setrange", setrange);
    t.add("incr", incr);
    t.add("decr", decr);
    t.add("incrby", incrby);
    t.add("decrby", decrby);
    t.add("incrbyfloat", incrbyfloat);
    t.add("lcs", lcs);
}

/// Redis's error for strings that would outgrow `proto-max-bulk-len`.
pub const ERR_TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// Checks that a string of `size` bytes grown by `append` bytes stays
/// within `proto-max-bulk-len` (Redis's `checkStringLength`, including its
/// overflow check). Shared with the bitmap commands.
pub fn check_string_length(ctx: &Ctx<'_>, size: i64, append: i64) -> Result<(), &'static str> {
    let max = ctx.srv.tun.proto_max_bulk_len.load(Ordering::Relaxed);
    match size.checked_add(append) {
        Some(total) if total >= 0 && (total as u64) <= max => Ok(()),
        _ => Err(ERR_TOO_BIG),
    }
}

// ---------------------------------------------------------------------------
// SET / GETEX option parsing
// ---------------------------------------------------------------------------

/// Which command an option list belongs to: SET accepts NX, XX, GET and
/// KEEPTTL; GETEX accepts PERSIST; both accept EX, PX, EXAT and PXAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCmd {
    /// SET (options start at argument 3).
    Set,
    /// GETEX (options start at argument 2).
    GetEx,
}

/// The unit and base of an expire option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireKind {
    /// Relative seconds.
    Ex,
    /// Relative milliseconds.
    Px,
    /// Absolute Unix seconds.
    ExAt,
    /// Absolute Unix milliseconds.
    PxAt,
}

/// Parsed options of SET / GETEX.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions<'a> {
    /// NX: only set a missing key.
    pub nx: bool,
    /// XX: only set an existing key.
    pub xx: bool,
    /// GET: reply with the old value.
    pub get: bool,
    /// KEEPTTL: keep the existing expiry.
    pub keepttl: bool,
    /// PERSIST (GETEX): remove the expiry.
    pub persist: bool,
    /// The expire option and its (not yet validated) argument; a repeated
    /// option of the same kind replaces the earlier one, as in Redis.
    pub expire: Option<(ExpireKind, &'a [u8])>,
}

/// Why an expire argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireError {
    /// Not an integer.
    NotInt,
    /// Zero, negative, or overflowing when converted to absolute ms.
    Invalid,
}

/// Parses the options of SET (`args[3..]`) or GETEX (`args[2..]`) exactly as
/// Redis's `parseExtendedStringArgumentsOrReply`: every conflicting
/// combination (NX+XX, KEEPTTL/PERSIST with an expire, two different expire
/// kinds, an expire without its value, an option of the other command) is
/// a syntax error; repeating the same option is allowed.
pub fn parse_set_options<'a>(
    args: &[&'a [u8]],
    cmd: SetCmd,
) -> Result<SetOptions<'a>, &'static str> {
    let mut o = SetOptions::default();
    let mut j = match cmd {
        SetCmd::Set => 3,
        SetCmd::GetEx => 2,
    };
    let is_set = cmd == SetCmd::Set;
    while j < args.len() {
        let opt = c_str(args[j]);
        let next = args.get(j + 1).copied();
        // An expire kind may be given when no other expire kind (nor
        // KEEPTTL / PERSIST) was.
        let expire_ok = |kind: ExpireKind, o: &SetOptions<'_>| {
            !o.keepttl && !o.persist && o.expire.is_none_or(|(k, _)| k == kind) && next.is_some()
        };
        let kind = if opt.eq_ignore_ascii_case(b"ex") {
            Some(ExpireKind::Ex)
        } else if opt.eq_ignore_ascii_case(b"px") {
            Some(ExpireKind::Px)
        } else if opt.eq_ignore_ascii_case(b"exat") {
            Some(ExpireKind::ExAt)
        } else if opt.eq_ignore_ascii_case(b"pxat") {
            Some(ExpireKind::PxAt)
        } else {
            None
        };
        if opt.eq_ignore_ascii_case(b"nx") && !o.xx && is_set {
            o.nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") && !o.nx && is_set {
            o.xx = true;
        } else if opt.eq_ignore_ascii_case(b"get") && is_set {
            o.get = true;
        } else if opt.eq_ignore_ascii_case(b"keepttl") && !o.persist && o.expire.is_none() && is_set
        {
            o.keepttl = true;
        } else if opt.eq_ignore_ascii_case(b"persist")
            && !is_set
            && o.expire.is_none()
            && !o.keepttl
        {
            o.persist = true;
        } else if let Some(kind) = kind.filter(|&k| expire_ok(k, &o)) {
            o.expire = Some((kind, next.unwrap_or_default()));
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// Converts an expire option to an absolute Unix time in milliseconds, as
/// Redis's `getExpireMillisecondsOrReply`: the value must be a positive
/// integer, seconds must not overflow when multiplied by 1000, and a
/// relative time must not overflow when added to `now_ms`.
pub fn expire_at_ms(kind: ExpireKind, arg: &[u8], now_ms: i64) -> Result<i64, ExpireError> {
    let v = crate::util::parse_i64(arg).ok_or(ExpireError::NotInt)?;
    if v <= 0 {
        return Err(ExpireError::Invalid);
    }
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::ExAt => v.checked_mul(1000).ok_or(ExpireError::Invalid)?,
        ExpireKind::Px | ExpireKind::PxAt => v,
    };
    match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now_ms).ok_or(ExpireError::Invalid),
        ExpireKind::ExAt | ExpireKind::PxAt => Ok(ms),
    }
}

/// Resolves the options' expire (if any), replying the error Redis gives
/// for a bad one (`invalid expire time in '<cmd>' command`).
fn resolve_expire(ctx: &mut Ctx<'_>, o: &SetOptions<'_>) -> Result<Option<i64>, ()> {
    let Some((kind, arg)) = o.expire else {
        return Ok(None);
    };
    match expire_at_ms(kind, arg, ctx.ks.now_ms) {
        Ok(ms) => Ok(Some(ms)),
        Err(e) => {
            reply_expire_error(ctx, e);
            Err(())
        }
    }
}

fn reply_expire_error(ctx: &mut Ctx<'_>, e: ExpireError) {
    match e {
        ExpireError::NotInt => ctx.error(err::NOT_INT),
        ExpireError::Invalid => {
            let msg = format!("ERR invalid expire time in '{}' command", ctx.cmd.spec.name);
            ctx.error(&msg);
        }
    }
}

// ---------------------------------------------------------------------------
// SET family
// ---------------------------------------------------------------------------

/// How a SET variant answers: SET replies OK / nil, SETNX replies 1 / 0.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    OkNil,
    OneZero,
}

/// Redis's `setGenericCommand`.
fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], val: &[u8], o: &SetOptions<'_>, style: SetReply) {
    let Ok(expire) = resolve_expire(ctx, o) else {
        return;
    };
    if o.get {
        // GET first: a wrong type aborts the whole SET.
        match ctx.ks.lookup_read(key) {
            None => ctx.out.null(),
            Some(e) if is_string(e) => reply_str(ctx.out, e),
            Some(_) => {
                ctx.error(err::WRONGTYPE);
                return;
            }
        }
    }
    // Plain SET needs no lookup: the insert replaces whatever is there.
    let old_expire = if o.nx || o.xx || o.keepttl {
        ctx.ks.lookup_write(key).map(|e| e.expire())
    } else {
        None
    };
    let found = old_expire.is_some();
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            match style {
                SetReply::OkNil => ctx.out.null(),
                SetReply::OneZero => ctx.out.int(0),
            }
        }
        return;
    }
    let new_expire = match expire {
        Some(ms) => Some(ms),
        None if o.keepttl => old_expire.flatten(),
        None => None,
    };
    // An absolute time already in the past is stored as is, like Redis:
    // the key is then reclaimed (with its `expired` event) by lazy or
    // active expiry.
    ctx.ks
        .insert(Entry::new(key, NewValue::Str(val), new_expire));
    ctx.ks.notify(STRING, "set", key);
    if expire.is_some() {
        ctx.ks.notify(GENERIC, "expire", key);
    }
    if !o.get {
        match style {
            SetReply::OkNil => ctx.out.ok(),
            SetReply::OneZero => ctx.out.int(1),
        }
    }
}

fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match ctx.ks.lookup_read(args[1]) {
        None => ctx.out.null(),
        Some(e) if is_string(e) => reply_str(ctx.out, e),
        Some(_) => ctx.out.error(err::WRONGTYPE),
    }
}

fn set(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match parse_set_options(args, SetCmd::Set) {
        Ok(o) => set_generic(ctx, args[1], args[2], &o, SetReply::OkNil),
        Err(e) => ctx.error(e),
    }
}

fn setnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let o = SetOptions {
        nx: true,
        ..SetOptions::default()
    };
    set_generic(ctx, args[1], args[2], &o, SetReply::OneZero);
}

fn setex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let o = SetOptions {
        expire: Some((ExpireKind::Ex, args[2])),
        ..SetOptions::default()
    };
    set_generic(ctx, args[1], args[3], &o, SetReply::OkNil);
}

fn psetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let o = SetOptions {
        expire: Some((ExpireKind::Px, args[2])),
        ..SetOptions::default()
    };
    set_generic(ctx, args[1], args[3], &o, SetReply::OkNil);
}

fn getex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let o = match parse_set_options(args, SetCmd::GetEx) {
        Ok(o) => o,
        Err(e) => return ctx.error(e),
    };
    let key = args[1];
    // Key and type are checked before the expire value (Redis's order).
    match ctx.ks.lookup_read(key) {
        None => return ctx.out.null(),
        Some(e) if !is_string(e) => return ctx.error(err::WRONGTYPE),
        Some(_) => {}
    }
    let Ok(expire) = resolve_expire(ctx, &o) else {
        return;
    };
    let had_expire = match ctx.ks.lookup_write(key) {
        Some(e) => {
            reply_str(ctx.out, e);
            e.expire().is_some()
        }
        None => return ctx.out.null(),
    };
    let absolute = matches!(o.expire, Some((ExpireKind::ExAt | ExpireKind::PxAt, _)));
    match expire {
        Some(ms) if absolute && ms <= ctx.ks.now_ms => {
            ctx.ks.remove(key);
            ctx.ks.notify(GENERIC, "del", key);
        }
        Some(ms) => {
            ctx.ks.set_expire(key, Some(ms));
            ctx.ks.notify(GENERIC, "expire", key);
        }
        None if o.persist && had_expire => {
            ctx.ks.set_expire(key, None);
            ctx.ks.notify(GENERIC, "persist", key);
        }
        None => {}
    }
}

fn getdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match ctx.ks.lookup_read(args[1]) {
        None => return ctx.out.null(),
        Some(e) if is_string(e) => reply_str(ctx.out, e),
        Some(_) => return ctx.error(err::WRONGTYPE),
    }
    ctx.ks.remove(args[1]);
    ctx.ks.notify(GENERIC, "del", args[1]);
}

fn getset(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match ctx.ks.lookup_read(args[1]) {
        None => ctx.out.null(),
        Some(e) if is_string(e) => reply_str(ctx.out, e),
        Some(_) => return ctx.error(err::WRONGTYPE),
    }
    ctx.ks
        .insert(Entry::new(args[1], NewValue::Str(args[2]), None));
    ctx.ks.notify(STRING, "set", args[1]);
}

fn mget(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    ctx.out.array(args.len() - 1);
    for key in &args[1..] {
        match ctx.ks.lookup_read(key) {
            Some(e) if is_string(e) => reply_str(ctx.out, e),
            _ => ctx.out.null(),
        }
    }
}

/// Redis checks MSET's pairing itself (its arity is only "at least 3").
fn check_pairs(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> bool {
    if args.len().is_multiple_of(2) {
        let msg = format!(
            "ERR wrong number of arguments for '{}' command",
            ctx.cmd.spec.name
        );
        ctx.error(&msg);
        return false;
    }
    true
}

fn mset(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if !check_pairs(ctx, args) {
        return;
    }
    for pair in args[1..].chunks_exact(2) {
        ctx.ks
            .insert(Entry::new(pair[0], NewValue::Str(pair[1]), None));
        ctx.ks.notify(STRING, "set", pair[0]);
    }
    ctx.out.ok();
}

fn msetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if !check_pairs(ctx, args) {
        return;
    }
    let db = ctx.ks.db;
    if args[1..].iter().step_by(2).any(|k| ctx.ks.exists_in(db, k)) {
        return ctx.out.int(0);
    }
    for pair in args[1..].chunks_exact(2) {
        ctx.ks
            .insert(Entry::new(pair[0], NewValue::Str(pair[1]), None));
        ctx.ks.notify(STRING, "set", pair[0]);
    }
    ctx.out.int(1);
}

// ---------------------------------------------------------------------------
// In-place edits and lengths
// ---------------------------------------------------------------------------

/// The length of an entry's string value.
fn str_len(e: &Entry) -> usize {
    let mut buf = [0u8; 20];
    e.str_bytes(&mut buf).map_or(0, <[u8]>::len)
}

fn append(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let (key, tail) = (args[1], args[2]);
    let len = match ctx.ks.lookup_write(key) {
        None => None,
        Some(e) if !is_string(e) => return ctx.error(err::WRONGTYPE),
        Some(e) => Some(str_len(e)),
    };
    let Some(len) = len else {
        // A new key is encoded like SET would (int / embstr / raw).
        ctx.ks.insert(Entry::new(key, NewValue::Str(tail), None));
        ctx.ks.notify(STRING, "append", key);
        return ctx.out.int(tail.len() as i64);
    };
    if let Err(e) = check_string_length(ctx, len as i64, tail.len() as i64) {
        return ctx.error(e);
    }
    let total = match ctx.ks.lookup_write(key).map(Entry::make_object) {
        Some(Object::Str(v)) => {
            // Vec growth is amortised (capacity doubles), like sds.
            v.extend_from_slice(tail);
            v.len()
        }
        _ => return ctx.error(err::WRONGTYPE),
    };
    ctx.ks.modified(key);
    ctx.ks.notify(STRING, "append", key);
    ctx.out.int(total as i64);
}

fn strlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match ctx.ks.lookup_read(args[1]) {
        None => ctx.out.int(0),
        Some(e) if is_string(e) => ctx.out.int(str_len(e) as i64),
        Some(_) => ctx.error(err::WRONGTYPE),
    }
}

/// The byte range GETRANGE returns for `start..=end` on a string of
/// `len` bytes (Redis's index normalisation), or None when empty.
pub fn getrange_bounds(mut start: i64, mut end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn getrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(start) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    let Some(end) = super::arg_i64(ctx, args[3]) else {
        return;
    };
    let Some(e) = ctx.ks.lookup_read(args[1]) else {
        return ctx.out.bulk(b"");
    };
    let mut buf = [0u8; 20];
    let Some(s) = e.str_bytes(&mut buf) else {
        return ctx.out.error(err::WRONGTYPE);
    };
    match getrange_bounds(start, end, s.len()) {
        Some((a, b)) => ctx.out.bulk(&s[a..=b]),
        None => ctx.out.bulk(b""),
    }
}

fn setrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let (key, value) = (args[1], args[3]);
    let Some(offset) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    if offset < 0 {
        return ctx.error("ERR offset is out of range");
    }
    let existing = match ctx.ks.lookup_write(key) {
        None => None,
        Some(e) if !is_string(e) => return ctx.error(err::WRONGTYPE),
        Some(e) => Some(str_len(e)),
    };
    if value.is_empty() {
        // Setting nothing creates nothing and changes nothing.
        return ctx.out.int(existing.unwrap_or(0) as i64);
    }
    // Checked before allocating: the offset is user-controlled.
    if let Err(e) = check_string_length(ctx, offset, value.len() as i64) {
        return ctx.error(e);
    }
    let offset = offset as usize;
    let end = offset + value.len();
    if existing.is_none() {
        let mut v = vec![0u8; end];
        v[offset..].copy_from_slice(value);
        ctx.ks
            .insert(Entry::new(key, NewValue::Obj(Object::Str(v)), None));
        ctx.ks.notify(STRING, "setrange", key);
        return ctx.out.int(end as i64);
    }
    let total = match ctx.ks.lookup_write(key).map(Entry::make_object) {
        Some(Object::Str(v)) => {
            if v.len() < end {
                v.resize(end, 0);
            }
            v[offset..end].copy_from_slice(value);
            v.len()
        }
        _ => return ctx.error(err::WRONGTYPE),
    };
    ctx.ks.modified(key);
    ctx.ks.notify(STRING, "setrange", key);
    ctx.out.int(total as i64);
}

// ---------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------

/// Redis's `incrDecrCommand`: the stored value must parse as an `i64`, the
/// sum must not overflow, and the result is stored int-encoded (keeping the
/// key's TTL).
fn incr_decr(ctx: &mut Ctx<'_>, key: &[u8], by: i64) {
    let current = match ctx.ks.lookup_write(key) {
        None => None,
        Some(e) => {
            let mut buf = [0u8; 20];
            match e.value() {
                ValueRef::Int(n) => Some(n),
                _ => match e.str_bytes(&mut buf) {
                    None => return ctx.out.error(err::WRONGTYPE),
                    Some(s) => match crate::util::parse_i64(s) {
                        Some(n) => Some(n),
                        None => return ctx.out.error(err::NOT_INT),
                    },
                },
            }
        }
    };
    let old = current.unwrap_or(0);
    let Some(new) = old.checked_add(by) else {
        return ctx.error("ERR increment or decrement would overflow");
    };
    match ctx.ks.lookup_write(key) {
        Some(e) => {
            e.set_value(NewValue::Int(new));
            ctx.ks.modified(key);
        }
        None => {
            ctx.ks.insert(Entry::new(key, NewValue::Int(new), None));
        }
    }
    ctx.ks.notify(STRING, "incrby", key);
    ctx.out.int(new);
}

fn incr(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    incr_decr(ctx, args[1], 1);
}

fn decr(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    incr_decr(ctx, args[1], -1);
}

fn incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if let Some(by) = super::arg_i64(ctx, args[2]) {
        incr_decr(ctx, args[1], by);
    }
}

fn decrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(by) = super::arg_i64(ctx, args[2]) else {
        return;
    };
    if by == i64::MIN {
        return ctx.error("ERR decrement would overflow");
    }
    incr_decr(ctx, args[1], -by);
}

fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let mut buf = [0u8; 20];
    let (exists, result) = match ctx.ks.lookup_write(key) {
        None => (false, kvik_core::num::incr_by_float(None, args[2])),
        Some(e) => match e.str_bytes(&mut buf) {
            Some(cur) => (true, kvik_core::num::incr_by_float(Some(cur), args[2])),
            None => return ctx.error(err::WRONGTYPE),
        },
    };
    let text = match result {
        Ok(t) => t,
        Err(e) => return ctx.error(&format!("ERR {}", e.message())),
    };
    if exists {
        if let Some(e) = ctx.ks.lookup_write(key) {
            e.set_value(NewValue::Embstr(&text));
        }
        ctx.ks.modified(key);
    } else {
        ctx.ks
            .insert(Entry::new(key, NewValue::Embstr(&text), None));
    }
    ctx.ks.notify(STRING, "incrbyfloat", key);
    ctx.out.bulk(&text);
}

// ---------------------------------------------------------------------------
// LCS
// ---------------------------------------------------------------------------

/// The string value of `key` copied out for LCS: `Ok(empty)` for a missing
/// key, `Err(())` for another type. Both keys are looked up (and counted)
/// before either type is checked, as in Redis.
fn lcs_input(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Vec<u8>, ()> {
    let mut buf = [0u8; 20];
    match ctx.ks.lookup_read(key) {
        None => Ok(Vec::new()),
        Some(e) => e.str_bytes(&mut buf).map(<[u8]>::to_vec).ok_or(()),
    }
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN].
fn lcs(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    use kvik_core::lcs::{lcs as compute, LcsMode};
    let a = lcs_input(ctx, args[1]);
    let b = lcs_input(ctx, args[2]);
    let (Ok(a), Ok(b)) = (a, b) else {
        return ctx.error("ERR The specified keys must contain string values");
    };
    let (mut idx, mut len, mut withmatchlen) = (false, false, false);
    let mut minmatchlen = 0i64;
    let mut j = 3;
    while j < args.len() {
        let opt = c_str(args[j]);
        let more = j + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"idx") {
            idx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            len = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            withmatchlen = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && more {
            let Some(n) = super::arg_i64(ctx, args[j + 1]) else {
                return;
            };
            minmatchlen = n.max(0);
            j += 1;
        } else {
            return ctx.error(err::SYNTAX);
        }
        j += 1;
    }
    if idx && len {
        return ctx.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let mode = if idx {
        LcsMode::Idx
    } else if len {
        LcsMode::Len
    } else {
        LcsMode::String
    };
    // The guard: Redis refuses when its DP table would exceed
    // proto-max-bulk-len, and so does `compute`, before allocating.
    let max = ctx.srv.tun.proto_max_bulk_len.load(Ordering::Relaxed);
    let r = match compute(&a, &b, mode, minmatchlen, max) {
        Ok(r) => r,
        Err(e) => return ctx.error(&format!("ERR {}", e.message())),
    };
    match mode {
        LcsMode::String => ctx.out.bulk(&r.string),
        LcsMode::Len => ctx.out.int(r.len as i64),
        LcsMode::Idx => {
            let out = &mut *ctx.out;
            out.map(2);
            out.bulk(b"matches");
            out.array(r.matches.len());
            for m in &r.matches {
                out.array(2 + withmatchlen as usize);
                out.array(2);
                out.int(m.a_start as i64);
                out.int(m.a_end as i64);
                out.array(2);
                out.int(m.b_start as i64);
                out.int(m.b_end as i64);
                if withmatchlen {
                    out.int(m.len as i64);
                }
            }
            out.bulk(b"len");
            out.int(r.len as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn set_options_conflicts() {
        let ok = |s: &str| parse_set_options(&args(s), SetCmd::Set).is_ok();
        assert!(ok("set k v"));
        assert!(ok("set k v NX GET EX 10"));
        assert!(ok("set k v nx nx"));
        assert!(ok("set k v EX 1 EX 2"));
        assert!(ok("set k v KEEPTTL KEEPTTL xx"));
        assert!(!ok("set k v NX XX"));
        assert!(!ok("set k v EX 1 PX 2"));
        assert!(!ok("set k v EX"));
        assert!(!ok("set k v KEEPTTL EX 1"));
        assert!(!ok("set k v EX 1 KEEPTTL"));
        assert!(!ok("set k v PERSIST"));
        assert!(!ok("set k v foo"));
        let g = |s: &str| parse_set_options(&args(s), SetCmd::GetEx).is_ok();
        assert!(g("getex k PERSIST"));
        assert!(g("getex k pxat 5"));
        assert!(!g("getex k PERSIST EX 1"));
        assert!(!g("getex k NX"));
        assert!(!g("getex k KEEPTTL"));
        let o = parse_set_options(&args("set k v EX 1 ex 2"), SetCmd::Set).unwrap();
        assert_eq!(o.expire, Some((ExpireKind::Ex, &b"2"[..])));
        // C string semantics: "nx\0junk" is NX.
        let a: Vec<&[u8]> = vec![b"set", b"k", b"v", b"nx\0junk"];
        assert!(parse_set_options(&a, SetCmd::Set).unwrap().nx);
    }

    #[test]
    fn expire_conversion() {
        assert_eq!(expire_at_ms(ExpireKind::Ex, b"10", 5), Ok(10_005));
        assert_eq!(expire_at_ms(ExpireKind::PxAt, b"7", 5), Ok(7));
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"0", 5),
            Err(ExpireError::Invalid)
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Px, b"-1", 5),
            Err(ExpireError::Invalid)
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"x", 5),
            Err(ExpireError::NotInt)
        );
        let big = (i64::MAX / 1000 + 1).to_string();
        assert_eq!(
            expire_at_ms(ExpireKind::ExAt, big.as_bytes(), 5),
            Err(ExpireError::Invalid)
        );
        let max = i64::MAX.to_string();
        assert_eq!(
            expire_at_ms(ExpireKind::Px, max.as_bytes(), 5),
            Err(ExpireError::Invalid)
        );
        assert_eq!(
            expire_at_ms(ExpireKind::PxAt, max.as_bytes(), 5),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn getrange_normalisation() {
        assert_eq!(getrange_bounds(0, -1, 5), Some((0, 4)));
        assert_eq!(getrange_bounds(-3, -1, 5), Some((2, 4)));
        assert_eq!(getrange_bounds(-1, -3, 5), None);
        assert_eq!(getrange_bounds(3, 1, 5), None);
        assert_eq!(getrange_bounds(0, 100, 5), Some((0, 4)));
        assert_eq!(getrange_bounds(-100, -50, 5), Some((0, 0)));
        assert_eq!(getrange_bounds(0, -1, 0), None);
        assert_eq!(getrange_bounds(i64::MIN, i64::MAX, 5), Some((0, 4)));
    }
}
