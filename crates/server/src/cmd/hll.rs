//! HyperLogLog commands (Redis's `hyperloglog.c`): PFADD, PFCOUNT, PFMERGE,
//! PFDEBUG and PFSELFTEST. Sketches are plain string values in Redis's
//! `HYLL` format (see `kvik_core::hll`), so GET/SET/COPY/RENAME need nothing
//! special and the bytes match Redis's. Every command that modifies a
//! sketch (including PFCOUNT refreshing the cached cardinality) leaves a
//! `raw` string, as Redis's `dbUnshareStringValue` does.

use super::c_str;
use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::hll;
use kvik_core::object::Object;
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("pfadd", pfadd);
    t.add("pfcount", pfcount);
    t.add("pfmerge", pfmerge);
    t.add("pfdebug", pfdebug);
    t.add("pfselftest", pfselftest);
}

/// A string that is not a HyperLogLog (bad magic, unknown encoding, wrong
/// dense length, integer-encoded...).
pub const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// A sketch whose sparse opcodes are inconsistent.
pub const ERR_CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// `hll-sparse-max-bytes`.
fn max_bytes(ctx: &Ctx<'_>) -> u64 {
    ctx.srv
        .tun
        .hll_sparse_max_bytes
        .load(Ordering::Relaxed)
        .max(0) as u64
}

/// The bytes of an entry holding a HyperLogLog, or the error Redis's
/// `isHLLObjectOrReply` gives: plain WRONGTYPE for another type, the HLL
/// variant for a string that is not a sketch.
fn sketch(e: &Entry) -> Result<&[u8], &'static str> {
    let b = match e.value() {
        ValueRef::Str(b) => b,
        // Integer-encoded strings are never sketches (Redis: not sds).
        ValueRef::Int(_) => return Err(ERR_NOT_HLL),
        ValueRef::Obj(Object::Str(v)) => v,
        ValueRef::Obj(_) => return Err(err::WRONGTYPE),
    };
    if hll::is_valid(b) {
        Ok(b)
    } else {
        Err(ERR_NOT_HLL)
    }
}

/// The sketch of an entry already checked with [`sketch`], made a raw
/// string so it can be edited in place.
fn sketch_mut(e: &mut Entry) -> Option<&mut Vec<u8>> {
    match e.make_object() {
        Object::Str(v) => Some(v),
        _ => None,
    }
}

/// Looks up `key` for writing and checks it holds a sketch. `Ok(false)`
/// when missing; `Err` after replying the error.
fn check_existing(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, ()> {
    match ctx.ks.lookup_write(key) {
        None => Ok(false),
        Some(e) => match sketch(e) {
            Ok(_) => Ok(true),
            Err(m) => {
                ctx.error(m);
                Err(())
            }
        },
    }
}

/// The writable sketch under `key` (checked or just created).
fn writable<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c mut Vec<u8>> {
    ctx.ks.lookup_write(key).and_then(sketch_mut)
}

/// Creates an empty sparse sketch under `key` (a raw string, as Redis's
/// `createHLLObject`).
fn create(ctx: &mut Ctx<'_>, key: &[u8]) {
    let v = hll::new_sparse();
    ctx.ks
        .insert(Entry::new(key, NewValue::Obj(Object::Str(v)), None));
}

fn pfadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let key = args[1];
    let max = max_bytes(ctx);
    let mut updated = 0;
    match check_existing(ctx, key) {
        Err(()) => return,
        Ok(true) => {}
        Ok(false) => {
            create(ctx, key);
            updated += 1;
        }
    }
    let Some(h) = writable(ctx, key) else {
        return ctx.error(ERR_CORRUPT);
    };
    for ele in &args[2..] {
        match hll::add(h, ele, max) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            // Earlier additions stay, as in Redis (the sparse path already
            // marked the cache stale for each of them).
            Err(hll::Corrupt) => return ctx.error(ERR_CORRUPT),
        }
    }
    if updated > 0 {
        hll::invalidate_cache(h);
        ctx.ks.modified(key);
        ctx.ks.notify(crate::util::notify::STRING, "pfadd", key);
    }
    ctx.out.int(i64::from(updated > 0));
}

fn pfcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() > 2 {
        // The union of several sketches, computed in a temporary register
        // array: the keys themselves are not touched.
        let mut max = vec![0u8; hll::REGISTERS];
        for key in &args[1..] {
            let Some(e) = ctx.ks.lookup_read(key) else {
                continue;
            };
            let res = sketch(e).and_then(|b| hll::merge_into(&mut max, b).map_err(|_| ERR_CORRUPT));
            if let Err(m) = res {
                return ctx.error(m);
            }
        }
        return ctx.out.int(hll::count_raw(&max) as i64);
    }
    let key = args[1];
    let Some(e) = ctx.ks.lookup_read(key) else {
        return ctx.out.int(0);
    };
    if let Err(m) = sketch(e) {
        return ctx.error(m);
    }
    let Some(h) = sketch_mut(e) else {
        return ctx.error(ERR_CORRUPT);
    };
    if let Some(card) = hll::cached_card(h) {
        // The stale bit is clear, so this fits in an i64.
        return ctx.out.int(card as i64);
    }
    match hll::count(h) {
        Ok(card) => {
            // Refreshing the cache modifies the string (visible via GET).
            hll::set_cached_card(h, card);
            ctx.ks.modified(key);
            ctx.out.int(card as i64);
        }
        Err(hll::Corrupt) => ctx.error(ERR_CORRUPT),
    }
}

