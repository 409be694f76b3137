//! Client-side caching: CLIENT TRACKING's table of keys read by tracking
//! clients, and the invalidation messages sent when those keys change.
//!
//! Hooks: [`crate::db::Keyspace`] calls [`invalidate_key`] on every
//! modification (and lazy or active expiry), the dispatcher calls
//! [`after_command`] after each command (and [`after_nested`] after each
//! command EXEC runs), FLUSHDB/FLUSHALL call [`flush`]. While no client
//! tracks, every hook costs one atomic load.
//!
//! The table lives behind its own mutex. The hooks run while shard locks
//! are held, so nothing here ever takes a shard lock, and messages are
//! delivered after the table lock is released.
//!
//! As in Redis, the table is global (keys of every database share it), a
//! key is forgotten once its invalidation is sent, and ids of clients that
//! turned tracking off stay in the table until the key is invalidated;
//! unlike Redis, the table is emptied when the last tracking client stops
//! (the hooks then no longer look at it).
//! Messages for keys a client modifies itself are queued and written right
//! after that command's reply (after EXEC's for a transaction). BCAST
//! messages are batched per command: one message per prefix, holding every
//! matching key the command changed.

use crate::client::{Client, ClientShared};
use crate::dispatch::Command;
use crate::server::Server;
use kvik_protocol::ReplyBuf;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// Number of clients with tracking on: zero makes every hook one load.
pub static TRACKING_CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// Bits of [`ClientShared::tracking`].
pub mod flags {
    /// Tracking is on (CLIENT LIST flag `t`).
    pub const ON: u32 = 1;
    /// Broadcasting mode (flag `B`).
    pub const BCAST: u32 = 2;
    /// OPTIN mode.
    pub const OPTIN: u32 = 4;
    /// OPTOUT mode.
    pub const OPTOUT: u32 = 8;
    /// NOLOOP: no messages about the client's own changes.
    pub const NOLOOP: u32 = 16;
    /// The redirect client went away (flag `R`).
    pub const BROKEN_REDIR: u32 = 32;
}

/// A tracking client as the table knows it.
struct Tracked {
    shared: Arc<ClientShared>,
    /// Redirect target, looked up when tracking was enabled.
    redirect: Option<Arc<ClientShared>>,
    /// BCAST prefixes.
    prefixes: BTreeSet<Vec<u8>>,
}

#[derive(Default)]
struct State {
    /// Key -> ids of the clients that may have cached it (sorted).
    keys: HashMap<Vec<u8>, Vec<u64>>,
    /// Sum of the id lists' lengths (`tracking_total_items`).
    items: usize,
    /// BCAST prefix -> ids of the clients registered for it (sorted).
    prefixes: BTreeMap<Vec<u8>, Vec<u64>>,
    /// Clients with tracking on, by id.
    clients: HashMap<u64, Tracked>,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| Mutex::new(State::default()));

/// Whether the table was ever used (FLUSH clears it even with no tracking
/// client left).
static USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Last known `tracking-table-max-keys` (used when the configuration lock
/// is busy).
static MAX_KEYS: AtomicU64 = AtomicU64::new(1_000_000);

/// Last known output buffer hard limits: normal and pubsub classes.
static HARD_LIMITS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(32 << 20)];

/// What an invalidation carries.
#[derive(Clone, Debug)]
enum Payload {
    /// Encoded `*N` array of keys.
    Keys(Arc<[u8]>),
    /// The whole keyspace (FLUSHDB / FLUSHALL): a null.
    Null,
}

/// Messages queued by the running command on this thread.
#[derive(Default)]
struct Pending {
    /// Messages for the client that caused them: (client id, payload),
    /// written after its reply.
    own: Vec<(u64, Payload)>,
    /// BCAST: prefix -> (key -> id of the client that changed it last).
    bcast: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, u64>>,
    /// Keys were added to the table (its size limit must be checked).
    added: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.own.is_empty() && self.bcast.is_empty()
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// A message destination resolved under the table lock.
struct Target {
    tracker: Arc<ClientShared>,
    redirect_id: u64,
    redirect: Option<Arc<ClientShared>>,
}

impl Target {
    fn of(t: &Tracked) -> Target {
        Target {
            tracker: t.shared.clone(),
            redirect_id: t.shared.tracking_redir.load(Ordering::Relaxed),
            redirect: t.redirect.clone(),
        }
    }
}

/// The running client's reply buffer, for messages addressed to it.
struct Current<'a> {
    id: u64,
    out: &'a mut ReplyBuf,
}

