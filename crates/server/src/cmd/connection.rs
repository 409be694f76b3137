//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, AUTH, RESET, and
//! the CLIENT PAUSE gate applied before a request runs.

use super::{arg_i64, is};
use crate::client::ReplyMode;
use crate::dispatch::{err, CommandTable, Ctx};
use crate::server::{Server, REDIS_VERSION};
use std::sync::atomic::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("ping", ping);
    t.add("echo", echo);
    t.add("quit", quit);
    t.add("select", select);
    t.add("hello", hello);
    t.add("auth", auth);
    t.add("reset", reset);
}

fn ping(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() > 2 {
        ctx.error("ERR wrong number of arguments for 'ping' command");
        return;
    }
    // RESP2 subscribed mode answers in the shape of a message.
    if !ctx.out.resp3() && crate::pubsub::subscribed(&ctx.client.shared) {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).copied().unwrap_or_default());
        return;
    }
    match args.get(1) {
        Some(msg) => ctx.out.bulk(msg),
        None => ctx.out.simple("PONG"),
    }
}

fn echo(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    ctx.out.bulk(args[1]);
}

fn quit(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
}

fn select(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(db) = arg_i64(ctx, args[1]) else {
        return;
    };
    if db < 0 || db as usize >= ctx.srv.databases() {
        ctx.error(err::DB_RANGE);
        return;
    }
    ctx.client.select(db as usize);
    ctx.ks.db = db as usize;
    ctx.out.ok();
}

/// Checks a password for the default user (the only user before ACLs).
fn check_password(srv: &Server, user: &[u8], pass: &[u8]) -> bool {
    if !user.eq_ignore_ascii_case(b"default") {
        return false;
    }
    let required = srv.config.read().get("requirepass").to_string();
    // No password configured: the default user is `nopass`.
    required.is_empty() || required.as_bytes() == pass
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() > 3 {
        ctx.error(err::SYNTAX);
        return;
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        if ctx.srv.config.read().get("requirepass").is_empty() {
            ctx.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            return;
        }
        (b"default", args[1])
    } else {
        (args[1], args[2])
    };
    if check_password(ctx.srv, user, pass) {
        ctx.client.authenticated = true;
        ctx.out.ok();
    } else {
        ctx.error(WRONGPASS);
    }
}

/// Whether a client name is acceptable (no spaces, newlines or
/// non-printable characters).
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn hello(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut ver = if ctx.out.resp3() { 3 } else { 2 };
    let mut i = 1;
    if args.len() >= 2 {
        let Some(v) = crate::util::parse_i64(args[1]) else {
            ctx.error("ERR Protocol version is not an integer or out of range");
            return;
        };
        if !(2..=3).contains(&v) {
            ctx.error("NOPROTO unsupported protocol version");
            return;
        }
        ver = v;
        i = 2;
    }
    let mut auth: Option<(&[u8], &[u8])> = None;
    let mut name: Option<&[u8]> = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(args[i], "auth") && more >= 2 {
            auth = Some((args[i + 1], args[i + 2]));
            i += 3;
        } else if is(args[i], "setname") && more >= 1 {
            name = Some(args[i + 1]);
            i += 2;
        } else {
            ctx.error(&format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args[i])
            ));
            return;
        }
    }
    if let Some((user, pass)) = auth {
        if !check_password(ctx.srv, user, pass) {
            ctx.error(WRONGPASS);
            return;
        }
        ctx.client.authenticated = true;
    }
    if !ctx.client.authenticated {
        ctx.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(n) = name {
        if !valid_client_name(n) {
            ctx.error("ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
        *ctx.client.shared.name.lock() = String::from_utf8_lossy(n).into_owned();
    }
    ctx.out.set_resp3(ver == 3);
    ctx.client
        .shared
        .resp
        .store(ver as usize, Ordering::Relaxed);
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(ver);
    out.bulk(b"id");
    out.int(ctx.client.id() as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
}

fn reset(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let c = &mut *ctx.client;
    c.select(0);
    ctx.ks.db = 0;
    c.reply_mode = ReplyMode::On;
    c.authenticated = ctx.srv.config.read().get("requirepass").is_empty();
    c.shared.name.lock().clear();
    c.shared.no_evict.store(false, Ordering::Relaxed);
    c.shared.no_touch.store(false, Ordering::Relaxed);
    if c.shared.monitor.swap(false, Ordering::Relaxed) {
        ctx.srv.monitors.fetch_sub(1, Ordering::Relaxed);
    }
    crate::pubsub::cleanup(ctx.srv, c);
    crate::tracking::disable(c);
    crate::multi::reset(&mut c.tx, &ctx.srv.store);
    ctx.out.set_resp3(false);
    c.shared.resp.store(2, Ordering::Relaxed);
    ctx.out.simple("RESET");
}

/// Whether the request in `argv` must wait for a CLIENT PAUSE to end.
pub fn paused_for(srv: &Server, argv: &[&[u8]]) -> bool {
    if !srv.pause.is_set() {
        return false;
    }
    let Some(write_only) = srv.pause.active(crate::util::now_ms()) else {
        return false;
    };
    let Some(cmd) = argv.first().and_then(|n| srv.commands.get(n)) else {
        return !write_only;
    };
    if !write_only {
        return true;
    }
    cmd.has_flag("write") || cmd.has_flag("may_replicate")
}
