//! CLIENT subcommands: ID, INFO, LIST, KILL, SETNAME, GETNAME, SETINFO,
//! REPLY, NO-EVICT, NO-TOUCH, PAUSE, UNPAUSE, HELP, and client-side caching
//! (TRACKING, CACHING, GETREDIR, TRACKINGINFO; the table itself is in
//! `crate::tracking`).
//!
//! Replies and errors follow Redis 7.2's `clientCommand` (networking.c),
//! including its option-parsing order (e.g. PAUSE checks the mode before
//! the timeout, KILL parses all filters before killing anything).

use super::is;
use super::server::{reply_help, subcommand_syntax_error};
use crate::client::{ClientShared, ReplyMode};
use crate::dispatch::{err, CommandTable, Ctx};
use crate::server::Server;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("client|id", id);
    t.add("client|info", info);
    t.add("client|list", list);
    t.add("client|kill", kill);
    t.add("client|setname", setname);
    t.add("client|getname", getname);
    t.add("client|setinfo", setinfo);
    t.add("client|reply", reply);
    t.add("client|no-evict", no_evict);
    t.add("client|no-touch", no_touch);
    t.add("client|pause", pause);
    t.add("client|unpause", unpause);
    t.add("client|tracking", tracking);
    t.add("client|getredir", getredir);
    t.add("client|trackinginfo", trackinginfo);
    t.add("client|caching", caching);
    t.add("client|help", help);
}

/// Redis's client classes (`getClientType`), for the TYPE filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Pubsub,
    Master,
}

/// `getClientTypeByName`: `normal`, `slave`/`replica`, `pubsub`, `master`.
fn client_type_by_name(name: &[u8]) -> Option<ClientType> {
    if is(name, "normal") {
        Some(ClientType::Normal)
    } else if is(name, "slave") || is(name, "replica") {
        Some(ClientType::Replica)
    } else if is(name, "pubsub") {
        Some(ClientType::Pubsub)
    } else if is(name, "master") {
        Some(ClientType::Master)
    } else {
        None
    }
}

/// The class of a connection, as Redis's `getClientType`: a client with
/// any subscription is `pubsub`; everything else is `normal` (kvik has no
/// replication yet, and Redis also reports MONITOR clients as normal).
fn client_type(c: &ClientShared) -> ClientType {
    if crate::pubsub::subscribed(c) {
        ClientType::Pubsub
    } else {
        ClientType::Normal
    }
}

/// The peer address as Redis prints it (`getClientPeerId`): `ip:port`, or
/// `path:0` for a unix socket connection.
pub fn peer_id(c: &ClientShared) -> String {
    if c.unix && !c.addr.ends_with(":0") {
        format!("{}:0", c.addr)
    } else {
        c.addr.clone()
    }
}

/// The local address as Redis prints it (`getClientSockname`).
fn sock_name(c: &ClientShared) -> String {
    if c.unix && !c.laddr.ends_with(":0") {
        format!("{}:0", c.laddr)
    } else {
        c.laddr.clone()
    }
}

/// Whether a connection comes from this host (Redis's `islocalClient`): a
/// unix socket, or a loopback TCP peer. Gates `enable-debug-command local`
/// and `enable-protected-configs local`.
pub fn is_local_client(c: &ClientShared) -> bool {
    if c.unix {
        return true;
    }
    match c.addr.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => false,
    }
}

/// Snapshot of the connected clients in connection (id) order.
fn clients_by_id(srv: &Server) -> Vec<Arc<ClientShared>> {
    let mut v: Vec<Arc<ClientShared>> = srv.clients.lock().values().cloned().collect();
    v.sort_by_key(|c| c.id);
    v
}

/// Redis's `validateClientAttr` / client name check: printable ASCII
/// without spaces. SETINFO values are C strings in Redis, so only the part
/// before a NUL byte is checked (and kept).
fn attr_prefix(v: &[u8]) -> &[u8] {
    match v.iter().position(|&c| c == 0) {
        Some(n) => &v[..n],
        None => v,
    }
}

