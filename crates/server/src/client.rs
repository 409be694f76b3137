//! Per-connection state: the part only the connection's own task touches
//! ([`Client`]) and the part other connections may read or signal
//! ([`ClientShared`]: CLIENT LIST/KILL, MONITOR feeds, pauses).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// CLIENT REPLY mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent.
    On,
    /// Replies are discarded.
    Off,
    /// The next command's reply is discarded.
    SkipNext,
    /// This command's reply is discarded (SKIP took effect).
    Skip,
}

/// What other tasks may see of a connection.
#[derive(Debug)]
pub struct ClientShared {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address `ip:port` (or the socket path for unix sockets).
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// Connection time (ms).
    pub created_ms: i64,
    /// Time of the last command (ms).
    pub last_interaction_ms: AtomicI64,
    /// CLIENT SETNAME.
    pub name: Mutex<String>,
    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub lib: Mutex<(String, String)>,
    /// Selected database.
    pub db: AtomicUsize,
    /// Index in `commands::spec::SPECS` of the last command (CLIENT LIST
    /// `cmd=`); `usize::MAX` before the first.
    pub last_cmd: AtomicUsize,
    /// Set by CLIENT KILL / shutdown: the connection closes at once.
    pub killed: AtomicBool,
    /// Wakes the connection task for kills and pushed data.
    pub wake: Notify,
    /// Data pushed by other tasks (MONITOR lines), written by the owner.
    pub pushed: Mutex<Vec<u8>>,
    /// Whether `pushed` may hold data.
    pub has_pushed: AtomicBool,
    /// The socket descriptor while the connection is open, else -1.
    fd: Mutex<i32>,
    /// Whether this is a MONITOR client.
    pub monitor: AtomicBool,
    /// Query buffer bytes (for CLIENT LIST / INFO).
    pub qbuf: AtomicU64,
    /// RESP version.
    pub resp: AtomicUsize,
    /// Flags string pieces: CLIENT NO-EVICT / NO-TOUCH.
    pub no_evict: AtomicBool,
    /// CLIENT NO-TOUCH.
    pub no_touch: AtomicBool,
    /// Commands processed.
    pub commands: AtomicU64,
    /// Whether this is a unix socket connection.
    pub unix: bool,
    /// Pub/Sub subscription counts: channels, patterns, shard channels.
    pub pubsub_counts: [AtomicUsize; 3],
    /// The waiter while the client is blocked on keys (CLIENT UNBLOCK,
    /// CLIENT LIST flag `b`).
    pub waiter: Mutex<Option<Arc<crate::blocking::Waiter>>>,
    /// CLIENT TRACKING state: bits of `crate::tracking::flags`.
    pub tracking: AtomicU32,
    /// CLIENT TRACKING REDIRECT id (0: none); kept after tracking is
    /// turned off, as Redis does.
    pub tracking_redir: AtomicU64,
    /// Set once the connection has closed (a redirect to it is broken).
    pub closed: AtomicBool,
}

