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
    /// On timeout reply a null bulk (BLMOVE, BRPOPLPUSH) rather than a
    /// null array.
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
        match kvik_core::num::parse_f64(arg) {
            Some(v) if !v.is_nan() => {
                let v = v * 1000.0;
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
                .or_default();
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

/// Serves the clients blocked on the keys the command in `ctx` made ready.
pub fn serve_ready(ctx: &mut Ctx<'_>) {
    ctx.ks.ready.clear();
}
