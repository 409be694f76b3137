//! Command dispatch: table lookup, arity and auth checks, key → shard
//! routing and locking, then the handler, then statistics, slow log and
//! MONITOR feed.

use crate::client::{Client, ReplyMode};
use crate::commands::spec::{self, BeginSearch, FindKeys, KeySpec, Spec};
use crate::db::Keyspace;
use crate::server::{Server, SlowEntry};
use crate::store::Locked;
use kvik_protocol::ReplyBuf;
/// Name -> command maps: looked up once per request, so a fast hasher
/// (command names are not attacker-chosen keys of a growing table).
type NameMap<V> = std::collections::HashMap<&'static str, V, foldhash::fast::FixedState>;
use crate::util::Counter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A command handler: parses `args` (args[0] is the command name), works on
/// the locked keyspace through `ctx`, and writes exactly one reply.
pub type Handler = fn(&mut Ctx<'_>, &[&[u8]]);

/// A registered command.
pub struct Command {
    /// Metadata from Redis's command table.
    pub spec: &'static Spec,
    /// The handler (None for containers, which dispatch to subcommands).
    pub handler: Option<Handler>,
    /// Subcommands by lower-case name.
    pub subcommands: NameMap<Command>,
    /// INFO commandstats: calls.
    pub calls: Counter,
    /// INFO commandstats: microseconds.
    pub usec: Counter,
    /// INFO commandstats: rejected_calls.
    pub rejected: AtomicU64,
    /// INFO commandstats: failed_calls.
    pub failed: AtomicU64,
    /// Runs with every shard locked although it names keys: scripts, which
    /// may touch keys they did not declare (see [`Command::whole_keyspace`]).
    whole_keyspace: bool,
}

impl Command {
    fn new(spec: &'static Spec, handler: Option<Handler>) -> Command {
        Command {
            spec,
            handler,
            subcommands: NameMap::default(),
            calls: Counter::default(),
            usec: Counter::default(),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            whole_keyspace: spec.group == "scripting" && !spec.key_specs.is_empty(),
        }
    }

    /// Whether the command must run with every shard locked: keyless
    /// commands may read or write the whole keyspace (FLUSHALL, KEYS,
    /// SWAPDB...), and scripts may touch keys they did not declare. The
    /// dispatcher and EXEC take the whole keyspace up front for these, so
    /// a handler never has to trade its locks for more mid-command.
    pub fn whole_keyspace(&self) -> bool {
        self.whole_keyspace || self.spec.key_specs.is_empty()
    }

    /// Whether the command has flag `f`.
    pub fn has_flag(&self, f: &str) -> bool {
        self.spec.has_flag(f)
    }
}

/// All commands kvik serves.
pub struct CommandTable {
    commands: NameMap<Command>,
}

impl CommandTable {
    /// Registers every family's commands.
    pub fn build() -> CommandTable {
        let mut t = CommandTable {
            commands: NameMap::default(),
        };
        crate::cmd::register_all(&mut t);
        t
    }

    /// Registers `name` (lower case; `container|sub` for subcommands) with
    /// its Redis metadata. Panics at start-up if Redis has no such command:
    /// the metadata table is the single source of truth.
    pub fn add(&mut self, name: &'static str, handler: Handler) {
        let spec = spec::find(name).unwrap_or_else(|| panic!("no Redis metadata for '{name}'"));
        match name.split_once('|') {
            None => {
                self.commands
                    .entry(spec.name)
                    .or_insert_with(|| Command::new(spec, None))
                    .handler = Some(handler);
            }
            Some((container, sub)) => {
                let cspec = spec::find(container)
                    .unwrap_or_else(|| panic!("no Redis metadata for '{container}'"));
                let parent = self
                    .commands
                    .entry(cspec.name)
                    .or_insert_with(|| Command::new(cspec, None));
                let sub_name: &'static str = &spec.name[container.len() + 1..];
                debug_assert_eq!(sub_name, sub);
                parent
                    .subcommands
                    .insert(sub_name, Command::new(spec, Some(handler)));
            }
        }
    }

    /// Looks up a command by (any case) name.
    pub fn get(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 32];
        let lower = crate::util::lower_into(name, &mut buf)?;
        self.commands.get(lower)
    }

    /// All top-level commands.
    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.commands.values()
    }

    /// Number of top-level commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// Everything a handler works with.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub srv: &'a Server,
    /// The calling connection.
    pub client: &'a mut Client,
    /// Where the reply goes.
    pub out: &'a mut ReplyBuf,
    /// The locked keyspace.
    pub ks: Keyspace<'a>,
    /// The command being run.
    pub cmd: &'a Command,
}