fn printable(v: &[u8]) -> bool {
    v.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn id(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let id = ctx.client.id() as i64;
    ctx.out.int(id);
}

fn info(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let now = ctx.now_ms();
    let mut line = ctx.client.shared.info_line(now);
    line.push('\n');
    ctx.out.verbatim(b"txt", line.as_bytes());
}

fn list(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let now = ctx.now_ms();
    let mut text = String::new();
    if args.len() == 4 && is(args[2], "type") {
        let Some(ty) = client_type_by_name(args[3]) else {
            ctx.error(&format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(args[3])
            ));
            return;
        };
        for c in clients_by_id(ctx.srv) {
            if client_type(&c) == ty {
                text.push_str(&c.info_line(now));
                text.push('\n');
            }
        }
    } else if args.len() > 3 && is(args[2], "id") {
        // Every id is parsed (and the first bad one reported) while the
        // matching clients are listed in argument order, as Redis does.
        let registry = ctx.srv.clients.lock().clone();
        for a in &args[3..] {
            let Some(cid) = crate::util::parse_i64(a) else {
                ctx.error("ERR Invalid client ID");
                return;
            };
            if let Some(c) = u64::try_from(cid).ok().and_then(|i| registry.get(&i)) {
                text.push_str(&c.info_line(now));
                text.push('\n');
            }
        }
    } else if args.len() != 2 {
        ctx.error(err::SYNTAX);
        return;
    } else {
        for c in clients_by_id(ctx.srv) {
            text.push_str(&c.info_line(now));
            text.push('\n');
        }
    }
    ctx.out.verbatim(b"txt", text.as_bytes());
}

/// CLIENT KILL filters (new form).
#[derive(Default)]
struct KillFilter {
    addr: Option<String>,
    laddr: Option<String>,
    ty: Option<ClientType>,
    id: Option<u64>,
    user: Option<String>,
    skipme: bool,
}

impl KillFilter {
    fn matches(&self, c: &ClientShared, me: u64) -> bool {
        if self.addr.as_deref().is_some_and(|a| a != peer_id(c)) {
            return false;
        }
        if self.laddr.as_deref().is_some_and(|a| a != sock_name(c)) {
            return false;
        }
        if self.ty.is_some_and(|t| t != client_type(c)) {
            return false;
        }
        if self.id.is_some_and(|i| i != c.id) {
            return false;
        }
        // Only the `default` user exists, and every connection uses it.
        if self.user.as_deref().is_some_and(|u| u != "default") {
            return false;
        }
        !(self.skipme && c.id == me)
    }
}

/// Parses the new-style filters; on error the reply is written and None
/// returned.
fn parse_kill_filters(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Option<KillFilter> {
    let mut f = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    let mut i = 2;
    while i < args.len() {
        let more = i + 1 < args.len();
        let opt = args[i];
        if is(opt, "id") && more {
            match crate::util::parse_i64(args[i + 1]) {
                Some(v) if v >= 1 => f.id = Some(v as u64),
                _ => {
                    ctx.error("ERR client-id should be greater than 0");
                    return None;
                }
            }
        } else if is(opt, "type") && more {
            match client_type_by_name(args[i + 1]) {
                Some(t) => f.ty = Some(t),
                None => {
                    ctx.error(&format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(args[i + 1])
                    ));
                    return None;
                }
            }
        } else if is(opt, "addr") && more {
            f.addr = Some(String::from_utf8_lossy(args[i + 1]).into_owned());
        } else if is(opt, "laddr") && more {
            f.laddr = Some(String::from_utf8_lossy(args[i + 1]).into_owned());
        } else if is(opt, "user") && more {
            // ACL users do not exist yet: only `default` (case-sensitive).
            if args[i + 1] != b"default" {
                ctx.error(&format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(args[i + 1])
                ));
                return None;
            }
            f.user = Some("default".to_string());
        } else if is(opt, "skipme") && more {
            if is(args[i + 1], "yes") {
                f.skipme = true;
            } else if is(args[i + 1], "no") {
                f.skipme = false;
            } else {
                ctx.error(err::SYNTAX);
                return None;
            }
        } else {
            ctx.error(err::SYNTAX);
            return None;
        }
        i += 2;
    }
    Some(f)
}

