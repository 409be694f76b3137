//! Blocking commands (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, ...): clients
//! waiting for keys, and serving them when a key becomes ready.
//!
//! A handler that finds nothing to serve calls [`block`] with a
//! [`BlockRequest`]. Under the locks of the keys' shards, a [`Waiter`] is
//! queued under every key in the shard's [`BlockMap`] (FIFO per key), and
//! the connection stops processing requests until the waiter is served,
//! times out, is unblocked (CLIENT UNBLOCK) or the client goes away.
//!
//! A command that creates (or, for streams, appends to, or deletes) a key
//! some client waits on records it in [`crate::db::Keyspace::ready`]; the
//! dispatcher then calls [`serve_ready`] *before releasing the command's
//! locks*, so the waiters are served before anyone else can see the key.
//! Serving re-runs the waiter's command (as Redis 7.2 does) under the
//! pusher's locks plus any other shard the waiter's command needs; a
//! re-run that again finds nothing leaves the waiter queued.

use crate::client::ClientShared;
use crate::dispatch::Ctx;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Number of clients blocked on keys (INFO `blocked_clients`). Zero makes
/// the keyspace's readiness hook one load.
pub static BLOCKED: AtomicUsize = AtomicUsize::new(0);

/// Number of (db, key) queues in all shards' [`BlockMap`]s.
static BLOCKING_KEYS: AtomicUsize = AtomicUsize::new(0);

/// The type of key a blocked command waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.
    List,
    /// BZPOPMIN, BZPOPMAX, BZMPOP.
    ZSet,
    /// XREAD, XREADGROUP.
    Stream,
}

impl Kind {
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }
}

/// What a handler asks for when it has to block.
#[derive(Debug)]
pub struct BlockRequest {
    /// Keys to wait on (in the client's database), in command order.
    pub keys: Vec<Vec<u8>>,
    /// The type the keys must have to serve the command.
    pub kind: Kind,
    /// Absolute deadline in ms, or 0 to wait forever (as
    /// [`parse_timeout`] returns it).
    pub deadline_ms: i64,
    /// The command to re-run when a key is ready (a handler may rewrite
    /// arguments, e.g. XREAD's `$` into the last ID).
    pub args: Vec<Vec<u8>>,
    /// Serve the waiter with an error when the key is deleted (XREADGROUP).
    pub unblock_on_nokey: bool,
    /// Where blocking is not allowed (MULTI, scripts) reply a null bulk
    /// (BLMOVE, BRPOPLPUSH) rather than a null array. A timeout is always
    /// a null array, as in Redis.
    pub null_bulk: bool,
}

/// Outcome of a wait, decided under the waiter's mutex.
#[derive(Debug)]
pub enum WaitState {
    /// Still queued.
    Waiting,
    /// Served: the reply bytes.
    Served(Vec<u8>),
    /// Timed out, unblocked or gone: no longer queued (or being removed).
    Done,
}

/// A blocked client, queued under each of its keys.
#[derive(Debug)]
pub struct Waiter {
    /// The client.
    pub client: Arc<ClientShared>,
    /// Its selected database.
    pub db: usize,
    /// Whether it speaks RESP3.
    pub resp3: bool,
    /// What it waits for.
    pub req: BlockRequest,
    /// Outcome.
    pub state: Mutex<WaitState>,
}

/// Per-shard registry: (db, key) → waiters, first blocked first.
pub type BlockMap = HashMap<(usize, Box<[u8]>), VecDeque<Arc<Waiter>>>;

/// Parses a blocking timeout as Redis's `getTimeoutFromObjectOrReply`:
/// seconds with decimals (`ms = false`) or integer milliseconds. Returns
/// the absolute deadline (0 = forever), or replies with the error.
pub fn parse_timeout(ctx: &mut Ctx<'_>, arg: &[u8], ms: bool) -> Option<i64> {
    let tval: i64 = if ms {
        match kvik_core::num::parse_i64(arg) {
            Some(v) => v,
            None => {
                ctx.error("ERR timeout is not an integer or out of range");
                return None;
            }
        }
    } else {
        // Redis parses seconds as a long double (strtold: hex, `inf`).
        match kvik_core::num::LongDouble::parse(arg) {
            Some(v) if !v.is_nan() => {
                let v = v.to_f64() * 1000.0;
                if v >= i64::MAX as f64 {
                    ctx.error("ERR timeout is out of range");
                    return None;
                }
                if v < i64::MIN as f64 {
                    ctx.error("ERR timeout is negative");
                    return None;
                }
                v.ceil() as i64
            }
            _ => {
                ctx.error("ERR timeout is not a float or out of range");
                return None;
            }
        }
    };
    if tval < 0 {
        ctx.error("ERR timeout is negative");
        return None;
    }
    if tval == 0 {
        return Some(0);
    }
    let now = ctx.now_ms();
    if tval > i64::MAX - now {
        ctx.error("ERR timeout is out of range");
        return None;
    }
    Some(tval + now)
}

