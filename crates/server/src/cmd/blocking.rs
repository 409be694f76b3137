//! Blocking list and sorted-set commands: BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! Each parses its arguments as Redis does (syntax errors first, then the
//! timeout), serves at once when one of its keys holds elements, and
//! otherwise blocks through [`crate::blocking::block`]. When a key becomes
//! ready the same handler is re-run for the waiting client.

use crate::blocking::{block, parse_timeout, BlockRequest, Kind};
use crate::cmd::lists::{
    after_removal, move_generic, mpop_from, mpop_parse, parse_end, reply_item, write_list,
};
use crate::cmd::zsets::{write_zset, zmpop_parse, zpop_generic, Pop};
use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::list::End;

/// Registers the blocking commands.
pub fn register(t: &mut CommandTable) {
    t.add("blpop", blpop);
    t.add("brpop", brpop);
    t.add("blmove", blmove);
    t.add("brpoplpush", brpoplpush);
    t.add("blmpop", blmpop);
    t.add("bzpopmin", bzpopmin);
    t.add("bzpopmax", bzpopmax);
    t.add("bzmpop", bzmpop);
    t.add("client|unblock", client_unblock);
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]
fn client_unblock(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() > 4 {
        let sub = String::from_utf8_lossy(args[1]);
        return ctx.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
        ));
    }
    let mut error = false;
    if let Some(reason) = args.get(3) {
        if crate::cmd::is(reason, "error") {
            error = true;
        } else if !crate::cmd::is(reason, "timeout") {
            return ctx.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        }
    }
    let Some(id) = crate::cmd::arg_i64(ctx, args[2]) else {
        return;
    };
    let done = u64::try_from(id).is_ok_and(|id| crate::blocking::unblock(ctx.srv, id, error));
    ctx.out.int(done as i64);
}

/// Blocks on `keys` for the command in `args`.
fn wait(ctx: &mut Ctx<'_>, args: &[&[u8]], keys: &[&[u8]], kind: Kind, deadline: i64, bulk: bool) {
    block(
        ctx,
        BlockRequest {
            keys: keys.iter().map(|k| k.to_vec()).collect(),
            kind,
            deadline_ms: deadline,
            args: args.iter().map(|a| a.to_vec()).collect(),
            unblock_on_nokey: false,
            null_bulk: bulk,
        },
    );
}

/// The first of `keys` for which `nonempty` says Ok(true); Err after
/// replying WRONGTYPE for a key of another type met first.
fn first_ready<'k, E>(
    ctx: &mut Ctx<'_>,
    keys: &[&'k [u8]],
    nonempty: impl Fn(&mut Ctx<'_>, &[u8]) -> Result<bool, E>,
) -> Result<Option<&'k [u8]>, ()> {
    for &key in keys {
        match nonempty(ctx, key) {
            Err(_) => {
                ctx.out.error(err::WRONGTYPE);
                return Err(());
            }
            Ok(true) => return Ok(Some(key)),
            Ok(false) => {}
        }
    }
    Ok(None)
}

/// The first of `keys` holding a non-empty list.
fn first_list<'k>(ctx: &mut Ctx<'_>, keys: &[&'k [u8]]) -> Result<Option<&'k [u8]>, ()> {
    first_ready(ctx, keys, |ctx, key| {
        write_list(&mut ctx.ks, key).map(|l| l.is_some_and(|l| !l.is_empty()))
    })
}

/// The first of `keys` holding a sorted set.
fn first_zset<'k>(ctx: &mut Ctx<'_>, keys: &[&'k [u8]]) -> Result<Option<&'k [u8]>, ()> {
    first_ready(ctx, keys, |ctx, key| {
        write_zset(&mut ctx.ks, key).map(|z| z.is_some_and(|z| !z.is_empty()))
    })
}

fn blpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    bpop(ctx, args, End::Head);
}

fn brpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    bpop(ctx, args, End::Tail);
}

/// BLPOP / BRPOP key [key ...] timeout
fn bpop(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End) {
    let last = args.len() - 1;
    let Some(deadline) = parse_timeout(ctx, args[last], false) else {
        return;
    };
    let keys = &args[1..last];
    let Ok(found) = first_list(ctx, keys) else {
        return;
    };
    let Some(key) = found else {
        return wait(ctx, args, keys, Kind::List, deadline, false);
    };
    let now_empty = match write_list(&mut ctx.ks, key) {
        Ok(Some(l)) => match l.pop(end) {
            Some(item) => {
                ctx.out.array(2);
                ctx.out.bulk(key);
                reply_item(ctx.out, &item);
                l.is_empty()
            }
            None => return ctx.out.null_array(),
        },
        _ => return ctx.out.null_array(),
    };
    let event = if end == End::Head { "lpop" } else { "rpop" };
    ctx.ks.notify(crate::util::notify::LIST, event, key);
    after_removal(ctx, key, now_empty);
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
fn blmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let (Some(from), Some(to)) = (parse_end(args[3]), parse_end(args[4])) else {
        return ctx.error(err::SYNTAX);
    };
    bmove(ctx, args, from, to, args[5]);
}

/// BRPOPLPUSH source destination timeout
fn brpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    bmove(ctx, args, End::Tail, End::Head, args[3]);
}

fn bmove(ctx: &mut Ctx<'_>, args: &[&[u8]], from: End, to: End, timeout: &[u8]) {
    let Some(deadline) = parse_timeout(ctx, timeout, false) else {
        return;
    };
    let Ok(found) = first_list(ctx, &args[1..2]) else {
        return;
    };
    match found {
        Some(src) => move_generic(ctx, src, args[2], from, to),
        None => wait(ctx, args, &args[1..2], Kind::List, deadline, true),
    }
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn blmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some((keys, end, count)) = mpop_parse(ctx, args, 2) else {
        return;
    };
    let Some(deadline) = parse_timeout(ctx, args[1], false) else {
        return;
    };
    let Ok(found) = first_list(ctx, &args[keys.clone()]) else {
        return;
    };
    match found {
        Some(key) => mpop_from(ctx, key, end, count),
        None => wait(ctx, args, &args[keys], Kind::List, deadline, false),
    }
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    bzpop(ctx, args, false);
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    bzpop(ctx, args, true);
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout
fn bzpop(ctx: &mut Ctx<'_>, args: &[&[u8]], max: bool) {
    let last = args.len() - 1;
    let Some(deadline) = parse_timeout(ctx, args[last], false) else {
        return;
    };
    let keys = &args[1..last];
    let Ok(found) = first_zset(ctx, keys) else {
        return;
    };
    match found {
        Some(key) => zpop_generic(ctx, &[key], max, None, Pop::Blocking),
        None => wait(ctx, args, keys, Kind::ZSet, deadline, false),
    }
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
fn bzmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some((keys, max, count)) = zmpop_parse(ctx, args, 2) else {
        return;
    };
    let Some(deadline) = parse_timeout(ctx, args[1], false) else {
        return;
    };
    let Ok(found) = first_zset(ctx, &args[keys.clone()]) else {
        return;
    };
    match found {
        Some(key) => zpop_generic(ctx, &[key], max, Some(count), Pop::Multi),
        None => wait(ctx, args, &args[keys], Kind::ZSet, deadline, false),
    }
}