fn kill(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let old_form = args.len() == 3;
    let filter = if old_form {
        // CLIENT KILL ip:port: with the old form a client may kill itself.
        KillFilter {
            addr: Some(String::from_utf8_lossy(args[2]).into_owned()),
            skipme: false,
            ..KillFilter::default()
        }
    } else {
        match parse_kill_filters(ctx, args) {
            Some(f) => f,
            None => return,
        }
    };
    let me = ctx.client.id();
    let mut killed = 0i64;
    let mut close_me = false;
    {
        let mut registry = ctx.srv.clients.lock();
        let victims: Vec<u64> = registry
            .values()
            .filter(|c| filter.matches(c, me))
            .map(|c| c.id)
            .collect();
        for vid in victims {
            killed += 1;
            if vid == me {
                close_me = true;
                continue;
            }
            // Redis frees the client synchronously; dropping it from the
            // registry at once makes a following CLIENT LIST agree. Its
            // task closes the socket and finishes the bookkeeping.
            if let Some(c) = registry.remove(&vid) {
                c.kill();
            }
        }
    }
    if old_form {
        if killed == 0 {
            ctx.error("ERR No such client");
        } else {
            ctx.out.ok();
        }
    } else {
        ctx.out.int(killed);
    }
    if close_me {
        // The reply is queued first, then the connection closes.
        ctx.client.close_after_reply = true;
    }
}

fn setname(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let name = args[2];
    if !printable(name) {
        ctx.error("ERR Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    *ctx.client.shared.name.lock() = String::from_utf8_lossy(name).into_owned();
    ctx.out.ok();
}

fn getname(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let name = ctx.client.shared.name.lock().clone();
    if name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(name.as_bytes());
    }
}

fn setinfo(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let attr = args[2];
    let lib_name = if is(attr, "lib-name") {
        true
    } else if is(attr, "lib-ver") {
        false
    } else {
        ctx.error(&format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        ));
        return;
    };
    let value = attr_prefix(args[3]);
    if !printable(value) {
        ctx.error(&format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        ));
        return;
    }
    let value = String::from_utf8_lossy(value).into_owned();
    {
        let mut lib = ctx.client.shared.lib.lock();
        if lib_name {
            lib.0 = value;
        } else {
            lib.1 = value;
        }
    }
    ctx.out.ok();
}