fn encode_keys<K: AsRef<[u8]>>(keys: &[K]) -> Arc<[u8]> {
    let mut v = Vec::with_capacity(16 + keys.iter().map(|k| k.as_ref().len() + 16).sum::<usize>());
    v.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
    for k in keys {
        let k = k.as_ref();
        v.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
        v.extend_from_slice(k);
        v.extend_from_slice(b"\r\n");
    }
    v.into()
}

fn is_resp3(c: &ClientShared, cur: &Option<Current<'_>>) -> bool {
    match cur {
        Some(cur) if cur.id == c.id => cur.out.resp3(),
        _ => c.resp.load(Ordering::Relaxed) == 3,
    }
}

fn gone(c: &ClientShared) -> bool {
    c.killed.load(Ordering::Relaxed) || c.closed.load(Ordering::Relaxed)
}

/// Writes `bytes` to client `c`: into the reply buffer when it is the
/// running client, else onto its pushed data (waking it), within the
/// output buffer hard limit of its class.
fn emit(c: &ClientShared, bytes: &[u8], cur: &mut Option<Current<'_>>) {
    if let Some(cur) = cur {
        if cur.id == c.id {
            cur.out.raw(bytes);
            return;
        }
    }
    if gone(c) {
        return;
    }
    let len = crate::pubsub::push_backlog(c, bytes);
    let class = usize::from(crate::pubsub::subscribed(c));
    let hard = HARD_LIMITS[class].load(Ordering::Relaxed);
    crate::pubsub::close_or_wake(c, hard > 0 && len > hard);
}

/// Redis's `sendTrackingMessage`: delivers one invalidation for a tracking
/// client, to the client itself (RESP3) or to its redirect client (RESP3
/// push, or a `__redis__:invalidate` Pub/Sub message for a subscribed
/// RESP2 client).
fn send(t: &Target, payload: &Payload, cur: &mut Option<Current<'_>>) {
    let tracker = &t.tracker;
    let tracker_resp3 = is_resp3(tracker, cur);
    let (target, redirected) = if t.redirect_id != 0 {
        match t.redirect.as_deref().filter(|r| !gone(r)) {
            Some(r) => (r, true),
            None => {
                tracker
                    .tracking
                    .fetch_or(flags::BROKEN_REDIR, Ordering::Relaxed);
                if tracker_resp3 {
                    let mut m = b">2\r\n$21\r\ntracking-redir-broken\r\n".to_vec();
                    m.extend_from_slice(format!(":{}\r\n", t.redirect_id).as_bytes());
                    emit(tracker, &m, cur);
                }
                return;
            }
        }
    } else {
        (&**tracker, false)
    };
    let mut m: Vec<u8> = if is_resp3(target, cur) {
        b">2\r\n$10\r\ninvalidate\r\n".to_vec()
    } else if redirected && crate::pubsub::subscribed(target) {
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n".to_vec()
    } else {
        return;
    };
    match payload {
        Payload::Keys(k) => m.extend_from_slice(k),
        // Redis sends the tracking client's own null, whatever the
        // protocol of the connection that receives it.
        Payload::Null => m.extend_from_slice(if tracker_resp3 { b"_\r\n" } else { b"$-1\r\n" }),
    }
    emit(target, &m, cur);
}

/// Signals that `key` changed (any database), caused by client `by`
/// (0 for the server itself: expiry, eviction).
#[inline]
pub fn invalidate_key(srv: &Server, key: &[u8], by: u64) {
    if TRACKING_CLIENTS.load(Ordering::Relaxed) == 0 {
        return;
    }
    invalidate_slow(srv, key, by);
}

#[cold]
fn invalidate_slow(_srv: &Server, key: &[u8], by: u64) {
    let mut targets: Vec<Target> = Vec::new();
    let mut own = false;
    {
        let mut st = STATE.lock();
        if !st.prefixes.is_empty() {
            for (prefix, ids) in st.prefixes.iter() {
                if !key.starts_with(prefix) {
                    continue;
                }
                if by != 0 {
                    PENDING.with(|p| {
                        p.borrow_mut()
                            .bcast
                            .entry(prefix.clone())
                            .or_default()
                            .insert(key.to_vec(), by);
                    });
                } else {
                    // Expiry outside any command: sent at once.
                    for id in ids {
                        if let Some(t) = st.clients.get(id) {
                            targets.push(Target::of(t));
                        }
                    }
                }
            }
        }
        if let Some(ids) = st.keys.remove(key) {
            st.items -= ids.len();
            for id in ids {
                let Some(t) = st.clients.get(&id) else {
                    continue;
                };
                let f = t.shared.tracking.load(Ordering::Relaxed);
                if f & flags::ON == 0 || f & flags::BCAST != 0 {
                    continue;
                }
                if id == by {
                    if f & flags::NOLOOP == 0 {
                        own = true;
                    }
                    continue;
                }
                targets.push(Target::of(t));
            }
        }
    }
    if targets.is_empty() && !own {
        return;
    }
    let payload = Payload::Keys(encode_keys(&[key]));
    if own {
        PENDING.with(|p| p.borrow_mut().own.push((by, payload.clone())));
    }
    let mut cur = None;
    for t in &targets {
        send(t, &payload, &mut cur);
    }
}

