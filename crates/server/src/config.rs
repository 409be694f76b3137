//! Configuration: redis.conf syntax in a file, `--name value` flags on the
//! command line (as redis-server takes them), and `CONFIG GET/SET`.
//!
//! Every parameter is one row of [`PARAMS`]: its name, aliases, kind,
//! default and whether it can change at run time. Values are kept as
//! validated strings in [`Config`], with typed accessors for the hot ones
//! cached in [`Tunables`] (read without a lock by the data path).

use crate::util::glob_match_str;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// How a parameter's value is checked.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `yes` / `no`.
    Bool,
    /// An integer in `[min, max]`.
    Int(i64, i64),
    /// An octal number up to the bound (file permissions).
    Octal(u32),
    /// A memory amount (`1gb`, `100mb`, `10k`, bytes) up to the bound.
    Memory(u64),
    /// One of these words.
    Enum(&'static [&'static str]),
    /// Any string.
    Str,
    /// `save` (pairs of seconds/changes, or empty).
    Save,
    /// `notify-keyspace-events` classes.
    NotifyEvents,
    /// `client-output-buffer-limit` triplets.
    OutputLimits,
    /// `bind` addresses.
    Bind,
}

/// One configuration parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Canonical name.
    pub name: &'static str,
    /// Other accepted names (`CONFIG GET` of an alias answers with the alias).
    pub alias: Option<&'static str>,
    /// Value checking.
    pub kind: Kind,
    /// Default value as text.
    pub default: &'static str,
    /// Whether `CONFIG SET` may change it.
    pub mutable: bool,
}