fn reply(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mode = args[2];
    if is(mode, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if is(mode, "off") {
        // No reply: the dispatcher drops everything while the mode is Off.
        ctx.client.reply_mode = ReplyMode::Off;
    } else if is(mode, "skip") {
        // SKIP itself is not answered; the next command's reply is dropped.
        // Ignored while replies are off, as in Redis.
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        ctx.error(err::SYNTAX);
    }
}

/// Shared ON/OFF parsing of NO-EVICT and NO-TOUCH.
fn on_off(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<bool> {
    if is(arg, "on") {
        Some(true)
    } else if is(arg, "off") {
        Some(false)
    } else {
        ctx.error(err::SYNTAX);
        None
    }
}

fn no_evict(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if let Some(v) = on_off(ctx, args[2]) {
        ctx.client.shared.no_evict.store(v, Ordering::Relaxed);
        ctx.out.ok();
    }
}

fn no_touch(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if let Some(v) = on_off(ctx, args[2]) {
        ctx.client.shared.no_touch.store(v, Ordering::Relaxed);
        ctx.out.ok();
    }
}

fn pause(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    if args.len() > 4 {
        subcommand_syntax_error(ctx, args);
        return;
    }
    // The mode is checked before the timeout, as in Redis.
    let mut write_only = false;
    if args.len() == 4 {
        if is(args[3], "write") {
            write_only = true;
        } else if !is(args[3], "all") {
            ctx.error("ERR CLIENT PAUSE mode must be WRITE or ALL");
            return;
        }
    }
    let Some(timeout) = crate::util::parse_i64(args[2]) else {
        ctx.error("ERR timeout is not an integer or out of range");
        return;
    };
    if timeout < 0 {
        ctx.error("ERR timeout is negative");
        return;
    }
    // Redis adds the timeout to the current time in a signed 64-bit
    // integer; an overflowing sum lands in the past and pauses nothing.
    let end = if timeout > 0 {
        crate::util::now_ms().wrapping_add(timeout)
    } else {
        0
    };
    ctx.srv.pause.pause(end, write_only);
    ctx.out.ok();
}

fn unpause(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    ctx.srv.pause.unpause();
    ctx.out.ok();
}

// Client-side caching: the option checks of Redis's CLIENT TRACKING, in
// its order; the table and the messages are in `crate::tracking`.

fn tracking(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    use crate::tracking::flags;
    let mut opts = crate::tracking::Options::default();
    let mut redirect: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = args[j];
        if is(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                ctx.error("ERR A client can only redirect to a single other client");
                return;
            }
            let Some(id) = crate::util::parse_i64(args[j]) else {
                ctx.error(err::NOT_INT);
                return;
            };
            redirect = id;
            // The target must exist now, even if it may go away later.
            let target = u64::try_from(id)
                .ok()
                .and_then(|i| ctx.srv.clients.lock().get(&i).cloned())
                .filter(|c| !c.closed.load(Ordering::Relaxed));
            match target {
                Some(c) => {
                    opts.redirect = c.id;
                    opts.redirect_to = Some(c);
                }
                None => {
                    ctx.error("ERR The client ID you want redirect to does not exist");
                    return;
                }
            }
        } else if is(a, "bcast") {
            opts.flags |= flags::BCAST;
        } else if is(a, "optin") {
            opts.flags |= flags::OPTIN;
        } else if is(a, "optout") {
            opts.flags |= flags::OPTOUT;
        } else if is(a, "noloop") {
            opts.flags |= flags::NOLOOP;
        } else if is(a, "prefix") && more {
            j += 1;
            opts.prefixes.push(args[j].to_vec());
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
        j += 1;
    }
    if is(args[2], "on") {
        let cur = ctx.client.shared.tracking.load(Ordering::Relaxed);
        let bcast = opts.flags & flags::BCAST != 0;
        if !bcast && !opts.prefixes.is_empty() {
            ctx.error("ERR PREFIX option requires BCAST mode to be enabled");
            return;
        }
        if cur & flags::ON != 0 && (cur & flags::BCAST != 0) != bcast {
            ctx.error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
            return;
        }
        if bcast && opts.flags & (flags::OPTIN | flags::OPTOUT) != 0 {
            ctx.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
            return;
        }
        if opts.flags & flags::OPTIN != 0 && opts.flags & flags::OPTOUT != 0 {
            ctx.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
            return;
        }
        if (opts.flags & flags::OPTIN != 0 && cur & flags::OPTOUT != 0)
            || (opts.flags & flags::OPTOUT != 0 && cur & flags::OPTIN != 0)
        {
            ctx.error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
            return;
        }
        if bcast {
            if let Some(e) = crate::tracking::prefix_collision(ctx.client, &opts.prefixes) {
                ctx.error(&e);
                return;
            }
        }
        crate::tracking::enable(ctx.srv, ctx.client, opts);
    } else if is(args[2], "off") {
        crate::tracking::disable(ctx.client);
    } else {
        ctx.error(err::SYNTAX);
        return;
    }
    ctx.out.ok();
}

fn tracking_on(c: &ClientShared) -> bool {
    c.tracking.load(Ordering::Relaxed) & crate::tracking::flags::ON != 0
}

fn getredir(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let c = &ctx.client.shared;
    let redir = if tracking_on(c) {
        c.tracking_redir.load(Ordering::Relaxed) as i64
    } else {
        -1
    };
    ctx.out.int(redir);
}

fn trackinginfo(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    use crate::tracking::flags;
    let c = ctx.client.shared.clone();
    let f = c.tracking.load(Ordering::Relaxed);
    let caching = ctx.client.tracking_caching;
    let mut names: Vec<&[u8]> = vec![if f & flags::ON != 0 { b"on" } else { b"off" }];
    if f & flags::BCAST != 0 {
        names.push(b"bcast");
    }
    if f & flags::OPTIN != 0 {
        names.push(b"optin");
        if caching {
            names.push(b"caching-yes");
        }
    }
    if f & flags::OPTOUT != 0 {
        names.push(b"optout");
        if caching {
            names.push(b"caching-no");
        }
    }
    if f & flags::NOLOOP != 0 {
        names.push(b"noloop");
    }
    if f & flags::BROKEN_REDIR != 0 {
        names.push(b"broken_redirect");
    }
    let prefixes = if f & flags::ON != 0 {
        crate::tracking::prefixes_of(c.id)
    } else {
        Vec::new()
    };
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(names.len());
    for n in names {
        out.bulk(n);
    }
    out.bulk(b"redirect");
    out.int(if f & flags::ON != 0 {
        c.tracking_redir.load(Ordering::Relaxed) as i64
    } else {
        -1
    });
    out.bulk(b"prefixes");
    out.array(prefixes.len());
    for p in &prefixes {
        out.bulk(p);
    }
}

fn caching(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    use crate::tracking::flags;
    let f = ctx.client.shared.tracking.load(Ordering::Relaxed);
    if f & flags::ON == 0 {
        ctx.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
        return;
    }
    if is(args[2], "yes") {
        if f & flags::OPTIN == 0 {
            ctx.error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
            return;
        }
    } else if is(args[2], "no") {
        if f & flags::OPTOUT == 0 {
            ctx.error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
            return;
        }
    } else {
        ctx.error(err::SYNTAX);
        return;
    }
    ctx.client.tracking_caching = true;
    ctx.out.ok();
}

const HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
];