/// Remembers the keys a read-only command of a tracking client read, then
/// writes the messages the command caused for its own client (after its
/// reply) and the BCAST messages, and keeps the table within
/// `tracking-table-max-keys`.
#[inline]
pub fn after_command(
    srv: &Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    cmd: &Command,
    args: &[&[u8]],
) {
    if TRACKING_CLIENTS.load(Ordering::Relaxed) == 0 {
        return;
    }
    after_command_slow(srv, client, out, cmd, args);
}

/// Remembers the keys read by a command EXEC (or a script) runs.
#[inline]
pub fn after_nested(srv: &Server, client: &mut Client, cmd: &Command, args: &[&[u8]]) {
    if TRACKING_CLIENTS.load(Ordering::Relaxed) == 0 {
        return;
    }
    remember(srv, client, cmd, args);
}

#[cold]
fn after_command_slow(
    srv: &Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    cmd: &Command,
    args: &[&[u8]],
) {
    if !matches!(cmd.spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro") {
        remember(srv, client, cmd, args);
    }
    // CLIENT CACHING affects the next command (or transaction) only; any
    // CLIENT subcommand keeps it, as Redis's resetClient does.
    if !client.tx.in_multi() && !cmd.spec.name.starts_with("client|") {
        client.tracking_caching = false;
    }
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let evicted = if pending.added {
        refresh_limits(srv);
        evict_over_limit()
    } else {
        Vec::new()
    };
    if pending.is_empty() && evicted.is_empty() {
        return;
    }
    // Messages to the running client go into its reply buffer, unless
    // replies are being discarded (CLIENT REPLY OFF/SKIP): pushes still
    // reach it then, through its pushed data.
    let direct = client.reply_mode == crate::client::ReplyMode::On;
    let mut cur = direct.then_some(Current {
        id: client.id(),
        out,
    });
    let mut sends: Vec<(Target, Payload)> = Vec::new();
    {
        let st = STATE.lock();
        for (id, payload) in pending.own {
            if let Some(t) = st.clients.get(&id) {
                sends.push((Target::of(t), payload));
            }
        }
        for (prefix, keys) in &pending.bcast {
            let Some(ids) = st.prefixes.get(prefix) else {
                continue;
            };
            let all = Payload::Keys(encode_keys(&keys.keys().collect::<Vec<_>>()));
            for id in ids {
                let Some(t) = st.clients.get(id) else {
                    continue;
                };
                if t.shared.tracking.load(Ordering::Relaxed) & flags::NOLOOP != 0 {
                    let mine: Vec<&Vec<u8>> = keys
                        .iter()
                        .filter(|(_, by)| **by != *id)
                        .map(|(k, _)| k)
                        .collect();
                    if !mine.is_empty() {
                        sends.push((Target::of(t), Payload::Keys(encode_keys(&mine))));
                    }
                } else {
                    sends.push((Target::of(t), all.clone()));
                }
            }
        }
        for (key, ids) in &evicted {
            let payload = Payload::Keys(encode_keys(&[key]));
            for id in ids {
                if let Some(t) = st.clients.get(id) {
                    let f = t.shared.tracking.load(Ordering::Relaxed);
                    if f & flags::ON != 0 && f & flags::BCAST == 0 {
                        sends.push((Target::of(t), payload.clone()));
                    }
                }
            }
        }
    }
    for (t, payload) in &sends {
        send(t, payload, &mut cur);
    }
}

