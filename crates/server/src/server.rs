//! Process-wide state shared by all connections: configuration, the store,
//! the client registry, statistics, slow log and the command table.

use crate::client::ClientShared;
use crate::config::{Config, Tunables};
use crate::dispatch::CommandTable;
use crate::store::Store;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// kvik's own version (reported beside the Redis version it matches).
pub const KVIK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Redis version whose behaviour kvik matches.
pub const REDIS_VERSION: &str = "7.2.4";

/// Server-wide counters (INFO stats).
#[derive(Debug, Default)]
pub struct Stats {
    /// total_connections_received
    pub connections_received: AtomicU64,
    /// rejected_connections
    pub rejected_connections: AtomicU64,
    /// total_commands_processed
    pub commands_processed: crate::util::Counter,
    /// keyspace_hits
    pub keyspace_hits: crate::util::Counter,
    /// keyspace_misses
    pub keyspace_misses: crate::util::Counter,
    /// expired_keys
    pub expired_keys: AtomicU64,
    /// evicted_keys
    pub evicted_keys: AtomicU64,
    /// total_net_input_bytes
    pub net_input_bytes: AtomicU64,
    /// total_net_output_bytes
    pub net_output_bytes: AtomicU64,
    /// total_error_replies
    pub error_replies: AtomicU64,
    /// Keys changed since start (rdb_changes_since_last_save).
    pub dirty: crate::util::Counter,
    /// Error prefix -> count (INFO errorstats).
    pub errors: Mutex<HashMap<String, u64>>,
    /// expired_time_cap_reached_count
    pub expire_cycle_cap_reached: AtomicU64,
    /// Number of clients currently connected.
    pub connected_clients: AtomicUsize,
}

/// One slow log entry.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    /// Entry id.
    pub id: u64,
    /// Unix time (seconds).
    pub time: i64,
    /// Duration in microseconds.
    pub micros: i64,
    /// Arguments (truncated as Redis does).
    pub args: Vec<Vec<u8>>,
    /// Client address.
    pub addr: String,
    /// Client name.
    pub name: String,
}

/// SLOWLOG storage.
#[derive(Debug, Default)]
pub struct SlowLog {
    /// Newest first.
    pub entries: VecDeque<SlowEntry>,
    /// Next id.
    pub next_id: u64,
}

/// One LATENCY event's history.
#[derive(Debug, Default, Clone)]
pub struct LatencyEvent {
    /// (unix seconds, ms) samples, oldest first, at most 160.
    pub samples: VecDeque<(i64, u64)>,
    /// Highest latency seen.
    pub max: u64,
}

/// CLIENT PAUSE state, read by every request without a lock.
#[derive(Debug, Default)]
pub struct Pause {
    /// Pause ends at this Unix time (ms); 0: not paused.
    until_ms: AtomicI64,
    /// Only writes are paused (`WRITE` mode).
    write_only: AtomicBool,
}

impl Pause {
    /// Pauses until `end_ms` (the end only moves later; the latest mode
    /// wins, as Redis 7.2 does).
    pub fn pause(&self, end_ms: i64, write_only: bool) {
        self.write_only.store(write_only, Ordering::SeqCst);
        self.until_ms.fetch_max(end_ms, Ordering::SeqCst);
    }

    /// Ends any pause.
    pub fn unpause(&self) {
        self.until_ms.store(0, Ordering::SeqCst);
    }

    /// The pause in force at `now_ms`, if any: whether it is write-only.
    pub fn active(&self, now_ms: i64) -> Option<bool> {
        let until = self.until_ms.load(Ordering::Relaxed);
        if until == 0 || now_ms >= until {
            return None;
        }
        Some(self.write_only.load(Ordering::Relaxed))
    }

    /// Whether a pause end time is set at all (cheap pre-check).
    pub fn is_set(&self) -> bool {
        self.until_ms.load(Ordering::Relaxed) != 0
    }
}