const fn p(name: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Param {
    Param {
        name,
        alias: None,
        kind,
        default,
        mutable,
    }
}

const fn a(
    name: &'static str,
    alias: &'static str,
    kind: Kind,
    default: &'static str,
    mutable: bool,
) -> Param {
    Param {
        name,
        alias: Some(alias),
        kind,
        default,
        mutable,
    }
}

const GB: u64 = 1024 * 1024 * 1024;
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// All parameters kvik knows. Parameters Redis has that only tune Redis's
/// internals are accepted and reported so tools and client test harnesses
/// that set them keep working.
pub static PARAMS: &[Param] = &[
    p("port", Kind::Int(0, 65535), "6379", false),
    p("bind", Kind::Bind, "127.0.0.1 -::1", false),
    p("protected-mode", Kind::Bool, "yes", true),
    p("unixsocket", Kind::Str, "", false),
    p("unixsocketperm", Kind::Octal(0o777), "0", false),
    p("save", Kind::Save, "3600 1 300 100 60 10000", true),
    p("appendonly", Kind::Bool, "no", true),
    p(
        "appendfsync",
        Kind::Enum(&["always", "everysec", "no"]),
        "everysec",
        true,
    ),
    p("appendfilename", Kind::Str, "appendonly.aof", false),
    p("appenddirname", Kind::Str, "appendonlydir", false),
    p("dir", Kind::Str, "", true),
    p("dbfilename", Kind::Str, "dump.rdb", true),
    p("logfile", Kind::Str, "", false),
    p("loglevel", Kind::Enum(LOGLEVELS), "notice", true),
    p("daemonize", Kind::Bool, "no", false),
    p("pidfile", Kind::Str, "", false),
    p("requirepass", Kind::Str, "", true),
    p("masterauth", Kind::Str, "", true),
    p("databases", Kind::Int(1, 1 << 20), "16", false),
    p("maxclients", Kind::Int(1, u32::MAX as i64), "10000", true),
    p(
        "enable-debug-command",
        Kind::Enum(&["yes", "no", "local"]),
        "no",
        false,
    ),
    p(
        "enable-protected-configs",
        Kind::Enum(&["yes", "no", "local"]),
        "no",
        false,
    ),
    p(
        "enable-module-command",
        Kind::Enum(&["yes", "no", "local"]),
        "no",
        false,
    ),
    p(
        "proto-max-bulk-len",
        Kind::Memory(i64::MAX as u64),
        "536870912",
        true,
    ),
    p(
        "client-query-buffer-limit",
        Kind::Memory(i64::MAX as u64),
        "1073741824",
        true,
    ),
    p("maxmemory", Kind::Memory(u64::MAX), "0", true),
    p("maxmemory-policy", Kind::Enum(POLICIES), "noeviction", true),
    p("maxmemory-samples", Kind::Int(1, 64), "5", true),
    p("maxmemory-eviction-tenacity", Kind::Int(0, 100), "10", true),
    p("maxmemory-clients", Kind::Str, "0", true),
    p(
        "latency-tracking-info-percentiles",
        Kind::Str,
        "50 99 99.9",
        true,
    ),
    p("hz", Kind::Int(0, i32::MAX as i64), "10", true),
    p("timeout", Kind::Int(0, i32::MAX as i64), "0", true),
    p("tcp-keepalive", Kind::Int(0, i32::MAX as i64), "300", true),
    p("tcp-backlog", Kind::Int(0, i32::MAX as i64), "511", false),
    p(
        "slowlog-log-slower-than",
        Kind::Int(-1, i64::MAX),
        "10000",
        true,
    ),
    p("slowlog-max-len", Kind::Int(0, i64::MAX), "128", true),
    p(
        "latency-monitor-threshold",
        Kind::Int(0, i64::MAX),
        "0",
        true,
    ),
    p("latency-tracking", Kind::Bool, "yes", true),
    p("notify-keyspace-events", Kind::NotifyEvents, "", true),
    p("io-threads", Kind::Int(1, 128), "1", false),
    p("io-threads-do-reads", Kind::Bool, "no", false),
    a(
        "busy-reply-threshold",
        "lua-time-limit",
        Kind::Int(0, i64::MAX),
        "5000",
        true,
    ),
    p("lfu-log-factor", Kind::Int(0, i32::MAX as i64), "10", true),
    p("lfu-decay-time", Kind::Int(0, i32::MAX as i64), "1", true),
    p("active-expire-effort", Kind::Int(1, 10), "1", true),
    p("activerehashing", Kind::Bool, "yes", true),
    p("lazyfree-lazy-eviction", Kind::Bool, "no", true),
    p("lazyfree-lazy-expire", Kind::Bool, "no", true),
    p("lazyfree-lazy-server-del", Kind::Bool, "no", true),
    p("lazyfree-lazy-user-del", Kind::Bool, "no", true),
    p("lazyfree-lazy-user-flush", Kind::Bool, "no", true),
    p("replica-lazy-flush", Kind::Bool, "no", true),
    p("stop-writes-on-bgsave-error", Kind::Bool, "yes", true),
    p("rdbcompression", Kind::Bool, "yes", true),
    p("rdbchecksum", Kind::Bool, "yes", true),
    p("rdb-del-sync-files", Kind::Bool, "no", true),
    p("aof-use-rdb-preamble", Kind::Bool, "yes", true),
    p("aof-load-truncated", Kind::Bool, "yes", true),
    p("aof-timestamp-enabled", Kind::Bool, "no", true),
    p(
        "auto-aof-rewrite-percentage",
        Kind::Int(0, i32::MAX as i64),
        "100",
        true,
    ),
    p(
        "auto-aof-rewrite-min-size",
        Kind::Memory(i64::MAX as u64),
        "67108864",
        true,
    ),
    p("no-appendfsync-on-rewrite", Kind::Bool, "no", true),
    p("appendfsync-on-rewrite", Kind::Bool, "no", true),
    p(
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
        false,
    ),
    p("always-show-logo", Kind::Bool, "no", false),
    p("set-proc-title", Kind::Bool, "yes", false),
    p("syslog-enabled", Kind::Bool, "no", false),
    p("crash-log-enabled", Kind::Bool, "yes", true),
    p("crash-memcheck-enabled", Kind::Bool, "yes", true),
    p("jemalloc-bg-thread", Kind::Bool, "yes", true),
    p("activedefrag", Kind::Bool, "no", true),
    p("dynamic-hz", Kind::Bool, "yes", true),
    p(
        "tracking-table-max-keys",
        Kind::Int(0, i64::MAX),
        "1000000",
        true,
    ),
    p("acllog-max-len", Kind::Int(0, i32::MAX as i64), "128", true),
    p(
        "client-output-buffer-limit",
        Kind::OutputLimits,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        true,
    ),
    // Redis's compiled-in default (its sample redis.conf says 128).
    a(
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        Kind::Int(0, i64::MAX),
        "512",
        true,
    ),
    a(
        "hash-max-listpack-value",
        "hash-max-ziplist-value",
        Kind::Int(0, i64::MAX),
        "64",
        true,
    ),
    a(
        "list-max-listpack-size",
        "list-max-ziplist-size",
        Kind::Int(i32::MIN as i64, i32::MAX as i64),
        "-2",
        true,
    ),
    p(
        "list-compress-depth",
        Kind::Int(0, i32::MAX as i64),
        "0",
        true,
    ),
    p(
        "set-max-intset-entries",
        Kind::Int(0, i64::MAX),
        "512",
        true,
    ),
    p(
        "set-max-listpack-entries",
        Kind::Int(0, i64::MAX),
        "128",
        true,
    ),
    p("set-max-listpack-value", Kind::Int(0, i64::MAX), "64", true),
    a(
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
        Kind::Int(0, i64::MAX),
        "128",
        true,
    ),
    a(
        "zset-max-listpack-value",
        "zset-max-ziplist-value",
        Kind::Int(0, i64::MAX),
        "64",
        true,
    ),
    p(
        "hll-sparse-max-bytes",
        Kind::Memory(i64::MAX as u64),
        "3000",
        true,
    ),
    p(
        "stream-node-max-bytes",
        Kind::Memory(i64::MAX as u64),
        "4096",
        true,
    ),
    p(
        "stream-node-max-entries",
        Kind::Int(0, i64::MAX),
        "100",
        true,
    ),
    p(
        "repl-backlog-size",
        Kind::Memory(i64::MAX as u64),
        "1048576",
        true,
    ),
    p("repl-diskless-sync", Kind::Bool, "yes", true),
    p("replica-read-only", Kind::Bool, "yes", true),
    p("replica-serve-stale-data", Kind::Bool, "yes", true),
    p(
        "min-replicas-to-write",
        Kind::Int(0, i32::MAX as i64),
        "0",
        true,
    ),
    p("cluster-enabled", Kind::Bool, "no", false),
    p(
        "oom-score-adj",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
        "no",
        true,
    ),
    p("disable-thp", Kind::Bool, "yes", false),
    // kvik's own.
    p("worker-threads", Kind::Int(0, 1024), "0", false),
    p("shards", Kind::Int(1, 16384), "64", false),
];

/// Finds a parameter by canonical name or alias (case-insensitive).
pub fn find_param(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    PARAMS
        .iter()
        .find(|p| p.name == lower || p.alias == Some(lower.as_str()))
}

/// Parses a Redis memory value (`memtoull`): digits with an optional
/// `b`, `k`, `kb`, `m`, `mb`, `g`, `gb` suffix (case-insensitive).
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => GB,
        _ => return None,
    };
    if num.is_empty() || num.starts_with('-') {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// Why a value was rejected; the text is what Redis says after
/// `CONFIG SET failed (possibly related to argument '...') - `.
pub type ConfigError = String;

/// Checks and normalises `value` for `param`.
pub fn validate(param: &Param, value: &str) -> Result<String, ConfigError> {
    match param.kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" | "no" => Ok(value.to_ascii_lowercase()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int(min, max) => {
            let v = crate::util::parse_i64_str(value)
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Octal(max) => match u32::from_str_radix(value, 8) {
            Ok(v) if v <= max => Ok(format!("{v:o}")),
            _ => Err("argument couldn't be parsed into an integer".into()),
        },
        Kind::Memory(max) => {
            let v =
                parse_memory(value).ok_or_else(|| "argument must be a memory value".to_string())?;
            if v > max {
                return Err(format!("argument must be between 0 and {max} inclusive"));
            }
            Ok(v.to_string())
        }
        Kind::Enum(words) => {
            let lower = value.to_ascii_lowercase();
            if words.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err("argument(s) must be one of the following: ".to_string() + &words.join(", "))
            }
        }
        Kind::Str => Ok(value.to_string()),
        Kind::Save => {
            let parts: Vec<&str> = value.split_whitespace().collect();
            if !parts.len().is_multiple_of(2) || parts.iter().any(|p| p.parse::<u64>().is_err()) {
                return Err("Invalid save parameters".into());
            }
            Ok(parts.join(" "))
        }
        Kind::NotifyEvents => {
            let flags = crate::util::parse_notify_flags(value).ok_or_else(|| {
                "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()
            })?;
            // Stored as Redis shows it (keyspaceEventsFlagsToString), except
            // that `n` is kept next to `A` (Redis hides it there but still
            // honours it, and the stored text is what gets parsed).
            let mut shown = crate::util::notify_flags_string(flags);
            let all = crate::util::notify::ALL;
            if flags & all == all && flags & crate::util::notify::NEW != 0 {
                shown.insert(1, 'n');
            }
            Ok(shown)
        }
        Kind::OutputLimits => {
            let parts: Vec<&str> = value.split_whitespace().collect();
            if parts.is_empty() || !parts.len().is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            for chunk in parts.chunks(4) {
                if !matches!(
                    chunk[0].to_ascii_lowercase().as_str(),
                    "normal" | "replica" | "slave" | "pubsub"
                ) {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    );
                }
                if parse_memory(chunk[1]).is_none()
                    || parse_memory(chunk[2]).is_none()
                    || chunk[3].parse::<u64>().is_err()
                {
                    return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
                }
            }
            Ok(value.to_string())
        }
        Kind::Bind => {
            if value.split_whitespace().count() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(value.split_whitespace().collect::<Vec<_>>().join(" "))
        }
    }
}