/// Redis's `trackingRememberKeys`: records the keys of a read-only command
/// for the (non-BCAST) tracking client that runs it, honouring
/// OPTIN/OPTOUT and CLIENT CACHING.
fn remember(_srv: &Server, client: &Client, cmd: &Command, args: &[&[u8]]) {
    let f = client.shared.tracking.load(Ordering::Relaxed);
    if f & flags::ON == 0 || f & flags::BCAST != 0 {
        return;
    }
    if !cmd.has_flag("readonly") || cmd.has_flag("pubsub") {
        return;
    }
    let caching = client.tracking_caching;
    if (f & flags::OPTIN != 0 && !caching) || (f & flags::OPTOUT != 0 && caching) {
        return;
    }
    let keys = crate::cmd::command::get_keys(cmd.spec, args);
    if keys.is_empty() {
        return;
    }
    let id = client.id();
    let mut st = STATE.lock();
    for k in keys {
        let Some(key) = args.get(k.pos) else {
            continue;
        };
        let ids = st.keys.entry(key.to_vec()).or_default();
        if let Err(i) = ids.binary_search(&id) {
            ids.insert(i, id);
            st.items += 1;
        }
    }
    drop(st);
    PENDING.with(|p| p.borrow_mut().added = true);
}

/// Redis's `trackingLimitUsedSlots`: while the table holds more keys than
/// `tracking-table-max-keys` (0: no limit), forgets keys, returning them
/// with the clients to invalidate.
fn evict_over_limit() -> Vec<(Vec<u8>, Vec<u64>)> {
    let max = MAX_KEYS.load(Ordering::Relaxed) as usize;
    let mut evicted = Vec::new();
    if max == 0 {
        return evicted;
    }
    let mut st = STATE.lock();
    if st.keys.len() <= max {
        return evicted;
    }
    let excess = st.keys.len() - max;
    let victims: Vec<Vec<u8>> = st.keys.keys().take(excess).cloned().collect();
    for k in victims {
        if let Some(ids) = st.keys.remove(&k) {
            st.items -= ids.len();
            evicted.push((k, ids));
        }
    }
    evicted
}

/// Re-reads the limits this module caches, unless the configuration is
/// being written right now.
fn refresh_limits(srv: &Server) {
    let Some(cfg) = srv.config.try_read() else {
        return;
    };
    MAX_KEYS.store(
        cfg.get_i64("tracking-table-max-keys").max(0) as u64,
        Ordering::Relaxed,
    );
    let value = cfg.get("client-output-buffer-limit");
    let words: Vec<&str> = value.split_whitespace().collect();
    for chunk in words.chunks(4) {
        let slot = match chunk.first() {
            Some(c) if c.eq_ignore_ascii_case("normal") => 0,
            Some(c) if c.eq_ignore_ascii_case("pubsub") => 1,
            _ => continue,
        };
        if let Some(hard) = chunk.get(1).and_then(|h| crate::config::parse_memory(h)) {
            HARD_LIMITS[slot].store(hard, Ordering::Relaxed);
        }
    }
}

/// FLUSHDB / FLUSHALL by client `by`: every tracking client gets a null
/// invalidation (the flusher's own after its reply) and the table is
/// emptied.
pub fn flush(srv: &Server, by: u64) {
    if TRACKING_CLIENTS.load(Ordering::Relaxed) == 0 && !USED.load(Ordering::Relaxed) {
        return;
    }
    let _ = srv;
    let mut targets = Vec::new();
    let mut own = false;
    {
        let mut st = STATE.lock();
        st.keys = HashMap::new();
        st.items = 0;
        for (id, t) in &st.clients {
            if *id == by {
                own = true;
            } else {
                targets.push(Target::of(t));
            }
        }
    }
    if own {
        PENDING.with(|p| p.borrow_mut().own.push((by, Payload::Null)));
    }
    let mut cur = None;
    for t in &targets {
        send(t, &Payload::Null, &mut cur);
    }
}

/// Options of CLIENT TRACKING ON.
#[derive(Debug, Default)]
pub struct Options {
    /// REDIRECT id (0: none) and the client it names.
    pub redirect: u64,
    /// The redirect client.
    pub redirect_to: Option<Arc<ClientShared>>,
    /// Flag bits: BCAST, OPTIN, OPTOUT, NOLOOP.
    pub flags: u32,
    /// PREFIX values.
    pub prefixes: Vec<Vec<u8>>,
}