/// Everything shared between connections.
pub struct Server {
    /// Configuration (written by CONFIG SET).
    pub config: RwLock<Config>,
    /// Lock-free copies of hot parameters.
    pub tun: Tunables,
    /// The keyspace.
    pub store: Store,
    /// Connected clients by id.
    pub clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    /// Next CLIENT ID.
    pub next_client_id: AtomicU64,
    /// Counters.
    pub stats: Stats,
    /// Start time (ms).
    pub start_ms: i64,
    /// 40 hex chars, new each start.
    pub run_id: String,
    /// Command table.
    pub commands: CommandTable,
    /// Number of MONITOR clients (checked before formatting a feed line).
    pub monitors: AtomicUsize,
    /// SLOWLOG.
    pub slowlog: Mutex<SlowLog>,
    /// LATENCY events.
    pub latency: Mutex<HashMap<String, LatencyEvent>>,
    /// CLIENT PAUSE.
    pub pause: Pause,
    /// Set when SHUTDOWN was requested.
    pub shutting_down: AtomicBool,
    /// Wakes the main task for shutdown.
    pub shutdown_notify: tokio::sync::Notify,
    /// Active expiry on/off (DEBUG SET-ACTIVE-EXPIRE).
    pub active_expire: AtomicBool,
    /// Port actually bound (for INFO when `port 0`).
    pub bound_port: AtomicI64,
    /// Executable path (INFO server).
    pub executable: String,
    /// Pub/Sub registry.
    pub pubsub: crate::pubsub::PubSub,
}

impl Server {
    /// Builds the shared state from a configuration.
    pub fn new(config: Config) -> Arc<Server> {
        let tun = Tunables::default();
        config.publish(&tun);
        let shards = config.get_i64("shards").max(1) as usize;
        let databases = config.get_i64("databases").max(1) as usize;
        let now = crate::util::now_ms();
        Arc::new(Server {
            tun,
            store: Store::new(shards, databases),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            stats: Stats::default(),
            start_ms: now,
            run_id: random_hex(40),
            commands: CommandTable::build(),
            monitors: AtomicUsize::new(0),
            slowlog: Mutex::new(SlowLog::default()),
            latency: Mutex::new(HashMap::new()),
            pause: Pause::default(),
            shutting_down: AtomicBool::new(false),
            shutdown_notify: tokio::sync::Notify::new(),
            active_expire: AtomicBool::new(true),
            bound_port: AtomicI64::new(config.get_i64("port")),
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            config: RwLock::new(config),
            pubsub: crate::pubsub::PubSub::new(),
        })
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.store.databases()
    }

    /// Counts an error reply for INFO errorstats (`prefix` is the first
    /// word, e.g. `ERR`, `WRONGTYPE`).
    pub fn count_error(&self, prefix: &str) {
        self.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        *self
            .stats
            .errors
            .lock()
            .entry(prefix.to_string())
            .or_insert(0) += 1;
    }

    /// Records a latency sample for LATENCY if above the threshold.
    pub fn latency_sample(&self, event: &str, ms: u64) {
        let threshold = self.tun.latency_threshold.load(Ordering::Relaxed);
        if threshold <= 0 || (ms as i64) < threshold {
            return;
        }
        let now = crate::util::now_ms() / 1000;
        let mut l = self.latency.lock();
        let e = l.entry(event.to_string()).or_default();
        if let Some(last) = e.samples.back_mut() {
            if last.0 == now {
                last.1 = last.1.max(ms);
                e.max = e.max.max(ms);
                return;
            }
        }
        e.samples.push_back((now, ms));
        if e.samples.len() > 160 {
            e.samples.pop_front();
        }
        e.max = e.max.max(ms);
    }
}

/// Random lowercase hex (run ids), seeded from the clock and address
/// space randomisation; not cryptographic.
pub fn random_hex(n: usize) -> String {
    let mut x = crate::util::now_us() as u64 ^ (&n as *const usize as u64).rotate_left(32);
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push(char::from_digit((x % 16) as u32, 16).unwrap_or('0'));
    }
    s
}
