//! INFO rendering: Redis 7.2's sections, field names and field order
//! (`genRedisInfoString` in server.c), filled with kvik's counters. Fields
//! for subsystems kvik does not have (replication links, forks, AOF,
//! defragmentation, ACL denials, ...) keep their idle values, so tools that
//! parse INFO find every field where Redis puts it.

use crate::dispatch::Command;
use crate::server::{Server, KVIK_VERSION, REDIS_VERSION};
use parking_lot::Mutex;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The sections of a plain `INFO` / `INFO default`.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections an INFO call asked for (Redis's `genInfoSectionDict`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selection {
    /// `all` or `everything` was given: every section but `debug`.
    pub all: bool,
    /// Named sections, lower-cased and de-duplicated.
    pub names: Vec<String>,
}

impl Selection {
    /// Parses INFO's arguments (without the command name). No argument
    /// means `default`; `default` expands to the default sections; `all`
    /// and `everything` select every section; other words name sections
    /// case-insensitively (unknown ones select nothing).
    pub fn parse(args: &[&[u8]]) -> Selection {
        let mut s = Selection::default();
        if args.is_empty() {
            s.add_defaults();
            return s;
        }
        for a in args {
            let word = String::from_utf8_lossy(a).to_ascii_lowercase();
            match word.as_str() {
                "default" => s.add_defaults(),
                "all" | "everything" => s.all = true,
                _ => s.add(word),
            }
        }
        s
    }

    fn add_defaults(&mut self) {
        for d in DEFAULT_SECTIONS {
            self.add(d.to_string());
        }
    }

    fn add(&mut self, name: String) {
        if !self.names.contains(&name) {
            self.names.push(name);
        }
    }

    fn named(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn wants(&self, name: &str) -> bool {
        self.all || self.named(name)
    }
}

/// Redis's `bytesToHuman`: `100B`, `1.50K`, `2.00M`, ... .
pub fn bytes_to_human(n: u64) -> String {
    const K: f64 = 1024.0;
    let d = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if n < 1024 * 1024 {
        format!("{:.2}K", d / K)
    } else if n < 1024 * 1024 * 1024 {
        format!("{:.2}M", d / (K * K))
    } else if n < 1024u64.pow(4) {
        format!("{:.2}G", d / (K * K * K))
    } else if n < 1024u64.pow(5) {
        format!("{:.2}T", d / K.powi(4))
    } else if n < 1024u64.pow(6) {
        format!("{:.2}P", d / K.powi(5))
    } else {
        format!("{n}B")
    }
}

/// Highest `used_memory` seen by INFO (Redis samples it in its cron; kvik
/// samples it whenever INFO runs).
static PEAK_MEMORY: AtomicU64 = AtomicU64::new(0);

/// Forgets the memory peak (CONFIG RESETSTAT).
pub fn reset_peak() {
    PEAK_MEMORY.store(0, Ordering::Relaxed);
}

/// Bytes the data uses: the counting allocator's tally when installed,
/// else the resident set size.
fn used_memory() -> u64 {
    crate::alloc::used_memory().unwrap_or_else(crate::util::rss_bytes)
}

/// Rates for `instantaneous_*`, computed between two INFO calls at least
/// 100 ms apart (Redis samples every 100 ms in its cron and averages the
/// last 16 samples).
#[derive(Default)]
struct Sampler {
    at_ms: i64,
    commands: u64,
    net_in: u64,
    net_out: u64,
    ops_per_sec: u64,
    in_kbps: f64,
    out_kbps: f64,
}

static SAMPLER: Mutex<Option<Sampler>> = Mutex::new(None);

fn instantaneous(srv: &Server, now_ms: i64) -> (u64, f64, f64) {
    let commands = srv.stats.commands_processed.load(Ordering::Relaxed);
    let net_in = srv.stats.net_input_bytes.load(Ordering::Relaxed);
    let net_out = srv.stats.net_output_bytes.load(Ordering::Relaxed);
    let mut guard = SAMPLER.lock();
    let s = guard.get_or_insert_with(|| Sampler {
        at_ms: now_ms,
        commands,
        net_in,
        net_out,
        ..Sampler::default()
    });
    let dt = now_ms - s.at_ms;
    if dt >= 100 {
        let per_sec =
            |now: u64, before: u64| now.saturating_sub(before) as f64 * 1000.0 / dt as f64;
        s.ops_per_sec = per_sec(commands, s.commands) as u64;
        s.in_kbps = per_sec(net_in, s.net_in) / 1024.0;
        s.out_kbps = per_sec(net_out, s.net_out) / 1024.0;
        s.at_ms = now_ms;
        s.commands = commands;
        s.net_in = net_in;
        s.net_out = net_out;
    }
    (s.ops_per_sec, s.in_kbps, s.out_kbps)
}

/// `uname` as `sysname release machine`.
fn os_name() -> &'static str {
    static OS: OnceLock<String> = OnceLock::new();
    OS.get_or_init(|| {
        // SAFETY: `utsname` is plain data; uname fills it with
        // NUL-terminated strings or fails, in which case it stays zeroed.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut u) } != 0 {
            return std::env::consts::OS.to_string();
        }
        let field = |f: &[libc::c_char]| -> String {
            let bytes: Vec<u8> = f
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        )
    })
}