/// The first of `prefixes` that overlaps one of the client's prefixes or
/// a later one of `prefixes`, as Redis's `checkPrefixCollisionsOrReply`
/// words the error.
pub fn prefix_collision(client: &Client, prefixes: &[Vec<u8>]) -> Option<String> {
    fn overlap(a: &[u8], b: &[u8]) -> bool {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    }
    // Redis prints the prefixes as C strings.
    fn c_str(s: &[u8]) -> String {
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    }
    let st = STATE.lock();
    let existing = st.clients.get(&client.id()).map(|t| &t.prefixes);
    for (i, p) in prefixes.iter().enumerate() {
        if let Some(ex) = existing {
            if let Some(e) = ex.iter().find(|e| overlap(e, p)) {
                return Some(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    c_str(p),
                    c_str(e)
                ));
            }
        }
        for q in &prefixes[i + 1..] {
            if overlap(p, q) {
                return Some(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    c_str(p),
                    c_str(q)
                ));
            }
        }
    }
    None
}

/// Redis's `enableTracking` (the options were validated by the caller).
pub fn enable(srv: &Server, client: &mut Client, opts: Options) {
    refresh_limits(srv);
    let shared = client.shared.clone();
    let id = shared.id;
    USED.store(true, Ordering::Relaxed);
    let mut st = STATE.lock();
    let old = shared.tracking.load(Ordering::Relaxed);
    if old & flags::ON == 0 {
        TRACKING_CLIENTS.fetch_add(1, Ordering::Relaxed);
    }
    let mut f = flags::ON | (opts.flags & (flags::OPTIN | flags::OPTOUT | flags::NOLOOP));
    if opts.flags & flags::BCAST != 0 {
        f |= flags::BCAST;
    }
    shared
        .tracking_redir
        .store(opts.redirect, Ordering::Relaxed);
    shared.tracking.store(f, Ordering::Relaxed);
    let entry = st.clients.entry(id).or_insert_with(|| Tracked {
        shared: shared.clone(),
        redirect: None,
        prefixes: BTreeSet::new(),
    });
    entry.redirect = opts.redirect_to;
    if f & flags::BCAST == 0 {
        return;
    }
    let mut added = opts.prefixes;
    if added.is_empty() {
        added.push(Vec::new());
    }
    for p in &added {
        entry.prefixes.insert(p.clone());
    }
    for p in added {
        let ids = st.prefixes.entry(p).or_default();
        if let Err(i) = ids.binary_search(&id) {
            ids.insert(i, id);
        }
    }
}

/// Redis's `disableTracking` (CLIENT TRACKING OFF, RESET, disconnect).
pub fn disable(client: &mut Client) {
    client.tracking_caching = false;
    let shared = &client.shared;
    if shared.tracking.load(Ordering::Relaxed) & flags::ON == 0 {
        return;
    }
    let mut st = STATE.lock();
    if let Some(t) = st.clients.remove(&shared.id) {
        for p in &t.prefixes {
            if let Some(ids) = st.prefixes.get_mut(p) {
                ids.retain(|&i| i != shared.id);
                if ids.is_empty() {
                    st.prefixes.remove(p);
                }
            }
        }
    }
    shared.tracking.store(0, Ordering::Relaxed);
    TRACKING_CLIENTS.fetch_sub(1, Ordering::Relaxed);
    if st.clients.is_empty() {
        // With no tracking client the hooks stop looking at the table, so
        // what it still holds could never be invalidated: drop it (Redis
        // keeps such keys until they change), and what this thread still
        // has queued.
        st.keys = HashMap::new();
        st.items = 0;
        PENDING.with(|p| *p.borrow_mut() = Pending::default());
    }
}

/// A connection closed: tracking is turned off and clients redirecting to
/// it will find the redirect broken.
pub fn disconnect(client: &mut Client) {
    client.shared.closed.store(true, Ordering::Relaxed);
    disable(client);
}

/// The client's BCAST prefixes, in byte order (CLIENT TRACKINGINFO).
pub fn prefixes_of(id: u64) -> Vec<Vec<u8>> {
    let st = STATE.lock();
    st.clients
        .get(&id)
        .map(|t| t.prefixes.iter().cloned().collect())
        .unwrap_or_default()
}

/// INFO: (`tracking_total_keys`, `tracking_total_items`,
/// `tracking_total_prefixes`).
pub fn totals() -> (usize, usize, usize) {
    if !USED.load(Ordering::Relaxed) {
        return (0, 0, 0);
    }
    let st = STATE.lock();
    (st.keys.len(), st.items, st.prefixes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_arrays() {
        assert_eq!(&*encode_keys(&[b"k1".as_slice()]), b"*1\r\n$2\r\nk1\r\n");
        assert_eq!(
            &*encode_keys(&[b"a".as_slice(), b""]),
            b"*2\r\n$1\r\na\r\n$0\r\n\r\n"
        );
    }
}