/// Hot parameters cached as atomics, read on the data path without locks.
#[derive(Debug, Default)]
pub struct Tunables {
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: AtomicU64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: AtomicU64,
    /// `maxmemory`.
    pub maxmemory: AtomicU64,
    /// `hz`.
    pub hz: AtomicI64,
    /// `slowlog-log-slower-than` (microseconds, -1 off).
    pub slowlog_slower_than: AtomicI64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: AtomicI64,
    /// `latency-monitor-threshold` (milliseconds).
    pub latency_threshold: AtomicI64,
    /// `timeout` (seconds).
    pub timeout: AtomicI64,
    /// `maxclients`.
    pub maxclients: AtomicI64,
    /// `protected-mode`.
    pub protected_mode: AtomicBool,
    /// `active-expire-effort`.
    pub active_expire_effort: AtomicI64,
    /// LFU vs LRU in the 24-bit field (from `maxmemory-policy`).
    pub lfu: AtomicBool,
    /// `lfu-log-factor`.
    pub lfu_log_factor: AtomicI64,
    /// `lfu-decay-time`.
    pub lfu_decay_time: AtomicI64,
    /// `notify-keyspace-events` parsed flags.
    pub notify_flags: AtomicU64,
    // Encoding thresholds of the collection types.
    /// `hash-max-listpack-entries`.
    pub hash_max_listpack_entries: AtomicI64,
    /// `hash-max-listpack-value`.
    pub hash_max_listpack_value: AtomicI64,
    /// `list-max-listpack-size`.
    pub list_max_listpack_size: AtomicI64,
    /// `set-max-intset-entries`.
    pub set_max_intset_entries: AtomicI64,
    /// `set-max-listpack-entries`.
    pub set_max_listpack_entries: AtomicI64,
    /// `set-max-listpack-value`.
    pub set_max_listpack_value: AtomicI64,
    /// `zset-max-listpack-entries`.
    pub zset_max_listpack_entries: AtomicI64,
    /// `zset-max-listpack-value`.
    pub zset_max_listpack_value: AtomicI64,
    /// `hll-sparse-max-bytes`.
    pub hll_sparse_max_bytes: AtomicI64,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// Path of the config file the server started with (for CONFIG REWRITE).
    pub file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let mut values = BTreeMap::new();
        for p in PARAMS {
            values.insert(p.name, p.default.to_string());
        }
        let mut c = Config { values, file: None };
        if let Ok(cwd) = std::env::current_dir() {
            c.values.insert("dir", cwd.display().to_string());
        }
        c
    }
}

