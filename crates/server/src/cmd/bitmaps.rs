//! Bitmap commands (Redis's `bitops.c`): SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD and BITFIELD_RO. The bit arithmetic lives in
//! `kvik_core::bitops`; this file parses arguments in Redis's order and
//! manages the string values (writes always leave a `raw` string, grown
//! with zero bytes as far as the highest bit written).

use super::c_str;
use super::{arg_i64, is_string};
use crate::dispatch::{err, CommandTable, Ctx};
use crate::util::notify::{GENERIC, STRING};
use kvik_core::bitops::{self, BitOp, BitUnit, BitfieldType, Overflow};
use kvik_core::entry::{Entry, NewValue};
use kvik_core::object::Object;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("setbit", setbit);
    t.add("getbit", getbit);
    t.add("bitcount", bitcount);
    t.add("bitpos", bitpos);
    t.add("bitop", bitop);
    t.add("bitfield", bitfield);
    t.add("bitfield_ro", bitfield_ro);
}

const ERR_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT: &str = "ERR bit is not an integer or out of range";
const ERR_BF_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

fn max_bytes(ctx: &Ctx<'_>) -> u64 {
    ctx.srv.tun.proto_max_bulk_len.load(Ordering::Relaxed)
}

/// Redis's `lookupStringForBitCommand`: makes `key` a raw string at least
/// long enough to hold bit `max_bit` (creating it zero-filled when
/// missing). Replies WRONGTYPE and returns false for another type.
fn grow_for_bit(ctx: &mut Ctx<'_>, key: &[u8], max_bit: u64) -> bool {
    // The offset was checked against proto-max-bulk-len, so this fits.
    let need = (max_bit >> 3) as usize + 1;
    match ctx.ks.lookup_write(key) {
        None => {
            let v = vec![0u8; need];
            ctx.ks
                .insert(Entry::new(key, NewValue::Obj(Object::Str(v)), None));
            return true;
        }
        Some(e) if !is_string(e) => {
            ctx.out.error(err::WRONGTYPE);
            return false;
        }
        Some(_) => {}
    }
    if let Some(v) = raw_bytes(ctx, key) {
        if v.len() < need {
            v.resize(need, 0);
        }
    }
    true
}

/// The raw bytes of a string key made writable by [`grow_for_bit`].
fn raw_bytes<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c mut Vec<u8>> {
    match ctx.ks.lookup_write(key).map(Entry::make_object) {
        Some(Object::Str(v)) => Some(v),
        _ => None,
    }
}

fn setbit(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let Some(offset) = bitops::parse_bit_offset(args[2], false, 0, max_bytes(ctx)) else {
        return ctx.error(ERR_OFFSET);
    };
    let on = match crate::util::parse_i64(args[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return ctx.error(ERR_BIT),
    };
    if !grow_for_bit(ctx, key, offset) {
        return;
    }
    let old = match raw_bytes(ctx, key) {
        Some(v) => bitops::setbit(v, offset, on),
        None => false,
    };
    ctx.ks.modified(key);
    if old != on {
        ctx.ks.notify(STRING, "setbit", key);
    }
    ctx.out.int(old as i64);
}

fn getbit(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(offset) = bitops::parse_bit_offset(args[2], false, 0, max_bytes(ctx)) else {
        return ctx.error(ERR_OFFSET);
    };
    let Some(e) = ctx.ks.lookup_read(args[1]) else {
        return ctx.out.int(0);
    };
    let mut buf = [0u8; 20];
    match e.str_bytes(&mut buf) {
        Some(s) => ctx.out.int(bitops::getbit(s, offset) as i64),
        None => ctx.out.error(err::WRONGTYPE),
    }
}

/// Parses a `BYTE` / `BIT` unit argument.
fn parse_unit(arg: &[u8]) -> Option<BitUnit> {
    let a = c_str(arg);
    if a.eq_ignore_ascii_case(b"bit") {
        Some(BitUnit::Bit)
    } else if a.eq_ignore_ascii_case(b"byte") {
        Some(BitUnit::Byte)
    } else {
        None
    }
}

/// Looks up a key whose string value a read-only bit command inspects.
/// `Ok(None)` for a missing key; `Err(())` after replying WRONGTYPE.
fn read_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    match ctx.ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => {
            let mut buf = [0u8; 20];
            match e.str_bytes(&mut buf) {
                Some(s) => Ok(Some(s.to_vec())),
                None => {
                    ctx.out.error(err::WRONGTYPE);
                    Err(())
                }
            }
        }
    }
}

