//! Command dispatch: table lookup, arity and auth checks, key → shard
//! routing and locking, then the handler, then statistics, slow log and
//! MONITOR feed.

use crate::client::{Client, ReplyMode};
use crate::commands::spec::{self, BeginSearch, FindKeys, Spec};
use crate::server::{Server, SlowEntry};
use crate::db::Keyspace;
use crate::store::Locked;
use kvik_protocol::ReplyBuf;
use std::collections::HashMap;
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
    pub subcommands: HashMap<&'static str, Command>,
    /// INFO commandstats: calls.
    pub calls: AtomicU64,
    /// INFO commandstats: microseconds.
    pub usec: AtomicU64,
    /// INFO commandstats: rejected_calls.
    pub rejected: AtomicU64,
    /// INFO commandstats: failed_calls.
    pub failed: AtomicU64,
}

impl Command {
    fn new(spec: &'static Spec, handler: Option<Handler>) -> Command {
        Command {
            spec,
            handler,
            subcommands: HashMap::new(),
            calls: AtomicU64::new(0),
            usec: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Whether the command has flag `f`.
    pub fn has_flag(&self, f: &str) -> bool {
        self.spec.has_flag(f)
    }
}

/// All commands kvik serves.
pub struct CommandTable {
    commands: HashMap<&'static str, Command>,
}

impl CommandTable {
    /// Registers every family's commands.
    pub fn build() -> CommandTable {
        let mut t = CommandTable {
            commands: HashMap::new(),
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
                self.commands.insert(spec.name, Command::new(spec, Some(handler)));
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
                parent.subcommands.insert(sub_name, Command::new(spec, Some(handler)));
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
    pub const WRONGTYPE: &str =
        "WRONGTYPE Operation against a key holding the wrong kind of value";
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

/// The arguments that are keys, per the command's key specs.
pub fn key_positions(spec: &Spec, args: &[&[u8]], out: &mut Vec<usize>) -> bool {
    let argc = args.len() as i32;
    let mut complete = true;
    for ks in spec.key_specs {
        let start = match ks.begin {
            BeginSearch::Index(i) => i,
            BeginSearch::Keyword(kw, startfrom) => {
                let found = if startfrom >= 0 {
                    (startfrom..argc).find(|&i| args[i as usize].eq_ignore_ascii_case(kw.as_bytes()))
                } else {
                    let from = argc + startfrom;
                    (1..=from.max(0)).rev().find(|&i| {
                        i < argc && args[i as usize].eq_ignore_ascii_case(kw.as_bytes())
                    })
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            BeginSearch::Unknown => {
                complete = false;
                continue;
            }
        };
        match ks.find {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    start + lastkey
                } else if limit > 1 {
                    start + ((argc - start) / limit) - 1
                } else {
                    argc + lastkey
                };
                let mut i = start;
                while i <= last && i < argc {
                    out.push(i as usize);
                    i += step.max(1);
                }
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                let idx = start + keynumidx;
                let Some(n) = args
                    .get(idx as usize)
                    .and_then(|a| crate::util::parse_i64(a))
                else {
                    continue;
                };
                let first = start + firstkey;
                let mut i = first as i64;
                let end = first as i64 + n.clamp(0, argc as i64) * step as i64;
                while i < end && i < argc as i64 {
                    out.push(i as usize);
                    i += step.max(1) as i64;
                }
            }
            FindKeys::Unknown => complete = false,
        }
    }
    complete
}

fn reply_unknown_command(out: &mut ReplyBuf, args: &[&[u8]]) {
    let mut tail = String::new();
    for a in &args[1..] {
        if tail.len() >= 128 {
            break;
        }
        let room = 128 - tail.len();
        let s = String::from_utf8_lossy(a);
        let cut: String = s.chars().take(room).collect();
        tail.push_str(&format!("'{cut}' "));
    }
    let name = String::from_utf8_lossy(args[0]);
    let name: String = name.chars().take(128).collect();
    out.error(&format!(
        "ERR unknown command '{name}', with args beginning with: {tail}"
    ));
}

/// Runs one request and writes its reply to `out`. Returns false when the
/// connection must be closed without a reply (HTTP probe).
pub fn execute(srv: &Server, client: &mut Client, out: &mut ReplyBuf, args: &[&[u8]]) -> bool {
    let mark = out.len();
    if client.reply_mode == ReplyMode::SkipNext {
        client.reply_mode = ReplyMode::Skip;
    }
    let ok = run(srv, client, out, args);
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

fn run(srv: &Server, client: &mut Client, out: &mut ReplyBuf, args: &[&[u8]]) -> bool {
    let name = args[0];
    if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") {
        tracing::warn!(
            "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection aborted."
        );
        return false;
    }
    let Some(mut cmd) = srv.commands.get(name) else {
        reply_unknown_command(out, args);
        srv.count_error("ERR");
        return true;
    };
    if cmd.handler.is_none() {
        // A container: the subcommand decides.
        if !cmd.spec.arity_ok(args.len()) || args.len() < 2 {
            out.error(&format!(
                "ERR wrong number of arguments for '{}' command",
                cmd.spec.name
            ));
            cmd.rejected.fetch_add(1, Ordering::Relaxed);
            srv.count_error("ERR");
            return true;
        }
        let mut buf = [0u8; 32];
        let sub = crate::util::lower_into(args[1], &mut buf).and_then(|s| cmd.subcommands.get(s));
        match sub {
            Some(s) => cmd = s,
            None => {
                let subname = String::from_utf8_lossy(args[1]);
                let subname: String = subname.chars().take(128).collect();
                out.error(&format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    subname,
                    cmd.spec.name.to_ascii_uppercase()
                ));
                srv.count_error("ERR");
                return true;
            }
        }
    }
    if !cmd.spec.arity_ok(args.len()) {
        out.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.spec.name
        ));
        cmd.rejected.fetch_add(1, Ordering::Relaxed);
        srv.count_error("ERR");
        return true;
    }
    if !client.authenticated && !cmd.has_flag("no_auth") {
        out.error("NOAUTH Authentication required.");
        cmd.rejected.fetch_add(1, Ordering::Relaxed);
        srv.count_error("NOAUTH");
        return true;
    }

    let now_ms = crate::util::now_ms();
    let locks = lock_for(srv, cmd, args);
    client
        .shared
        .last_interaction_ms
        .store(now_ms, Ordering::Relaxed);
    *client.shared.last_cmd.lock() = cmd.spec.name;
    client.shared.commands.fetch_add(1, Ordering::Relaxed);

    if srv.monitors.load(Ordering::Relaxed) > 0 && !cmd.has_flag("admin") {
        feed_monitors(srv, client, args, now_ms);
    }

    let reply_start = out.len();
    let started = Instant::now();
    let handler = cmd.handler.expect("subcommand resolved above");
    {
        let ks = Keyspace {
            srv,
            locks,
            db: client.db,
            now_ms,
            no_touch: client.shared.no_touch.load(Ordering::Relaxed) && cmd.spec.name != "touch",
            cmd_name: cmd.spec.name,
        };
        let mut ctx = Ctx {
            srv,
            client,
            out,
            ks,
            cmd,
        };
        handler(&mut ctx, args);
    }
    let micros = started.elapsed().as_micros() as u64;
    cmd.calls.fetch_add(1, Ordering::Relaxed);
    cmd.usec.fetch_add(micros, Ordering::Relaxed);
    srv.stats.commands_processed.fetch_add(1, Ordering::Relaxed);
    if out.as_bytes().get(reply_start) == Some(&b'-') {
        cmd.failed.fetch_add(1, Ordering::Relaxed);
        let line = &out.as_bytes()[reply_start + 1..];
        let end = line
            .iter()
            .position(|&c| c == b' ' || c == b'\r')
            .unwrap_or(line.len());
        srv.count_error(&String::from_utf8_lossy(&line[..end]));
    }
    slowlog_maybe(srv, client, args, micros);
    true
}

fn lock_for<'s>(srv: &'s Server, cmd: &Command, args: &[&[u8]]) -> Locked<'s> {
    if cmd.spec.key_specs.is_empty() {
        return Locked::none();
    }
    let mut pos = Vec::new();
    let complete = key_positions(cmd.spec, args, &mut pos);
    if !complete {
        return srv.store.lock_all();
    }
    if pos.len() == 1 {
        return srv.store.lock_set(vec![srv.store.shard_of(args[pos[0]])]);
    }
    let shards: Vec<usize> = pos.iter().map(|&i| srv.store.shard_of(args[i])).collect();
    srv.store.lock_set(shards)
}

fn feed_monitors(srv: &Server, client: &Client, args: &[&[u8]], now_ms: i64) {
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        now_ms / 1000,
        (now_ms % 1000) * 1000,
        client.db,
        if client.shared.unix {
            format!("unix:{}", client.shared.addr)
        } else {
            client.shared.addr.clone()
        }
    );
    for a in args {
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

fn slowlog_maybe(srv: &Server, client: &Client, args: &[&[u8]], micros: u64) {
    let threshold = srv.tun.slowlog_slower_than.load(Ordering::Relaxed);
    if threshold < 0 || (micros as i64) < threshold {
        return;
    }
    let max_len = srv.tun.slowlog_max_len.load(Ordering::Relaxed).max(0) as usize;
    // Redis keeps at most 32 arguments, each at most 128 bytes.
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let argc = args.len();
    for (i, a) in args.iter().enumerate() {
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