/// A start-up configuration error, printed as Redis prints it.
#[derive(Debug)]
pub struct FatalConfigError {
    /// Line number in the combined configuration text (1-based).
    pub line_no: usize,
    /// The offending line.
    pub line: String,
    /// What was wrong.
    pub reason: String,
}

impl std::fmt::Display for FatalConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.2.4) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
            self.line_no, self.line, self.reason
        )
    }
}

impl Config {
    /// The value of a parameter by canonical name.
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(|s| s.as_str()).unwrap_or("")
    }

    /// A boolean parameter.
    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    /// An integer parameter.
    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    /// Sets a parameter after validation (no mutability check).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let param = find_param(name)
            .ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let v = validate(param, value)?;
        if param.name == "dir" && !v.is_empty() {
            std::env::set_current_dir(&v).map_err(|e| format!("No such file or directory: {e}"))?;
        }
        self.values.insert(param.name, v);
        Ok(())
    }

    /// Parameters matching a glob pattern, as (reported name, value).
    pub fn matching(&self, pattern: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for p in PARAMS {
            if glob_match_str(pattern, p.name) {
                out.push((p.name, self.get(p.name).to_string()));
            }
            if let Some(alias) = p.alias {
                if alias != p.name && glob_match_str(pattern, alias) {
                    out.push((alias, self.get(p.name).to_string()));
                }
            }
        }
        out
    }

    /// Loads configuration text (redis.conf syntax) on top of `self`.
    pub fn load_text(&mut self, text: &str) -> Result<(), FatalConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fatal = |reason: &str| FatalConfigError {
                line_no: i + 1,
                line: line.to_string(),
                reason: reason.to_string(),
            };
            let mut out = Vec::new();
            let mut ranges = Vec::new();
            if kvik_protocol::request::split_args(line.as_bytes(), &mut out, &mut ranges).is_err() {
                return Err(fatal("Unbalanced quotes in configuration line"));
            }
            let args: Vec<String> = ranges
                .iter()
                .map(|r| String::from_utf8_lossy(&out[r.clone()]).into_owned())
                .collect();
            let Some((name, rest)) = args.split_first() else {
                continue;
            };
            let lname = name.to_ascii_lowercase();
            if lname == "include"
                || lname == "rename-command"
                || lname == "user"
                || lname == "loadmodule"
            {
                // Accepted for compatibility; not supported yet.
                continue;
            }
            let Some(param) = find_param(&lname) else {
                return Err(fatal("Bad directive or wrong number of arguments"));
            };
            let value = match param.kind {
                Kind::Save | Kind::Bind | Kind::OutputLimits => {
                    // `save ""` clears; repeated `save` lines accumulate in
                    // redis.conf, but a single line replaces here.
                    rest.join(" ")
                }
                _ => {
                    if rest.len() != 1 {
                        return Err(fatal("Bad directive or wrong number of arguments"));
                    }
                    rest[0].clone()
                }
            };
            self.set(param.name, &value).map_err(|e| fatal(&e))?;
        }
        Ok(())
    }

    /// Builds the configuration from redis-server style arguments:
    /// `[config-file] [--name value ...]`.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config::default();
        let mut text = String::new();
        let mut rest = args;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let body = std::fs::read_to_string(first)
                    .map_err(|e| format!("Fatal error, can't open config file '{first}': {e}"))?;
                text.push_str(&body);
                text.push('\n');
                cfg.file = Some(first.clone());
                rest = &rest[1..];
            }
        }
        // Redis turns "--name a b" into the config line "name a b".
        let mut line = String::new();
        for arg in rest {
            if let Some(name) = arg.strip_prefix("--") {
                if !line.is_empty() {
                    text.push_str(&line);
                    text.push('\n');
                }
                line = name.to_string();
            } else {
                line.push(' ');
                line.push_str(&quote_arg(arg));
            }
        }
        if !line.is_empty() {
            text.push_str(&line);
            text.push('\n');
        }
        cfg.load_text(&text).map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    /// Refreshes the lock-free copies of hot parameters.
    pub fn publish(&self, t: &Tunables) {
        crate::logging::set_level(self.get("loglevel"));
        t.hash_max_listpack_entries
            .store(self.get_i64("hash-max-listpack-entries"), Ordering::Relaxed);
        t.hash_max_listpack_value
            .store(self.get_i64("hash-max-listpack-value"), Ordering::Relaxed);
        t.list_max_listpack_size
            .store(self.get_i64("list-max-listpack-size"), Ordering::Relaxed);
        t.set_max_intset_entries
            .store(self.get_i64("set-max-intset-entries"), Ordering::Relaxed);
        t.set_max_listpack_entries
            .store(self.get_i64("set-max-listpack-entries"), Ordering::Relaxed);
        t.set_max_listpack_value
            .store(self.get_i64("set-max-listpack-value"), Ordering::Relaxed);
        t.zset_max_listpack_entries
            .store(self.get_i64("zset-max-listpack-entries"), Ordering::Relaxed);
        t.zset_max_listpack_value
            .store(self.get_i64("zset-max-listpack-value"), Ordering::Relaxed);
        t.hll_sparse_max_bytes
            .store(self.get_i64("hll-sparse-max-bytes"), Ordering::Relaxed);

        t.proto_max_bulk_len
            .store(self.get_i64("proto-max-bulk-len") as u64, Ordering::Relaxed);
        t.client_query_buffer_limit.store(
            self.get_i64("client-query-buffer-limit") as u64,
            Ordering::Relaxed,
        );
        t.maxmemory.store(
            self.get("maxmemory").parse().unwrap_or(0),
            Ordering::Relaxed,
        );
        t.hz.store(self.get_i64("hz").clamp(1, 500), Ordering::Relaxed);
        t.slowlog_slower_than
            .store(self.get_i64("slowlog-log-slower-than"), Ordering::Relaxed);
        t.slowlog_max_len
            .store(self.get_i64("slowlog-max-len"), Ordering::Relaxed);
        t.latency_threshold
            .store(self.get_i64("latency-monitor-threshold"), Ordering::Relaxed);
        t.timeout.store(self.get_i64("timeout"), Ordering::Relaxed);
        t.maxclients
            .store(self.get_i64("maxclients"), Ordering::Relaxed);
        t.protected_mode
            .store(self.get_bool("protected-mode"), Ordering::Relaxed);
        t.active_expire_effort
            .store(self.get_i64("active-expire-effort"), Ordering::Relaxed);
        t.lfu.store(
            self.get("maxmemory-policy").ends_with("lfu"),
            Ordering::Relaxed,
        );
        t.lfu_log_factor
            .store(self.get_i64("lfu-log-factor"), Ordering::Relaxed);
        t.lfu_decay_time
            .store(self.get_i64("lfu-decay-time"), Ordering::Relaxed);
        t.notify_flags.store(
            crate::util::parse_notify_flags(self.get("notify-keyspace-events")).unwrap_or(0),
            Ordering::Relaxed,
        );
    }

    /// Renders the configuration as redis.conf text (CONFIG REWRITE): every
    /// parameter that differs from its default.
    pub fn render(&self) -> String {
        let mut out = String::from("# Generated by CONFIG REWRITE\n");
        for p in PARAMS {
            let v = self.get(p.name);
            if v != p.default && p.name != "dir" {
                out.push_str(&format!("{} {}\n", p.name, quote_arg(v)));
            }
        }
        out.push_str(&format!("dir {}\n", quote_arg(self.get("dir"))));
        out
    }
}