/// Runs `f` on the string value of `key` without copying it. Replies
/// WRONGTYPE (and returns None) for another type; `f` gets None for a
/// missing key.
fn with_string<R>(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Option<R> {
    match ctx.ks.lookup_read(key) {
        None => Some(f(None)),
        Some(e) => {
            let mut buf = [0u8; 20];
            match e.str_bytes(&mut buf) {
                Some(s) => Some(f(Some(s))),
                None => {
                    ctx.out.error(err::WRONGTYPE);
                    None
                }
            }
        }
    }
}

/// Checks the key of a read-only bit command. Replies the
/// missing-key answer `missing` or WRONGTYPE and returns false when there
/// is nothing to inspect.
fn lookup_bits(ctx: &mut Ctx<'_>, key: &[u8], missing: i64) -> bool {
    match ctx.ks.lookup_read(key) {
        None => {
            ctx.out.int(missing);
            false
        }
        Some(e) if !is_string(e) => {
            ctx.out.error(err::WRONGTYPE);
            false
        }
        Some(_) => true,
    }
}

/// Runs `f` on the string value of an existing string key (checked by
/// [`lookup_bits`]).
fn on_string<R: Default>(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; 20];
    match ctx.ks.lookup_write(key) {
        Some(e) => e.str_bytes(&mut buf).map(f).unwrap_or_default(),
        None => R::default(),
    }
}

/// BITCOUNT key [start end [BYTE|BIT]]. In Redis 7.2 the key is looked up
/// first (a missing key counts 0 whatever the arguments), and two negative
/// offsets with start > end count 0 before the unit is checked.
fn bitcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    if !lookup_bits(ctx, key, 0) {
        return;
    }
    let n = match args.len() {
        2 => on_string(ctx, key, bitops::bitcount),
        4 | 5 => {
            let Some(start) = arg_i64(ctx, args[2]) else {
                return;
            };
            let Some(end) = arg_i64(ctx, args[3]) else {
                return;
            };
            if start < 0 && end < 0 && start > end {
                return ctx.out.int(0);
            }
            let unit = match args.get(4) {
                None => BitUnit::Byte,
                Some(a) => match parse_unit(a) {
                    Some(u) => u,
                    None => return ctx.error(err::SYNTAX),
                },
            };
            on_string(ctx, key, |s| bitops::bitcount_range(s, start, end, unit))
        }
        _ => return ctx.error(err::SYNTAX),
    };
    ctx.out.int(n as i64);
}

/// BITPOS key bit [start [end [BYTE|BIT]]]. Redis 7.2 order: the bit
/// argument, then the key (a missing key is an endless run of zeros), then
/// start, the unit, and the end.
fn bitpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let Some(bit) = arg_i64(ctx, args[2]) else {
        return;
    };
    if bit != 0 && bit != 1 {
        return ctx.error("ERR The bit argument must be 1 or 0.");
    }
    let bit = bit == 1;
    if !lookup_bits(ctx, key, if bit { -1 } else { 0 }) {
        return;
    }
    let (start, end, unit) = match args.len() {
        3 => (0, None, BitUnit::Byte),
        4..=6 => {
            let Some(start) = arg_i64(ctx, args[3]) else {
                return;
            };
            let unit = match args.get(5) {
                None => BitUnit::Byte,
                Some(a) => match parse_unit(a) {
                    Some(u) => u,
                    None => return ctx.error(err::SYNTAX),
                },
            };
            let end = match args.get(4) {
                None => None,
                Some(a) => match arg_i64(ctx, a) {
                    Some(e) => Some(e),
                    None => return,
                },
            };
            (start, end, unit)
        }
        _ => return ctx.error(err::SYNTAX),
    };
    let pos = on_string(ctx, key, |s| bitops::bitpos(s, bit, start, end, unit));
    ctx.out.int(pos);
}

/// BITOP op destkey key [key ...]. Missing sources count as empty strings;
/// an empty result deletes the destination.
fn bitop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(op) = BitOp::parse(c_str(args[1])) else {
        return ctx.error(err::SYNTAX);
    };
    if op == BitOp::Not && args.len() != 4 {
        return ctx.error("ERR BITOP NOT must be called with a single source key.");
    }
    let dest = args[2];
    let mut srcs: Vec<Vec<u8>> = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        match read_string(ctx, key) {
            Ok(v) => srcs.push(v.unwrap_or_default()),
            Err(()) => return,
        }
    }
    let views: Vec<&[u8]> = srcs.iter().map(Vec::as_slice).collect();
    let result = bitops::bitop(op, &views);
    drop(views);
    drop(srcs);
    let len = result.len();
    if len > 0 {
        ctx.ks
            .insert(Entry::new(dest, NewValue::Obj(Object::Str(result)), None));
        ctx.ks.notify(STRING, "set", dest);
    } else if ctx.ks.remove(dest).is_some() {
        ctx.ks.notify(GENERIC, "del", dest);
    }
    ctx.out.int(len as i64);
}