impl<'a> Ctx<'a> {
    /// Replies with an error; `msg` includes the code (`ERR ...`).
    pub fn error(&mut self, msg: &str) {
        self.out.error(msg);
    }

    /// Clock for this command.
    pub fn now_ms(&self) -> i64 {
        self.ks.now_ms
    }
}

/// Standard error replies, worded as Redis words them.
pub mod err {
    /// WRONGTYPE
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    /// syntax error
    pub const SYNTAX: &str = "ERR syntax error";
    /// not an integer
    pub const NOT_INT: &str = "ERR value is not an integer or out of range";
    /// not a float
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    /// no such key
    pub const NO_KEY: &str = "ERR no such key";
    /// out of range
    pub const OUT_OF_RANGE: &str = "ERR index out of range";
    /// DB index
    pub const DB_RANGE: &str = "ERR DB index is out of range";
}

/// Appends at most `max` bytes of `s` (Redis's `%.*s`).
fn push_prefix(out: &mut Vec<u8>, s: &[u8], max: usize) {
    out.extend_from_slice(&s[..s.len().min(max)]);
}

fn reply_unknown_command(out: &mut ReplyBuf, args: &[&[u8]]) {
    let mut tail = Vec::new();
    for a in &args[1..] {
        if tail.len() >= 128 {
            break;
        }
        let room = 128 - tail.len();
        tail.push(b'\'');
        push_prefix(&mut tail, a, room);
        tail.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    push_prefix(&mut msg, args[0], 128);
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&tail);
    out.error_bytes(&msg);
}

fn reply_unknown_subcommand(out: &mut ReplyBuf, container: &str, sub: &[u8]) {
    let mut msg = b"ERR unknown subcommand '".to_vec();
    push_prefix(&mut msg, sub, 128);
    msg.extend_from_slice(b"'. Try ");
    msg.extend_from_slice(container.to_ascii_uppercase().as_bytes());
    msg.extend_from_slice(b" HELP.");
    out.error_bytes(&msg);
}

/// The clock of one batch of requests: wall time read once, then advanced
/// with the monotonic clock, whose reading at the end of a command serves
/// as the start of the next. One clock read per command.
#[derive(Debug, Clone, Copy)]
pub struct BatchClock {
    anchor_ms: i64,
    anchor: Instant,
    last: Instant,
}

impl BatchClock {
    /// Starts a batch now.
    pub fn new() -> BatchClock {
        let now = Instant::now();
        BatchClock {
            anchor_ms: crate::util::now_ms(),
            anchor: now,
            last: now,
        }
    }

    fn ms_at(&self, t: Instant) -> i64 {
        self.anchor_ms + t.duration_since(self.anchor).as_millis() as i64
    }
}

impl Default for BatchClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs one request and writes its reply to `out`. Returns false when the
/// connection must be closed without a reply (HTTP probe).
pub fn execute(
    srv: &Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    args: &[&[u8]],
    clock: &mut BatchClock,
) -> bool {
    let mark = out.len();
    if client.reply_mode == ReplyMode::SkipNext {
        client.reply_mode = ReplyMode::Skip;
    }
    let ok = run(srv, client, out, args, clock);
    // CLIENT CACHING covers the next command only, even when that command
    // is rejected before running (unknown, wrong arity), as Redis's
    // resetClient does; CLIENT subcommands and queued commands keep it.
    if client.tracking_caching
        && !client.tx.in_multi()
        && !(args.len() >= 2 && args[0].eq_ignore_ascii_case(b"client"))
    {
        client.tracking_caching = false;
    }
    match client.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => out.truncate(mark),
        ReplyMode::Skip => {
            out.truncate(mark);
            client.reply_mode = ReplyMode::On;
        }
        ReplyMode::SkipNext => {}
    }
    ok
}

