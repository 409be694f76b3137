//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD: Redis's
//! `zunionInterDiffGenericCommand`. Plain sets are accepted as inputs, each
//! member with score 1.

use super::{limits, reply_pair, reply_pairs_header, store_result};
use crate::cmd::{arg_i64, is};
use crate::db::Keyspace;
use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::entry::{Entry, ValueRef};
use kvik_core::num;
use kvik_core::object::Object;
use kvik_core::set::{Member, Set};
use kvik_core::zset::{cmp_entries, ZSet};
use std::borrow::Cow;
use std::collections::HashMap;

/// Registers the set-operation commands.
pub fn register(t: &mut CommandTable) {
    t.add("zunion", zunion);
    t.add("zinter", zinter);
    t.add("zdiff", zdiff);
    t.add("zunionstore", zunionstore);
    t.add("zinterstore", zinterstore);
    t.add("zdiffstore", zdiffstore);
    t.add("zintercard", zintercard);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn zunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    generic(ctx, args, None, 1, Op::Union, false);
}

fn zinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    generic(ctx, args, None, 1, Op::Inter, false);
}

fn zdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    generic(ctx, args, None, 1, Op::Diff, false);
}

fn zunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    generic(ctx, args, Some(args[1]), 2, Op::Union, false);
}

fn zinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    generic(ctx, args, Some(args[1]), 2, Op::Inter, false);
}

fn zdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    generic(ctx, args, Some(args[1]), 2, Op::Diff, false);
}

fn zintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    generic(ctx, args, None, 1, Op::Inter, true);
}

/// One input: a sorted set, a plain set (scores 1) or nothing.
#[derive(Clone, Copy)]
enum Src<'a> {
    Missing,
    Z(&'a ZSet),
    S(&'a Set),
}

impl<'a> Src<'a> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    /// The score of `member`, if present.
    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Z(z) => z.score(member),
            Src::S(s) => s.contains(member).then_some(1.0),
        }
    }

    /// Every (member, score), members borrowed where possible.
    fn for_each(&self, mut f: impl FnMut(Cow<'a, [u8]>, f64)) {
        match *self {
            Src::Missing => {}
            // Redis walks sorted sets from the highest score down.
            Src::Z(z) => z
                .iter_range(z.len().saturating_sub(1), z.len(), true)
                .for_each(|(m, s)| f(Cow::Borrowed(m), s)),
            Src::S(s) => s.iter().for_each(|m| match m {
                Member::Str(b) => f(Cow::Borrowed(b), 1.0),
                other => f(Cow::Owned(other.to_vec()), 1.0),
            }),
        }
    }

    /// Identity of the underlying value (Redis compares object pointers).
    fn addr(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Z(z) => *z as *const ZSet as usize,
            Src::S(s) => *s as *const Set as usize,
        }
    }
}

/// The value of `key` as an input, from a table reference (the keys were
/// looked up, expired and type-checked before).
fn src_of(e: Option<&Entry>) -> Src<'_> {
    match e.map(|e| e.value()) {
        Some(ValueRef::Obj(Object::ZSet(z))) => Src::Z(z),
        Some(ValueRef::Obj(Object::Set(s))) => Src::S(s),
        _ => Src::Missing,
    }
}

/// Shared references to the entries of several keys at once (their shards
/// are locked by the dispatcher).
fn peek_all<'a>(ks: &'a Keyspace<'_>, keys: &[&[u8]]) -> Vec<Option<&'a Entry>> {
    let db = ks.db;
    keys.iter()
        .map(|k| {
            let shard = ks.srv.store.shard_of(k);
            ks.locks.shard_ref(shard).and_then(|s| s.dbs[db].get(k))
        })
        .collect()
}

/// SUM / MIN / MAX of Redis's `zunionInterAggregate` (a NaN sum, from
/// `inf + -inf`, is 0).
#[inline]
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