/// Blocks the calling client as `req` says; the handler writes no reply.
/// Inside MULTI or a script (where a command must not block) the timeout
/// reply is written at once instead, as Redis does. When the command is
/// being re-run for a ready key and still finds nothing, the waiter just
/// stays queued.
pub fn block(ctx: &mut Ctx<'_>, req: BlockRequest) {
    if ctx.client.block_retry {
        ctx.client.still_blocked = true;
        return;
    }
    if ctx.client.deny_blocking {
        timeout_reply(ctx.out, req.null_bulk);
        return;
    }
    let waiter = Arc::new(Waiter {
        client: ctx.client.shared.clone(),
        db: ctx.client.db,
        resp3: ctx.out.resp3(),
        req,
        state: Mutex::new(WaitState::Waiting),
    });
    for key in &waiter.req.keys {
        let shard = ctx.ks.shard_of(key);
        if let Some(s) = ctx.ks.locks.shard(shard) {
            let q = s
                .blocked
                .entry((waiter.db, key.clone().into_boxed_slice()))
                .or_insert_with(|| {
                    BLOCKING_KEYS.fetch_add(1, Ordering::Relaxed);
                    VecDeque::new()
                });
            if !q.iter().any(|w| Arc::ptr_eq(w, &waiter)) {
                q.push_back(waiter.clone());
            }
        }
    }
    BLOCKED.fetch_add(1, Ordering::Relaxed);
    *ctx.client.shared.waiter.lock() = Some(waiter.clone());
    ctx.client.blocked = Some(waiter);
}

/// Writes the reply of a blocking command that timed out.
pub fn timeout_reply(out: &mut kvik_protocol::ReplyBuf, null_bulk: bool) {
    if null_bulk {
        out.null();
    } else {
        out.null_array();
    }
}

/// Records `key` in `ready` when a client waits on it in `shard` (the
/// caller holds the shard's lock).
pub fn note_ready(
    shard: &mut crate::store::Shard,
    ready: &mut Vec<(usize, Box<[u8]>)>,
    db: usize,
    key: &[u8],
) {
    if shard.blocked.is_empty() {
        return;
    }
    let k: Box<[u8]> = key.into();
    let pair = (db, k);
    if shard.blocked.contains_key(&pair) && !ready.contains(&pair) {
        ready.push(pair);
    }
}

/// Serves the clients blocked on the keys the command in `ctx` made ready,
/// in the order the keys became ready and, per key, the order the clients
/// blocked. Runs before the command's locks are released. Waiters whose
/// command needs a shard that cannot be taken without waiting are
/// returned, to be served by [`serve_deferred`] once the locks are gone.
pub fn serve_ready(ctx: &mut Ctx<'_>) -> Vec<Arc<Waiter>> {
    let mut deferred = Vec::new();
    // Serving may make more keys ready (BLMOVE into a key others wait on):
    // they are appended and served in turn.
    while !ctx.ks.ready.is_empty() {
        let (db, key) = ctx.ks.ready.remove(0);
        serve_key(ctx, db, &key, &mut deferred);
    }
    deferred
}