/// One parsed BITFIELD operation.
#[derive(Clone, Copy, Debug)]
enum FieldOp {
    Get {
        ty: BitfieldType,
        offset: u64,
    },
    Set {
        ty: BitfieldType,
        offset: u64,
        value: i64,
        ow: Overflow,
    },
    Incr {
        ty: BitfieldType,
        offset: u64,
        incr: i64,
        ow: Overflow,
    },
}

/// Parses BITFIELD's operations (`args[2..]`), replying the first error.
/// Returns the operations and the highest bit any write touches.
fn parse_bitfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Option<(Vec<FieldOp>, Option<u64>)> {
    let max = max_bytes(ctx);
    let mut ops = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut highest: Option<u64> = None;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = c_str(args[j]);
        let (is_get, is_set) = if sub.eq_ignore_ascii_case(b"get") && remaining >= 2 {
            (true, false)
        } else if sub.eq_ignore_ascii_case(b"set") && remaining >= 3 {
            (false, true)
        } else if sub.eq_ignore_ascii_case(b"incrby") && remaining >= 3 {
            (false, false)
        } else if sub.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
            match Overflow::parse(c_str(args[j + 1])) {
                Some(o) => ow = o,
                None => {
                    ctx.error("ERR Invalid OVERFLOW type specified");
                    return None;
                }
            }
            j += 2;
            continue;
        } else {
            ctx.error(err::SYNTAX);
            return None;
        };
        let Some(ty) = BitfieldType::parse(args[j + 1]) else {
            ctx.error(ERR_BF_TYPE);
            return None;
        };
        let Some(offset) = bitops::parse_bit_offset(args[j + 2], true, ty.bits, max) else {
            ctx.error(ERR_OFFSET);
            return None;
        };
        if is_get {
            ops.push(FieldOp::Get { ty, offset });
            j += 3;
            continue;
        }
        let last = offset + u64::from(ty.bits) - 1;
        highest = Some(highest.map_or(last, |h| h.max(last)));
        let arg = arg_i64(ctx, args[j + 3])?;
        ops.push(if is_set {
            FieldOp::Set {
                ty,
                offset,
                value: arg,
                ow,
            }
        } else {
            FieldOp::Incr {
                ty,
                offset,
                incr: arg,
                ow,
            }
        });
        j += 4;
    }
    Some((ops, highest))
}

fn bitfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    bitfield_generic(ctx, args, false);
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    bitfield_generic(ctx, args, true);
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], readonly_cmd: bool) {
    let key = args[1];
    let Some((ops, highest)) = parse_bitfield(ctx, args) else {
        return;
    };
    let Some(highest) = highest else {
        // Only GETs: a missing key reads as zeros.
        let values = with_string(ctx, key, |s| {
            let s = s.unwrap_or_default();
            ops.iter()
                .map(|op| match *op {
                    FieldOp::Get { ty, offset } => bitops::bitfield_get(s, offset, ty),
                    _ => 0,
                })
                .collect::<Vec<i64>>()
        });
        if let Some(values) = values {
            ctx.out.array(values.len());
            for v in values {
                ctx.out.int(v);
            }
        }
        return;
    };
    if readonly_cmd {
        return ctx.error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    if !grow_for_bit(ctx, key, highest) {
        return;
    }
    // The replies are collected first: the value is borrowed mutably.
    let mut replies: Vec<Option<i64>> = Vec::with_capacity(ops.len());
    let mut changed = false;
    if let Some(v) = raw_bytes(ctx, key) {
        for op in &ops {
            let r = match *op {
                FieldOp::Get { ty, offset } => Some(bitops::bitfield_get(v, offset, ty)),
                FieldOp::Set {
                    ty,
                    offset,
                    value,
                    ow,
                } => bitops::bitfield_set(v, offset, ty, value, ow).map(|u| u.reply),
                FieldOp::Incr {
                    ty,
                    offset,
                    incr,
                    ow,
                } => bitops::bitfield_incrby(v, offset, ty, incr, ow).map(|u| u.reply),
            };
            changed |= r.is_some() && !matches!(op, FieldOp::Get { .. });
            replies.push(r);
        }
    }
    if changed {
        ctx.ks.modified(key);
        ctx.ks.notify(STRING, "setbit", key);
    }
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(n) => ctx.out.int(n),
            None => ctx.out.null(),
        }
    }
}