fn pfmerge(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let dest = args[1];
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    // The destination is a source too (its registers are kept).
    for key in &args[1..] {
        let Some(e) = ctx.ks.lookup_read(key) else {
            continue;
        };
        let res = sketch(e).and_then(|b| {
            use_dense |= hll::is_dense(b);
            hll::merge_into(&mut max, b).map_err(|_| ERR_CORRUPT)
        });
        if let Err(m) = res {
            return ctx.error(m);
        }
    }
    match check_existing(ctx, dest) {
        Err(()) => return,
        Ok(true) => {}
        Ok(false) => create(ctx, dest),
    }
    let limit = max_bytes(ctx);
    let Some(h) = writable(ctx, dest) else {
        return ctx.error(ERR_CORRUPT);
    };
    // Dense when any input is dense; otherwise the sparse destination gets
    // each register set in turn (and may still be promoted on the way).
    if use_dense && hll::to_dense(h).is_err() {
        return ctx.error(ERR_CORRUPT);
    }
    for (j, &m) in max.iter().enumerate() {
        if m != 0 {
            let _ = hll::set_register(h, j, m, limit);
        }
    }
    hll::invalidate_cache(h);
    ctx.ks.modified(dest);
    ctx.ks.notify(crate::util::notify::STRING, "pfadd", dest);
    ctx.out.ok();
}

fn pfdebug(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let sub = c_str(args[1]).to_ascii_lowercase();
    let key = args[2];
    let Some(e) = ctx.ks.lookup_write(key) else {
        return ctx.error("ERR The specified key does not exist");
    };
    if let Err(m) = sketch(e) {
        return ctx.error(m);
    }
    let Some(h) = sketch_mut(e) else {
        return ctx.error(ERR_CORRUPT);
    };
    match sub.as_slice() {
        b"getreg" => {
            match hll::to_dense(h) {
                Ok(true) => ctx.ks.modified(key),
                Ok(false) => {}
                Err(hll::Corrupt) => return ctx.error(ERR_CORRUPT),
            }
            let Some(h) = writable(ctx, key) else {
                return ctx.error(ERR_CORRUPT);
            };
            match hll::registers(h) {
                Ok(regs) => {
                    ctx.out.array(regs.len());
                    for r in regs {
                        ctx.out.int(i64::from(r));
                    }
                }
                Err(hll::Corrupt) => ctx.error(ERR_CORRUPT),
            }
        }
        b"decode" => {
            if hll::is_dense(h) {
                return ctx.error("ERR HLL encoding is not sparse");
            }
            let text = hll::decode_sparse(h);
            ctx.out.bulk(text.as_bytes());
        }
        b"encoding" => {
            let name = if hll::is_dense(h) { "dense" } else { "sparse" };
            ctx.out.simple(name);
        }
        b"todense" => match hll::to_dense(h) {
            Ok(conv) => {
                if conv {
                    ctx.ks.modified(key);
                }
                ctx.out.int(i64::from(conv));
            }
            Err(hll::Corrupt) => ctx.error(ERR_CORRUPT),
        },
        _ => {
            let mut msg = b"ERR Unknown PFDEBUG subcommand '".to_vec();
            msg.extend_from_slice(c_str(args[1]));
            msg.push(b'\'');
            ctx.out.error_bytes(&msg);
        }
    }
}

/// A light self-check of the sketch code (Redis's PFSELFTEST runs a long
/// statistical test; this checks register packing, the sparse/dense
/// equivalence and the estimator on a small set, and replies OK).
fn pfselftest(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    match selftest() {
        Ok(()) => ctx.out.ok(),
        Err(what) => ctx.error(&format!("ERR TESTFAILED {what}")),
    }
}

fn selftest() -> Result<(), &'static str> {
    let mut sparse = hll::new_sparse();
    let mut dense = hll::new_sparse();
    hll::to_dense(&mut dense).map_err(|_| "dense conversion")?;
    for i in 0..1000u32 {
        let ele = i.to_le_bytes();
        hll::add(&mut sparse, &ele, u64::MAX).map_err(|_| "sparse add")?;
        hll::add(&mut dense, &ele, u64::MAX).map_err(|_| "dense add")?;
    }
    let a = hll::registers(&sparse).map_err(|_| "sparse registers")?;
    let b = hll::registers(&dense).map_err(|_| "dense registers")?;
    if a != b {
        return Err("sparse and dense registers differ");
    }
    let c = hll::count(&dense).map_err(|_| "count")?;
    if hll::count(&sparse) != Ok(c) || !(950..=1050).contains(&c) {
        return Err("cardinality estimate");
    }
    Ok(())
}