fn help(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    reply_help(ctx.out, args[0], HELP);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(addr: &str, unix: bool) -> Arc<ClientShared> {
        ClientShared::new(7, addr.to_string(), "127.0.0.1:6379".to_string(), unix, 0)
    }

    #[test]
    fn locality() {
        assert!(is_local_client(&shared("127.0.0.1:5000", false)));
        assert!(is_local_client(&shared("[::1]:5000", false)));
        assert!(is_local_client(&shared("/tmp/kvik.sock", true)));
        assert!(!is_local_client(&shared("10.1.2.3:5000", false)));
    }

    #[test]
    fn unix_peer_ids_end_in_zero_port() {
        assert_eq!(peer_id(&shared("/tmp/s.sock", true)), "/tmp/s.sock:0");
        assert_eq!(peer_id(&shared("/tmp/s.sock:0", true)), "/tmp/s.sock:0");
        assert_eq!(peer_id(&shared("1.2.3.4:5", false)), "1.2.3.4:5");
    }

    #[test]
    fn kill_filters() {
        let c = shared("1.2.3.4:5", false);
        let mut f = KillFilter {
            skipme: true,
            ..KillFilter::default()
        };
        assert!(f.matches(&c, 1));
        assert!(!f.matches(&c, 7), "skipme protects the caller");
        f.addr = Some("1.2.3.4:6".into());
        assert!(!f.matches(&c, 1));
        f.addr = Some("1.2.3.4:5".into());
        f.id = Some(8);
        assert!(!f.matches(&c, 1));
        f.id = Some(7);
        f.ty = Some(ClientType::Pubsub);
        assert!(!f.matches(&c, 1));
        f.ty = Some(ClientType::Normal);
        assert!(f.matches(&c, 1));
    }

    #[test]
    fn setinfo_values_stop_at_nul() {
        assert_eq!(attr_prefix(b"abc\0 d"), b"abc");
        assert!(printable(attr_prefix(b"redis-py\0 x")));
        assert!(!printable(b"a b"));
        assert!(!printable(b"\xff"));
        assert!(printable(b""));
    }
}