fn run(
    srv: &Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    args: &[&[u8]],
    clock: &mut BatchClock,
) -> bool {
    let name = args[0];
    if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") {
        tracing::warn!(
            "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection aborted."
        );
        return false;
    }
    let Some(mut cmd) = srv.commands.get(name) else {
        reply_unknown_command(out, args);
        client.tx.flag_error();
        srv.count_error("ERR");
        return true;
    };
    // As Redis's lookupCommand: a command with subcommands and at least one
    // argument is always resolved to the subcommand.
    if !cmd.subcommands.is_empty() && args.len() >= 2 {
        let mut buf = [0u8; 32];
        let sub = crate::util::lower_into(args[1], &mut buf).and_then(|s| cmd.subcommands.get(s));
        match sub {
            Some(s) => cmd = s,
            None => {
                reply_unknown_subcommand(out, cmd.spec.name, args[1]);
                client.tx.flag_error();
                srv.count_error("ERR");
                return true;
            }
        }
    }
    // A container without a handler of its own needs a subcommand.
    if cmd.handler.is_none() || !cmd.spec.arity_ok(args.len()) {
        if cmd.spec.name == "exec" {
            let msg = "wrong number of arguments for 'exec' command";
            crate::multi::exec_abort(&mut client.tx, &srv.store, out, msg);
            cmd.rejected.fetch_add(1, Ordering::Relaxed);
            srv.count_error("EXECABORT");
            return true;
        }
        out.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.spec.name
        ));
        cmd.rejected.fetch_add(1, Ordering::Relaxed);
        client.tx.flag_error();
        srv.count_error("ERR");
        return true;
    }
    if !client.authenticated && !cmd.has_flag("no_auth") {
        if cmd.spec.name == "exec" {
            let msg = "NOAUTH Authentication required.";
            crate::multi::exec_abort(&mut client.tx, &srv.store, out, msg);
            cmd.rejected.fetch_add(1, Ordering::Relaxed);
            srv.count_error("EXECABORT");
            return true;
        }
        out.error("NOAUTH Authentication required.");
        cmd.rejected.fetch_add(1, Ordering::Relaxed);
        client.tx.flag_error();
        srv.count_error("NOAUTH");
        return true;
    }
    // RESP2 subscribed mode: the connection only carries pushes, so only
    // the (un)subscribe family and a few connection commands may run.
    if !out.resp3()
        && crate::pubsub::subscribed(&client.shared)
        && !matches!(
            cmd.spec.name,
            "subscribe"
                | "unsubscribe"
                | "psubscribe"
                | "punsubscribe"
                | "ssubscribe"
                | "sunsubscribe"
                | "ping"
                | "quit"
                | "reset"
        )
    {
        out.error(&format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.spec.name
        ));
        cmd.rejected.fetch_add(1, Ordering::Relaxed);
        srv.count_error("ERR");
        return true;
    }
    // Inside MULTI: queue (transactions: see cmd/multi.rs).
    if client.tx.in_multi()
        && !matches!(
            cmd.spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
    {
        if cmd.has_flag("no_multi") {
            out.error("ERR Command not allowed inside a transaction");
            cmd.rejected.fetch_add(1, Ordering::Relaxed);
            client.tx.flag_error();
            srv.count_error("ERR");
        } else {
            client.tx.push(args);
            out.simple("QUEUED");
        }
        return true;
    }

    let started = clock.last;
    let now_ms = clock.ms_at(started);
    if let Some(busy) = crate::lua::busy_error(cmd) {
        out.error(busy);
        cmd.rejected.fetch_add(1, Ordering::Relaxed);
        client.tx.flag_error();
        srv.count_error("BUSY");
        return true;
    }
    let locks = lock_for(srv, cmd, args);
    client
        .shared
        .last_interaction_ms
        .store(now_ms, Ordering::Relaxed);
    client
        .shared
        .last_cmd
        .store(spec::index_of(cmd.spec), Ordering::Relaxed);
    client.shared.commands.fetch_add(1, Ordering::Relaxed);

    let reply_start = out.len();
    let handler = cmd.handler.expect("subcommand resolved above");
    let mut deferred = Vec::new();
    {
        let ks = Keyspace {
            srv,
            locks,
            db: client.db,
            now_ms,
            no_touch: client.shared.no_touch.load(Ordering::Relaxed) && cmd.spec.name != "touch",
            cmd_name: cmd.spec.name,
            client_id: client.shared.id,
            ready: Vec::new(),
        };
        let mut ctx = Ctx {
            srv,
            client,
            out,
            ks,
            cmd,
        };
        handler(&mut ctx, args);
        if !ctx.ks.ready.is_empty() {
            deferred = crate::blocking::serve_ready(&mut ctx);
        }
        crate::tracking::after_command(srv, ctx.client, ctx.out, cmd, args);
    }
    if !deferred.is_empty() {
        crate::blocking::serve_deferred(srv, deferred);
    }
    let ended = Instant::now();
    clock.last = ended;
    let micros = ended.duration_since(started).as_micros() as u64;
    // A command that blocked is counted once, when it is served, times out
    // or is unblocked (as Redis 7.2 does), not also now.
    if client.blocked.is_none() {
        cmd.calls.fetch_add(1, Ordering::Relaxed);
        cmd.usec.fetch_add(micros, Ordering::Relaxed);
        srv.stats.commands_processed.fetch_add(1, Ordering::Relaxed);
    }
    if out.as_bytes().get(reply_start) == Some(&b'-') {
        cmd.failed.fetch_add(1, Ordering::Relaxed);
        let line = &out.as_bytes()[reply_start + 1..];
        let end = line
            .iter()
            .position(|&c| c == b' ' || c == b'\r')
            .unwrap_or(line.len());
        srv.count_error(&String::from_utf8_lossy(&line[..end]));
    }
    let redact = redacted_args(cmd.spec.name, args);
    slowlog_maybe(srv, client, args, redact, micros);
    srv.latency_sample(
        if cmd.has_flag("fast") {
            "fast-command"
        } else {
            "command"
        },
        micros / 1000,
    );
    // Redis feeds monitors after the command ran (so `SELECT 2` shows db 2).
    if srv.monitors.load(Ordering::Relaxed) > 0
        && !cmd.has_flag("admin")
        && !cmd.has_flag("skip_monitor")
    {
        feed_monitors(srv, client, args, redact, now_ms);
    }
    true
}

