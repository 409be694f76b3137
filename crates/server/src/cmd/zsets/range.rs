//! ZRANGE and its older forms (ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
//! ZRANGEBYLEX, ZREVRANGEBYLEX) and ZRANGESTORE, all through Redis's
//! `zrangeGenericCommand` option parser so that each form accepts exactly
//! the options Redis accepts for it, in the same order of checks.

use super::{
    limits, rank_range, read_zset, reply_pair, reply_pairs_header, store_result, WrongType,
    ERR_MINMAX_FLOAT, ERR_MINMAX_LEX,
};
use crate::cmd::{arg_i64, is};
use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::zset::{LexRange, ScoreRange, ZSet};

/// Registers the range commands.
pub fn register(t: &mut CommandTable) {
    t.add("zrange", zrange);
    t.add("zrangestore", zrangestore);
    t.add("zrevrange", zrevrange);
    t.add("zrangebyscore", zrangebyscore);
    t.add("zrevrangebyscore", zrevrangebyscore);
    t.add("zrangebylex", zrangebylex);
    t.add("zrevrangebylex", zrevrangebylex);
}

/// Kind of range; `Auto` until an option decides (ZRANGE, ZRANGESTORE).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Direction; `Auto` until REV is seen (ZRANGE, ZRANGESTORE).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Auto,
    Fwd,
    Rev,
}

fn zrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrange_generic(ctx, args, 1, None, Kind::Auto, Dir::Auto);
}

fn zrangestore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrange_generic(ctx, args, 2, Some(args[1]), Kind::Auto, Dir::Auto);
}

fn zrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrange_generic(ctx, args, 1, None, Kind::Rank, Dir::Rev);
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrange_generic(ctx, args, 1, None, Kind::Score, Dir::Fwd);
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrange_generic(ctx, args, 1, None, Kind::Score, Dir::Rev);
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrange_generic(ctx, args, 1, None, Kind::Lex, Dir::Fwd);
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    zrange_generic(ctx, args, 1, None, Kind::Lex, Dir::Rev);
}

/// A parsed range.
enum Range<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// Redis's `zrangeGenericCommand`. `start` is the index of the source key;
/// `store` the destination of ZRANGESTORE.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    start: usize,
    store: Option<&[u8]>,
    mut kind: Kind,
    mut dir: Dir,
) {
    let key = args[start];
    let mut minidx = start + 1;
    let mut maxidx = start + 2;
    let mut withscores = false;
    let mut offset: i64 = 0;
    let mut limit: i64 = -1;
    let mut j = start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = args[j];
        if store.is_none() && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            let Some(o) = arg_i64(ctx, args[j + 1]) else {
                return;
            };
            let Some(l) = arg_i64(ctx, args[j + 2]) else {
                return;
            };
            offset = o;
            limit = l;
            j += 2;
        } else if dir == Dir::Auto && is(a, "rev") {
            dir = Dir::Rev;
        } else if kind == Kind::Auto && is(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is(a, "byscore") {
            kind = Kind::Score;
        } else {
            ctx.out.error(err::SYNTAX);
            return;
        }
        j += 1;
    }
    let rev = dir == Dir::Rev;
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    // As in Redis, only a LIMIT with a count other than -1 counts as given.
    if limit != -1 && kind == Kind::Rank {
        ctx.out.error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
        return;
    }
    if withscores && kind == Kind::Lex {
        ctx.out
            .error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return;
    }
    if rev && kind != Kind::Rank {
        // The range is given as max, min.
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let range = match kind {
        Kind::Score => match ScoreRange::parse(args[minidx], args[maxidx]) {
            Some(r) => Range::Score(r),
            None => {
                ctx.out.error(ERR_MINMAX_FLOAT);
                return;
            }
        },
        Kind::Lex => match LexRange::parse(args[minidx], args[maxidx]) {
            Some(r) => Range::Lex(r),
            None => {
                ctx.out.error(ERR_MINMAX_LEX);
                return;
            }
        },
        _ => {
            let Some(s) = arg_i64(ctx, args[minidx]) else {
                return;
            };
            let Some(e) = arg_i64(ctx, args[maxidx]) else {
                return;
            };
            Range::Rank(s, e)
        }
    };
    let limits = limits(ctx);
    let z = match read_zset(&mut ctx.ks, key) {
        Err(WrongType) => {
            ctx.out.error(err::WRONGTYPE);
            return;
        }
        Ok(None) => {
            match store {
                Some(dst) => {
                    if ctx.ks.remove(dst).is_some() {
                        ctx.ks.notify(crate::util::notify::GENERIC, "del", dst);
                    }
                    ctx.out.int(0);
                }
                None => ctx.out.array(0),
            }
            return;
        }
        Ok(Some(z)) => z,
    };
    let (first, count) = select(z, &range, rev, offset, limit);
    let it = z.iter_range(first, count, rev);
    match store {
        Some(dst) => {
            let pairs: Vec<(&[u8], f64)> = it.collect();
            let n = pairs.len();
            let result = ZSet::from_unique_pairs(pairs, limits);
            store_result(&mut ctx.ks, dst, result, "zrangestore");
            ctx.out.int(n as i64);
        }
        None => {
            let out = &mut *ctx.out;
            reply_pairs_header(out, it.len(), withscores);
            for (m, s) in it {
                reply_pair(out, m, s, withscores);
            }
        }
    }
}

/// The first ascending rank to emit and how many, walking down from it
/// when `rev`.
fn select(z: &ZSet, range: &Range<'_>, rev: bool, offset: i64, limit: i64) -> (usize, usize) {
    let len = z.len();
    let (lo, hi) = match range {
        Range::Rank(s, e) => {
            // Reverse ranks count from the top.
            let (lo, hi) = rank_range(*s, *e, len);
            if lo == hi {
                return (0, 0);
            }
            return if rev {
                (len - 1 - lo, hi - lo)
            } else {
                (lo, hi - lo)
            };
        }
        Range::Score(r) => z.score_range_ranks(r),
        Range::Lex(r) => z.lex_range_ranks(r),
    };
    // Redis skips `offset` elements one by one, so a negative offset never
    // stops skipping: nothing is returned. A negative limit means all.
    let n = hi - lo;
    if offset < 0 || offset as u64 >= n as u64 {
        return (0, 0);
    }
    let offset = offset as usize;
    let avail = n - offset;
    let count = if limit < 0 {
        avail
    } else {
        avail.min(limit as u64 as usize)
    };
    if rev {
        (hi - 1 - offset, count)
    } else {
        (lo + offset, count)
    }
}
