//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH
//! and PUBSUB introspection. The registry and delivery are in
//! [`crate::pubsub`].

use super::server::{reply_help, subcommand_syntax_error};
use crate::dispatch::{CommandTable, Ctx};
use crate::pubsub::Kind;
use crate::store::Locked;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("subscribe", subscribe);
    t.add("psubscribe", psubscribe);
    t.add("ssubscribe", ssubscribe);
    t.add("unsubscribe", unsubscribe);
    t.add("punsubscribe", punsubscribe);
    t.add("sunsubscribe", sunsubscribe);
    t.add("publish", publish);
    t.add("spublish", spublish);
    t.add("pubsub|channels", pubsub_channels);
    t.add("pubsub|shardchannels", pubsub_shardchannels);
    t.add("pubsub|numsub", pubsub_numsub);
    t.add("pubsub|shardnumsub", pubsub_shardnumsub);
    t.add("pubsub|numpat", pubsub_numpat);
    t.add("pubsub|help", pubsub_help);
}

/// Shard channels are described as (not-)keys, so the dispatcher locked
/// their shards; nothing here touches the keyspace, and delivery must not
/// run under shard locks.
fn release_locks(ctx: &mut Ctx<'_>) {
    ctx.ks.locks = Locked::none();
}

fn sub(ctx: &mut Ctx<'_>, args: &[&[u8]], kind: Kind) {
    release_locks(ctx);
    crate::pubsub::subscribe(ctx.srv, ctx.client, ctx.out, kind, &args[1..]);
}

fn unsub(ctx: &mut Ctx<'_>, args: &[&[u8]], kind: Kind) {
    release_locks(ctx);
    crate::pubsub::unsubscribe(ctx.srv, ctx.client, Some(ctx.out), kind, &args[1..]);
}

fn subscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    sub(ctx, args, Kind::Channel);
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    sub(ctx, args, Kind::Pattern);
}

fn ssubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    sub(ctx, args, Kind::Shard);
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    unsub(ctx, args, Kind::Channel);
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    unsub(ctx, args, Kind::Pattern);
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    unsub(ctx, args, Kind::Shard);
}

fn do_publish(ctx: &mut Ctx<'_>, args: &[&[u8]], shard: bool) {
    release_locks(ctx);
    let n = ctx
        .srv
        .pubsub
        .publish(ctx.srv, ctx.client, ctx.out, shard, args[1], args[2]);
    ctx.out.int(n as i64);
}

fn publish(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    do_publish(ctx, args, false);
}

fn spublish(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    do_publish(ctx, args, true);
}

fn channels(ctx: &mut Ctx<'_>, args: &[&[u8]], shard: bool) {
    if args.len() > 3 {
        subcommand_syntax_error(ctx, args);
        return;
    }
    let list = ctx.srv.pubsub.channels(shard, args.get(2).copied());
    ctx.out.array(list.len());
    for c in &list {
        ctx.out.bulk(c);
    }
}

fn pubsub_channels(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    channels(ctx, args, false);
}

fn pubsub_shardchannels(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    channels(ctx, args, true);
}

fn numsub(ctx: &mut Ctx<'_>, args: &[&[u8]], shard: bool) {
    let names = &args[2..];
    // A flat array even in RESP3, as Redis replies.
    ctx.out.array(names.len() * 2);
    for name in names {
        ctx.out.bulk(name);
        ctx.out.int(ctx.srv.pubsub.numsub(shard, name) as i64);
    }
}

fn pubsub_numsub(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    numsub(ctx, args, false);
}

fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    numsub(ctx, args, true);
}

fn pubsub_numpat(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    ctx.out.int(ctx.srv.pubsub.numpat() as i64);
}

const HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

fn pubsub_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    reply_help(ctx.out, args[0], HELP);
}