/// Serves, first blocked first, the waiters of one ready key while the key
/// can serve them.
fn serve_key(ctx: &mut Ctx<'_>, db: usize, key: &[u8], deferred: &mut Vec<Arc<Waiter>>) {
    let srv = ctx.srv;
    let shard = srv.store.shard_of(key);
    let map_key: (usize, Box<[u8]>) = (db, key.into());
    let queue = |ctx: &mut Ctx<'_>| {
        ctx.ks
            .locks
            .shard(shard)
            .and_then(|s| s.blocked.get(&map_key))
            .map(|q| q.iter().cloned().collect::<Vec<_>>())
    };
    let Some(snapshot) = queue(ctx) else {
        return;
    };
    for w in snapshot {
        if !w.is_waiting() || deferred.iter().any(|d| Arc::ptr_eq(d, &w)) {
            continue;
        }
        if !key_can_serve(ctx, db, key, &w) {
            continue;
        }
        match serve_one(ctx, &w) {
            Served::Yes => {}
            // A list or sorted set that cannot serve this waiter cannot
            // serve the ones behind it either; stream readers differ in
            // the IDs they wait for, so each is tried.
            Served::No if w.req.kind != Kind::Stream => break,
            Served::No => {}
            Served::Later => deferred.push(w),
        }
    }
    if let Some(s) = ctx.ks.locks.shard(shard) {
        if let Some(q) = s.blocked.get_mut(&map_key) {
            q.retain(|w| w.is_waiting());
            if q.is_empty() {
                s.blocked.remove(&map_key);
                BLOCKING_KEYS.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Whether the key's current state may serve `w`: the key has the type the
/// waiter waits for, or it is gone and the waiter wants to hear that.
fn key_can_serve(ctx: &mut Ctx<'_>, db: usize, key: &[u8], w: &Waiter) -> bool {
    match ctx.ks.lookup_db(db, key) {
        Some(e) => {
            let t = match e.value() {
                kvik_core::entry::ValueRef::Obj(o) => o.type_name(),
                _ => "string",
            };
            t == w.req.kind.type_name() || w.req.unblock_on_nokey
        }
        None => w.req.unblock_on_nokey,
    }
}

/// The outcome of trying to serve one waiter.
enum Served {
    /// Replied (or errored): done.
    Yes,
    /// Nothing for it yet: it stays queued.
    No,
    /// Needs shards that are busy: retry after the locks are released.
    Later,
}

/// Re-runs the waiter's command against the locked keyspace (taking any
/// other shard it needs without waiting) and hands it the reply.
fn serve_one(ctx: &mut Ctx<'_>, w: &Arc<Waiter>) -> Served {
    let srv = ctx.srv;
    let args: Vec<&[u8]> = w.req.args.iter().map(|a| a.as_slice()).collect();
    let Some(cmd) = crate::cmd::multi::resolve(&srv.commands, &args) else {
        return Served::No;
    };
    let Some(handler) = cmd.handler else {
        return Served::No;
    };
    match crate::dispatch::shards_for(srv, cmd, &args) {
        Some(ids) => {
            if !ctx.ks.locks.try_extend(&srv.store, &ids) {
                return Served::Later;
            }
        }
        None => {
            if !ctx.ks.locks.is_all() {
                return Served::Later;
            }
        }
    }
    let mut state = w.state.lock();
    if !matches!(*state, WaitState::Waiting) {
        return Served::Yes;
    }
    // Run as the waiting client: its database, protocol and identity.
    let mut as_waiter = crate::client::Client::new(w.client.clone(), true);
    as_waiter.db = w.db;
    as_waiter.block_retry = true;
    std::mem::swap(ctx.client, &mut as_waiter);
    let (db, client_id, resp3) = (ctx.ks.db, ctx.ks.client_id, ctx.out.resp3());
    ctx.ks.client_id = w.client.id;
    ctx.out.set_resp3(w.resp3);
    let mark = ctx.out.len();
    crate::dispatch::run_nested(ctx, cmd, handler, &args);
    let reply = ctx.out.as_bytes()[mark..].to_vec();
    ctx.out.truncate(mark);
    ctx.out.set_resp3(resp3);
    ctx.ks.db = db;
    ctx.ks.client_id = client_id;
    std::mem::swap(ctx.client, &mut as_waiter);
    if as_waiter.still_blocked {
        return Served::No;
    }
    *state = WaitState::Served(reply);
    drop(state);
    w.client.wake.notify_one();
    Served::Yes
}

/// Serves waiters [`serve_ready`] could not serve under the command's
/// locks: each gets its own lock set, taken in the usual order.
pub fn serve_deferred(srv: &crate::server::Server, mut waiters: Vec<Arc<Waiter>>) {
    // Bounded: each round serves or drops the waiters it was given.
    while let Some(w) = waiters.pop() {
        if !w.is_waiting() {
            continue;
        }
        let args: Vec<&[u8]> = w.req.args.iter().map(|a| a.as_slice()).collect();
        let Some(cmd) = crate::cmd::multi::resolve(&srv.commands, &args) else {
            continue;
        };
        let locks = match crate::dispatch::shards_for(srv, cmd, &args) {
            Some(mut ids) => srv.store.lock_set(&mut ids),
            None => srv.store.lock_all(),
        };
        let mut client = crate::client::Client::new(w.client.clone(), true);
        client.db = w.db;
        let mut out = kvik_protocol::ReplyBuf::new();
        out.set_resp3(w.resp3);
        let ks = crate::db::Keyspace {
            srv,
            locks,
            db: w.db,
            now_ms: crate::util::now_ms(),
            no_touch: false,
            cmd_name: cmd.spec.name,
            client_id: w.client.id,
            ready: Vec::new(),
        };
        let mut ctx = Ctx {
            srv,
            client: &mut client,
            out: &mut out,
            ks,
            cmd,
        };
        let ready = w
            .req
            .keys
            .iter()
            .any(|k| key_can_serve(&mut ctx, w.db, k, &w));
        if ready {
            match serve_one(&mut ctx, &w) {
                Served::Later => {
                    // All its shards are held here, so this cannot happen;
                    // leave it queued rather than spin.
                }
                Served::Yes | Served::No => {}
            }
        }
        if !ctx.ks.ready.is_empty() {
            waiters.extend(serve_ready(&mut ctx));
        }
    }
}

impl Waiter {
    /// Whether the waiter is still queued for a reply.
    pub fn is_waiting(&self) -> bool {
        matches!(*self.state.lock(), WaitState::Waiting)
    }

    /// Ends the wait with `reply` unless it was served already; returns
    /// the reply the client must get (the served one, if any).
    pub fn finish(&self, reply: Vec<u8>) -> Vec<u8> {
        let mut st = self.state.lock();
        match std::mem::replace(&mut *st, WaitState::Done) {
            WaitState::Served(r) => r,
            _ => reply,
        }
    }

    /// The reply the waiter gets when it times out.
    pub fn timeout_bytes(&self) -> Vec<u8> {
        let mut out = kvik_protocol::ReplyBuf::new();
        out.set_resp3(self.resp3);
        timeout_reply(&mut out, false);
        out.as_bytes().to_vec()
    }
}

/// Removes a finished waiter from the queues of all its keys (locking
/// their shards one at a time) and from the blocked count.
pub fn deregister(srv: &crate::server::Server, w: &Arc<Waiter>) {
    for key in &w.req.keys {
        let mut s = srv.store.lock(srv.store.shard_of(key));
        let map_key: (usize, Box<[u8]>) = (w.db, key.clone().into_boxed_slice());
        if let Some(q) = s.blocked.get_mut(&map_key) {
            q.retain(|x| !Arc::ptr_eq(x, w));
            if q.is_empty() {
                s.blocked.remove(&map_key);
                BLOCKING_KEYS.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    *w.client.waiter.lock() = None;
    BLOCKED.fetch_sub(1, Ordering::Relaxed);
}

/// CLIENT UNBLOCK: ends the wait of client `id` as a timeout or with
/// Redis's UNBLOCKED error. Returns whether the client was blocked.
pub fn unblock(srv: &crate::server::Server, id: u64, error: bool) -> bool {
    let Some(shared) = srv.clients.lock().get(&id).cloned() else {
        return false;
    };
    let Some(w) = shared.waiter.lock().clone() else {
        return false;
    };
    let reply = if error {
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec()
    } else {
        w.timeout_bytes()
    };
    let mut st = w.state.lock();
    if !matches!(*st, WaitState::Waiting) {
        return false;
    }
    *st = WaitState::Served(reply);
    drop(st);
    count_call(srv, &w);
    w.client.wake.notify_one();
    true
}

/// Counts the call of a blocked command that ended without being re-run
/// (timeout, CLIENT UNBLOCK) in its command statistics.
pub fn count_call(srv: &crate::server::Server, w: &Waiter) {
    let args: Vec<&[u8]> = w.req.args.iter().map(|a| a.as_slice()).collect();
    if let Some(cmd) = crate::cmd::multi::resolve(&srv.commands, &args) {
        cmd.calls.fetch_add(1, Ordering::Relaxed);
        srv.stats.commands_processed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Number of keys clients are blocked on (INFO `total_blocking_keys`).
pub fn blocking_keys() -> usize {
    BLOCKING_KEYS.load(Ordering::Relaxed)
}

/// SWAPDB: clients blocked on keys of the swapped databases may now find
/// them ready (Redis's `scanDatabaseForReadyKeys`). Every shard is held.
pub fn note_swapped(ks: &mut crate::db::Keyspace<'_>, a: usize, b: usize) {
    if BLOCKED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut found = Vec::new();
    for shard in ks.locks.iter_mut() {
        for (db, key) in shard.blocked.keys() {
            if (*db == a || *db == b) && shard.dbs[*db].get_mut(key).is_some() {
                found.push((*db, key.clone()));
            }
        }
    }
    for pair in found {
        if !ks.ready.contains(&pair) {
            ks.ready.push(pair);
        }
    }
}
