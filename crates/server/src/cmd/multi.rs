//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queuing happens in the dispatcher (`dispatch::run`), which also flags
//! the transaction when a command is rejected while queuing. EXEC locks,
//! once and in ascending order, the union of the shards of every queued
//! command's keys and of every watched key (all shards as soon as one
//! queued command's keys are not fully described by its key specs), and
//! runs the handlers one after the other under that one lock set, so no
//! other client observes an intermediate state.

use crate::dispatch::{CommandTable, Ctx};
use crate::multi;

/// Registers the transaction commands.
pub fn register(t: &mut CommandTable) {
    t.add("multi", multi_cmd);
    t.add("exec", exec);
    t.add("discard", discard);
    t.add("watch", watch);
    t.add("unwatch", unwatch);
}

fn multi_cmd(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    if ctx.client.tx.in_multi() {
        ctx.error("ERR MULTI calls can not be nested");
        return;
    }
    ctx.client.tx.begin();
    ctx.out.ok();
}

fn discard(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    if ctx.client.tx.take().is_none() {
        ctx.error("ERR DISCARD without MULTI");
        return;
    }
    multi::unwatch(&mut ctx.client.tx, &ctx.srv.store);
    ctx.out.ok();
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    multi::unwatch(&mut ctx.client.tx, &ctx.srv.store);
    ctx.out.ok();
}

fn watch(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if ctx.client.tx.in_multi() {
        ctx.error("ERR WATCH inside MULTI is not allowed");
        return;
    }
    let db = ctx.ks.db;
    for key in &args[1..] {
        // Lazy expiry first, so an already expired key counts as missing
        // (Redis's "expired at WATCH time" case).
        let existed = ctx.ks.exists_in(db, key);
        let shard = ctx.srv.store.shard_of(key);
        if let Some(s) = ctx.ks.locks.shard(shard) {
            multi::watch(&mut ctx.client.tx, s, db, key, existed);
        }
    }
    ctx.out.ok();
}

/// Resolves a queued request to its command (it was resolved once when
/// queued, so this only fails if the table changed).
pub fn resolve<'a>(
    table: &'a CommandTable,
    args: &[&[u8]],
) -> Option<&'a crate::dispatch::Command> {
    let mut cmd = table.get(args[0])?;
    if !cmd.subcommands.is_empty() && args.len() >= 2 {
        let mut buf = [0u8; 32];
        let sub = crate::util::lower_into(args[1], &mut buf)?;
        cmd = cmd.subcommands.get(sub)?;
    }
    Some(cmd)
}

fn exec(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let Some((queue, errored)) = ctx.client.tx.take() else {
        ctx.error("ERR EXEC without MULTI");
        return;
    };
    let srv = ctx.srv;
    if errored {
        multi::unwatch(&mut ctx.client.tx, &srv.store);
        ctx.error("EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    multi::prune_orphans(&srv.store);
    let queue: Vec<Vec<&[u8]>> = queue
        .iter()
        .map(|a| a.iter().map(|v| v.as_slice()).collect())
        .collect();

    // One lock set for the whole transaction, taken in ascending order.
    let mut ids: Vec<usize> = ctx.client.tx.watched_shards(&srv.store).collect();
    let mut all = false;
    for args in &queue {
        let Some(cmd) = resolve(&srv.commands, args) else {
            continue;
        };
        if cmd.whole_keyspace() {
            // Its `lock_all` must not release locks mid-transaction.
            all = true;
            break;
        }
        match crate::cmd::command::keys_from_specs(cmd.spec, args) {
            Some(keys) => ids.extend(keys.iter().map(|k| srv.store.shard_of(args[k.pos]))),
            None => {
                all = true;
                break;
            }
        }
    }
    ctx.ks.locks.release();
    ctx.ks.locks = if all {
        srv.store.lock_all()
    } else {
        srv.store.lock_set(&mut ids)
    };

    let failed = multi::watch_failed(&ctx.client.tx, &srv.store, &ctx.ks.locks, ctx.ks.now_ms);
    multi::unwatch_locked(&mut ctx.client.tx, &srv.store, &mut ctx.ks.locks);
    if failed {
        ctx.out.null_array();
        return;
    }

    ctx.out.array(queue.len());
    let exec_cmd = ctx.cmd;
    let deny = std::mem::replace(&mut ctx.client.deny_blocking, true);
    let exec_no_touch = ctx.ks.no_touch;
    for args in &queue {
        let Some(cmd) = resolve(&srv.commands, args) else {
            ctx.error("ERR unknown command");
            continue;
        };
        let Some(handler) = cmd.handler else {
            ctx.error("ERR unknown command");
            continue;
        };
        crate::dispatch::run_nested(ctx, cmd, handler, args);
    }
    ctx.client.deny_blocking = deny;
    ctx.cmd = exec_cmd;
    ctx.ks.cmd_name = exec_cmd.spec.name;
    ctx.ks.no_touch = exec_no_touch;
}