/// Runs `cmd` (whose handler is `handler`) inside an already locked
/// context, as EXEC and scripts do: the reply goes to `ctx.out`, command
/// statistics are counted, and the caller's command is restored after.
pub fn run_nested<'a>(ctx: &mut Ctx<'a>, cmd: &'a Command, handler: Handler, args: &[&[u8]]) {
    let srv = ctx.srv;
    let (outer_cmd, outer_name, outer_no_touch) = (ctx.cmd, ctx.ks.cmd_name, ctx.ks.no_touch);
    ctx.cmd = cmd;
    ctx.ks.db = ctx.client.db;
    ctx.ks.cmd_name = cmd.spec.name;
    ctx.ks.no_touch =
        ctx.client.shared.no_touch.load(Ordering::Relaxed) && cmd.spec.name != "touch";
    let start = Instant::now();
    let reply_start = ctx.out.len();
    handler(ctx, args);
    crate::tracking::after_nested(srv, ctx.client, cmd, args);
    let micros = start.elapsed().as_micros() as u64;
    cmd.calls.fetch_add(1, Ordering::Relaxed);
    cmd.usec.fetch_add(micros, Ordering::Relaxed);
    srv.stats.commands_processed.fetch_add(1, Ordering::Relaxed);
    if ctx.out.as_bytes().get(reply_start) == Some(&b'-') {
        cmd.failed.fetch_add(1, Ordering::Relaxed);
        let line = &ctx.out.as_bytes()[reply_start + 1..];
        let end = line
            .iter()
            .position(|&c| c == b' ' || c == b'\r')
            .unwrap_or(line.len());
        srv.count_error(&String::from_utf8_lossy(&line[..end]));
    }
    ctx.cmd = outer_cmd;
    ctx.ks.cmd_name = outer_name;
    ctx.ks.no_touch = outer_no_touch;
}

/// Locks the shards of the command's keys (from its Redis key specs), or
/// every shard when the specs cannot tell which keys the arguments name.
fn lock_for<'s>(srv: &'s Server, cmd: &Command, args: &[&[u8]]) -> Locked<'s> {
    let specs = cmd.spec.key_specs;
    if specs.is_empty() {
        return Locked::none();
    }
    // Fast path: the common single-key shape `index(i)>range(0,1,0)`.
    if let [KeySpec {
        begin: BeginSearch::Index(i),
        find: FindKeys::Range { lastkey: 0, .. },
        ..
    }] = specs
    {
        if let Some(key) = args.get(*i as usize) {
            return srv.store.lock_one(srv.store.shard_of(key));
        }
    }
    if cmd.whole_keyspace {
        return srv.store.lock_all();
    }
    match shards_for(srv, cmd, args) {
        Some(mut ids) => srv.store.lock_set(&mut ids),
        None => srv.store.lock_all(),
    }
}