impl ClientShared {
    /// New shared state for connection `id`.
    pub fn new(id: u64, addr: String, laddr: String, unix: bool, now_ms: i64) -> Arc<Self> {
        Arc::new(ClientShared {
            id,
            addr,
            laddr,
            created_ms: now_ms,
            last_interaction_ms: AtomicI64::new(now_ms),
            name: Mutex::new(String::new()),
            lib: Mutex::new((String::new(), String::new())),
            db: AtomicUsize::new(0),
            last_cmd: AtomicUsize::new(usize::MAX),
            killed: AtomicBool::new(false),
            wake: Notify::new(),
            pushed: Mutex::new(Vec::new()),
            has_pushed: AtomicBool::new(false),
            fd: Mutex::new(-1),
            monitor: AtomicBool::new(false),
            qbuf: AtomicU64::new(0),
            resp: AtomicUsize::new(2),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            commands: AtomicU64::new(0),
            unix,
            pubsub_counts: Default::default(),
            waiter: Mutex::new(None),
            tracking: AtomicU32::new(0),
            tracking_redir: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Asks the connection to close. A connection waiting in a plain read
    /// is woken by shutting its socket down; one waiting for pushed data
    /// too by the notification.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let fd = self.fd.lock();
        if *fd >= 0 {
            // SAFETY: `fd` is the connection's open socket: it is set to -1
            // under this lock before the socket is closed.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
        self.wake.notify_one();
    }

    /// Records the socket descriptor (for [`ClientShared::kill`]).
    pub fn set_fd(&self, fd: i32) {
        *self.fd.lock() = fd;
    }

    /// Forgets the socket descriptor; called before the socket is closed.
    pub fn clear_fd(&self) {
        *self.fd.lock() = -1;
    }

    /// Queues bytes for the connection to write (MONITOR), waking it.
    pub fn push_bytes(&self, bytes: &[u8]) {
        self.pushed.lock().extend_from_slice(bytes);
        self.has_pushed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Takes the bytes pushed by other tasks, if any (lock-free when none).
    pub fn take_pushed(&self) -> Option<Vec<u8>> {
        // A plain load first: the common case (nothing pushed) then costs
        // no read-modify-write on every read.
        if !self.has_pushed.load(Ordering::Relaxed)
            || !self.has_pushed.swap(false, Ordering::Acquire)
        {
            return None;
        }
        let v = std::mem::take(&mut *self.pushed.lock());
        (!v.is_empty()).then_some(v)
    }

    /// Whether the connection must also wait for pushed data or wake-ups
    /// while idle (MONITOR clients, subscribers, and RESP3 connections,
    /// which may receive tracking invalidations: another client can make
    /// any of them its REDIRECT target at any time).
    pub fn wants_wakeups(&self) -> bool {
        self.monitor.load(Ordering::Relaxed)
            || crate::pubsub::subscribed(self)
            || self.resp.load(Ordering::Relaxed) == 3
    }

    /// The CLIENT LIST / CLIENT INFO line (without trailing newline).
    pub fn info_line(&self, now_ms: i64) -> String {
        let (lib_name, lib_ver) = self.lib.lock().clone();
        let mut flags = String::new();
        if self.monitor.load(Ordering::Relaxed) {
            flags.push('O');
        }
        if crate::pubsub::subscribed(self) {
            flags.push('P');
        }
        let tracking = self.tracking.load(Ordering::Relaxed);
        if tracking & crate::tracking::flags::ON != 0 {
            flags.push('t');
        }
        if tracking & crate::tracking::flags::BROKEN_REDIR != 0 {
            flags.push('R');
        }
        if tracking & crate::tracking::flags::BCAST != 0 {
            flags.push('B');
        }
        if self.waiter.lock().is_some() {
            flags.push('b');
        }
        if self.no_evict.load(Ordering::Relaxed) {
            flags.push('e');
        }
        if self.no_touch.load(Ordering::Relaxed) {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let last = self.last_interaction_ms.load(Ordering::Relaxed);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.id + 7,
            self.name.lock(),
            (now_ms - self.created_ms).max(0) / 1000,
            (now_ms - last).max(0) / 1000,
            flags,
            self.db.load(Ordering::Relaxed),
            self.pubsub_counts[0].load(Ordering::Relaxed),
            self.pubsub_counts[1].load(Ordering::Relaxed),
            self.pubsub_counts[2].load(Ordering::Relaxed),
            self.qbuf.load(Ordering::Relaxed),
            crate::commands::spec::SPECS
                .get(self.last_cmd.load(Ordering::Relaxed))
                .map_or("NULL", |s| s.name),
            if tracking & crate::tracking::flags::ON != 0 {
                self.tracking_redir.load(Ordering::Relaxed) as i64
            } else {
                -1
            },
            self.resp.load(Ordering::Relaxed),
            lib_name,
            lib_ver,
        )
    }
}

/// State owned by the connection's task.
#[derive(Debug)]
pub struct Client {
    /// Shared part.
    pub shared: Arc<ClientShared>,
    /// Selected database.
    pub db: usize,
    /// Whether AUTH succeeded (or no password is set).
    pub authenticated: bool,
    /// Close the connection once pending replies are written.
    pub close_after_reply: bool,
    /// CLIENT REPLY state.
    pub reply_mode: ReplyMode,
    /// Pub/Sub subscriptions (None until the first).
    pub pubsub: Option<Box<crate::pubsub::Subs>>,
    /// MULTI queue and WATCHed keys.
    pub tx: crate::multi::TxState,
    /// Set while EXEC or a script runs commands: blocking commands answer
    /// their timeout reply at once instead of blocking.
    pub deny_blocking: bool,
    /// Set while a script runs commands (XREAD BLOCK refuses to run).
    pub in_script: bool,
    /// Set while a blocked command is re-run for a ready key.
    pub block_retry: bool,
    /// Set by a re-run that found nothing again (the waiter stays).
    pub still_blocked: bool,
    /// Set by a handler that blocked the client (see `crate::blocking`).
    pub blocked: Option<Arc<crate::blocking::Waiter>>,
    /// CLIENT CACHING YES/NO given for the next command (or transaction).
    pub tracking_caching: bool,
}

impl Client {
    /// A fresh client.
    pub fn new(shared: Arc<ClientShared>, authenticated: bool) -> Client {
        Client {
            shared,
            db: 0,
            authenticated,
            close_after_reply: false,
            reply_mode: ReplyMode::On,
            pubsub: None,
            tx: Default::default(),
            deny_blocking: false,
            in_script: false,
            block_retry: false,
            still_blocked: false,
            blocked: None,
            tracking_caching: false,
        }
    }

    /// CLIENT ID.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Selects a database.
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.shared.db.store(db, Ordering::Relaxed);
    }
}