/// Quotes a value for a config line when it is empty or has spaces/quotes.
fn quote_arg(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '"', '\'', '\\', '\t']) {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            _ => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_like_redis_server() {
        let c = Config::from_args(&args(&[
            "--port",
            "7000",
            "--save",
            "",
            "--bind",
            "127.0.0.1",
            "::1",
        ]))
        .unwrap();
        assert_eq!(c.get("port"), "7000");
        assert_eq!(c.get("save"), "");
        assert_eq!(c.get("bind"), "127.0.0.1 ::1");
    }

    #[test]
    fn unknown_directive_is_fatal() {
        let err = Config::from_args(&args(&["--no-such-thing", "1"])).unwrap_err();
        assert!(
            err.contains("Bad directive or wrong number of arguments"),
            "{err}"
        );
        assert!(err.contains(">>> 'no-such-thing 1'"), "{err}");
    }

    #[test]
    fn values_are_validated() {
        let mut c = Config::default();
        assert_eq!(c.set("maxmemory", "1gb"), Ok(()));
        assert_eq!(c.get("maxmemory"), "1073741824");
        assert!(c.set("maxmemory", "lots").is_err());
        assert!(c.set("appendonly", "maybe").is_err());
        assert!(c.set("port", "70000").is_err());
        assert_eq!(c.set("lua-time-limit", "100"), Ok(()));
        assert_eq!(c.get("busy-reply-threshold"), "100");
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("10k"), Some(10_000));
        assert_eq!(parse_memory("10KB"), Some(10_240));
        assert_eq!(parse_memory("1gb"), Some(GB));
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("12x"), None);
    }
}