/// The shards of the keys `args` names for `cmd` (unsorted, possibly
/// repeated), or None when the key specs cannot tell (all shards).
pub fn shards_for(
    srv: &Server,
    cmd: &Command,
    args: &[&[u8]],
) -> Option<smallvec::SmallVec<[usize; 8]>> {
    if cmd.spec.key_specs.is_empty() {
        return Some(smallvec::SmallVec::new());
    }
    let keys = crate::cmd::command::keys_from_specs(cmd.spec, args)?;
    Some(
        keys.iter()
            .map(|k| srv.store.shard_of(args[k.pos]))
            .collect(),
    )
}

/// Which arguments carry secrets, as Redis's `redactClientCommandArgument`
/// callers decide: shown as `(redacted)` in MONITOR and SLOWLOG.
fn redacted_args(name: &str, args: &[&[u8]]) -> fn(usize, &[u8]) -> bool {
    fn none(_: usize, _: &[u8]) -> bool {
        false
    }
    fn all_but_name(i: usize, _: &[u8]) -> bool {
        i > 0
    }
    match name {
        "auth" => all_but_name,
        "hello" => {
            // HELLO [ver] AUTH user pass: hide what follows AUTH.
            if args.iter().any(|a| a.eq_ignore_ascii_case(b"auth")) {
                all_but_name
            } else {
                none
            }
        }
        "config|set" => {
            if args.iter().any(|a| {
                a.eq_ignore_ascii_case(b"requirepass") || a.eq_ignore_ascii_case(b"masterauth")
            }) {
                all_but_name
            } else {
                none
            }
        }
        _ => none,
    }
}

const REDACTED: &[u8] = b"(redacted)";

fn feed_monitors(
    srv: &Server,
    client: &Client,
    args: &[&[u8]],
    redact: fn(usize, &[u8]) -> bool,
    now_ms: i64,
) {
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        now_ms / 1000,
        (now_ms % 1000) * 1000,
        client.db,
        if client.shared.unix {
            let path = client.shared.addr.strip_suffix(":0");
            format!("unix:{}", path.unwrap_or(&client.shared.addr))
        } else {
            client.shared.addr.clone()
        }
    );
    for (i, a) in args.iter().enumerate() {
        let a: &[u8] = if redact(i, a) { REDACTED } else { a };
        line.push_str(" \"");
        line.push_str(&repr(a));
        line.push('"');
    }
    line.push_str("\r\n");
    let clients = srv.clients.lock();
    for c in clients.values() {
        if c.monitor.load(Ordering::Relaxed) {
            c.push_bytes(line.as_bytes());
        }
    }
}

/// Escapes bytes as Redis's `sdscatrepr` (without the surrounding quotes).
pub fn repr(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out
}

fn slowlog_maybe(
    srv: &Server,
    client: &Client,
    args: &[&[u8]],
    redact: fn(usize, &[u8]) -> bool,
    micros: u64,
) {
    let threshold = srv.tun.slowlog_slower_than.load(Ordering::Relaxed);
    if threshold < 0 || (micros as i64) < threshold {
        return;
    }
    let max_len = srv.tun.slowlog_max_len.load(Ordering::Relaxed).max(0) as usize;
    // Redis keeps at most 32 arguments, each at most 128 bytes.
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let argc = args.len();
    for (i, a) in args.iter().enumerate() {
        let a: &[u8] = if redact(i, a) { REDACTED } else { a };
        if i == 31 && argc > 32 {
            kept.push(format!("... ({} more arguments)", argc - 31).into_bytes());
            break;
        }
        if a.len() > 128 {
            let mut v = a[..128].to_vec();
            v.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
            kept.push(v);
        } else {
            kept.push(a.to_vec());
        }
    }
    let mut log = srv.slowlog.lock();
    let id = log.next_id;
    log.next_id += 1;
    log.entries.push_front(SlowEntry {
        id,
        time: crate::util::now_ms() / 1000,
        micros: micros as i64,
        args: kept,
        addr: client.shared.addr.clone(),
        name: client.shared.name.lock().clone(),
    });
    log.entries.truncate(max_len);
}