fn generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: Op,
    card_only: bool,
) {
    let Some(setnum) = arg_i64(ctx, args[numkeys_idx]) else {
        return;
    };
    if setnum < 1 {
        ctx.out.error(&format!(
            "ERR at least 1 input key is needed for '{}' command",
            ctx.cmd.spec.name
        ));
        return;
    }
    let avail = args.len() - (numkeys_idx + 1);
    if setnum as u64 > avail as u64 {
        ctx.out.error(err::SYNTAX);
        return;
    }
    let setnum = setnum as usize;
    let keys = &args[numkeys_idx + 1..numkeys_idx + 1 + setnum];
    // Look every input up first (expiry, stats, type), as Redis does before
    // reading the options.
    for k in keys {
        if let Some(e) = ctx.ks.lookup_read(k) {
            if !matches!(
                e.value(),
                ValueRef::Obj(Object::ZSet(_)) | ValueRef::Obj(Object::Set(_))
            ) {
                ctx.out.error(err::WRONGTYPE);
                return;
            }
        }
    }
    let mut weights = vec![1.0f64; setnum];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit: u64 = 0;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = args[j];
        if op != Op::Diff && !card_only && remaining > setnum && is(a, "weights") {
            j += 1;
            for w in weights.iter_mut() {
                match num::parse_f64(args[j]) {
                    Some(v) => *w = v,
                    None => {
                        ctx.out.error("ERR weight value is not a float");
                        return;
                    }
                }
                j += 1;
            }
        } else if op != Op::Diff && !card_only && remaining >= 2 && is(a, "aggregate") {
            let v = args[j + 1];
            agg = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                ctx.out.error(err::SYNTAX);
                return;
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "limit") {
            match crate::util::parse_i64(args[j + 1]) {
                Some(v) if v >= 0 => limit = v as u64,
                _ => {
                    ctx.out.error("ERR LIMIT can't be negative");
                    return;
                }
            }
            j += 2;
        } else {
            ctx.out.error(err::SYNTAX);
            return;
        }
    }
    let limits = limits(ctx);

    // Compute with shared references to all inputs at once.
    let entries = peek_all(&ctx.ks, keys);
    let mut srcs: Vec<(Src<'_>, f64)> = entries
        .iter()
        .zip(&weights)
        .map(|(e, w)| (src_of(*e), *w))
        .collect();
    if op != Op::Diff {
        // Smallest first (a stable sort, like glibc's qsort here).
        srcs.sort_by_key(|(s, _)| s.len());
    }
    let mut result: Vec<(Cow<'_, [u8]>, f64)> = Vec::new();
    let mut cardinality: u64 = 0;
    match op {
        Op::Inter => {
            let (first, w0) = srcs[0];
            if first.len() > 0 {
                let mut done = false;
                first.for_each(|m, s| {
                    if done {
                        return;
                    }
                    let mut score = w0 * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for &(other, w) in &srcs[1..] {
                        let v = if other.addr() == first.addr() {
                            s
                        } else {
                            match other.score(&m) {
                                Some(v) => v,
                                None => return,
                            }
                        };
                        aggregate(&mut score, v * w, agg);
                    }
                    if card_only {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            done = true;
                        }
                    } else {
                        result.push((m, score));
                    }
                });
            }
        }
        Op::Union => {
            let mut acc: HashMap<Cow<'_, [u8]>, f64> =
                HashMap::with_capacity(srcs.last().map_or(0, |(s, _)| s.len()));
            for &(src, w) in &srcs {
                src.for_each(|m, s| {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(&m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m, score);
                        }
                    }
                });
            }
            result = acc.into_iter().collect();
        }
        Op::Diff => {
            let (first, _) = srcs[0];
            first.for_each(|m, s| {
                if srcs[1..].iter().all(|(o, _)| o.score(&m).is_none()) {
                    result.push((m, s));
                }
            });
        }
    }

    if card_only {
        drop(entries);
        ctx.out.int(cardinality as i64);
        return;
    }
    match dst {
        Some(dst) => {
            let n = result.len();
            let z = ZSet::from_unique_pairs(result, limits);
            drop(entries);
            let event = match op {
                Op::Union => "zunionstore",
                Op::Inter => "zinterstore",
                Op::Diff => "zdiffstore",
            };
            store_result(&mut ctx.ks, dst, z, event);
            ctx.out.int(n as i64);
        }
        None => {
            result.sort_by(|a, b| cmp_entries(a.1, &a.0, b.1, &b.0));
            let out = &mut *ctx.out;
            reply_pairs_header(out, result.len(), withscores);
            for (m, s) in &result {
                reply_pair(out, m, *s, withscores);
            }
        }
    }
}