/// Physical memory of the machine in bytes.
fn total_system_memory() -> u64 {
    // SAFETY: sysconf only reads system parameters.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || size <= 0 {
        0
    } else {
        pages as u64 * size as u64
    }
}

/// `getrusage` user and system time as Redis prints them (`sec.usec`).
fn rusage(who: libc::c_int) -> (String, String) {
    // SAFETY: `rusage` is plain data filled by getrusage; on failure it
    // stays zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| format!("{}.{:06}", tv.tv_sec, tv.tv_usec);
    (t(ru.ru_stime), t(ru.ru_utime))
}

/// The replication id: random per process, like Redis's `replid`.
fn replid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| crate::server::random_hex(40))
}

/// Renders the INFO text for `sel` (lines end with CRLF; sections are
/// separated by an empty line).
pub fn render(srv: &Server, sel: &Selection, keyspace: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(4096);
    let mut sections = 0;
    let mut begin = |out: &mut String, title: &str| {
        if sections > 0 {
            out.push_str("\r\n");
        }
        sections += 1;
        out.push_str("# ");
        out.push_str(title);
        out.push_str("\r\n");
    };
    let now_ms = crate::util::now_ms();
    if sel.wants("server") {
        begin(&mut out, "Server");
        server_section(srv, &mut out, now_ms);
    }
    if sel.wants("clients") {
        begin(&mut out, "Clients");
        clients_section(srv, &mut out);
    }
    if sel.wants("memory") {
        begin(&mut out, "Memory");
        memory_section(srv, &mut out);
    }
    if sel.wants("persistence") {
        begin(&mut out, "Persistence");
        persistence_section(srv, &mut out);
    }
    if sel.wants("stats") {
        begin(&mut out, "Stats");
        stats_section(srv, &mut out, now_ms);
    }
    if sel.wants("replication") {
        begin(&mut out, "Replication");
        replication_section(srv, &mut out);
    }
    if sel.wants("cpu") {
        begin(&mut out, "CPU");
        cpu_section(&mut out);
    }
    if sel.all || sel.named("module_list") || sel.named("modules") {
        // No modules: the header alone, as Redis prints it.
        begin(&mut out, "Modules");
    }
    if sel.wants("commandstats") {
        begin(&mut out, "Commandstats");
        commandstats_section(srv, &mut out);
    }
    if sel.wants("errorstats") {
        begin(&mut out, "Errorstats");
        let errors = srv.stats.errors.lock();
        let mut codes: Vec<(&String, &u64)> = errors.iter().collect();
        codes.sort();
        for (code, count) in codes {
            let _ = write!(out, "errorstat_{}:count={}\r\n", safe_info(code), count);
        }
    }
    if sel.wants("latencystats") {
        // kvik keeps no per-command latency histograms: the section is
        // empty, as in Redis with `latency-tracking no`.
        begin(&mut out, "Latencystats");
    }
    if sel.wants("cluster") {
        begin(&mut out, "Cluster");
        out.push_str("cluster_enabled:0\r\n");
    }
    if sel.wants("keyspace") {
        begin(&mut out, "Keyspace");
        for (db, &(keys, expires)) in keyspace.iter().enumerate() {
            if keys > 0 || expires > 0 {
                let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
    }
    if sel.named("debug") {
        begin(&mut out, "Debug");
        out.push_str(
            "eventloop_duration_aof_sum:0\r\neventloop_duration_cron_sum:0\r\neventloop_duration_max:0\r\neventloop_cmd_per_cycle_max:0\r\n",
        );
    }
    out
}

/// Redis's `getSafeInfoString`: `#`, `:`, CR and LF become `_`.
fn safe_info(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '#' | ':' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Appends `name:value\r\n` lines.
macro_rules! fields {
    ($out:expr, $($name:literal => $value:expr),* $(,)?) => {
        $( let _ = write!($out, concat!($name, ":{}\r\n"), $value); )*
    };
}

fn server_section(srv: &Server, out: &mut String, now_ms: i64) {
    let (configured_hz, supervised, config_file, bind, unixsocket) = {
        let cfg = srv.config.read();
        let supervised = match cfg.get("supervised") {
            "upstart" => "upstart",
            "systemd" => "systemd",
            "auto" => "unknown",
            _ => "no",
        };
        let file = cfg
            .file
            .as_ref()
            .map(|f| {
                std::fs::canonicalize(f)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| f.clone())
            })
            .unwrap_or_default();
        (
            cfg.get_i64("hz"),
            supervised,
            file,
            cfg.get("bind").to_string(),
            cfg.get("unixsocket").to_string(),
        )
    };
    let port = srv.bound_port.load(Ordering::Relaxed);
    let uptime = (now_ms - srv.start_ms).max(0) / 1000;
    fields!(out,
        "redis_version" => REDIS_VERSION,
        "kvik_version" => KVIK_VERSION,
        "redis_git_sha1" => "00000000",
        "redis_git_dirty" => 0,
        "redis_build_id" => "0",
        "redis_mode" => "standalone",
        "os" => os_name(),
        "arch_bits" => usize::BITS,
        "monotonic_clock" => "POSIX clock_gettime",
        "multiplexing_api" => if cfg!(target_os = "linux") { "epoll" } else { "kqueue" },
        "atomicvar_api" => "c11-builtin",
        "gcc_version" => "0.0.0",
        "process_id" => std::process::id(),
        "process_supervised" => supervised,
        "run_id" => srv.run_id,
        "tcp_port" => port,
        "server_time_usec" => crate::util::now_us(),
        "uptime_in_seconds" => uptime,
        "uptime_in_days" => uptime / 86400,
        "hz" => srv.tun.hz.load(Ordering::Relaxed),
        "configured_hz" => configured_hz,
        "lru_clock" => crate::db::lru_clock(now_ms),
        "executable" => srv.executable,
        "config_file" => config_file,
        "io_threads_active" => 0,
    );
    if srv.shutting_down.load(Ordering::Relaxed) {
        out.push_str("shutdown_in_milliseconds:0\r\n");
    }
    // Listeners, as Redis 7.2 lists them: TCP is connection type 0, unix
    // sockets type 1; a listener exists only when configured.
    if port > 0 {
        out.push_str("listener0:name=tcp");
        for b in bind.split_whitespace() {
            let _ = write!(out, ",bind={b}");
        }
        let _ = write!(out, ",port={port}\r\n");
    }
    if !unixsocket.is_empty() {
        let _ = write!(out, "listener1:name=unix,bind={unixsocket}\r\n");
    }
}

fn clients_section(srv: &Server, out: &mut String) {
    let max_qbuf = srv
        .clients
        .lock()
        .values()
        .map(|c| c.qbuf.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    fields!(out,
        "connected_clients" => srv.stats.connected_clients.load(Ordering::Relaxed),
        "cluster_connections" => 0,
        "maxclients" => srv.tun.maxclients.load(Ordering::Relaxed),
        "client_recent_max_input_buffer" => max_qbuf,
        "client_recent_max_output_buffer" => 0,
        "blocked_clients" => crate::blocking::BLOCKED.load(Ordering::Relaxed),
        "tracking_clients" => crate::tracking::TRACKING_CLIENTS.load(Ordering::Relaxed),
        "clients_in_timeout_table" => 0,
        "total_blocking_keys" => crate::blocking::blocking_keys(),
        "total_blocking_keys_on_nokey" => 0,
    );
}

fn memory_section(srv: &Server, out: &mut String) {
    let used = used_memory();
    let rss = crate::util::rss_bytes();
    let peak = PEAK_MEMORY.fetch_max(used, Ordering::Relaxed).max(used);
    let total = total_system_memory();
    let (maxmemory, policy) = {
        let cfg = srv.config.read();
        (
            cfg.get("maxmemory").parse::<u64>().unwrap_or(0),
            cfg.get("maxmemory-policy").to_string(),
        )
    };
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    fields!(out,
        "used_memory" => used,
        "used_memory_human" => bytes_to_human(used),
        "used_memory_rss" => rss,
        "used_memory_rss_human" => bytes_to_human(rss),
        "used_memory_peak" => peak,
        "used_memory_peak_human" => bytes_to_human(peak),
        "used_memory_peak_perc" => format!("{:.2}%", pct(used, peak)),
        "used_memory_overhead" => 0,
        "used_memory_startup" => 0,
        "used_memory_dataset" => used,
        "used_memory_dataset_perc" => format!("{:.2}%", pct(used, used)),
        "allocator_allocated" => used,
        "allocator_active" => used,
        "allocator_resident" => rss,
        "total_system_memory" => total,
        "total_system_memory_human" => bytes_to_human(total),
        "used_memory_lua" => 0,
        "used_memory_vm_eval" => 0,
        "used_memory_lua_human" => "0B",
        "used_memory_scripts_eval" => 0,
        "number_of_cached_scripts" => 0,
        "number_of_functions" => 0,
        "number_of_libraries" => 0,
        "used_memory_vm_functions" => 0,
        "used_memory_vm_total" => 0,
        "used_memory_vm_total_human" => "0B",
        "used_memory_functions" => 0,
        "used_memory_scripts" => 0,
        "used_memory_scripts_human" => "0B",
        "maxmemory" => maxmemory,
        "maxmemory_human" => bytes_to_human(maxmemory),
        "maxmemory_policy" => policy,
        "allocator_frag_ratio" => "1.00",
        "allocator_frag_bytes" => 0,
        "allocator_rss_ratio" => format!("{:.2}", ratio(rss, used)),
        "allocator_rss_bytes" => rss as i64 - used as i64,
        "rss_overhead_ratio" => "1.00",
        "rss_overhead_bytes" => 0,
        "mem_fragmentation_ratio" => format!("{:.2}", ratio(rss, used)),
        "mem_fragmentation_bytes" => rss as i64 - used as i64,
        "mem_not_counted_for_evict" => 0,
        "mem_replication_backlog" => 0,
        "mem_total_replication_buffers" => 0,
        "mem_clients_slaves" => 0,
        "mem_clients_normal" => 0,
        "mem_cluster_links" => 0,
        "mem_aof_buffer" => 0,
        "mem_allocator" => "libc",
        "active_defrag_running" => 0,
        "lazyfree_pending_objects" => 0,
        "lazyfreed_objects" => 0,
    );
}

fn persistence_section(srv: &Server, out: &mut String) {
    // Persistence is not implemented: no save ever ran, and the "last
    // save" is the start time, as Redis reports before its first save.
    fields!(out,
        "loading" => 0,
        "async_loading" => 0,
        "current_cow_peak" => 0,
        "current_cow_size" => 0,
        "current_cow_size_age" => 0,
        "current_fork_perc" => "0.00",
        "current_save_keys_processed" => 0,
        "current_save_keys_total" => 0,
        "rdb_changes_since_last_save" => srv.stats.dirty.load(Ordering::Relaxed),
        "rdb_bgsave_in_progress" => 0,
        "rdb_last_save_time" => srv.start_ms / 1000,
        "rdb_last_bgsave_status" => "ok",
        "rdb_last_bgsave_time_sec" => -1,
        "rdb_current_bgsave_time_sec" => -1,
        "rdb_saves" => 0,
        "rdb_last_cow_size" => 0,
        "rdb_last_load_keys_expired" => 0,
        "rdb_last_load_keys_loaded" => 0,
        "aof_enabled" => 0,
        "aof_rewrite_in_progress" => 0,
        "aof_rewrite_scheduled" => 0,
        "aof_last_rewrite_time_sec" => -1,
        "aof_current_rewrite_time_sec" => -1,
        "aof_last_bgrewrite_status" => "ok",
        "aof_rewrites" => 0,
        "aof_rewrites_consecutive_failures" => 0,
        "aof_last_write_status" => "ok",
        "aof_last_cow_size" => 0,
        "module_fork_in_progress" => 0,
        "module_fork_last_cow_size" => 0,
    );
}

/// Visits every command and subcommand (parents before their
/// subcommands, each level sorted by name).
fn for_each_command(srv: &Server, mut f: impl FnMut(&Command)) {
    let mut top: Vec<&Command> = srv.commands.iter().collect();
    top.sort_by_key(|c| c.spec.name);
    for c in top {
        f(c);
        let mut subs: Vec<&Command> = c.subcommands.values().collect();
        subs.sort_by_key(|c| c.spec.name);
        for s in subs {
            f(s);
        }
    }
}

fn stats_section(srv: &Server, out: &mut String, now_ms: i64) {
    let st = &srv.stats;
    let (ops, in_kbps, out_kbps) = instantaneous(srv, now_ms);
    let mut cmd_usec = 0u64;
    for_each_command(srv, |c| cmd_usec += c.usec.load(Ordering::Relaxed));
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    fields!(out,
        "total_connections_received" => ld(&st.connections_received),
        "total_commands_processed" => st.commands_processed.load(Ordering::Relaxed),
        "instantaneous_ops_per_sec" => ops,
        "total_net_input_bytes" => ld(&st.net_input_bytes),
        "total_net_output_bytes" => ld(&st.net_output_bytes),
        "total_net_repl_input_bytes" => 0,
        "total_net_repl_output_bytes" => 0,
        "instantaneous_input_kbps" => format!("{in_kbps:.2}"),
        "instantaneous_output_kbps" => format!("{out_kbps:.2}"),
        "instantaneous_input_repl_kbps" => "0.00",
        "instantaneous_output_repl_kbps" => "0.00",
        "rejected_connections" => ld(&st.rejected_connections),
        "sync_full" => 0,
        "sync_partial_ok" => 0,
        "sync_partial_err" => 0,
        "expired_keys" => ld(&st.expired_keys),
        "expired_subkeys" => crate::store::EXPIRED_SUBKEYS.load(Ordering::Relaxed),
        "expired_stale_perc" => "0.00",
        "expired_time_cap_reached_count" => ld(&st.expire_cycle_cap_reached),
        "expire_cycle_cpu_milliseconds" => 0,
        "evicted_keys" => ld(&st.evicted_keys),
        "evicted_clients" => 0,
        "total_eviction_exceeded_time" => 0,
        "current_eviction_exceeded_time" => 0,
        "keyspace_hits" => st.keyspace_hits.load(Ordering::Relaxed),
        "keyspace_misses" => st.keyspace_misses.load(Ordering::Relaxed),
        "pubsub_channels" => srv.pubsub.num_channels(false),
        "pubsub_patterns" => srv.pubsub.numpat(),
        "pubsubshard_channels" => srv.pubsub.num_channels(true),
        "latest_fork_usec" => 0,
        "total_forks" => 0,
        "migrate_cached_sockets" => 0,
        "slave_expires_tracked_keys" => 0,
        "active_defrag_hits" => 0,
        "active_defrag_misses" => 0,
        "active_defrag_key_hits" => 0,
        "active_defrag_key_misses" => 0,
        "total_active_defrag_time" => 0,
        "current_active_defrag_time" => 0,
        "tracking_total_keys" => crate::tracking::totals().0,
        "tracking_total_items" => crate::tracking::totals().1,
        "tracking_total_prefixes" => crate::tracking::totals().2,
        "unexpected_error_replies" => 0,
        "total_error_replies" => ld(&st.error_replies),
        "dump_payload_sanitizations" => 0,
        "total_reads_processed" => 0,
        "total_writes_processed" => 0,
        "io_threaded_reads_processed" => 0,
        "io_threaded_writes_processed" => 0,
        "reply_buffer_shrinks" => 0,
        "reply_buffer_expands" => 0,
        "eventloop_cycles" => 0,
        "eventloop_duration_sum" => 0,
        "eventloop_duration_cmd_sum" => cmd_usec,
        "instantaneous_eventloop_cycles_per_sec" => 0,
        "instantaneous_eventloop_duration_usec" => 0,
        "acl_access_denied_auth" => 0,
        "acl_access_denied_cmd" => 0,
        "acl_access_denied_key" => 0,
        "acl_access_denied_channel" => 0,
    );
}

fn replication_section(srv: &Server, out: &mut String) {
    let backlog = srv.config.read().get_i64("repl-backlog-size");
    fields!(out,
        "role" => "master",
        "connected_slaves" => 0,
        "master_failover_state" => "no-failover",
        "master_replid" => replid(),
        "master_replid2" => "0000000000000000000000000000000000000000",
        "master_repl_offset" => 0,
        "second_repl_offset" => -1,
        "repl_backlog_active" => 0,
        "repl_backlog_size" => backlog,
        "repl_backlog_first_byte_offset" => 0,
        "repl_backlog_histlen" => 0,
    );
}

fn cpu_section(out: &mut String) {
    let (sys, user) = rusage(libc::RUSAGE_SELF);
    let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
    // Redis's "main thread" is its event loop; here it is the worker
    // thread that runs INFO.
    let (tsys, tuser) = rusage(libc::RUSAGE_THREAD);
    fields!(out,
        "used_cpu_sys" => sys,
        "used_cpu_user" => user,
        "used_cpu_sys_children" => csys,
        "used_cpu_user_children" => cuser,
        "used_cpu_sys_main_thread" => tsys,
        "used_cpu_user_main_thread" => tuser,
    );
}

fn commandstats_section(srv: &Server, out: &mut String) {
    for_each_command(srv, |c| {
        let calls = c.calls.load(Ordering::Relaxed);
        let usec = c.usec.load(Ordering::Relaxed);
        let rejected = c.rejected.load(Ordering::Relaxed);
        let failed = c.failed.load(Ordering::Relaxed);
        if calls == 0 && rejected == 0 && failed == 0 {
            return;
        }
        let per_call = if calls == 0 {
            0.0
        } else {
            usec as f32 / calls as f32
        };
        let _ = write!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
            safe_info(c.spec.name)
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn headers(text: &str) -> Vec<&str> {
        text.split("\r\n").filter(|l| l.starts_with("# ")).collect()
    }

    fn sel(args: &[&str]) -> Selection {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Selection::parse(&v)
    }

    #[test]
    fn section_selection() {
        let srv = Server::new(Config::default());
        let default = [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace",
        ];
        assert_eq!(headers(&render(&srv, &sel(&[]), &[])), default);
        assert_eq!(headers(&render(&srv, &sel(&["DEFAULT"]), &[])), default);
        let all_text = render(&srv, &sel(&["all"]), &[]);
        let all = headers(&all_text);
        assert_eq!(all.len(), 13);
        assert!(all.contains(&"# Commandstats") && all.contains(&"# Latencystats"));
        assert_eq!(headers(&render(&srv, &sel(&["everything"]), &[])), all);
        assert_eq!(
            headers(&render(&srv, &sel(&["all", "debug"]), &[])).len(),
            14
        );
        assert_eq!(
            headers(&render(&srv, &sel(&["CPU", "clients", "cpu"]), &[])),
            ["# Clients", "# CPU"]
        );
        assert_eq!(
            headers(&render(&srv, &sel(&["module_list"]), &[])),
            ["# Modules"]
        );
        assert_eq!(render(&srv, &sel(&["nosuchsection"]), &[]), "");
    }

    #[test]
    fn section_format() {
        let srv = Server::new(Config::default());
        let text = render(&srv, &sel(&["server", "cluster"]), &[]);
        assert!(text.starts_with("# Server\r\nredis_version:7.2.4\r\nkvik_version:"));
        assert!(text.ends_with("\r\n\r\n# Cluster\r\ncluster_enabled:0\r\n"));
        for line in text
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            assert!(line.contains(':'), "{line}");
        }
        let stats = render(&srv, &sel(&["stats"]), &[]);
        assert!(stats.contains("\r\ntotal_error_replies:0\r\n"));
        assert!(stats.ends_with("acl_access_denied_channel:0\r\n"));
    }

    #[test]
    fn stats_rendering() {
        let srv = Server::new(Config::default());
        srv.count_error("ERR");
        srv.count_error("WRONGTYPE");
        srv.count_error("ERR");
        let text = render(&srv, &sel(&["errorstats"]), &[]);
        assert_eq!(
            text,
            "# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\n"
        );
        let get = srv.commands.get(b"get").unwrap();
        get.calls.store(3, Ordering::Relaxed);
        get.usec.store(10, Ordering::Relaxed);
        let text = render(&srv, &sel(&["commandstats"]), &[]);
        assert!(text.contains(
            "cmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\n"
        ));
    }

    #[test]
    fn human_bytes() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1024), "1.00K");
        assert_eq!(bytes_to_human(916456), "894.98K");
        assert_eq!(bytes_to_human(6742016), "6.43M");
        assert_eq!(bytes_to_human(25276510208), "23.54G");
    }
}
